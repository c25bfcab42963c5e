"""Data pipeline throughput, opine against the Python way, on the shipped TweetEval-layout datasets.

Both read every split of the same specs (experiments/datasets: the five stance topics and the eight
UMSAB languages), decode HTML entities and apply the cardiffnlp preprocessing, collapse white
space, tokenize with Qwen2's byte-level BPE (opine's own; HF `tokenizers` through transformers'
fast tokenizer, batched over all cores) truncating at 128 tokens, and write the ids, offsets and
labels (opine: the HDF5 cache; Python: numpy's .npz). Then each loads what it wrote. Best of 3.
    $(scripts/venv-path.sh)/bin/python bench/data_throughput.py [--build build] [--data-root ../shared/data]
"""
import argparse
import html
import json
import pathlib
import subprocess
import tempfile
import time

import numpy as np
import yaml

ROOT = pathlib.Path(__file__).resolve().parent.parent
SPECS = sorted(p for p in (ROOT / "experiments/datasets").glob("*.yaml")
               if p.stem.startswith("sentiment-umsab-") or (p.stem.startswith("stance-") and "binary" not in p.stem))


def cardiff(text):
    return " ".join("@user" if t.startswith("@") and len(t) > 1 else "http" if t.startswith("http") else t
                    for t in text.split(" "))


def lines(path):
    out = path.read_text(encoding="utf-8").split("\n")
    return out[:-1] if out and out[-1] == "" else out


def python_peer(data_root, out_dir, repeats):
    from transformers import AutoTokenizer
    tok = AutoTokenizer.from_pretrained(data_root / "tokenizers/qwen2-1.5b-instruct")
    best_build = best_hit = float("inf")
    for _ in range(repeats):
        examples = 0
        t0 = time.perf_counter()
        for path in SPECS:
            spec = yaml.safe_load(path.read_text())
            arrays = {}
            for split, files in spec["splits"].items():
                texts = lines(data_root / files["path"])
                labels = [int(x) for x in lines(data_root / files["labels"])]
                texts = [" ".join(cardiff(html.unescape(t)).split()) for t in texts]
                ids = tok(texts, truncation=True, max_length=128)["input_ids"]
                arrays[f"{split}_ids"] = np.fromiter((i for row in ids for i in row), dtype=np.int32)
                arrays[f"{split}_offsets"] = np.cumsum([0] + [len(r) for r in ids], dtype=np.int64)
                arrays[f"{split}_labels"] = np.asarray(labels, dtype=np.int32)
                examples += len(texts)
            np.savez(out_dir / f"{path.stem}.npz", **arrays)
        best_build = min(best_build, time.perf_counter() - t0)
        t0 = time.perf_counter()
        for path in SPECS:
            with np.load(out_dir / f"{path.stem}.npz") as f:
                {k: f[k] for k in f.files}
        best_hit = min(best_hit, time.perf_counter() - t0)
    return {"examples": examples, "build_seconds": best_build, "hit_seconds": best_hit}


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--build", default=str(ROOT / "build"))
    ap.add_argument("--data-root", default=str(ROOT.parent / "shared/data"))
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args()
    data_root = pathlib.Path(args.data_root)
    with tempfile.TemporaryDirectory() as tmp:
        out = pathlib.Path(tmp)
        opine = json.loads(subprocess.run(
            [f"{args.build}/bin/bench_data", "--tokenizer", str(data_root / "tokenizers/qwen2-1.5b-instruct"),
             "--data-root", str(data_root), "--out", str(out), "--repeats", str(args.repeats), *map(str, SPECS)],
            check=True, capture_output=True, text=True).stdout)
        peer = python_peer(data_root, out, args.repeats)
    print(f"{len(SPECS)} datasets, {opine['examples']} tweets (peer {peer['examples']})")
    print("| step | Python (HF tokenizers, numpy) | opine | opine/Python |")
    print("|---|---|---|---|")
    o_rate, p_rate = opine["examples"] / opine["build_seconds"], peer["examples"] / peer["build_seconds"]
    print(f"| read+normalise+tokenize+write, tweets/s | {p_rate:,.0f} | {o_rate:,.0f} | {o_rate / p_rate:.2f} |")
    print(f"| cache-hit load, s (last column: Python time / opine time) | {peer['hit_seconds']:.3f} | {opine['hit_seconds']:.3f} | "
          f"{peer['hit_seconds'] / opine['hit_seconds']:.2f} |")


if __name__ == "__main__":
    main()
