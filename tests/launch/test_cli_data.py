"""`opine data build|inspect` as a user runs them: build, reuse, rebuild on change, inspect, errors.

Environment (set by tests/CMakeLists.txt): OPINE_BIN and the data root.
"""
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

BIN = os.environ["OPINE_BIN"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("OPINE_DATA_ROOT") or os.environ["OPINE_DATA_ROOT_DEFAULT"])
TOKENIZER = DATA / "tokenizers/llama2-spm-llama2.c/tokenizer.model"
CONFIG = ROOT / "experiments/stance/abortion-binary-sft.yaml"


def opine(*args, check=True):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300, cwd=ROOT)
    if check and p.returncode != 0:
        raise AssertionError(f"opine {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


@unittest.skipUnless(TOKENIZER.exists(), "no shipped data")
class DataCommands(unittest.TestCase):
    def setUp(self):
        self.dir = tempfile.TemporaryDirectory()
        self.addCleanup(self.dir.cleanup)
        self.common = ["--config", CONFIG, "--tokenizer", TOKENIZER, f"data.cache_dir={self.dir.name}",
                       f"data.data_root={DATA}"]

    def test_build_reuse_change_inspect(self):
        first = opine("data", "build", *self.common)
        self.assertIn("building", first.stderr)
        path = first.stdout.splitlines()[0]
        self.assertIn("train: 638 examples (210 augmented)", first.stdout)
        self.assertIn("against: 319", first.stdout)
        again = opine("data", "build", *self.common)
        self.assertNotIn("building", again.stderr)
        self.assertEqual(again.stdout, first.stdout)
        changed = opine("data", "build", *self.common, "data.max_length=64")
        self.assertNotEqual(changed.stdout.splitlines()[0], path)
        forced = opine("data", "build", *self.common, "--rebuild")
        self.assertIn("rebuilding (asked to)", forced.stderr)
        shown = opine("data", "inspect", path)
        self.assertIn("val: 48 examples (0 augmented)", shown.stdout)

    def test_errors_name_the_problem(self):
        p = opine("data", "build", *self.common, "data.dataset.splits.train.path=x.csv", "data.spec=", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("no file", p.stderr)
        bad = pathlib.Path(self.dir.name) / "notes.h5"
        bad.write_text("not a cache")
        p = opine("data", "inspect", bad, check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("not an HDF5 file", p.stderr)
        p = opine("data", "frobnicate", check=False)
        self.assertIn("unknown `opine data` command", p.stderr)


if __name__ == "__main__":
    sys.exit(unittest.main(verbosity=2))
