import numpy as np
import pytest

from codegen.data import dataset as data
from codegen.verify import compare as parity
from codegen.detectors import kmeans
from codegen.errors import UserError
from host_sim.hostlib import HostModel

from conftest import assert_parity, count_mismatches, perturbed


def test_parity_on_random_extreme_and_real_inputs(iot_bundle, iot_host, battery):
    assert assert_parity(iot_bundle, iot_host, battery, "kmeans") >= 100_000


def test_parity_fails_when_a_centroid_moves_one_ulp(iot_bundle):
    host = HostModel(perturbed(iot_bundle, "kmeans", "centroids", 4))
    inputs = parity.battery(iot_bundle, 20_000)
    assert count_mismatches(iot_bundle, host, inputs, "kmeans") > 0


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
    _, flags = kmeans.score(fitted, ds.values)
    assert flags[-3:].all()


def test_threshold_is_the_99th_percentile_of_training_distances(iot):
    fitted = kmeans.fit(iot.normal, {}, 0, False, iot.channels)
    scores, _ = kmeans.score(fitted, iot.normal)
    assert fitted.scalars["threshold"] == float(np.float32(np.percentile(scores, 99)))


def test_k_larger_than_the_rows_is_refused():
    X = np.arange(10, dtype=np.float32).reshape(5, 2)
    with pytest.raises(UserError, match="larger than the 5 normal rows"):
        kmeans.fit(X, {"k": 6}, 0, False, ["a", "b"])
