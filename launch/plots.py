"""PNG plots of opine's outputs, for a researcher to look at rather than read JSON.

    plots.py eval DIR     DIR/metrics.json -> DIR/confusion.png (classification)
                          DIR/metrics.json + DIR/predictions.csv -> DIR/scatter.png (regression)
    plots.py run RUNDIR   RUNDIR/metrics.jsonl -> RUNDIR/plots/{loss,metrics,lr}.png

opine calls it with the project's Python; it needs only matplotlib and the standard library.
Prints each path written on stdout, one a line ("skipped NAME: why" for a plot with no data).
A missing or malformed input is one line on stderr naming the file (and line) and exit status 1.
The figure functions return matplotlib Figures so tests can inspect what was drawn.
"""
import argparse
import csv
import json
import math
import os
import sys
import tempfile

import matplotlib

matplotlib.use("Agg")  # files only, never a window
from matplotlib.figure import Figure  # noqa: E402  (after use(): no pyplot, no global state)

DPI = 120
EMA_MIN_POINTS = 50  # below this a raw loss curve is readable as is
EMA_WEIGHT = 0.9


class PlotError(Exception):
    """A user-facing problem with an input or output file: one line, no traceback."""


# ---- reading --------------------------------------------------------------------------------------


def is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def load_json(path):
    try:
        with open(path, encoding="utf-8") as f:
            return json.load(f)
    except FileNotFoundError:
        raise PlotError(f"{path}: no such file") from None
    except json.JSONDecodeError as e:
        raise PlotError(f"{path}: line {e.lineno}: not valid JSON ({e.msg})") from None
    except OSError as e:
        raise PlotError(f"{path}: cannot read ({e.strerror})") from None


def load_jsonl(path):
    """The records of a metrics.jsonl merged by step, in step order.

    Lines without a numeric "step" (e.g. resume notes) are skipped. Records of one step are merged
    key by key, a later line's value overriding an earlier one's: a resumed run may log a step
    again, and a step's training and evaluation records are separate lines. An unterminated last
    line is a record cut short by a crash or still being written: skipped with a warning.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except FileNotFoundError:
        raise PlotError(f"{path}: no such file") from None
    except OSError as e:
        raise PlotError(f"{path}: cannot read ({e.strerror})") from None
    lines = text.split("\n")
    by_step = {}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as e:
            if number == len(lines):  # no newline after it
                print(f"plots: {path}:{number}: skipping an unfinished last line", file=sys.stderr)
                continue
            raise PlotError(f"{path}:{number}: not valid JSON ({e.msg})") from None
        if not isinstance(record, dict):
            raise PlotError(f"{path}:{number}: not a JSON object")
        step = record.get("step")
        if not is_number(step):
            continue
        by_step.setdefault(step, {}).update(record)
    return [by_step[s] for s in sorted(by_step)]


def load_predictions(path):
    """(truth, score) float lists from predictions.csv's columns of those names."""
    try:
        with open(path, newline="", encoding="utf-8") as f:
            reader = csv.DictReader(f)
            columns = reader.fieldnames or []
            for name in ("truth", "score"):
                if name not in columns:
                    raise PlotError(f"{path}: no '{name}' column (columns: {', '.join(columns) or 'none'})")
            truth, score = [], []
            for row in reader:
                try:
                    t, s = float(row["truth"]), float(row["score"])
                except (TypeError, ValueError):
                    raise PlotError(f"{path}:{reader.line_num}: truth and score must be numbers") from None
                truth.append(t)
                score.append(s)
    except FileNotFoundError:
        raise PlotError(f"{path}: no such file") from None
    except OSError as e:
        raise PlotError(f"{path}: cannot read ({e.strerror})") from None
    return truth, score


# ---- writing --------------------------------------------------------------------------------------


def save_png(fig, path):
    """Writes fig to path atomically: a temp file in the same folder, then a rename."""
    folder = os.path.dirname(os.path.abspath(path))
    fd, tmp = tempfile.mkstemp(prefix="." + os.path.basename(path) + ".", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            fig.savefig(f, format="png", dpi=DPI)
        umask = os.umask(0)  # mkstemp makes the file 0600; give it the mode a plain open would
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, path)
    except OSError as e:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        raise PlotError(f"{path}: cannot write ({e.strerror})") from None
    return path


def announce(path):
    """Prints a written path at once, so the caller sees it among any "skipped" lines in order."""
    print(path, flush=True)
    return path


# ---- evaluation -----------------------------------------------------------------------------------


def fmt(value, digits=3):
    return f"{value:.{digits}f}" if is_number(value) else "n/a"


def with_interval(name, report, intervals):
    text = f"{name.replace('_', ' ')} {fmt(report.get(name))}"
    bounds = intervals.get(name) if isinstance(intervals, dict) else None
    if isinstance(bounds, list) and len(bounds) == 2 and all(is_number(b) for b in bounds):
        text += f" [{bounds[0]:.3f}, {bounds[1]:.3f}]"
    return text


def eval_title(meta, report):
    """Strategy, split and the headline metrics (with their intervals where given)."""
    head = " · ".join(str(meta[k]) for k in ("strategy", "split") if meta.get(k) is not None)
    if isinstance(meta.get("shots"), int) and meta["shots"] > 0:  # k-shot prompting
        head += f" · {meta['shots']}-shot {meta.get('shot_selection', '')}".rstrip()
    n = report.get("count", meta.get("examples"))
    if n is not None:
        head += f" (n={n})"
    intervals = meta.get("intervals") or {}
    if "classes" in report:
        body = with_interval("accuracy", report, intervals) + ", " + \
            with_interval("f1_macro", report, intervals).replace("f1 macro", "macro F1")
        if report.get("invalid", 0) > 0:
            body += f"\n{report['invalid']} invalid answers"
    else:
        body = f"Pearson {fmt(report.get('pearson'))}, RMSE {fmt(report.get('rmse'))}"
    return f"{head}\n{body}" if head else body


def check_confusion(report, where):
    classes, confusion = report.get("classes"), report.get("confusion")
    k = len(classes) if isinstance(classes, list) else 0
    ok = k > 0 and isinstance(confusion, list) and len(confusion) == k and all(
        isinstance(row, list) and len(row) == k and all(is_number(c) for c in row) for row in confusion)
    if not ok:
        raise PlotError(f"{where}: metrics.confusion is not a {k}x{k} matrix of counts matching metrics.classes")


def confusion_figure(report, title):
    """Heat map of report["confusion"] ([true][predicted]) coloured by the fraction of each true class.

    Fractions are of the class's support where given: invalid answers have no cell, so a row then
    sums to less than 100% and the diagonal is exactly the class's recall.
    """
    classes, confusion = report["classes"], report["confusion"]
    k = len(classes)
    support = report.get("support")
    if not (isinstance(support, list) and len(support) == k):
        support = [sum(row) for row in confusion]
    fractions = [[c / s if s else 0.0 for c in row] for row, s in zip(confusion, support)]

    side = min(max(4.0, 1.1 * k + 2.5), 24.0)
    fig = Figure(figsize=(side + 1.2, side), layout="constrained")
    ax = fig.add_subplot()
    image = ax.imshow(fractions, cmap="Blues", vmin=0.0, vmax=1.0)
    fig.colorbar(image, ax=ax, shrink=0.8, label="fraction of the true class")
    size = max(6, min(11, 40 // k + 4))
    for i, row in enumerate(confusion):
        for j, count in enumerate(row):
            share = f"{100 * fractions[i][j]:.0f}%" if support[i] else "–"
            ax.text(j, i, f"{count:g}\n{share}", ha="center", va="center", fontsize=size,
                    color="white" if fractions[i][j] > 0.5 else "black")
    long_names = max(len(str(c)) for c in classes) > 8
    ax.set_xticks(range(k), [str(c) for c in classes], rotation=45 if long_names else 0,
                  ha="right" if long_names else "center")
    ax.set_yticks(range(k), [f"{c}\n(n={s:g})" for c, s in zip(classes, support)])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return fig


def scatter_figure(truth, score, title):
    """Predicted score against truth, with the y = x line a perfect model would sit on."""
    fig = Figure(figsize=(6, 6), layout="constrained")
    ax = fig.add_subplot()
    alpha = 0.7 if len(truth) < 500 else 0.3
    ax.scatter(truth, score, s=14, alpha=alpha, edgecolors="none", label="examples")
    values = truth + score
    lo, hi = (min(values), max(values)) if values else (0.0, 1.0)
    pad = 0.05 * (hi - lo) if hi > lo else 0.5
    lo, hi = lo - pad, hi + pad
    ax.plot([lo, hi], [lo, hi], color="grey", linestyle="--", linewidth=1, label="y = x")
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_aspect("equal")
    ax.set_xlabel("truth")
    ax.set_ylabel("predicted score")
    ax.set_title(title)
    ax.legend(loc="upper left")
    ax.grid(alpha=0.3)
    return fig


def plot_eval(folder):
    metrics_path = os.path.join(folder, "metrics.json")
    meta = load_json(metrics_path)
    report = meta.get("metrics") if isinstance(meta, dict) else None
    if not isinstance(report, dict):
        raise PlotError(f"{metrics_path}: no \"metrics\" object")
    title = eval_title(meta, report)
    if "classes" in report:
        check_confusion(report, metrics_path)
        return [announce(save_png(confusion_figure(report, title), os.path.join(folder, "confusion.png")))]
    truth, score = load_predictions(os.path.join(folder, "predictions.csv"))
    if not truth:
        print(f"skipped scatter.png: no predictions in {os.path.join(folder, 'predictions.csv')}")
        return []
    return [announce(save_png(scatter_figure(truth, score, title), os.path.join(folder, "scatter.png")))]


# ---- training run ---------------------------------------------------------------------------------


def series(records, key):
    """(steps, values) of the records holding a finite number under key."""
    points = [(r["step"], r[key]) for r in records if is_number(r.get(key))]
    return [p[0] for p in points], [p[1] for p in points]


def ema(values, weight=EMA_WEIGHT):
    """Exponential moving average, bias-corrected as TensorBoard's smoothing is."""
    out, acc = [], 0.0
    for i, v in enumerate(values, start=1):
        acc = weight * acc + (1 - weight) * v
        out.append(acc / (1 - weight ** i))
    return out


def step_axes(title, ylabel, rows=1):
    fig = Figure(figsize=(8, 4.5 if rows == 1 else 7), layout="constrained")
    axes = fig.subplots(rows, 1, sharex=True, squeeze=False)[:, 0]
    for ax in axes:
        ax.grid(alpha=0.3)
        ax.set_ylabel(ylabel)
    axes[-1].set_xlabel("step")
    axes[0].set_title(title)
    return fig, list(axes)


def loss_figure(records):
    """Training loss (line) and evaluation loss (markers) against step; None without either."""
    train_steps, train = series(records, "loss")
    eval_steps, evals = series(records, "eval/loss")
    if not train and not evals:
        return None
    fig, (ax,) = step_axes("loss", "loss")
    if train:
        smooth = len(train) >= EMA_MIN_POINTS
        ax.plot(train_steps, train, color="C0", linewidth=1, alpha=0.35 if smooth else 1.0,
                marker="" if len(train) > 30 else ".", label="train loss")
        if smooth:
            ax.plot(train_steps, ema(train), color="C0", linewidth=2, label="train loss (smoothed)")
    if evals:
        ax.plot(eval_steps, evals, color="C1", linestyle="none", marker="o", markersize=6, label="eval loss")
    ax.legend()
    return fig


def eval_keys(records):
    keys = set()
    for r in records:
        keys.update(k for k, v in r.items() if k.startswith("eval/") and k != "eval/loss" and is_number(v))
    return sorted(keys)


def metrics_figure(records):
    """Each numeric eval/* value but the loss against step, one line each; None without any.

    Scores (fractions within [-1, 1]: accuracy, F1, rates, correlations) share the top panel;
    the rest (counts, which opine writes as JSON integers, and errors such as RMSE) go below so
    they do not flatten the scores.
    """
    keys = eval_keys(records)
    if not keys:
        return None
    data = {k: series(records, k) for k in keys}
    scores = [k for k in keys if not all(isinstance(v, int) for v in data[k][1])
              and all(-1.0 <= v <= 1.0 for v in data[k][1])]
    others = [k for k in keys if k not in scores]
    panels = [p for p in (scores, others) if p]
    fig, axes = step_axes("evaluation metrics", "value", rows=len(panels))
    for ax, panel in zip(axes, panels):
        for i, key in enumerate(panel):
            steps, values = data[key]
            style = ("-", "--", ":")[i // 10 % 3]  # the colour cycle repeats after ten lines
            ax.plot(steps, values, linestyle=style, marker="o", markersize=4, label=key[len("eval/"):])
        ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5))
    if scores:
        axes[0].set_ylabel("score")
    if others:
        axes[-1].set_ylabel("value")
    return fig


def lr_figure(records):
    """Learning rate against step; None without one."""
    steps, lr = series(records, "lr")
    if not lr:
        return None
    fig, (ax,) = step_axes("learning rate", "learning rate")
    ax.plot(steps, lr, color="C2", label="lr")
    ax.ticklabel_format(axis="y", style="sci", scilimits=(-3, 3))
    return fig


RUN_PLOTS = (
    ("loss.png", loss_figure, "no loss or eval/loss"),
    ("metrics.png", metrics_figure, "no eval/* metrics"),
    ("lr.png", lr_figure, "no lr"),
)


def plot_run(run_dir):
    path = os.path.join(run_dir, "metrics.jsonl")
    records = load_jsonl(path)
    out_dir = os.path.join(run_dir, "plots")
    written = []
    for name, make, missing in RUN_PLOTS:
        fig = make(records)
        if fig is None:
            print(f"skipped {name}: {missing} in {path}")
            continue
        try:
            os.makedirs(out_dir, exist_ok=True)
        except OSError as e:
            raise PlotError(f"{out_dir}: cannot create ({e.strerror})") from None
        written.append(announce(save_png(fig, os.path.join(out_dir, name))))
    return written


# ---- command line ---------------------------------------------------------------------------------


def main(argv=None):
    parser = argparse.ArgumentParser(prog="plots.py", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("eval", help="confusion matrix or scatter plot of an evaluation folder").add_argument("dir")
    sub.add_parser("run", help="training curves of a run folder").add_argument("dir")
    args = parser.parse_args(argv)
    try:
        if not os.path.isdir(args.dir):
            raise PlotError(f"{args.dir}: no such folder")
        (plot_eval if args.command == "eval" else plot_run)(args.dir)
    except PlotError as e:
        print(f"plots: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
