"""Generates every reference the parity tests read, into --out (the build tree).

Each generator runs again only when its script changed (a stamp holds the script's hash), so a
re-run of the tests costs nothing. Reference values are never edited by hand.
"""
import argparse
import hashlib
import importlib
import os
import pathlib
import sys
import time

HERE = pathlib.Path(__file__).resolve().parent
# (module, output subfolder, takes the data root[, glob of further inputs under the project root])
GENERATORS = [
    ("tiny_models", "tiny", False),
    ("real_models", "real", True),
    ("gguf_reference", "gguf", True),
    ("chat_reference", "chat", True),
    ("spm_reference", "spm", True),
    ("tokenizer_reference", "tokenizers", True),
    ("quant_reference", "quant", False),
    ("peft_reference", "peft", False),
    ("metrics_reference", "metrics", False),
    ("data_reference", "data", True, "experiments/datasets/*.yaml"),
    ("train_reference", "train", False),
    ("trainer_fixture", "trainer", False),
    ("strategy_reference", "strategy", False, "tests/reference/trainer_fixture.py"),
]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True, type=pathlib.Path)
    ap.add_argument("--data-root", required=True, type=pathlib.Path)
    ap.add_argument("--force", action="store_true")
    args = ap.parse_args()
    if os.environ.get("OPINE_DATA_ROOT"):  # the user's data root wins over the build's default
        args.data_root = pathlib.Path(os.environ["OPINE_DATA_ROOT"])
    sys.path.insert(0, str(HERE))
    for module_name, sub, wants_data, *inputs in GENERATORS:
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
