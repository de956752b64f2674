"""Threshold strategies: how a detector's alarm threshold is chosen from normal scores."""

from __future__ import annotations

import numpy as np

from .errors import UserError

HELP = "value:K (a fixed threshold), percentile:P (of normal scores) or sigma:K (mean + K*std)"


def parse(spec: str) -> tuple[str, float]:
    kind, _, number = str(spec).partition(":")
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    if kind not in ("value", "percentile", "sigma") or not np.isfinite(value):
        raise UserError(f"threshold {spec!r} is not understood; use {HELP}")
    if kind == "percentile" and not 0 < value <= 100:
        raise UserError(f"threshold {spec!r}: a percentile must lie in (0, 100]")
    if kind == "value" and value < 0:
        raise UserError(f"threshold {spec!r}: scores are non-negative, so a negative threshold "
                        f"flags everything; use a value >= 0")
    return kind, value


def choose(spec: str, normal_scores: np.ndarray | None) -> np.float32:
    """The float32 threshold that spec gives on these scores of normal data."""
    kind, value = parse(spec)
    if kind == "value":
        return np.float32(value)
    scores = np.asarray(normal_scores, dtype=np.float64)
    if scores.size == 0:
        raise UserError(f"threshold {spec!r} needs scores of normal data, and there are none; "
                        f"give more normal rows or a fixed value:K threshold")
    if kind == "percentile":
        return np.float32(np.percentile(scores, value))
    return np.float32(scores.mean() + value * scores.std())
