"""mahalanobis: squared Mahalanobis distance (Hotelling's T²) to the normal data's centre.

Reference arithmetic (float32, the order of mcua_mahalanobis.c and mcua_quadform.h):
    d[f]  = x[f] - centre[f]
    y[i]  = sum over f = i..C-1 of factor[i][f] * d[f]      (factor: upper triangular)
    score = sum over i of y[i]^2 = d' P d                   (+Inf for NaN/Inf, never NaN)
    flag  = score > threshold
P is the inverse of the normal rows' covariance, estimated on standardised channels by the
chosen estimator; factor = chol(P)' * diag(1 / std), computed in float64 and rounded once,
so the device does one triangular product and a sum of squares and never inverts a matrix.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from codegen.detectors import quadform
from codegen.detectors.base import (F32, DetectorSpec, Fitted, Footprint, Kind, Scored,
                                    array_bytes, channel_std, check_deviation, choice_param,
                                    merge_params, scalar, threshold_param)
from codegen.errors import UserError
from codegen.training import thresholds

NAME = "mahalanobis"
ESTIMATORS = ("empirical", "ledoit_wolf", "robust")
DEFAULTS = {"covariance": "ledoit_wolf", "threshold": "percentile:99"}
# Beyond this condition number of the standardised covariance, float32 keeps too few bits of
# the distance along its thinnest direction to be worth a score.
MAX_CONDITION = 1e6


def check_stored(stored) -> None:
    c = stored.n_channels
    stored.choice("params", "covariance", ESTIMATORS)
    stored.only_arrays("centre", "factor")
    stored.floats("centre", (c,))
    stored.floats("factor", (quadform.packed_length(c),))
    stored.number("scalars", "threshold")


SPEC = DetectorSpec(NAME, units=("quadform", "mahalanobis"), kind=Kind.STATELESS,
                    schema=check_stored, mutable=("centre", "factor"),
                    describe=lambda fitted: fitted.params["covariance"].replace("_", "-"),
                    # the deviation d[channels] on the stack (templates/mahalanobis.h.j2)
                    footprint=lambda fitted, n_channels: Footprint(
                        array_bytes(fitted), stack=4 * n_channels,
                        shrink="fewer channels (--columns): the factor has C(C+1)/2 floats"))


def _estimate(estimator: str, Z: np.ndarray, seed: int):
    """(centre, covariance, what to report) of standardised rows Z, in float64."""
    # imported on use: the CLI starts without it
    from sklearn.covariance import EmpiricalCovariance, LedoitWolf, MinCovDet

    with threadpool_limits(1):
        if estimator == "empirical":
            fit = EmpiricalCovariance().fit(Z)
            return fit.location_, fit.covariance_, {}
        if estimator == "ledoit_wolf":
            fit = LedoitWolf().fit(Z)
            return fit.location_, fit.covariance_, {"shrinkage": float(fit.shrinkage_)}
        fit = MinCovDet(random_state=seed).fit(Z)
        return fit.location_, fit.covariance_, {"support_rows": int(fit.support_.sum())}


def _most_correlated(covariance: np.ndarray, channels: list[str]) -> str:
    scale = np.sqrt(np.clip(np.diag(covariance), 1e-300, None))
    corr = np.abs(covariance / np.outer(scale, scale))
    np.fill_diagonal(corr, -1)
    i, j = np.unravel_index(np.argmax(corr), corr.shape)
    return f"{channels[i]!r} and {channels[j]!r} (correlation {corr[i, j]:.6f})"


def _factor(covariance: np.ndarray, estimator: str, channels: list[str]) -> np.ndarray:
    """The upper triangular U with U'U = inverse(covariance), in float64."""
    eigenvalues = np.linalg.eigvalsh(covariance)
    condition = eigenvalues[-1] / eigenvalues[0] if eigenvalues[0] > 0 else np.inf
    if not condition <= MAX_CONDITION:
        fix = ("use mahalanobis.covariance=ledoit_wolf, which shrinks it, or leave one of them "
               "out with --columns" if estimator != "ledoit_wolf"
               else "leave one of them out with --columns")
        raise UserError(f"mahalanobis: the normal rows' covariance is (nearly) singular "
                        f"(condition number {condition:.3g}, above {MAX_CONDITION:g}): "
                        f"{_most_correlated(covariance, channels)} move together; {fix}")
    inverse = np.linalg.inv(np.linalg.cholesky(covariance))  # covariance = L L'
    precision = inverse.T @ inverse  # symmetric by construction
    return np.linalg.cholesky(precision).T


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    threshold_param(NAME, params)
    estimator = choice_param(NAME, params, "covariance", ESTIMATORS)
    if len(normal) <= len(channels):
        raise UserError(f"mahalanobis needs more normal rows than channels to estimate a "
                        f"covariance: {len(normal)} rows for {len(channels)} channels; give "
                        f"more data or fewer channels (--columns)")
    std = channel_std(NAME, normal, channels)
    mean = normal.astype(np.float64).mean(axis=0)
    location, covariance, report = _estimate(estimator, (normal - mean) / std, seed)
    upper = _factor(covariance, estimator, channels) / std  # column f scaled by 1 / std[f]
    centre = (mean + location * std).astype(F32)
    check_deviation(NAME, normal, centre, channels)
    fitted = Fitted(dict(params), {"threshold": 0.0},
                    {"centre": centre, "factor": quadform.pack_upper(upper)},
                    report={"covariance": estimator, **report,
                            "condition_number": float(np.linalg.cond(covariance))})
    normal_scores = score(fitted, normal).scores
    fitted.scalars["threshold"] = scalar(thresholds.choose(params["threshold"], normal_scores))
    if verbose:
        shrinkage = (f", shrinkage {report['shrinkage']:.3g} towards a scaled identity"
                     if "shrinkage" in report else "")
        print(f"  mahalanobis: {estimator} covariance{shrinkage}, condition number "
              f"{fitted.report['condition_number']:.3g}")
    return fitted


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False) -> Scored:
    X = np.asarray(X, dtype=F32)
    with np.errstate(over="ignore", invalid="ignore"):
        d = X - fitted.arrays["centre"]
    t2 = quadform.upper(fitted.arrays["factor"], None, d)
    t2[~np.isfinite(X).all(axis=1)] = np.inf
    return Scored(t2, t2 > F32(fitted.scalars["threshold"]))


def template_context(fitted: Fitted) -> dict:
    return {"threshold": fitted.scalars["threshold"], **fitted.arrays}
