"""Reference values for core/metrics (tests/core/test_metrics.cpp, MetricsParity), from
scikit-learn and scipy.

metrics.json holds seeded random cases:
- "classification": truth, predicted (-1 = an invalid answer), class names, optional
  probabilities, and sklearn's accuracy_score, precision_recall_fscore_support with
  labels=range(K) (average None / macro / weighted), confusion_matrix(labels=range(K)) and
  roc_auc_score (binary: the positive column; else multi_class="ovr", average="macro"); semeval_f1
  is the mean of sklearn's F1 of the favor and against classes.
- "regression": truth, predicted, and mean_squared_error, its square root, mean_absolute_error,
  scipy.stats.pearsonr and scipy.stats.spearmanr. An undefined correlation (constant input) is
  null.
"""
import json
import math
import pathlib
import warnings

import numpy as np
from scipy import stats
from sklearn import metrics as skm


def softmax(z):
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def noisy(rng, truth, k, p_right, p_invalid=0.0, never=()):
    """Predictions equal to truth with probability p_right, else another allowed class, or -1."""
    allowed = [c for c in range(k) if c not in never]
    pred = []
    for t in truth:
        u = rng.random()
        if u < p_invalid:
            pred.append(-1)
        elif u < p_invalid + p_right and t in allowed:
            pred.append(int(t))
        else:
            pred.append(int(rng.choice(allowed)))
    return pred


def scores_for(rng, truth, k, strength=1.5):
    """Softmax probabilities that favour the true class."""
    logits = rng.normal(size=(len(truth), k))
    logits[np.arange(len(truth)), truth] += strength
    return softmax(logits)


def classification_cases():
    rng = np.random.default_rng(20160606)
    cases = []

    t = rng.integers(0, 2, 50)
    cases.append(("binary", ["negative", "positive"], t, noisy(rng, t, 2, 0.7), scores_for(rng, t, 2)))

    t = rng.integers(0, 3, 60)  # class 2 is never predicted
    cases.append(("three_never_predicted", ["a", "b", "c"], t, noisy(rng, t, 3, 0.6, never=(2,)),
                  scores_for(rng, t, 3)))

    t = rng.choice(4, size=200, p=[0.7, 0.2, 0.07, 0.03])
    t[:4] = [0, 1, 2, 3]  # every class in truth, so ROC-AUC is defined
    cases.append(("imbalanced", ["w", "x", "y", "z"], t, noisy(rng, t, 4, 0.75), scores_for(rng, t, 4, 1.0)))

    t = rng.integers(0, 3, 80)
    cases.append(("stance_invalid", ["AGAINST", "FAVOR", "NONE"], t, noisy(rng, t, 3, 0.6, p_invalid=0.1),
                  scores_for(rng, t, 3)))

    # Few distinct probability rows: many tied scores in every column.
    t = rng.integers(0, 3, 90)
    rows = softmax(rng.normal(size=(5, 3)))
    probs = rows[rng.integers(0, 5, 90)]
    cases.append(("auc_ties", ["against", "favor", "none"], t, noisy(rng, t, 3, 0.5), probs))

    t = rng.integers(0, 2, 40)
    probs1 = np.round(rng.random(40), 1)  # binary scores with ties
    cases.append(("binary_ties", ["no", "yes"], t, noisy(rng, t, 2, 0.6), np.stack([1 - probs1, probs1], 1)))

    t = rng.integers(0, 3, 30)  # class 3 in neither truth nor predictions: still in the macro average
    cases.append(("absent_class", ["p", "q", "r", "s"], t, noisy(rng, t, 3, 0.5), None))

    out = []
    for name, classes, truth, pred, probs in cases:
        truth = [int(x) for x in truth]
        k = len(classes)
        labels = list(range(k))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            p, r, f, s = skm.precision_recall_fscore_support(truth, pred, labels=labels, average=None)
            avg = {a: skm.precision_recall_fscore_support(truth, pred, labels=labels, average=a)[:3]
                   for a in ("macro", "weighted")}
        case = {
            "name": name, "classes": classes, "truth": truth, "predicted": [int(x) for x in pred],
            "accuracy": skm.accuracy_score(truth, pred),
            "precision": p.tolist(), "recall": r.tolist(), "f1": f.tolist(), "support": s.tolist(),
            "confusion": skm.confusion_matrix(truth, pred, labels=labels).tolist(),
            "invalid": sum(1 for x in pred if x < 0),
        }
        for a, (pa, ra, fa) in avg.items():
            case[f"precision_{a}"], case[f"recall_{a}"], case[f"f1_{a}"] = float(pa), float(ra), float(fa)
        lower = [c.lower() for c in classes]
        if "favor" in lower and "against" in lower:
            case["semeval_f1"] = (f[lower.index("favor")] + f[lower.index("against")]) / 2
        if probs is not None:
            case["probabilities"] = probs.tolist()
            if k == 2:
                case["roc_auc"] = skm.roc_auc_score(truth, probs[:, 1])
            else:
                case["roc_auc"] = skm.roc_auc_score(truth, probs, multi_class="ovr", average="macro",
                                                    labels=labels)
        out.append(case)
    return out


def nan_to_none(x):
    x = float(x)
    return None if math.isnan(x) else x


def regression_cases():
    rng = np.random.default_rng(20250131)
    cases = []
    t = rng.normal(size=100)
    cases.append(("continuous", t, t + 0.5 * rng.normal(size=100)))
    t = rng.integers(1, 6, 120).astype(float)  # Likert-like truth, predictions on a half grid
    cases.append(("ties", t, np.round(2 * (t + rng.normal(size=120))) / 2))
    t = 1e6 + rng.normal(size=50)  # a large offset: the centring must not lose the signal
    cases.append(("offset", t, t + 0.3 * rng.normal(size=50)))
    cases.append(("three", np.array([1.0, 2.0, 4.0]), np.array([1.5, 1.5, 3.0])))
    cases.append(("two", np.array([0.0, 1.0]), np.array([3.0, 2.0])))
    cases.append(("constant_prediction", rng.normal(size=20), np.full(20, 0.25)))
    out = []
    for name, t, p in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            mse = skm.mean_squared_error(t, p)
            out.append({
                "name": name, "truth": t.tolist(), "predicted": p.tolist(),
                "mse": float(mse), "rmse": float(np.sqrt(mse)),
                "mae": float(skm.mean_absolute_error(t, p)),
                "pearson": nan_to_none(stats.pearsonr(t, p).statistic),
                "spearman": nan_to_none(stats.spearmanr(t, p).statistic),
            })
    return out


def generate(out: pathlib.Path):
    data = {"classification": classification_cases(), "regression": regression_cases()}
    (out / "metrics.json").write_text(json.dumps(data, indent=1, allow_nan=False))
