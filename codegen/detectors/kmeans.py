"""kmeans: distance to the nearest K-means centroid of standardised normal data.

Reference arithmetic (float32, the order of mcua_kmeans.c):
    z[f]  = (x[f] - mean[f]) * inv_scale[f]
    d2[k] = sum over f in order of (z[f] - centroid[k][f])^2
    score = sqrt(min over k of d2[k])        (+Inf for a sample holding NaN/Inf)
    flag  = score > threshold
scikit-learn finds the centroids; its own distances (expanded squares) are never used.
"""

from __future__ import annotations

import numpy as np
from threadpoolctl import threadpool_limits

from codegen.training import thresholds
from codegen.errors import UserError
from codegen.detectors.base import (F32, DetectorSpec, Fitted, Footprint, Kind, Scored,
                                    array_bytes, channel_std, check_deviation, int_param,
                                    inverse_f32, merge_params, positive_int, scalar,
                                    threshold_param)

NAME = "kmeans"
DEFAULTS = {"k": "auto", "k_max": 8, "threshold": "percentile:99", "n_init": 10}
SILHOUETTE_ROWS = 2000
MAX_CLUSTERS = 65535  # mcua_kmeans_score takes n_clusters as a uint16


def check_stored(stored) -> None:
    c = stored.n_channels
    k = stored.integer("params", "k_chosen", 1, MAX_CLUSTERS)
    stored.only_arrays("mean", "inv_scale", "centroids")
    stored.floats("mean", (c,))
    stored.positive_floats("inv_scale", (c,))
    stored.floats("centroids", (k, c))
    stored.number("scalars", "threshold")


SPEC = DetectorSpec(NAME, units=("kmeans",), kind=Kind.STATELESS, schema=check_stored,
                    score_args=", NULL",  # the nearest cluster is not reported
                    mutable=("mean", "inv_scale", "centroids"),
                    describe=lambda fitted: f"K={fitted.params['k_chosen']}", default=True,
                    # the standardised sample z[channels] on the stack (templates/kmeans.h.j2)
                    footprint=lambda fitted, n_channels: Footprint(
                        array_bytes(fitted), stack=4 * n_channels,
                        shrink="fewer channels (--columns) or fewer clusters (kmeans.k_max)"))


def _standardise(X: np.ndarray, mean: np.ndarray, inv_scale: np.ndarray) -> np.ndarray:
    return (X - mean) * inv_scale  # float32, elementwise: the same as the C loop


def _choose_k(Z: np.ndarray, k_max: int, n_init: int, seed: int, verbose: bool) -> int:
    """The K in 2..k_max with the best silhouette on (a seeded sample of) the normal rows."""
    from sklearn.cluster import KMeans  # imported on use: the CLI starts without it
    from sklearn.metrics import silhouette_score

    rng = np.random.RandomState(seed)
    sample = Z if len(Z) <= SILHOUETTE_ROWS else Z[rng.choice(len(Z), SILHOUETTE_ROWS, False)]
    best_k, best_s = 2, -np.inf
    for k in range(2, min(k_max, len(sample) - 1) + 1):
        labels = KMeans(k, n_init=n_init, random_state=seed).fit_predict(sample)
        s = silhouette_score(sample, labels)
        if verbose:
            print(f"  kmeans: K={k} silhouette {s:.3f}")
        if s > best_s:
            best_k, best_s = k, s
    return best_k


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    threshold_param(NAME, params)
    k = int_param(NAME, params, "k", 1, MAX_CLUSTERS, auto="auto")
    k_max = int_param(NAME, params, "k_max", 2, MAX_CLUSTERS)
    n_init = positive_int(NAME, params, "n_init")
    if k != "auto" and k > len(normal):
        raise UserError(f"kmeans.k = {k} is larger than the {len(normal)} normal rows; "
                        f"choose a smaller K or give more data")
    if k == "auto" and len(normal) < 4:
        raise UserError(f"kmeans needs at least 4 normal rows to choose K, got {len(normal)}")
    std = channel_std(NAME, normal, channels)
    mean = normal.astype(np.float64).mean(axis=0).astype(F32)
    inv_scale = inverse_f32(NAME, std, channels)
    check_deviation(NAME, normal, mean, channels)
    Z = _standardise(normal, mean, inv_scale)
    from sklearn.cluster import KMeans  # imported on use: the CLI starts without it

    # One thread: the same data and seed then give the same centroids on any machine.
    with threadpool_limits(1):
        if k == "auto":
            k = _choose_k(Z, k_max, n_init, seed, verbose)
        km = KMeans(k, n_init=n_init, random_state=seed).fit(Z)
    fitted = Fitted({**params, "k_chosen": int(k)}, {"threshold": 0.0},
                    {"mean": mean, "inv_scale": inv_scale,
                     "centroids": km.cluster_centers_.astype(F32)})
    normal_scores = score(fitted, normal).scores
    fitted.scalars["threshold"] = scalar(thresholds.choose(params["threshold"], normal_scores))
    return fitted


@np.errstate(over="ignore", invalid="ignore")
def nearest(fitted: Fitted, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(squared distance to the nearest centroid, its index) per row, as the C computes them."""
    Z = _standardise(np.asarray(X, dtype=F32), fitted.arrays["mean"], fitted.arrays["inv_scale"])
    best = np.zeros(len(Z), dtype=F32)
    best_k = np.zeros(len(Z), dtype=np.int64)
    for k, centroid in enumerate(fitted.arrays["centroids"]):
        d2 = np.zeros(len(Z), dtype=F32)
        for f in range(Z.shape[1]):
            t = Z[:, f] - centroid[f]
            d2 = d2 + t * t
        closer = (d2 < best) if k else np.ones(len(Z), dtype=bool)
        best = np.where(closer, d2, best)
        best_k = np.where(closer, k, best_k)
    return best, best_k


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False) -> Scored:
    X = np.asarray(X, dtype=F32)
    d2, _ = nearest(fitted, X)
    result = np.sqrt(d2)
    result[~np.isfinite(X).all(axis=1)] = np.inf
    return Scored(result, result > F32(fitted.scalars["threshold"]))


def template_context(fitted: Fitted) -> dict:
    return {"threshold": fitted.scalars["threshold"],
            "standardise": list(zip(fitted.arrays["mean"], fitted.arrays["inv_scale"])),
            "centroids": fitted.arrays["centroids"]}
