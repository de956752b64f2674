"""Evaluation of a bundle on labelled data: point-wise and event-level metrics per detector.

Metrics come from scikit-learn where it has them (precision/recall/F1, confusion matrix,
average precision as PR-AUC, ROC-AUC and the PR/ROC curves); event-level recall and the
detection delays are metrics.py's: an anomalous span (a run of consecutive rows labelled 1)
is caught when any of its rows is flagged, and its delay is the number of rows from the
span's first row to the first flag.

Each detector is run over the rows in order from a fresh state (the streaming detectors
learn as they go, as on the device) with the threshold stored in the bundle.  Scikit-learn's
IsolationForest is added as a host-only baseline, set up as the notebook did (rolling
mean/std features over 50 rows, 100 trees, contamination 0.01, seed 42, fit on the evaluated
rows themselves, flag above the 99th percentile of its scores).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from sklearn.metrics import (average_precision_score, precision_recall_curve, roc_auc_score,
                             roc_curve)

from codegen.bundle import Bundle
from codegen.data import missing
from codegen.data.dataset import LABEL_COLUMNS, Dataset, open_for_bundle
from codegen.detectors import get
from codegen.errors import UserError
from codegen.evaluate.metrics import alarm_rates, event_metrics, events, point_metrics, shown

BASELINE = "sklearn_iforest"


@dataclass
class DetectorResult:
    name: str
    threshold: float
    scores: np.ndarray
    flags: np.ndarray
    host_only: bool = False
    metrics: dict = field(default_factory=dict)
    confusion: list = field(default_factory=list)  # [[tn, fp], [fn, tp]]
    pr_curve: tuple = ()  # (recall, precision)
    roc_curve: tuple = ()  # (fpr, tpr)
    sweep: dict = field(default_factory=dict)  # every threshold, its precision/recall/f1
    events: list = field(default_factory=list)  # per span: start, end, caught, delay


@dataclass
class Evaluation:
    bundle: str
    data: Dataset
    results: list[DetectorResult]

    def table(self) -> str:
        head = (f"{'detector':<20} {'P':>6} {'R':>6} {'F1':>6} {'FAR':>7} {'MAR':>6} "
                f"{'PR-AUC':>7} {'ROC-AUC':>7} {'events':>8} {'ev.rec':>6} {'delay':>6}  "
                f"TN/FP/FN/TP")
        lines = [head]
        for r in self.results:
            m = r.metrics
            delay = "-" if m["median_delay"] is None else f"{m['median_delay']:.1f}"
            (tn, fp), (fn, tp) = r.confusion
            name = r.name + (" *" if r.host_only else "")
            lines.append(f"{name:<20} {shown(m['precision'], '6.3f')} "
                         f"{shown(m['recall'], '6.3f')} {shown(m['f1'], '6.3f')} "
                         f"{shown(m['false_alarm_rate'], '7.4f')} "
                         f"{shown(m['missed_alarm_rate'], '6.3f')} "
                         f"{shown(m['pr_auc'], '7.3f')} {shown(m['roc_auc'], '7.3f')} "
                         f"{m['events_caught']:>3}/{m['events']:<4} "
                         f"{shown(m['event_recall'], '6.3f')} "
                         f"{delay:>6}  {tn}/{fp}/{fn}/{tp}")
        lines.append("events: labelled spans with a flag; ev.rec: their fraction; delay: median "
                     "rows from a span's start to its first flag")
        if any(r.host_only for r in self.results):
            lines.append("* host-only baseline (scikit-learn IsolationForest, as in the notebook)")
        return "\n".join(lines)


def load_labelled(path: str | Path, bundle: Bundle, label_column: str | None = None,
                  time_column: str | None = None, sep: str | None = None,
                  policy: str = missing.DEFAULT, columns: list[str] | None = None) -> Dataset:
    """The CSV's rows for this bundle, those with a missing reading as the policy says
    (codegen/data/missing.py): its sensor columns (columns: see open_for_bundle) must be the
    bundle's channels and it must have a 0/1 label column."""
    table = open_for_bundle(path, bundle, label_column, time_column, sep, columns)
    if table.label is None:
        raise UserError(f"{path} has no label column ({', '.join(LABEL_COLUMNS)} or "
                        f"--label-column): evaluate compares flags with labels, so it needs one "
                        f"with 0 (normal) or 1 (anomaly) per row")
    return missing.apply(next(table.chunks()), policy)


def _finite(scores: np.ndarray) -> np.ndarray:
    """Scores for the curves: +Inf (a NaN/Inf sample) becomes just above the largest finite."""
    s = np.asarray(scores, dtype=np.float64)
    finite = s[np.isfinite(s)]
    top = finite.max() if finite.size else 1.0
    return np.where(np.isnan(s) | (s > top), top + 1.0 + abs(top), s)


def measure(name: str, scores: np.ndarray, flags: np.ndarray, threshold: float,
            labels: np.ndarray, host_only: bool = False) -> DetectorResult:
    labels = np.asarray(labels, dtype=bool)
    flags = np.asarray(flags, dtype=bool)
    s = _finite(scores)
    point = point_metrics(flags, labels)
    tn, fp, fn, tp = (point[k] for k in ("tn", "fp", "fn", "tp"))
    both = labels.any() and not labels.all()
    if labels.any():
        precision, recall, pr_thresholds = precision_recall_curve(labels, s)
    else:  # no anomalous row: no curve, no sweep
        precision, recall, pr_thresholds = np.ones(1), np.zeros(1), np.zeros(0)
    fpr, tpr, _ = roc_curve(labels, s) if both else (np.array([0, 1]), np.array([0, 1]), None)
    spans = events(labels, flags)
    metrics = {
        "precision": point["precision"], "recall": point["recall"], "f1": point["f1"],
        **alarm_rates(point),
        "pr_auc": float(average_precision_score(labels, s)) if both else None,
        "roc_auc": float(roc_auc_score(labels, s)) if both else None,
        **event_metrics(spans),
    }
    # The sweep: point-wise metrics if this score stream were cut at other thresholds.
    # For the streaming detectors the stream itself depends on the threshold (clipping), so
    # this is the view from the stored threshold's run, exact only at that threshold.
    f1_curve = np.where(precision + recall > 0, 2 * precision * recall /
                        np.maximum(precision + recall, 1e-300), 0.0)
    sweep = {"threshold": pr_thresholds, "precision": precision[:-1], "recall": recall[:-1],
             "f1": f1_curve[:-1]}
    return DetectorResult(name, float(threshold), np.asarray(scores, dtype=np.float64), flags,
                          host_only, metrics, [[int(tn), int(fp)], [int(fn), int(tp)]],
                          (recall, precision), (fpr, tpr), sweep, spans)


def iforest_baseline(X: np.ndarray, window: int = 50, seed: int = 42):
    """The notebook's Isolation Forest: rolling mean/std features, contamination 0.01,
    scores -decision_function, flags above their 99th percentile.  It runs on the rows
    without a missing reading; the others score +Inf and are flagged, as on the device."""
    complete = np.isfinite(X).all(axis=1)
    if not complete.all():
        scores = np.full(len(X), np.inf)
        flags = np.ones(len(X), dtype=bool)
        scores[complete], flags[complete], threshold = iforest_baseline(X[complete], window,
                                                                        seed)
        return scores, flags, threshold
    from sklearn.ensemble import IsolationForest
    from sklearn.preprocessing import StandardScaler

    X = np.asarray(X, dtype=np.float64)
    n = len(X)
    csum = np.cumsum(np.vstack([np.zeros((1, X.shape[1])), X]), axis=0)
    csq = np.cumsum(np.vstack([np.zeros((1, X.shape[1])), X * X]), axis=0)
    hi = np.arange(1, n + 1)
    lo = np.maximum(0, hi - window)
    count = (hi - lo)[:, None]
    mean = (csum[hi] - csum[lo]) / count
    var = np.maximum((csq[hi] - csq[lo]) - count * mean ** 2, 0) / np.maximum(count - 1, 1)
    std = np.where(count > 1, np.sqrt(var), 0.0)
    # the notebook's column order: the channels, then per channel its mean and std
    pairs = np.stack([mean, std], axis=2).reshape(n, -1)
    features = StandardScaler().fit_transform(np.hstack([X, pairs]))
    forest = IsolationForest(n_estimators=100, contamination=0.01, random_state=seed)
    forest.fit(features)
    scores = -forest.decision_function(features)
    threshold = float(np.percentile(scores, 99))
    return scores, scores > threshold, threshold


def evaluate(bundle: Bundle, dataset: Dataset, baseline: bool = True,
             verbose: bool = False) -> Evaluation:
    if dataset.labels is None:
        raise UserError(f"{dataset.name} has no label column; evaluate needs 0/1 labels")
    if list(dataset.channels) != list(bundle.channels):
        raise UserError(f"{dataset.name} has channels {', '.join(dataset.channels)}; the bundle "
                        f"was trained on {', '.join(bundle.channels)}")
    results = []
    for name, fitted in bundle.detectors.items():
        if verbose:
            print(f"evaluating {name} on {len(dataset.values)} rows ...", flush=True)
        scores, flags, _ = get(name).score(fitted, dataset.values)
        results.append(measure(name, scores, flags, fitted.scalars["threshold"], dataset.labels))
    if baseline:
        if verbose:
            print(f"evaluating {BASELINE} (host-only baseline) ...", flush=True)
        scores, flags, threshold = iforest_baseline(dataset.values)
        results.append(measure(BASELINE, scores, flags, threshold, dataset.labels, True))
    return Evaluation(bundle.name, dataset, results)
