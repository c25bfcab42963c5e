"""`opine eval` strategies and `opine predict` as a user runs them, on the tiny model and data of
tests/reference/trainer_fixture.py.

The training-free strategies are compared with transformers (tests/reference/strategy_reference.py):
each label's answer log-probability within 2e-4 (float32 sums of ~20 token log-probs of size ~3;
observed ~5e-7), the greedy answer text exactly. Metrics are recomputed here with scikit-learn from
the written predictions (1e-12). Ranks split the examples, so 2 ranks must give what 1 gives.
"""
import csv
import json
import pathlib
import re
import shutil
import tempfile
import unittest

from sklearn.metrics import accuracy_score, f1_score
from tiny_fixture import LORA, MODEL_AND_DATA, MPIEXEC, REF, REFDIR, opine

EXPECTED = json.loads((REFDIR / "strategy" / "expected.json").read_text())
LOGP_TOL = 2e-4

CONFIG = MODEL_AND_DATA + """task:
  system: {system}
  instruction: {instruction}
  labels: [against, favor]
""" + LORA + """train:
  epochs: 2
  sampler: {{batch_size: 8, seed: 3}}
  optimizer: {{lr: 0.03, weight_decay: 0.01}}
  eval_batch_size: 16
eval: {{limit: {limit}, bootstrap: 200, plots: false}}
seed: 5
"""


def read_csv(path):
    with open(path, newline="", encoding="utf-8") as f:
        return list(csv.DictReader(f))


def parse_answer(text, labels):
    """The rule opine documents: earliest whole-word, case-insensitive label (longest at a tie)."""
    best = None
    for i, label in enumerate(labels):
        m = re.search(r"(?<![0-9A-Za-z_\x80-\uffff])" + re.escape(label.lower()) + r"(?![0-9A-Za-z_\x80-\uffff])",
                      text.lower())
        if m and (best is None or m.start() < best[0] or (m.start() == best[0] and len(label) > best[1])):
            best = (m.start(), len(label), i)
    return -1 if best is None else best[2]


class EvalBase(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.tmp = pathlib.Path(tempfile.mkdtemp(prefix="opine-eval-"))
        cls.config = cls.tmp / "eval.yaml"
        cls.config.write_text(CONFIG.format(model=REF / "model", data=REF / "data", cache=cls.tmp / "cache",
                                            system=json.dumps(EXPECTED["system"]),
                                            instruction=json.dumps(EXPECTED["instruction"]),
                                            limit=EXPECTED["count"]))

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def eval(self, name, *args, mpi=0):
        out = self.tmp / name
        p = opine("eval", "--config", self.config, "--output", out, *args, mpi=mpi)
        return json.loads(p.stdout[p.stdout.index("{"):]), out


class Strategies(EvalBase):
    def check_logprobs(self, rows, key):
        self.assertEqual(len(rows), EXPECTED["count"])
        for row, want in zip(rows, EXPECTED["examples"]):
            self.assertEqual(row["text"], want["text"])
            got = [float(row["logp_against"]), float(row["logp_favor"])]
            for g, w in zip(got, want[key]):
                self.assertLess(abs(g - w), LOGP_TOL, (key, row["text"], got, want[key]))
            self.assertEqual(row["predicted"], EXPECTED["labels"][got.index(max(got))])

    def test_loglik_matches_transformers_with_and_without_prefix_cache(self):
        for cache in ("true", "false"):
            out, folder = self.eval(f"loglik-{cache}", "--strategy", "loglik", f"eval.prefix_cache={cache}")
            rows = read_csv(folder / "predictions.csv")
            self.check_logprobs(rows, "loglik")
            # The metrics are scikit-learn's on these predictions.
            truth = [r["truth"] for r in rows]
            pred = [r["predicted"] for r in rows]
            self.assertAlmostEqual(out["eval"]["accuracy"], accuracy_score(truth, pred), places=12)
            self.assertAlmostEqual(out["eval"]["f1_macro"], f1_score(truth, pred, average="macro", zero_division=0),
                                   places=12)
            lo, hi = out["intervals"]["accuracy"]
            self.assertLessEqual(lo, out["eval"]["accuracy"])
            self.assertGreaterEqual(hi, out["eval"]["accuracy"])
            for f in ("metrics.json", "metrics.csv", "report.md"):
                self.assertTrue((folder / f).exists(), f)

    def test_two_shot_similar_matches_transformers(self):
        _, folder = self.eval("shots", "--strategy", "loglik", "--shots", "2", "eval.shot_selection=similar")
        self.check_logprobs(read_csv(folder / "predictions.csv"), "loglik_2shot_similar")

    def test_greedy_generation_matches_transformers_and_counts_invalid_answers(self):
        out, folder = self.eval("generate", "--strategy", "generate",
                                f"eval.max_new_tokens={EXPECTED['max_new_tokens']}")
        rows = read_csv(folder / "predictions.csv")
        invalid = 0
        for row, want in zip(rows, EXPECTED["examples"]):
            self.assertEqual(row["answer"], want["generated"])
            label = parse_answer(want["generated"], EXPECTED["labels"])
            self.assertEqual(row["predicted"], "" if label < 0 else EXPECTED["labels"][label])
            invalid += label < 0
        self.assertEqual(out["eval"]["invalid"], invalid)
        self.assertAlmostEqual(out["eval"]["invalid_rate"], invalid / len(rows))

    def test_vote_is_seeded_and_shares_are_vote_fractions(self):
        args = ("--strategy", "vote", "eval.samples=3", "eval.temperature=1.0", "eval.max_new_tokens=6")
        _, a = self.eval("vote-a", *args)
        _, b = self.eval("vote-b", *args)
        ra, rb = read_csv(a / "predictions.csv"), read_csv(b / "predictions.csv")
        self.assertEqual(ra, rb)
        for r in ra:
            shares = [float(r["p_against"]), float(r["p_favor"])]
            for s in shares:
                self.assertIn(round(s * 3), (0, 1, 2, 3))
                self.assertAlmostEqual(s * 3, round(s * 3))
            self.assertEqual(len(r["answer"].split(" | ")), 3)

    @unittest.skipUnless(MPIEXEC, "no mpiexec")
    def test_two_ranks_give_what_one_gives(self):
        for args in (("--strategy", "loglik"),
                     ("--strategy", "vote", "eval.samples=2", "eval.temperature=1.0", "eval.max_new_tokens=4")):
            _, one = self.eval("one-" + args[1], *args)
            _, two = self.eval("two-" + args[1], *args, mpi=2)
            r1, r2 = read_csv(one / "predictions.csv"), read_csv(two / "predictions.csv")
            self.assertEqual([r["predicted"] for r in r1], [r["predicted"] for r in r2])
            self.assertEqual([r.get("answer") for r in r1], [r.get("answer") for r in r2])
            for x, y in zip(r1, r2):
                for key in x:
                    if key.startswith(("p_", "logp_")):
                        self.assertLess(abs(float(x[key]) - float(y[key])), 1e-5, key)

    def test_bad_options_are_named(self):
        p = opine("eval", "--config", self.config, "--strategy", "head", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("eval.strategy=head needs an adapter", p.stderr)
        p = opine("eval", "--config", self.config, "--strategy", "guess", check=False)
        self.assertIn("eval.strategy", p.stderr)
        p = opine("eval", "--config", self.config, "--strategy", "loglik", "--split", "test", check=False)
        self.assertIn("dataset tiny-stance has no 'test' split (it has: train, val)", p.stderr)


class Predict(EvalBase):
    """A trained head (LoRA + classifier) labels a file; every input row has its output row."""

    @classmethod
    def setUpClass(cls):
        super().setUpClass()
        cls.run_folder = cls.tmp / "run"
        opine("train", "--config", cls.config, f"train.run_dir={cls.run_folder}")
        cls.adapter = cls.run_folder / "adapter"
        texts = [r["text"] for r in read_csv(REF / "data" / "val.csv")][:12]
        cls.texts = texts
        # A CSV with an id column, a row with too many fields (line 4) and an empty text (line 7).
        lines = ["id,text"] + [f"{i},{t}" for i, t in enumerate(texts)]
        lines.insert(3, "x,too,many,fields")
        lines.insert(6, "y,")
        cls.input_csv = cls.tmp / "in.csv"
        cls.input_csv.write_text("\n".join(lines) + "\n")

    def predict(self, out, *args, mpi=0, input=None):
        p = opine("predict", "--model", REF / "model", "--adapter", self.adapter, "--input", input or self.input_csv,
                  "--output", out, "--batch-size", "5", "--chunk", "4", *args, mpi=mpi)
        return json.loads(p.stdout[p.stdout.index("{"):]), p.stderr

    def test_rows_in_order_bad_rows_reported_and_equal_to_eval(self):
        out = self.tmp / "pred.csv"
        summary, log = self.predict(out)
        rows = read_csv(out)
        self.assertEqual(len(rows), len(self.texts) + 2)
        self.assertEqual(summary["bad_rows"], 2)
        self.assertEqual(summary["predicted"], len(self.texts))
        self.assertIn("in.csv:4", log)
        self.assertIn("in.csv:7", log)
        self.assertIn("4 fields, but the header has 2", rows[2]["pred_error"])
        self.assertIn("empty text", rows[5]["pred_error"])
        good = [r for r in rows if not r["pred_error"]]
        self.assertEqual([r["text"] for r in good], self.texts)
        self.assertEqual([r["id"] for r in good], [str(i) for i in range(len(self.texts))])
        # The same predictions as opine eval with the head on the same texts.
        ev, folder = self.eval("head", "--adapter", self.adapter, "--strategy", "head",
                               f"eval.limit={len(self.texts)}")
        for g, e in zip(good, read_csv(folder / "predictions.csv")):
            self.assertEqual(g["pred_label"], e["predicted"])
            self.assertLess(abs(float(g["pred_prob_favor"]) - float(e["p_favor"])), 1e-5)
        self.assertGreater(summary["tweets_per_s"], 0)
        self.assertGreater(summary["words_per_s"], summary["tweets_per_s"])

    @unittest.skipUnless(MPIEXEC, "no mpiexec")
    def test_two_ranks_write_one_merged_file(self):
        one, two = self.tmp / "one.jsonl", self.tmp / "two.jsonl"
        self.predict(one)
        self.predict(two, mpi=2)
        a = [json.loads(l) for l in one.read_text().splitlines()]
        b = [json.loads(l) for l in two.read_text().splitlines()]
        self.assertEqual(len(a), len(self.texts) + 2)
        self.assertEqual([r.get("pred_label") for r in a], [r.get("pred_label") for r in b])
        self.assertEqual([r["pred_line"] for r in a], [r["pred_line"] for r in b])
        for x, y in zip(a, b):
            if "pred_probabilities" in x:
                self.assertLess(abs(x["pred_probabilities"]["favor"] - y["pred_probabilities"]["favor"]), 1e-5)

    def test_eval_of_an_adapter_needs_no_config(self):
        # The adapter carries its run's configuration (opine.yaml); a trailing slash is fine.
        out = self.tmp / "noconfig"
        p = opine("eval", "--adapter", str(self.adapter) + "/", "--output", out, "eval.limit=8")
        ev = json.loads(p.stdout[p.stdout.index("{"):])
        self.assertEqual(ev["strategy"], "head")
        _, folder = self.eval("withconfig", "--adapter", self.adapter, "eval.limit=8")
        self.assertEqual(read_csv(out / "predictions.csv"), read_csv(folder / "predictions.csv"))

    @unittest.skipUnless(MPIEXEC, "no mpiexec")
    def test_sampled_answers_do_not_depend_on_ranks_or_chunks(self):
        args = ["--config", self.config, "--strategy", "vote", "eval.samples=2", "eval.temperature=1.0",
                "eval.max_new_tokens=4"]
        src = self.tmp / "few.csv"
        src.write_text("text\n" + "\n".join(self.texts[:5]) + "\n")
        outs = []
        for mpi, chunk in ((0, 5), (2, 1), (2, 3)):  # chunk 1 under 2 ranks: rank 1 has nothing to do
            out = self.tmp / f"vote-{mpi}-{chunk}.csv"
            opine("predict", "--input", src, "--output", out, "--chunk", chunk, *args, mpi=mpi)
            outs.append([(r["pred_label"], r["pred_answer"]) for r in read_csv(out)])
        self.assertEqual(len(outs[0]), 5)
        self.assertEqual(outs[0], outs[1])
        self.assertEqual(outs[0], outs[2])

    def test_jsonl_input_with_a_broken_line(self):
        src = self.tmp / "in.jsonl"
        lines = [json.dumps({"text": t, "n": i}) for i, t in enumerate(self.texts[:5])]
        lines.insert(2, "{not json")
        src.write_text("\n".join(lines) + "\n")
        out = self.tmp / "from-jsonl.csv"
        summary, _ = self.predict(out, input=src)
        rows = read_csv(out)
        self.assertEqual(len(rows), 6)
        self.assertIn("in.jsonl:3: not JSON", rows[2]["pred_error"])
        self.assertEqual([r["text"] for r in rows if not r["pred_error"]], self.texts[:5])

    def test_missing_text_column_is_named(self):
        p = opine("predict", "--model", REF / "model", "--adapter", self.adapter, "--input", self.input_csv,
                  "--output", self.tmp / "x.csv", "--text-column", "tweet", check=False)
        self.assertNotEqual(p.returncode, 0)
        self.assertIn("has no column 'tweet' (it has: id, text)", p.stderr)


class SftAdapter(EvalBase):
    """An adapter trained on the answers (data.format=sft) is evaluated and used by log-likelihood."""

    def test_eval_and_predict_score_the_answers(self):
        run = self.tmp / "sft-run"
        # Labels spelled with the tiny vocabulary's own words; no system prompt, so the prompts fit.
        task = ["task.labels=[no, yes]", "task.system=", "data.max_length=128"]
        opine("train", "--config", self.config, f"train.run_dir={run}", "data.format=sft", "train.epochs=4",
              "train.optimizer.lr=0.01", "peft.lora.target_modules=[all-linear]", *task)
        base, base_dir = self.eval("sft-base", "--strategy", "loglik", "eval.limit=0", *task)
        out, folder = self.eval("sft", "--adapter", run / "adapter", "eval.limit=0", *task)
        self.assertEqual(out["strategy"], "loglik")  # auto: the adapter has no head

        def true_answer_logp(rows):
            return sum(float(r["logp_" + r["truth"]]) for r in rows) / len(rows)

        rows, base_rows = read_csv(folder / "predictions.csv"), read_csv(base_dir / "predictions.csv")
        tuned, untuned = true_answer_logp(rows), true_answer_logp(base_rows)
        print(f"tiny SFT adapter: mean log-prob of the true answer {tuned:.2f}, base model {untuned:.2f}")
        self.assertGreater(tuned, untuned + 1.0)
        src = self.tmp / "sft-in.csv"
        src.write_text("text\n" + "\n".join(r["text"] for r in rows) + "\n")
        pred = self.tmp / "sft-out.csv"
        opine("predict", "--model", REF / "model", "--adapter", run / "adapter", "--input", src, "--output", pred)
        self.assertEqual([r["pred_label"] for r in read_csv(pred)], [r["predicted"] for r in rows])


class Regression(EvalBase):
    """A regression head: scores, regression metrics with intervals (scipy's Spearman), predict."""

    def test_regression_head_eval_and_predict(self):
        from scipy.stats import pearsonr, spearmanr
        run = self.tmp / "reg-run"
        task = ["data.dataset.task=regression", "data.dataset.label_column=score", "data.dataset.classes=[]"]
        opine("train", "--config", self.config, f"train.run_dir={run}", "train.epochs=2", "eval.plots=true", *task)
        # Training runs get their curves.
        for name in ("loss.png", "metrics.png"):
            self.assertTrue((run / "plots" / name).exists(), name)
        out, folder = self.eval("reg", "--adapter", run / "adapter", "eval.limit=0", "eval.plots=true", *task)
        self.assertEqual(out["strategy"], "head")
        rows = read_csv(folder / "predictions.csv")
        truth, score = [float(r["truth"]) for r in rows], [float(r["score"]) for r in rows]
        self.assertAlmostEqual(out["eval"]["spearman"], spearmanr(truth, score).statistic, places=9)
        self.assertAlmostEqual(out["eval"]["pearson"], pearsonr(truth, score).statistic, places=9)
        self.assertAlmostEqual(out["eval"]["mse"], sum((a - b) ** 2 for a, b in zip(truth, score)) / len(rows), places=9)
        lo, hi = out["intervals"]["rmse"]
        self.assertLessEqual(lo, out["eval"]["rmse"])
        self.assertGreaterEqual(hi, out["eval"]["rmse"])
        self.assertTrue((folder / "scatter.png").exists())
        self.assertIn("scatter.png", (folder / "report.md").read_text())
        src = self.tmp / "reg-in.jsonl"
        src.write_text("".join(json.dumps({"text": r["text"]}) + "\n" for r in rows[:6]))
        pred = self.tmp / "reg-out.jsonl"
        opine("predict", "--model", REF / "model", "--adapter", run / "adapter", "--input", src, "--output", pred)
        got = [json.loads(l)["pred_score"] for l in pred.read_text().splitlines()]
        for g, want in zip(got, score[:6]):
            self.assertLess(abs(g - want), 1e-5)


if __name__ == "__main__":
    unittest.main()
