"""zscore: static per-channel Z-score against the mean and deviation of normal data.

Reference arithmetic (float32, the order of mcua_zscore.c):
    z[c]  = |x[c] - mean[c]| * inv_std[c]
    score = max over channels of z[c]       (+Inf for a sample holding NaN/Inf)
    flag  = score > threshold

The flag alone needs no float arithmetic: z[c] is a monotone function of x[c] on either
side of mean[c], so the readings a channel accepts (z finite and <= threshold) are one
interval of floats.  flag_bounds finds its exact ends, as order keys (codegen/floatkeys.py),
and mcua_zscore_flag compares each reading's key with them.
"""

from __future__ import annotations

import numpy as np

from codegen.emit import floatkeys
from codegen.training import thresholds
from codegen.detectors.base import (F32, DetectorSpec, Fitted, Footprint, Kind, Scored,
                                    channel_std, check_deviation, inverse_f32, merge_params,
                                    scalar, threshold_param)

NAME = "zscore"
DEFAULTS = {"threshold": "value:3"}


def check_stored(stored) -> None:
    stored.only_arrays("mean", "inv_std")
    stored.floats("mean", (stored.n_channels,))
    stored.positive_floats("inv_std", (stored.n_channels,))
    stored.number("scalars", "threshold")


SPEC = DetectorSpec(NAME, units=("zscore",), kind=Kind.STATELESS, schema=check_stored,
                    flag_api=True, mutable=("mean", "inv_std"), default=True,
                    # mean, inv_std (float) and the accepted interval lo, hi (int32) per channel
                    footprint=lambda fitted, n_channels: Footprint(16 * n_channels))


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    threshold_param(NAME, params)
    std = channel_std(NAME, normal, channels)
    arrays = {
        "mean": normal.astype(np.float64).mean(axis=0).astype(F32),
        "inv_std": inverse_f32(NAME, std, channels),
    }
    check_deviation(NAME, normal, arrays["mean"], channels)
    fitted = Fitted(params, {"threshold": 0.0}, arrays)
    normal_scores = score(fitted, normal).scores
    fitted.scalars["threshold"] = scalar(thresholds.choose(params["threshold"], normal_scores))
    return fitted


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False) -> Scored:
    X = np.asarray(X, dtype=F32)
    mean, inv_std = fitted.arrays["mean"], fitted.arrays["inv_std"]
    best = np.zeros(len(X), dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        for c in range(X.shape[1]):
            z = np.abs(X[:, c] - mean[c]) * inv_std[c]
            best = np.where(z > best, z, best)
    best[~np.isfinite(X).all(axis=1)] = np.inf
    return Scored(best, best > F32(fitted.scalars["threshold"]))


def flag_bounds(fitted: Fitted) -> tuple[np.ndarray, np.ndarray]:
    """Per channel, the order keys (lo, hi) of the smallest and largest reading that the
    reference accepts (z finite and not above the threshold); every other float, NaN and
    +-Inf included, flags.  Acceptance is an interval around mean[c], found by bisection
    on the keys.  A channel that accepts nothing gets (1, 0)."""
    mean, inv_std = fitted.arrays["mean"], fitted.arrays["inv_std"]
    threshold = F32(fitted.scalars["threshold"])

    def accepts(keys):  # one key per channel
        with np.errstate(over="ignore", invalid="ignore"):
            z = np.abs(floatkeys.from_order_key(keys) - mean) * inv_std
        return np.isfinite(z) & (z <= threshold)

    centre = floatkeys.order_key(mean)
    top = floatkeys.MAX_FINITE + 1
    lo = floatkeys.first_true(accepts, np.full_like(centre, -top), centre)
    hi = floatkeys.first_true(lambda k: ~accepts(k), centre, np.full_like(centre, top)) - 1
    empty = ~accepts(centre)
    lo[empty], hi[empty] = 1, 0
    return lo.astype(np.int32), hi.astype(np.int32)


def template_context(fitted: Fitted) -> dict:
    lo, hi = flag_bounds(fitted)
    return {"threshold": fitted.scalars["threshold"],
            "standardise": list(zip(fitted.arrays["mean"], fitted.arrays["inv_std"])),
            "accept": [(int(a), int(b)) for a, b in zip(lo, hi)]}
