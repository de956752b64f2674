"""kmeans' behaviour (the detector contract: test_contract.py)."""

import numpy as np
import pytest

from codegen.data import dataset as data
from codegen.detectors import kmeans
from codegen.errors import UserError


def test_nearest_centroid_agrees_with_scikit_learn(iot):
    from sklearn.metrics import pairwise_distances_argmin

    fitted = kmeans.fit(iot.normal, {"k": 4}, 0, False, iot.channels)
    Z = (iot.values - fitted.arrays["mean"]) * fitted.arrays["inv_scale"]
    theirs = pairwise_distances_argmin(Z.astype(np.float64), fitted.arrays["centroids"])
    _, ours = kmeans.nearest(fitted, iot.values)
    assert (theirs == ours).mean() > 0.999


def test_day_night_modes_with_automatic_k():
    ds = data.day_night()
    fitted = kmeans.fit(ds.normal, {}, 42, False, ds.channels)
    assert fitted.params["k_chosen"] == 2
    _, flags, _ = kmeans.score(fitted, ds.values)
    assert flags[-3:].all()


def test_threshold_is_the_99th_percentile_of_training_distances(iot):
    fitted = kmeans.fit(iot.normal, {}, 0, False, iot.channels)
    scores, _, _ = kmeans.score(fitted, iot.normal)
    assert fitted.scalars["threshold"] == float(np.float32(np.percentile(scores, 99)))


def test_k_larger_than_the_rows_is_refused():
    X = np.arange(10, dtype=np.float32).reshape(5, 2)
    with pytest.raises(UserError, match="larger than the 5 normal rows"):
        kmeans.fit(X, {"k": 6}, 0, False, ["a", "b"])
