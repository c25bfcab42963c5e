"""launch/plots.py: the PNGs opine asks for, what they show, and its errors.

Runs the script as opine does (a subprocess of the project's Python) on hand-made metrics.json,
predictions.csv and metrics.jsonl, and imports it to check what each figure draws.
"""
import contextlib
import csv
import io
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import unittest

import matplotlib.image

ROOT = pathlib.Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "launch" / "plots.py"
PYTHON = os.environ.get("OPINE_PYTHON") or sys.executable
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

sys.path.insert(0, str(SCRIPT.parent))
import plots  # noqa: E402


def run_plots(*args):
    return subprocess.run([PYTHON, str(SCRIPT), *map(str, args)], capture_output=True, text=True, timeout=120)


def classification(classes, confusion, support=None, invalid=0):
    support = support or [sum(row) for row in confusion]
    count = sum(support)
    correct = sum(confusion[i][i] for i in range(len(classes)))
    return {"classes": classes, "count": count, "accuracy": correct / count,
            "precision": [0.5] * len(classes), "recall": [0.5] * len(classes), "f1": [0.5] * len(classes),
            "support": support, "precision_macro": 0.5, "recall_macro": 0.5, "f1_macro": 0.4321,
            "f1_weighted": 0.5, "confusion": confusion, "invalid": invalid, "invalid_rate": invalid / count,
            "roc_auc_ovr": None}


class Folder(unittest.TestCase):
    def setUp(self):
        tmp = tempfile.TemporaryDirectory()
        self.addCleanup(tmp.cleanup)
        self.dir = pathlib.Path(tmp.name)

    def write_json(self, name, value):
        (self.dir / name).write_text(json.dumps(value))

    def assert_png(self, path, min_side=200, max_side=4000):
        self.assertEqual(path.read_bytes()[:8], PNG_SIGNATURE, path)
        pixels = matplotlib.image.imread(path)
        height, width = pixels.shape[:2]
        self.assertIn(pixels.shape[2], (3, 4))
        for side in (height, width):
            self.assertGreaterEqual(side, min_side, path)
            self.assertLessEqual(side, max_side, path)
        self.assertGreater(pixels.std(), 0.01, f"{path} is blank")

    def assert_only(self, folder, names):
        """Exactly these files: no temp file left behind by the atomic writes."""
        self.assertEqual(sorted(os.listdir(folder)), sorted(names))


class EvalClassification(Folder):
    def test_two_and_three_classes(self):
        cases = {
            2: classification(["against", "favor"], [[30, 6], [4, 8]]),
            3: classification(["against", "favor", "none"], [[10, 2, 1], [3, 7, 0], [1, 1, 9]],
                              support=[14, 10, 11], invalid=2),
        }
        for k, report in cases.items():
            with self.subTest(classes=k):
                for name in os.listdir(self.dir):
                    os.unlink(self.dir / name)
                self.write_json("metrics.json", {"strategy": "loglik", "split": "val", "examples": report["count"],
                                                 "metrics": report, "intervals": {"accuracy": [0.61, 0.86]}})
                p = run_plots("eval", self.dir)
                self.assertEqual(p.returncode, 0, p.stderr)
                self.assertEqual(p.stdout.splitlines(), [str(self.dir / "confusion.png")])
                self.assert_png(self.dir / "confusion.png")
                self.assert_only(self.dir, ["metrics.json", "confusion.png"])

    def test_cells_carry_the_counts_and_row_shares(self):
        confusion = [[10, 2, 1], [3, 7, 0], [1, 1, 9]]
        support = [14, 10, 11]  # class 0 has one invalid answer, no cell of its own
        report = classification(["against", "favor", "none"], confusion, support=support, invalid=1)
        fig = plots.confusion_figure(report, "t")
        ax = fig.axes[0]
        cells = {}
        for text in ax.texts:
            col, row = text.get_position()
            count, share = text.get_text().split("\n")
            cells[(round(row), round(col))] = (int(count), share)
        self.assertEqual(len(ax.texts), 9)
        for i in range(3):
            for j in range(3):
                count, share = cells[(i, j)]
                self.assertEqual(count, confusion[i][j])
                self.assertEqual(share, f"{100 * confusion[i][j] / support[i]:.0f}%")
        # Colour is the share of the true class: the diagonal is each class's recall.
        shown = ax.images[0].get_array()
        for i in range(3):
            for j in range(3):
                self.assertAlmostEqual(float(shown[i][j]), confusion[i][j] / support[i])
        self.assertEqual([t.get_text() for t in ax.get_xticklabels()], ["against", "favor", "none"])
        self.assertEqual([t.get_text().split("\n")[0] for t in ax.get_yticklabels()], ["against", "favor", "none"])
        self.assertEqual(ax.get_xlabel(), "predicted")
        self.assertEqual(ax.get_ylabel(), "true")

    def test_title_names_strategy_split_scores_and_invalid_answers(self):
        report = classification(["a", "b"], [[5, 1], [2, 4]], support=[6, 9], invalid=3)
        meta = {"strategy": "generate", "split": "test", "metrics": report,
                "intervals": {"accuracy": [0.41, 0.72]}}
        title = plots.eval_title(meta, report)
        for part in ("generate", "test", f"accuracy {report['accuracy']:.3f} [0.410, 0.720]", "macro F1 0.432",
                     "3 invalid answers"):
            self.assertIn(part, title)
        report["invalid"] = 0
        self.assertNotIn("invalid", plots.eval_title(meta, report))

    def test_bad_matrix_is_an_error(self):
        report = classification(["a", "b"], [[5, 1], [2, 4]])
        report["confusion"] = [[5, 1]]
        self.write_json("metrics.json", {"metrics": report})
        p = run_plots("eval", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("metrics.json", p.stderr)
        self.assertNotIn("Traceback", p.stderr)


class EvalRegression(Folder):
    truth = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0]
    score = [0.2, 0.4, 1.3, 1.4, 2.5, 2.7]

    def write_inputs(self):
        report = {"mse": 0.07, "rmse": 0.2646, "mae": 0.23, "pearson": 0.9789, "spearman": None, "count": 6}
        self.write_json("metrics.json", {"strategy": "regression", "split": "val", "examples": 6, "metrics": report})
        with open(self.dir / "predictions.csv", "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["index", "text", "truth", "score"])
            for i, (t, s) in enumerate(zip(self.truth, self.score)):
                w.writerow([i, f"text, {i}", t, s])

    def test_scatter(self):
        self.write_inputs()
        p = run_plots("eval", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertEqual(p.stdout.splitlines(), [str(self.dir / "scatter.png")])
        self.assert_png(self.dir / "scatter.png")
        self.assert_only(self.dir, ["metrics.json", "predictions.csv", "scatter.png"])

    def test_scatter_draws_the_points_and_identity(self):
        self.write_inputs()
        truth, score = plots.load_predictions(self.dir / "predictions.csv")
        self.assertEqual((truth, score), (self.truth, self.score))
        meta = json.loads((self.dir / "metrics.json").read_text())
        fig = plots.scatter_figure(truth, score, plots.eval_title(meta, meta["metrics"]))
        ax = fig.axes[0]
        self.assertEqual(ax.collections[0].get_offsets().tolist(), [list(p) for p in zip(self.truth, self.score)])
        (identity,) = [line for line in ax.lines if line.get_label() == "y = x"]
        xs, ys = identity.get_data()
        self.assertEqual(list(xs), list(ys))
        self.assertLessEqual(xs[0], min(self.truth + self.score))
        self.assertGreaterEqual(xs[-1], max(self.truth + self.score))
        self.assertIn("Pearson 0.979", ax.get_title())
        self.assertIn("RMSE 0.265", ax.get_title())

    def test_missing_predictions_and_bad_rows(self):
        self.write_inputs()
        os.unlink(self.dir / "predictions.csv")
        p = run_plots("eval", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("predictions.csv", p.stderr)
        (self.dir / "predictions.csv").write_text("truth,score\n1.0,0.5\n2.0,oops\n")
        p = run_plots("eval", self.dir)
        self.assertEqual(p.returncode, 1)
        self.assertIn("predictions.csv:3", p.stderr)
        self.assertNotIn("Traceback", p.stderr)


TRAIN = [
    {"step": 1, "epoch": 0.25, "loss": 0.9, "lr": 1e-4, "grad_norm": 2.0, "tokens_per_s": 900.0, "host_rss": 10},
    {"step": 2, "epoch": 0.5, "loss": 0.8, "lr": 2e-4, "grad_norm": 1.5, "tokens_per_s": 910.0, "host_rss": 10},
    {"step": 2, "epoch": 0.5, "eval/loss": 0.85, "eval/accuracy": 0.6, "eval/f1_macro": 0.5, "eval/count": 48,
     "eval/roc_auc_ovr": None},
    {"step": 3, "epoch": 0.75, "loss": 0.7, "lr": 3e-4, "grad_norm": 1.2, "tokens_per_s": 905.0, "host_rss": 10},
    {"resume": {"from_step": 2}},
    {"step": 3, "epoch": 0.75, "loss": 0.65, "lr": 3e-4, "grad_norm": 1.1, "tokens_per_s": 920.0, "host_rss": 11},
    {"step": 4, "epoch": 1.0, "loss": 0.6, "lr": 2e-4, "grad_norm": 1.0, "tokens_per_s": 915.0, "host_rss": 11},
    {"step": 4, "epoch": 1, "eval/loss": 0.7, "eval/accuracy": 0.7, "eval/f1_macro": 0.65, "eval/count": 48,
     "eval/roc_auc_ovr": 0.8},
]


def lines_by_label(fig):
    return {line.get_label(): [list(map(float, line.get_xdata())), list(map(float, line.get_ydata()))]
            for ax in fig.axes for line in ax.lines}


class Run(Folder):
    def write_jsonl(self, records, tail=""):
        (self.dir / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in records) + tail)

    def test_writes_three_plots(self):
        self.write_jsonl(TRAIN)
        p = run_plots("run", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        names = ["loss.png", "metrics.png", "lr.png"]
        self.assertEqual(p.stdout.splitlines(), [str(self.dir / "plots" / n) for n in names])
        for name in names:
            self.assert_png(self.dir / "plots" / name)
        self.assert_only(self.dir / "plots", names)

    def test_lines_are_the_logged_values_later_step_wins(self):
        self.write_jsonl(TRAIN)
        records = plots.load_jsonl(self.dir / "metrics.jsonl")
        self.assertEqual([r["step"] for r in records], [1, 2, 3, 4])
        loss = lines_by_label(plots.loss_figure(records))
        self.assertEqual(loss["train loss"], [[1, 2, 3, 4], [0.9, 0.8, 0.65, 0.6]])  # step 3 rewritten
        self.assertEqual(loss["eval loss"], [[2, 4], [0.85, 0.7]])
        self.assertEqual(set(loss), {"train loss", "eval loss"})  # too few points to smooth
        metrics = lines_by_label(plots.metrics_figure(records))
        self.assertEqual(metrics, {"accuracy": [[2, 4], [0.6, 0.7]], "f1_macro": [[2, 4], [0.5, 0.65]],
                                   "count": [[2, 4], [48, 48]], "roc_auc_ovr": [[4], [0.8]]})
        lr = lines_by_label(plots.lr_figure(records))
        self.assertEqual(lr, {"lr": [[1, 2, 3, 4], [1e-4, 2e-4, 3e-4, 2e-4]]})

    def test_counts_do_not_share_the_scores_axes(self):
        self.write_jsonl(TRAIN)
        fig = plots.metrics_figure(plots.load_jsonl(self.dir / "metrics.jsonl"))
        top, bottom = fig.axes[0], fig.axes[1]
        self.assertEqual({l.get_label() for l in top.lines}, {"accuracy", "f1_macro", "roc_auc_ovr"})
        self.assertEqual({l.get_label() for l in bottom.lines}, {"count"})

    def test_long_run_adds_a_smoothed_loss(self):
        records = [{"step": s, "loss": 1.0 / s, "lr": 1e-3} for s in range(1, 101)]
        fig = plots.loss_figure(records)
        lines = lines_by_label(fig)
        self.assertEqual(lines["train loss"][1], [1.0 / s for s in range(1, 101)])
        smooth = lines["train loss (smoothed)"][1]
        self.assertAlmostEqual(smooth[0], 1.0)  # bias-corrected: starts at the first value
        self.assertTrue(all(a >= b for a, b in zip(smooth, smooth[1:])))

    def test_plots_without_data_are_skipped(self):
        self.write_jsonl([{"step": 1, "loss": 0.9}, {"step": 2, "loss": 0.8}])
        p = run_plots("run", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        out = p.stdout.splitlines()
        self.assertEqual(out[0], str(self.dir / "plots" / "loss.png"))
        self.assertTrue(out[1].startswith("skipped metrics.png"), out)
        self.assertTrue(out[2].startswith("skipped lr.png"), out)
        self.assert_only(self.dir / "plots", ["loss.png"])

    def test_unfinished_last_line_is_skipped(self):
        self.write_jsonl(TRAIN, tail='{"step": 5, "loss": 0.')  # a crash, or a run still writing
        p = run_plots("run", self.dir)
        self.assertEqual(p.returncode, 0, p.stderr)
        self.assertIn("metrics.jsonl:9", p.stderr)
        with contextlib.redirect_stderr(io.StringIO()) as err:
            self.assertEqual(plots.load_jsonl(self.dir / "metrics.jsonl")[-1]["step"], 4)
        self.assertIn("unfinished last line", err.getvalue())


class Errors(Folder):
    def check_error(self, p, *parts):
        self.assertEqual(p.returncode, 1, p.stdout)
        self.assertEqual(len(p.stderr.strip().splitlines()), 1, p.stderr)
        self.assertNotIn("Traceback", p.stderr)
        for part in parts:
            self.assertIn(part, p.stderr)

    def test_missing_files(self):
        self.check_error(run_plots("eval", self.dir), str(self.dir / "metrics.json"))
        self.check_error(run_plots("run", self.dir), str(self.dir / "metrics.jsonl"))
        self.check_error(run_plots("run", self.dir / "nope"), str(self.dir / "nope"))
        self.assertEqual(os.listdir(self.dir), [])

    def test_malformed_json(self):
        (self.dir / "metrics.json").write_text('{"metrics": {"classes": ["a"],\n')
        self.check_error(run_plots("eval", self.dir), str(self.dir / "metrics.json"))

    def test_malformed_jsonl_line(self):
        (self.dir / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n\n{"step": 2, "loss": }\n'
                                                '{"step": 3, "loss": 0.4}\n')
        self.check_error(run_plots("run", self.dir), str(self.dir / "metrics.jsonl") + ":3")
        (self.dir / "metrics.jsonl").write_text('{"step": 1, "loss": 0.5}\n[1, 2]\n')
        self.check_error(run_plots("run", self.dir), "metrics.jsonl:2", "not a JSON object")
        self.assertFalse((self.dir / "plots").exists())


if __name__ == "__main__":
    unittest.main()
