"""pca: Hotelling's T² in the principal subspace of standardised normal data and Q (the
squared prediction error) in its residual, each against its own limit (the MSPC rule).

Reference arithmetic (float32, the order of mcua_pca.c):
    z[f]  = (x[f] - mean[f]) * inv_scale[f]
    t[j]  = sum over f in order of P[f][j] * z[f]            (P: C x k loadings)
    T²    = sum over j in order of (t[j] * t[j]) * inv_lambda[j]
    r[f]  = z[f] - (sum over j in order of P[f][j] * t[j])
    Q     = sum over f in order of r[f] * r[f]
    score = max(T² * inv_t2_limit, Q * inv_q_limit)          flag = score > threshold
Every sum starts from its first term.  A sample holding NaN/Inf has T² = Q = +Inf, and a
T² or Q that is not finite (overflow, or NaN from Inf - Inf) is +Inf: the score is never NaN.
The eigenvectors come from numpy's eigh of the standardised rows' covariance (float64).
"""

from __future__ import annotations

import numpy as np

from codegen.detectors.base import (F32, DetectorSpec, Fitted, Footprint, Kind,
                                    Scored, array_bytes, channel_std, check_deviation,
                                    int_param, inverse_f32, merge_params, number_param, scalar,
                                    threshold_param)
from codegen.errors import UserError
from codegen.training import thresholds

NAME = "pca"
DEFAULTS = {"components": "auto", "variance": 0.95, "limits": "percentile:99",
            "threshold": "value:1"}
LIMITS_HELP = ("percentile:P (of the normal rows' T² and Q, P in (0, 100]) or classical:A "
               "(the F-distribution T² limit and the Jackson-Mudholkar Q limit at a false-alarm "
               "rate A in (0, 0.5], e.g. classical:0.01)")
# Below this residual variance (of standardised channels: a residual standard deviation of
# ~3e-5 of a channel's, a few hundred float32 ulps) Q measures float32 rounding, not the data.
MIN_RESIDUAL = 1e-9
SMALLEST = float(np.finfo(F32).smallest_subnormal)
LIMIT_SCALARS = ("t2_limit", "q_limit")


def inverse_of(limit: float) -> float:
    """The stored inverse of a stored limit: float32(1 / limit), in double."""
    with np.errstate(over="ignore"):
        return float(F32(1.0 / float(limit)))


def check_stored(stored) -> None:
    c = stored.n_channels
    if c < 2:
        stored.fail("params.k_chosen", f"needs at least 2 channels, the bundle has {c}")
    k = stored.integer("params", "k_chosen", 1, c - 1)
    stored.only_arrays("mean", "inv_scale", "loadings", "inv_lambda")
    stored.floats("mean", (c,))
    stored.floats("inv_scale", (c,), lo=0)
    stored.floats("loadings", (c, k))
    stored.floats("inv_lambda", (k,), lo=SMALLEST)
    for name in LIMIT_SCALARS:
        limit = stored.number("scalars", name, lo=SMALLEST)
        inverse = stored.number("scalars", f"inv_{name}", lo=SMALLEST)
        if inverse != inverse_of(limit):
            stored.fail(f"scalars.inv_{name}", f"is {inverse!r}, not float32(1 / {name}) = "
                                               f"{inverse_of(limit)!r}")
    stored.number("scalars", "threshold", lo=0)


def _describe(fitted: Fitted) -> str:
    c, k = fitted.arrays["loadings"].shape
    return f"k={k} of {c}, T²+Q"


SPEC = DetectorSpec(NAME, units=("pca",), kind=Kind.STATELESS, schema=check_stored,
                    score_args=", NULL, NULL",  # T² and Q are not reported
                    mutable=("mean", "inv_scale", "loadings", "inv_lambda", "inv_t2_limit",
                             "inv_q_limit"),
                    describe=_describe,
                    # z[channels] and t[components] on the stack (templates/pca.h.j2)
                    footprint=lambda fitted, n_channels: Footprint(
                        array_bytes(fitted),
                        stack=4 * (n_channels + fitted.arrays["loadings"].shape[1]),
                        shrink="fewer channels (--columns) or fewer components "
                               "(pca.components)"))


def parse_limits(spec) -> tuple[str, float]:
    kind, _, number = str(spec).strip().partition(":")
    try:
        value = float(number)
    except ValueError:
        value = float("nan")
    ok = {"percentile": lambda v: 0 < v <= 100, "classical": lambda v: 0 < v <= 0.5}
    if kind not in ok or not ok[kind](value):
        raise UserError(f"pca.limits {spec!r} is not understood; use {LIMITS_HELP}")
    return kind, value


def _components(params: dict, n_channels: int):
    if n_channels < 2:
        raise UserError("pca needs at least 2 channels: with one there is no subspace and no "
                        "residual; use zscore for a single channel")
    value = params["components"]
    if isinstance(value, (int, np.integer)) and not isinstance(value, bool) \
            and value >= n_channels:
        raise UserError(f"pca.components = {value} leaves no residual space for Q with "
                        f"{n_channels} channels (Q would be float32 rounding only); choose "
                        f"1 to {n_channels - 1}, or auto")
    return int_param(NAME, params, "components", 1, n_channels - 1, auto="auto")


def _most_collinear(Z: np.ndarray, channels: list[str]) -> str:
    corr = np.abs(np.corrcoef(Z, rowvar=False))
    np.fill_diagonal(corr, -1)
    i, j = np.unravel_index(np.argmax(corr), corr.shape)
    return f"{channels[i]!r} and {channels[j]!r} (correlation {corr[i, j]:.6f})"


def _refuse_residual(what: str, Z: np.ndarray, k: int, channels: list[str]):
    fix = (f"choose fewer components (pca.components < {k}) or " if k > 1 else "") + \
        "leave one of them out with --columns"
    raise UserError(f"pca: {what}: the channels left out of the {k} components are (nearly) "
                    f"collinear with them, {_most_collinear(Z, channels)}; {fix}")


def _eigen(Z: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Eigenvalues (descending) and eigenvectors (columns) of the rows' covariance, float64,
    each vector's largest entry positive so that a fit is reproducible."""
    eigenvalues, vectors = np.linalg.eigh(np.cov(Z, rowvar=False))
    order = np.argsort(eigenvalues)[::-1]
    eigenvalues, vectors = np.clip(eigenvalues[order], 0, None), vectors[:, order]
    signs = np.sign(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(vectors.shape[1])])
    return eigenvalues, vectors * signs


def classical_limits(eigenvalues: np.ndarray, k: int, n: int, alpha: float) -> tuple[float, float]:
    """(T² limit, Q limit) at false-alarm rate alpha: k(n-1)(n+1)/(n(n-k)) F_{k,n-k}(alpha)
    and Jackson and Mudholkar's limit from the residual eigenvalues."""
    from scipy import stats  # imported on use: the CLI starts without it

    t2 = k * (n - 1) * (n + 1) / (n * (n - k)) * stats.f.ppf(1 - alpha, k, n - k)
    residual = eigenvalues[k:]
    theta1, theta2, theta3 = (float((residual ** i).sum()) for i in (1, 2, 3))
    h0 = 1 - 2 * theta1 * theta3 / (3 * theta2 ** 2)
    c = stats.norm.ppf(1 - alpha)
    base = c * np.sqrt(2 * theta2 * h0 ** 2) / theta1 + 1 + theta2 * h0 * (h0 - 1) / theta1 ** 2
    if not (h0 > 0 and base > 0):
        raise UserError(f"pca.limits classical: the Jackson-Mudholkar Q limit is undefined for "
                        f"these residual eigenvalues (h0 = {h0:.3g}); use "
                        f"pca.limits=percentile:99")
    return t2, theta1 * base ** (1 / h0)


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    threshold_param(NAME, params)
    components = _components(params, len(channels))
    variance = number_param(NAME, params, "variance", 0, 1, open_lower=True)
    limits, level = parse_limits(params["limits"])
    n, c = normal.shape
    if n <= c:
        raise UserError(f"pca needs more normal rows than channels to estimate a covariance: "
                        f"{n} rows for {c} channels; give more data or fewer channels "
                        f"(--columns)")
    mean = normal.astype(np.float64).mean(axis=0).astype(F32)
    inv_scale = inverse_f32(NAME, channel_std(NAME, normal, channels), channels)
    check_deviation(NAME, normal, mean, channels)
    Z = _standardise(normal, mean, inv_scale).astype(np.float64)
    eigenvalues, vectors = _eigen(Z)
    explained = eigenvalues / eigenvalues.sum()
    # auto: the fewest components reaching the variance, but at most C-1 (Q needs a residual)
    k = components if components != "auto" else min(
        int(np.searchsorted(np.cumsum(explained), variance - 1e-12) + 1), c - 1)
    if eigenvalues[k:].sum() < MIN_RESIDUAL:
        _refuse_residual(f"the residual variance {eigenvalues[k:].sum():.3g} is below "
                         f"{MIN_RESIDUAL:g}", Z, k, channels)
    fitted = Fitted({**params, "k_chosen": k},
                    {"t2_limit": 1.0, "q_limit": 1.0, "inv_t2_limit": 1.0, "inv_q_limit": 1.0,
                     "threshold": 0.0},
                    {"mean": mean, "inv_scale": inv_scale,
                     "loadings": np.ascontiguousarray(vectors[:, :k], dtype=F32),
                     # the kept eigenvalues are the largest: at least the residual's
                     "inv_lambda": (1.0 / eigenvalues[:k]).astype(F32)},
                    report={"components": k, "explained": [float(e) for e in explained],
                            "explained_kept": float(explained[:k].sum())})
    t2, q = parts(fitted, normal)
    if limits == "percentile":
        found = [np.percentile(s[np.isfinite(s)].astype(np.float64), level) for s in (t2, q)]
    else:
        found = classical_limits(eigenvalues, k, n, level)
    for name, limit in zip(LIMIT_SCALARS, found):
        with np.errstate(over="ignore"):
            stored = scalar(limit)
        if not (np.isfinite(stored) and stored > 0 and np.isfinite(inverse_of(stored))):
            _refuse_residual(f"the {name} {limit:.3g} has no float32 inverse", Z, k, channels)
        fitted.scalars[name], fitted.scalars[f"inv_{name}"] = stored, inverse_of(stored)
    fitted.scalars["threshold"] = scalar(thresholds.choose(params["threshold"],
                                                           score(fitted, normal).scores))
    if verbose:
        print(f"  pca: k={k} of {c} components ({explained[:k].sum():.3f} of the variance; "
              f"each {', '.join(f'{e:.3f}' for e in explained)}), T² limit "
              f"{fitted.scalars['t2_limit']:.6g}, Q limit {fitted.scalars['q_limit']:.6g}")
    return fitted


def _standardise(X: np.ndarray, mean: np.ndarray, inv_scale: np.ndarray) -> np.ndarray:
    return (X - mean) * inv_scale  # float32, elementwise: the same as the C loop


def _sum(terms):
    """The float32 sum of terms in order, from the first one."""
    total = None
    for term in terms:
        total = term if total is None else total + term
    return total


def _finite_or_infinity(values: np.ndarray) -> np.ndarray:
    return np.where(np.isfinite(values), values, F32(np.inf)).astype(F32)


@np.errstate(over="ignore", invalid="ignore")
def parts(fitted: Fitted, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(T², Q) per row, as the C computes them."""
    X = np.asarray(X, dtype=F32)
    P = fitted.arrays["loadings"]
    inv_lambda = fitted.arrays["inv_lambda"]
    c, k = P.shape
    Z = _standardise(X, fitted.arrays["mean"], fitted.arrays["inv_scale"])
    t = [_sum(P[f, j] * Z[:, f] for f in range(c)) for j in range(k)]
    t2 = _sum((t[j] * t[j]) * inv_lambda[j] for j in range(k))
    residual = (Z[:, f] - _sum(P[f, j] * t[j] for j in range(k)) for f in range(c))
    q = _sum(r * r for r in residual)
    bad = ~np.isfinite(X).all(axis=1)
    t2, q = _finite_or_infinity(t2), _finite_or_infinity(q)
    t2[bad], q[bad] = np.inf, np.inf
    return t2, q


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False) -> Scored:
    t2, q = parts(fitted, X)
    with np.errstate(over="ignore"):
        a = t2 * F32(fitted.scalars["inv_t2_limit"])
        b = q * F32(fitted.scalars["inv_q_limit"])
    result = np.where(b > a, b, a).astype(F32)
    return Scored(result, result > F32(fitted.scalars["threshold"]))


def template_context(fitted: Fitted) -> dict:
    return {**fitted.scalars, **fitted.arrays}
