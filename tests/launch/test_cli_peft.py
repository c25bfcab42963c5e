"""`opine score --adapter` and `opine merge` against PEFT itself.

Uses the tiny models and PEFT adapters of tests/reference/peft_reference.py. Log-probabilities
and logits are float32 results of the same weights through two implementations: they must agree
within 1e-5 (relative to the largest magnitude), a few float32 epsilons times the depth.
"""
import json
import os
import pathlib
import subprocess
import tempfile
import unittest

import torch

BIN = os.environ["OPINE_BIN"]
REF = pathlib.Path(os.environ["OPINE_REFERENCE_DIR"]) / "peft"
IDS = [1, 17, 42, 5, 88, 23, 61, 9, 14, 77, 30, 2]
TOL = 1e-5


def opine(*args, check=True):
    p = subprocess.run([BIN, *map(str, args)], capture_output=True, text=True, timeout=300)
    if check and p.returncode != 0:
        raise AssertionError(f"opine {' '.join(map(str, args))} failed ({p.returncode}):\n{p.stderr}")
    return p


def rel_err(got, want):
    got, want = torch.as_tensor(got, dtype=torch.float64), torch.as_tensor(want, dtype=torch.float64)
    return ((got - want).abs().max() / want.abs().max().clamp_min(1e-30)).item()


def peft_model(case, base):
    from peft import PeftModel
    from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
    auto = AutoModelForCausalLM if base == "causal" else AutoModelForSequenceClassification
    return PeftModel.from_pretrained(auto.from_pretrained(REF / "base" / base), REF / case / "adapter").eval()


def logprobs(model, ids):
    with torch.no_grad():
        logits = model(torch.tensor([ids])).logits.float()
    logits = logits[:, -len(ids):]  # prompt tuning: PEFT's logits include the virtual tokens
    lp = torch.log_softmax(logits[0, :-1], -1)
    return lp.gather(-1, torch.tensor(ids[1:]).unsqueeze(-1)).squeeze(-1)


class Score(unittest.TestCase):
    def test_score_with_lora_dora_and_prompt_tuning_adapters_matches_peft(self):
        for case in ("lora_causal", "dora_causal", "prompt_causal"):
            out = json.loads(opine("score", "--model", REF / "base" / "causal", "--adapter", REF / case / "adapter",
                                   "--ids", " ".join(map(str, IDS))).stdout)
            want = logprobs(peft_model(case, "causal"), IDS)
            err = rel_err(out["logprobs"], want)
            print(f"{case}: opine score vs PEFT max relative error {err:.3g}")
            self.assertLess(err, TOL, case)

    def test_adapter_errors_are_clear(self):
        p = opine("score", "--model", REF / "base" / "causal", "--adapter", REF / "missing", "--ids", "1 2 3",
                  check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not exist", p.stderr)
        p = opine("inspect", REF / "base" / "causal", "--quant", "nf4", "--adapter", REF / "prompt_causal" / "adapter",
                  check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("prompt-tuning adapter changes the input", p.stderr)
        # An adapter made for another model: every mismatched tensor is named.
        p = opine("score", "--model", REF / "base" / "regress", "--adapter", REF / "lora_causal" / "adapter",
                  "--ids", "1 2 3", check=False)
        self.assertEqual(p.returncode, 1)
        self.assertIn("does not fit the model", p.stderr)


class Merge(unittest.TestCase):
    def test_help(self):
        self.assertIn("usage: opine merge", opine("merge", "--help").stdout)

    def test_merged_folder_loads_in_transformers_and_opine(self):
        from transformers import AutoModelForCausalLM, AutoModelForSequenceClassification
        for case, base in (("dora_causal", "causal"), ("rslora_classify", "classify"), ("dora_regress", "regress")):
            with tempfile.TemporaryDirectory() as tmp:
                summary = json.loads(opine("merge", "--model", REF / "base" / base, "--adapter",
                                           REF / case / "adapter", "--out", tmp).stdout)
                self.assertGreater(summary["merged_layers"], 0)
                peft = peft_model(case, base)
                ids = torch.tensor([IDS])
                auto = AutoModelForCausalLM if base == "causal" else AutoModelForSequenceClassification
                merged = auto.from_pretrained(tmp).eval()
                with torch.no_grad():
                    err = rel_err(merged(ids).logits, peft(ids).logits)
                print(f"{case}: transformers on opine's merged folder vs PEFT max relative error {err:.3g}")
                self.assertLess(err, TOL, case)
                if base == "causal":
                    out = json.loads(opine("score", "--model", tmp, "--ids", " ".join(map(str, IDS))).stdout)
                    self.assertLess(rel_err(out["logprobs"], logprobs(peft, IDS)), TOL)

    def test_merge_needs_a_lora_adapter(self):
        with tempfile.TemporaryDirectory() as tmp:
            p = opine("merge", "--model", REF / "base" / "causal", "--adapter", REF / "prompt_causal" / "adapter",
                      "--out", tmp, check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("nothing to merge", p.stderr)
            p = opine("merge", "--model", REF / "base" / "causal", "--adapter", REF / "lora_causal" / "adapter",
                      check=False)
            self.assertEqual(p.returncode, 1)
            self.assertIn("--out", p.stderr)


if __name__ == "__main__":
    unittest.main(verbosity=2)
