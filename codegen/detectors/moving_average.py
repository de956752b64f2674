"""moving_average: deviation of each sample from the moving average of the last W samples.

The rules are documented in mcua_moving_average.h.  Training runs a plain moving average
(nothing clipped) over the normal rows: the deviation's standard deviation per channel sets
inv_scale (so channels compare in the same unit), and the threshold comes from the scores.
"""

from __future__ import annotations

import functools

import numpy as np

from codegen.training import thresholds
from codegen.errors import UserError
from codegen.detectors.base import (F32, Fitted, channel_std, inverse_f32,
                                    merge_params, positive_int, scalar, threshold_param)
from codegen.detectors import window
from codegen.detectors.window import Window

NAME = "moving_average"
DEFAULTS = {"window": 50, "min_count": 10, "threshold": "percentile:99",
            **window.ADAPTATION_DEFAULTS}


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    threshold_param(NAME, params)
    length = positive_int(NAME, params, "window", window.MAX_WINDOW)
    min_count = positive_int(NAME, params, "min_count", length)
    window.adaptation_params(NAME, params)
    if len(normal) <= min_count:
        raise UserError(f"{NAME}: {len(normal)} normal rows leave nothing to learn from after "
                        f"the first {min_count}; give more data or a smaller {NAME}.min_count")
    if len(normal) < length:
        raise UserError(f"{NAME}: {len(normal)} normal rows are fewer than the window of {length}; "
                        f"give more data or a smaller {NAME}.window")
    window.check_span(NAME, normal, channels)
    n_channels = normal.shape[1]
    unit = Fitted(params, {"threshold": float("inf")},
                  {"inv_scale": np.ones(n_channels, F32), "bound": np.zeros(n_channels, F32)})
    deviations = _deviations(unit, normal)[min_count:]
    scale = channel_std(NAME, deviations, channels)
    inv_scale = inverse_f32(NAME, scale, channels,
                            "standard deviation of the deviation from the moving average")
    plain = Fitted(params, {"threshold": float("inf")},
                   {"inv_scale": inv_scale, "bound": np.zeros(n_channels, F32)})
    normal_scores = score(plain, normal).scores
    threshold = thresholds.choose(params["threshold"], normal_scores[min_count:])
    return with_threshold(plain, threshold)


def with_threshold(fitted: Fitted, value) -> Fitted:
    """fitted with this threshold and the clipping bound = threshold / inv_scale."""
    inv_scale = fitted.arrays["inv_scale"]
    bound = (np.float64(F32(value)) / inv_scale.astype(np.float64)).astype(F32)
    return Fitted(fitted.params, {**fitted.scalars, "threshold": scalar(value)},
                  {**fitted.arrays, "bound": bound}, fitted.blobs, fitted.report)


def _deviations(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    """Signed deviation of every row from the moving average before it (plain run)."""
    w = Window(X.shape[1], fitted.params["window"])
    out = np.zeros_like(X, dtype=F32)
    for i, x in enumerate(X):
        if w.count:
            mean, _ = w.mean()
            out[i] = (x - w.anchor) - mean
        w.push(x.copy())
    return out


def step(fitted: Fitted):
    inv_scale, bound = fitted.arrays["inv_scale"], fitted.arrays["bound"]
    threshold = F32(fitted.scalars["threshold"])

    def measure(var, d):
        dev = np.abs(d) * inv_scale
        over = dev > threshold
        return dev, over, over, bound

    return window.clipping_step(fitted, measure)


def fit_series(x: np.ndarray, common: dict, floor: float) -> Fitted:
    """For one NAB series (DetectorSpec.fit_series): the deviation unit is the floor's square
    root or the deviation of the rows x from their moving average, whichever is larger."""
    common = {**window.ADAPTATION_DEFAULTS, **common}
    window.adaptation_params(NAME, common)
    unit = Fitted(common, {"threshold": float("inf")},
                  {"inv_scale": np.ones(1, F32), "bound": np.zeros(1, F32)})
    dev = _deviations(unit, x[:, None].astype(F32))[common["min_count"]:, 0]
    scale = max(float(dev.astype(np.float64).std()), float(np.sqrt(floor)))
    return Fitted(common, {"threshold": 0.0},
                  {"inv_scale": np.array([1.0 / scale], dtype=F32), "bound": np.zeros(1, F32)})


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False, state=None):
    return window.score(step, fitted, X, with_state, state)


template_context = functools.partial(window.template_context, NAME)


def check_stored(stored) -> None:
    stored.only_arrays("inv_scale", "bound")
    stored.floats("inv_scale", (stored.n_channels,), lo=0)
    stored.floats("bound", (stored.n_channels,), lo=0)


# A flagged sample enters the window at mean +- bound, bound = threshold / inv_scale.
SPEC = window.spec(NAME, check_stored, mutable=("inv_scale", "bound"), fit_series=fit_series,
                   with_threshold=with_threshold)
