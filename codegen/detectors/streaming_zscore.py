"""streaming_zscore: the lab's on-device Z-score over a sliding window, without lock-out.

The rules are documented in mcua_streaming_zscore.h.  The device learns its statistics by
itself; training on the host only sets the window length, the minimum count before flags,
the threshold and a per-channel variance floor, so a constant stretch on the device cannot
make every small wiggle an anomaly.  The floor is a fraction of the normal data's
sample-to-sample noise (std of first differences / sqrt 2), not of its overall deviation:
a signal with a large slow swing has a large overall deviation but small local noise.

The default threshold is 5, not the lab's 2.5: the deviation of a 50-sample window is a
noisy estimate, so window z-scores have heavier tails than a Gaussian; on the notebook's
data k = 2.5..4 raise 9 to 130+ false alarms, k = 5 one (F1 0.99).

outliers: "clip" (the rule above) or "absorb": a flagged sample enters the window as it is
(up to ABSORB_LIMIT deviations, mcua_streaming_zscore.h says why), so the window's variance
widens for the W samples it stays and a repeat of the same excursion scores lower (one alarm
per event, what NAB rewards: docs/nab.md).  Bundles from before the parameter have none and
clip.
"""

from __future__ import annotations

import numpy as np

from codegen.training import thresholds
from codegen.errors import UserError
from codegen.detectors.base import (F32, Fitted, channel_std, choice_param, merge_params,
                                    number_param, positive_int, scalar, threshold_param)
from codegen.detectors import window

NAME = "streaming_zscore"
OUTLIERS = ("clip", "absorb")  # the C's model.clip: 1, 0
ABSORB_LIMIT = F32(64)  # MCUA_STREAMING_ZSCORE_ABSORB_LIMIT
ABSORB_LIMIT_SQ = ABSORB_LIMIT * ABSORB_LIMIT  # ..._SQ: beyond it when d * d > this * var
DEFAULTS = {"window": 50, "min_count": 10, "threshold": "value:5", "floor": 0.1,
            "outliers": "clip", **window.ADAPTATION_DEFAULTS}
MIN_VARIANCE = F32(np.finfo(np.float32).tiny)
# The largest threshold k whose square, a constant of the C (the flag compares squares), is
# a finite float32 (k^2 = 1e38; float32's largest is 3.4e38).
MAX_THRESHOLD = 1e19


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    threshold_param(NAME, params)
    length = positive_int(NAME, params, "window", window.MAX_WINDOW)
    positive_int(NAME, params, "min_count", length)
    window.adaptation_params(NAME, params)
    choice_param(NAME, params, "outliers", OUTLIERS)
    floor = number_param(NAME, params, "floor", 0, 1, open_lower=True)  # of the noise
    if len(normal) < length:
        raise UserError(f"{NAME}: {len(normal)} normal rows are fewer than the window of {length}; "
                        f"give more data or a smaller {NAME}.window")
    std = channel_std(NAME, normal, channels)  # refuses constant channels
    window.check_span(NAME, normal, channels)
    for c in np.flatnonzero(std * std < MIN_VARIANCE):
        raise UserError(f"{NAME}: channel {channels[c]!r}: standard deviation {std[c]:.3g} is "
                        f"too small for the on-device window: the variance ({std[c] ** 2:.3g}) "
                        f"is below float32's smallest normal number ({float(MIN_VARIANCE):.3g}), "
                        f"so the squares the window sums underflow and the variance it learns "
                        f"is lost; rescale the channel (e.g. to µV) or leave it out with "
                        f"--columns")
    noise = np.diff(normal.astype(np.float64), axis=0).std(axis=0) / np.sqrt(2)
    var_floor = np.maximum((floor * noise) ** 2, MIN_VARIANCE).astype(F32)
    fitted = Fitted(params, {"threshold": float("inf")}, {"var_floor": var_floor})
    # Scores of normal data with nothing clipped (threshold +Inf) for percentile/sigma rules.
    normal_scores = score(fitted, normal).scores
    judged = normal_scores[params["min_count"]:]
    fitted.scalars["threshold"] = scalar(thresholds.choose(params["threshold"], judged))
    return fitted


def threshold_squared(fitted: Fitted) -> F32:
    """k * k in float32: a channel is over the threshold when d * d > k^2 * var, so that the
    flag API needs no square root and no division (mcua_streaming_zscore.h)."""
    k = F32(fitted.scalars["threshold"])
    with np.errstate(over="ignore"):  # only training's k = +Inf (nothing clipped) overflows
        return k * k


def step(fitted: Fitted):
    k = F32(fitted.scalars["threshold"])
    k2 = threshold_squared(fitted)
    var_floor = fitted.arrays["var_floor"]
    clipping = clips(fitted)
    limit = k if clipping else ABSORB_LIMIT

    def measure(var, d):
        var = np.where(var >= var_floor, var, var_floor)
        sd = np.sqrt(var)
        z = np.abs(d) * (F32(1) / sd)  # no subnormal quotient: see mcua_streaming_zscore.c
        dd = d * d
        over = dd > k2 * var
        with np.errstate(over="ignore"):  # 4096 * var overflows to +Inf: nothing beyond it
            beyond = over if clipping else over & (dd > ABSORB_LIMIT_SQ * var)
        return z, over, beyond, limit * sd

    return window.clipping_step(fitted, measure)


def clips(fitted: Fitted) -> bool:
    """Whether a flagged sample enters the window clipped (absent in older bundles: yes)."""
    return fitted.params.get("outliers", "clip") == "clip"


def fit_series(x: np.ndarray, common: dict, floor: float) -> Fitted:
    """For one NAB series (DetectorSpec.fit_series): the window settings and the floor."""
    params = {**window.ADAPTATION_DEFAULTS, "outliers": "clip", **common, "floor": 0.1}
    window.adaptation_params(NAME, params)
    choice_param(NAME, params, "outliers", OUTLIERS)
    return Fitted(params, {"threshold": 0.0},
                  {"var_floor": np.array([floor], dtype=F32)})


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False, state=None):
    return window.score(step, fitted, X, with_state, state)


def template_context(fitted: Fitted) -> dict:
    if "outliers" in fitted.params:
        choice_param(NAME, fitted.params, "outliers", OUTLIERS)
    return {**window.template_context(NAME, fitted), "clip": int(clips(fitted)),
            "threshold_sq": float(threshold_squared(fitted))}


# Clipping, k is also where a flagged sample is clipped, so a one-ulp move of it changes the
# state (absorbing, only flags: tests/test_contract.py UNOBSERVABLE).
def check_stored(stored) -> None:
    stored.number("scalars", "threshold", lo=0, hi=MAX_THRESHOLD)
    stored.only_arrays("var_floor")
    if "outliers" in stored.params:
        stored.choice("params", "outliers", OUTLIERS)
    stored.floats("var_floor", (stored.n_channels,), lo=MIN_VARIANCE)


SPEC = window.spec(NAME, check_stored, mutable=("var_floor", "threshold"),
                   fit_series=fit_series, flag_api=True)
