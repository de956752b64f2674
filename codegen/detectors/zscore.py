"""zscore: static per-channel Z-score against the mean and deviation of normal data.

Reference arithmetic (float32, the order of mcua_zscore.c):
    z[c]  = |x[c] - mean[c]| * inv_std[c]
    score = max over channels of z[c]       (+Inf for a sample holding NaN/Inf)
    flag  = score > threshold
"""

from __future__ import annotations

import numpy as np

from .. import thresholds
from .base import F32, Fitted, channel_std, inverse_f32, merge_params, scalar

NAME = "zscore"
DEFAULTS = {"threshold": "value:3"}


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    thresholds.parse(params["threshold"])
    std = channel_std(NAME, normal, channels)
    arrays = {
        "mean": normal.astype(np.float64).mean(axis=0).astype(F32),
        "inv_std": inverse_f32(std),
    }
    fitted = Fitted(params, {"threshold": 0.0}, arrays)
    normal_scores, _ = score(fitted, normal)
    fitted.scalars["threshold"] = scalar(thresholds.choose(params["threshold"], normal_scores))
    return fitted


def score(fitted: Fitted, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    X = np.asarray(X, dtype=F32)
    mean, inv_std = fitted.arrays["mean"], fitted.arrays["inv_std"]
    best = np.zeros(len(X), dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for c in range(X.shape[1]):
            z = np.abs(X[:, c] - mean[c]) * inv_std[c]
            best = np.where(z > best, z, best)
    best[~np.isfinite(X).all(axis=1)] = np.inf
    return best, best > F32(fitted.scalars["threshold"])


def template_context(fitted: Fitted) -> dict:
    return {"threshold": fitted.scalars["threshold"], **fitted.arrays}
