"""Generates every reference the parity tests read, into --out (the build tree).

Each generator runs again only when its script changed (a stamp holds the script's hash), so a
re-run of the tests costs nothing. Reference values are never edited by hand.
"""
import argparse
import hashlib
import importlib
import os
import pathlib
import subprocess
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
# (module, output subfolder, takes the data root[, glob of further inputs under the project root]),
# in two lanes that run side by side (the machines have 2 cores); a generator that reads another's
# output sits after it in the same lane.
LANES = [
    [
        ("tiny_models", "tiny", False),
        ("real_models", "real", True),
        ("gguf_reference", "gguf", True),
        ("chat_reference", "chat", True),
        ("spm_reference", "spm", True),
        ("tokenizer_reference", "tokenizers", True),
    ],
    [
        ("encoder_tokenizer_reference", "encoder_tokenizers", True, "tests/reference/tokenizer_reference.py"),
        # After the tokenizers: the XLM-R command-line fixture takes the tiny XLM-R tokenizer.
        ("encoder_reference", "encoder", False, "tests/reference/encoder_tokenizer_reference.py"),
        ("peft_reference", "peft", False),
        ("metrics_reference", "metrics", False),
        ("data_reference", "data", True, "experiments/datasets/*.yaml"),
        ("train_reference", "train", False),
        ("trainer_fixture", "trainer", False),
        ("strategy_reference", "strategy", False, "tests/reference/trainer_fixture.py"),
        ("quant_reference", "quant", False),
    ],
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", required=True, type=pathlib.Path)
    ap.add_argument("--force", action="store_true")
    ap.add_argument("--lane", type=int, help="run one lane only (the default runs every lane at once)")
    args = ap.parse_args()
    if os.environ.get("OPINE_DATA_ROOT"):  # the user's data root wins over the build's default
        args.data_root = pathlib.Path(os.environ["OPINE_DATA_ROOT"])
    if args.lane is None:
        base = [sys.executable, str(pathlib.Path(__file__).resolve()), "--out", str(args.out),
                "--data-root", str(args.data_root)] + (["--force"] if args.force else [])
        lanes = [subprocess.Popen(base + ["--lane", str(i)]) for i in range(len(LANES))]
        failed = [i for i, p in enumerate(lanes) if p.wait() != 0]
        if failed:
            sys.exit(f"reference generation failed in lane(s) {failed}")
        return
    sys.path.insert(0, str(HERE))
    for module_name, sub, wants_data, *inputs in LANES[args.lane]:
        script = HERE / f"{module_name}.py"
        if not script.exists():
            continue
        out = args.out / sub
        stamp = out / ".stamp"
        # The script and the pinned library versions decide the values.
        pins = b"".join(p.read_bytes() for p in sorted((HERE.parent.parent / "scripts").glob("requirements*.txt")))
        extra = b"".join(p.read_bytes() for pattern in inputs for p in sorted(HERE.parent.parent.glob(pattern)))
        digest = hashlib.sha256(script.read_bytes() + (HERE / "corpus.py").read_bytes() + pins + extra +
                                str(args.data_root.resolve()).encode()).hexdigest()
        if not args.force and stamp.exists() and stamp.read_text() == digest:
            print(f"reference {sub}: up to date")
            continue
        start = time.time()
        module = importlib.import_module(module_name)
        out.mkdir(parents=True, exist_ok=True)
        module.generate(out, args.data_root) if wants_data else module.generate(out)
        stamp.write_text(digest)
        print(f"reference {sub}: generated in {time.time() - start:.1f}s")


if __name__ == "__main__":
    main()
