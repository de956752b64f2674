"""gmm: negative log-likelihood under a Gaussian mixture of standardised normal data.

Reference arithmetic (float32, the order of mcua_gmm.c, mcua_quadform.h, mcua_f32math.c):
    d[f]  = x[f] - mean[f]
    q[k]  = sum over i of (sum over j >= i of U_k[i][j] * d[j] - b_k[i])^2   (U_k diagonal
            for covariance=diag; +Inf when it overflows)
    a[k]  = c[k] - 0.5f * q[k]
    m     = max over k of a[k]
    score = -(m + log(sum over k, in order, of exp(a[k] - m)))   (exp, log: f32math)
    flag  = score > threshold
A sample holding NaN or +-Inf, or whose every q[k] overflows, scores +Inf; never NaN.

With z = (x - mean) * inv_scale the standardised sample and P_k = L_k L_k' the precision of
component k (in standardised space), U_k = L_k' diag(inv_scale) and b_k = L_k' mu_k, so that
q[k] = (z - mu_k)' P_k (z - mu_k); c[k] = log w_k + log det L_k' - (C/2) log(2 pi).  All three
are computed in float64 and rounded once.  The score is the NLL of z, the standardised
sample: the Jacobian of the standardisation (sum of log inv_scale) is left out, a constant
that moves every score alike.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from threadpoolctl import threadpool_limits

from codegen.detectors import f32math, quadform
from codegen.detectors.base import (F32, DetectorSpec, Fitted, Footprint, Kind, Scored,
                                    array_bytes, channel_std, check_deviation, choice_param,
                                    int_param, inverse_f32, merge_params, positive_int,
                                    scalar, threshold_param)
from codegen.errors import UserError
from codegen.training import thresholds

if TYPE_CHECKING:
    from sklearn.mixture import GaussianMixture

NAME = "gmm"
COVARIANCES = ("full", "diag")
# k_max 3: on the pump benchmark BIC up to 5 fits the training rows' operating points so
# closely that 32 % of later normal rows flag (3: 16 %, F1 0.68 instead of 0.62).
DEFAULTS = {"covariance": "full", "k": "auto", "k_max": 3, "threshold": "percentile:99",
            "n_init": 2}
NEGLIGIBLE = F32(-16.7)  # exp below is under 2^-24 (MCUA_GMM_NEGLIGIBLE in mcua_gmm.c)
MAX_COMPONENTS = 64  # a bound on training time; mcua_gmm_model.n_components is a uint16


def factor_length(covariance: str, c: int) -> int:
    """Floats of one component's factor: the packed upper triangle, or the diagonal."""
    return c if covariance == "diag" else quadform.packed_length(c)


def check_stored(stored) -> None:
    c = stored.n_channels
    covariance = stored.choice("params", "covariance", COVARIANCES)
    k = stored.integer("params", "k_chosen", 1, MAX_COMPONENTS)
    stored.only_arrays("mean", "factor", "offset", "constant")
    stored.floats("mean", (c,))
    stored.floats("factor", (k, factor_length(covariance, c)))
    stored.floats("offset", (k, c))
    stored.floats("constant", (k,))
    stored.number("scalars", "threshold")


SPEC = DetectorSpec(NAME, units=("f32math", "quadform", "gmm"), kind=Kind.STATELESS,
                    schema=check_stored, mutable=("mean", "factor", "offset", "constant"),
                    describe=lambda fitted: (f"K={fitted.params['k_chosen']} "
                                             f"{fitted.params['covariance']}"),
                    # d[channels] and a[components] on the stack (templates/gmm.h.j2)
                    footprint=lambda fitted, n_channels: Footprint(
                        array_bytes(fitted),
                        stack=4 * (n_channels + fitted.params["k_chosen"]),
                        shrink="fewer channels (--columns), fewer components (gmm.k_max) or "
                               "gmm.covariance=diag"))


def _mixture(k: int, covariance: str, n_init: int, seed: int) -> GaussianMixture:
    from sklearn.mixture import GaussianMixture  # imported on use: the CLI starts without it

    return GaussianMixture(k, covariance_type=covariance, n_init=n_init, random_state=seed)


def _choose_k(Z: np.ndarray, k_max: int, covariance: str, n_init: int, seed: int,
              verbose: bool) -> int:
    """The K in 1..k_max with the lowest BIC on the normal rows."""
    best_k, best_bic = 1, np.inf
    for k in range(1, min(k_max, len(Z)) + 1):
        bic = _mixture(k, covariance, n_init, seed).fit(Z).bic(Z)
        if verbose:
            print(f"  gmm: K={k} BIC {bic:.1f}")
        if bic < best_bic:
            best_k, best_bic = k, bic
    return best_k


def _constants(mixture: GaussianMixture, inv_scale: np.ndarray, covariance: str):
    """(factor, offset, constant) per component, float64 → float32 once."""
    c = len(inv_scale)
    factors, offsets, constants = [], [], []
    for w, mu, cov in zip(mixture.weights_, mixture.means_, mixture.covariances_):
        if covariance == "diag":
            upper = np.diag(1.0 / np.sqrt(cov))
        else:
            inverse = np.linalg.inv(np.linalg.cholesky(cov))  # cov = L L'
            upper = np.linalg.cholesky(inverse.T @ inverse).T  # precision = upper' upper
        scaled = upper * inv_scale.astype(np.float64)  # column f times inv_scale[f]
        factors.append(np.diag(scaled) if covariance == "diag" else quadform.pack_upper(scaled))
        offsets.append(upper @ mu)
        constants.append(np.log(w) + np.log(np.diag(upper)).sum() - c / 2 * np.log(2 * np.pi))
    return (np.array(factors, dtype=np.float64).astype(F32),
            np.array(offsets).astype(F32), np.array(constants).astype(F32))


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    threshold_param(NAME, params)
    covariance = choice_param(NAME, params, "covariance", COVARIANCES)
    k = int_param(NAME, params, "k", 1, MAX_COMPONENTS, auto="auto")
    k_max = int_param(NAME, params, "k_max", 1, MAX_COMPONENTS)
    n_init = positive_int(NAME, params, "n_init", 100)
    if k != "auto" and k > len(normal):
        raise UserError(f"gmm.k = {k} is larger than the {len(normal)} normal rows; choose a "
                        f"smaller K or give more data")
    if len(normal) < 2:
        raise UserError(f"gmm needs at least 2 normal rows, got {len(normal)}")
    std = channel_std(NAME, normal, channels)
    mean = normal.astype(np.float64).mean(axis=0).astype(F32)
    inv_scale = inverse_f32(NAME, std, channels)
    check_deviation(NAME, normal, mean, channels)
    Z = ((normal.astype(F32) - mean) * inv_scale).astype(np.float64)
    # One thread: the same data and seed then give the same mixture on any machine.
    with threadpool_limits(1):
        if k == "auto":
            k = _choose_k(Z, k_max, covariance, n_init, seed, verbose)
        mixture = _mixture(k, covariance, n_init, seed).fit(Z)
    factor, offset, constant = _constants(mixture, inv_scale, covariance)
    fitted = Fitted({**params, "k_chosen": int(k)}, {"threshold": 0.0},
                    {"mean": mean, "factor": factor, "offset": offset, "constant": constant},
                    report={"bic": float(mixture.bic(Z)), "converged": bool(mixture.converged_)})
    normal_scores = score(fitted, normal).scores
    fitted.scalars["threshold"] = scalar(thresholds.choose(params["threshold"], normal_scores))
    return fitted


@np.errstate(over="ignore", invalid="ignore")
def score(fitted: Fitted, X: np.ndarray, with_state: bool = False) -> Scored:
    X = np.asarray(X, dtype=F32)
    arrays = fitted.arrays
    d = X - arrays["mean"]
    form = quadform.diag if fitted.params["covariance"] == "diag" else quadform.upper
    a = np.array([c - F32(0.5) * form(u, b, d)
                  for u, b, c in zip(arrays["factor"], arrays["offset"], arrays["constant"])],
                 dtype=F32).reshape(len(arrays["constant"]), len(X))
    m = a.max(axis=0)
    # The C's shortcuts, which change no bit: the maximum's term is exp(0) = 1; once the
    # total holds it, a term below 2^-24 is left out (adding it would round it away).
    past_max, total = np.zeros(len(X), dtype=bool), None
    for a_k in a:
        diff = a_k - m
        term = np.where(a_k == m, F32(1.0), f32math.exp(diff))
        term = np.where(past_max & (a_k != m) & (diff < NEGLIGIBLE), F32(0.0), term)
        total = term if total is None else total + term
        past_max |= a_k == m
    nll = -(m + np.where(total == F32(1.0), F32(0.0), f32math.log(total)))
    nll[~np.isfinite(m)] = np.inf  # NaN/Inf readings make every q[k] +Inf, so m -Inf
    return Scored(nll, nll > F32(fitted.scalars["threshold"]))


def template_context(fitted: Fitted) -> dict:
    return {"threshold": fitted.scalars["threshold"],
            "diagonal": fitted.params["covariance"] == "diag", **fitted.arrays}
