"""Threshold strategies: how a detector's alarm threshold is chosen at training time.

    value:K        a fixed threshold
    percentile:P   the P-th percentile of the scores of normal training data
    sigma:K        mean + K * std of those scores
    max-f1         the threshold with the best F1 on labelled validation data
    recall:R       the highest threshold that still catches a fraction R of the anomalous
                   rows of the validation data (safety: miss little, accept false alarms)
    precision:P    the lowest threshold whose alarms are right a fraction P of the time
                   (quality control: few false alarms, accept misses)

Every detector flags score > threshold.  The labelled strategies need validation data with
labels (train's labelled CSV, or --validation); detectors pick a provisional threshold
(percentile:99 of normal scores) in fit() and training.select() replaces it.

Detectors whose threshold also feeds their state or other constants (streaming_zscore: a
flagged sample enters the window clipped to mean +- k sigma; moving_average: bound =
threshold / inv_scale) say so in their DetectorSpec: threshold_feeds_state, and
with_threshold(fitted, value) -> Fitted where more than the scalar changes.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from codegen.errors import UserError

HELP = ("value:K (a fixed threshold), percentile:P (of normal scores), sigma:K (mean + K*std), "
        "max-f1, recall:R or precision:P (on labelled validation data, R and P in (0, 1])")
LABELLED = ("max-f1", "recall", "precision")
KINDS = ("value", "percentile", "sigma") + LABELLED
PROVISIONAL = "percentile:99"
F32_MAX = float(np.finfo(np.float32).max)


def scores_needed(spec: str) -> int:
    """The normal scores a strategy needs to mean what it says: percentile:P at least one
    score above the P-th percentile, ceil(100 / (100 - P)) (100 for percentile:99; below
    that the percentile is only the largest score); any other strategy 2."""
    kind, value = parse(spec)
    if kind != "percentile" or value >= 100:
        return 2
    return int(np.ceil(100.0 / (100.0 - value) - 1e-9))


def parse(spec: str, what: str = "threshold") -> tuple[str, float | None]:
    """(kind, number) of a threshold spec; what names it in errors (e.g. zscore.threshold)."""
    kind, _, number = str(spec).strip().partition(":")
    given = f"{what} {spec!r}"
    if kind == "max-f1":
        if number:
            raise UserError(f"{given}: max-f1 takes no number; write max-f1, or recall:R or "
                            f"precision:P for a target")
        return kind, None
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if kind not in KINDS or not np.isfinite(value):
        raise UserError(f"{given} is not understood; use {HELP}")
    if kind == "percentile" and not 0 < value <= 100:
        raise UserError(f"{given}: a percentile must lie in (0, 100], e.g. percentile:99")
    if kind in ("recall", "precision") and not 0 < value <= 1:
        raise UserError(f"{given}: a target {kind} is a fraction in (0, 1], "
                        f"e.g. {kind}:0.95")
    if kind == "value" and value < 0:
        raise UserError(f"{given}: scores are non-negative, so a negative threshold "
                        f"flags everything; use a value >= 0")
    if kind in ("value", "sigma") and abs(value) > F32_MAX:
        raise UserError(f"{given}: {value:g} is beyond the float32 range of the device "
                        f"(at most {F32_MAX:.7g}); use a smaller {kind}")
    return kind, value


def needs_labels(spec: str, what: str = "threshold") -> bool:
    return parse(spec, what)[0] in LABELLED


def choose(spec: str, normal_scores: np.ndarray | None, scores: np.ndarray | None = None,
           labels: np.ndarray | None = None) -> np.float32:
    """The float32 threshold that spec gives: on scores of normal data, or for the labelled
    strategies on (scores, labels) of validation data (provisional percentile:99 of the
    normal scores when no labels are given)."""
    kind, value = parse(spec)
    if kind == "value":
        return np.float32(value)
    if kind in LABELLED:
        if labels is None:
            return choose(PROVISIONAL, normal_scores)
        return from_labels(spec, scores, labels)
    normal = np.asarray(normal_scores, dtype=np.float64)
    normal = normal[np.isfinite(normal)]
    if normal.size == 0:
        raise UserError(f"threshold {spec!r} needs scores of normal data, and there are none; "
                        f"give more normal rows or a fixed value:K threshold")
    if kind == "percentile":
        return np.float32(np.percentile(normal, value))
    mean, std = normal.mean(), normal.std()
    threshold = mean + value * std
    if not abs(threshold) <= F32_MAX:
        raise UserError(f"threshold {spec!r}: mean + {value:g} * std of the normal scores "
                        f"({mean:.6g} + {value:g} * {std:.6g}) is beyond the float32 range of "
                        f"the device; use a smaller K")
    return np.float32(threshold)


def below(value) -> np.float32:
    """The largest float32 below value: flags = score > it catches every score >= value."""
    return np.nextafter(np.float32(value), np.float32(-np.inf))


def candidates(scores: np.ndarray, labels: np.ndarray):
    """(thresholds, precision, recall) for every distinct score, with flags = score >
    threshold (scikit-learn's precision_recall_curve, shifted one float32 down)."""
    from sklearn.metrics import precision_recall_curve  # imported on use: the CLI starts without it

    scores = np.asarray(scores, dtype=np.float32)
    labels = np.asarray(labels, dtype=bool)
    if labels.all() or not labels.any():
        raise UserError("a labelled threshold strategy needs validation rows of both kinds, "
                        "normal (0) and anomalous (1), and these are all "
                        f"{'anomalous' if labels.all() else 'normal'}: give --validation with "
                        "a labelled CSV that has both, or choose percentile:P, sigma:K or "
                        "value:K")
    finite = np.where(np.isfinite(scores), scores, np.finfo(np.float32).max)
    precision, recall, at = precision_recall_curve(labels, finite)
    return np.array([below(t) for t in at], dtype=np.float32), precision[:-1], recall[:-1]


def from_labels(spec: str, scores: np.ndarray, labels: np.ndarray) -> np.float32:
    kind, value = parse(spec)
    at, precision, recall = candidates(scores, labels)
    if kind == "max-f1":
        with np.errstate(invalid="ignore", divide="ignore"):
            f1 = np.nan_to_num(2 * precision * recall / (precision + recall))
        best = np.flatnonzero(f1 == f1.max())
        return at[best[-1]]  # among equal F1, the highest threshold
    if kind == "recall":
        ok = np.flatnonzero(recall >= value)
        return at[ok[-1]]  # recall 1 is always reachable at the lowest score
    ok = np.flatnonzero(precision >= value)
    if len(ok) == 0:
        raise UserError(f"threshold {spec!r}: no threshold reaches precision {value} on the "
                        f"validation data (best {precision.max():.3f}); lower the target")
    return at[ok[0]]  # the lowest threshold: the most recall at that precision


def objective(spec: str, precision: float, recall: float, threshold: float) -> tuple:
    """Sort key of an evaluated candidate (larger is better) under a labelled strategy."""
    kind, value = parse(spec)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    if kind == "max-f1":
        return (f1, threshold)
    if kind == "recall":
        return (recall >= value, precision if recall >= value else recall, threshold)
    return (precision >= value, recall if precision >= value else precision, -threshold)


MAX_ALARM_SHARE = 0.2  # train --max-alarm-share's default
ALARM_SHARE_HELP = ("refuse a threshold that flags more than this share of the normal rows "
                    "(the validation data's with a labelled strategy, else the training "
                    f"data's), in (0, 1] (default {MAX_ALARM_SHARE:g})")


def judge(name: str, spec: str, threshold: float, normal_flags: np.ndarray,
          anomaly_flags: np.ndarray | None, data: str, max_share: float) -> str | None:
    """Refuse a degenerate threshold, one whose flags on normal rows (normal_flags) are
    more than max_share of them; a warning when labelled anomalous rows are given
    (anomaly_flags) and it flags none of them."""
    normal_flags = np.asarray(normal_flags, dtype=bool)
    shown = f"{name}: threshold {spec or 'default'} = {threshold:.6g}"
    false_alarms, normal_rows = int(normal_flags.sum()), len(normal_flags)
    if normal_rows and false_alarms > max_share * normal_rows:
        share = false_alarms / normal_rows
        raise UserError(f"{shown} flags {false_alarms:,} of the {normal_rows:,} normal rows of "
                        f"{data} ({share:.1%}), more than --max-alarm-share {max_share:g}: it "
                        f"would alarm through normal operation; choose another strategy (e.g. "
                        f"--set {name}.threshold=percentile:99, or recall:R with a lower R), "
                        f"or accept it with --max-alarm-share "
                        f"{min(1.0, np.ceil(share * 100) / 100):g}")
    if anomaly_flags is not None and len(anomaly_flags) and not np.any(anomaly_flags):
        return (f"warning: {shown} flags none of the {len(anomaly_flags):,} labelled anomalous "
                f"rows of {data} ({false_alarms:,} of {normal_rows:,} normal rows): on these "
                f"faults it would stay silent; try a lower threshold or another detector")
    return None


def apply(module, fitted, value):
    """A copy of fitted with this threshold and everything derived from it."""
    from codegen.detectors.base import scalar

    if module.SPEC.with_threshold is not None:
        return module.SPEC.with_threshold(fitted, value)
    return replace(fitted, scalars={**fitted.scalars, "threshold": scalar(value)})
