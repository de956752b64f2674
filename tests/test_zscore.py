import numpy as np

from codegen import parity
from codegen.detectors import zscore
from host_sim.hostlib import HostModel

from conftest import assert_parity, count_mismatches, perturbed


def test_parity_on_random_extreme_and_real_inputs(iot_bundle, iot_host, battery):
    assert assert_parity(iot_bundle, iot_host, battery, "zscore") >= 100_000


def test_parity_fails_when_a_mean_moves_one_ulp(iot_bundle):
    host = HostModel(perturbed(iot_bundle, "zscore", "mean"))
    inputs = parity.battery(iot_bundle, 20_000)
    assert count_mismatches(iot_bundle, host, inputs, "zscore") > 0


def test_flags_a_channel_beyond_k_sigma(iot, iot_bundle):
    fitted = iot_bundle.detectors["zscore"]
    mean = fitted.arrays["mean"].astype(np.float64)
    std = 1 / fitted.arrays["inv_std"].astype(np.float64)
    X = np.array([mean, mean + [2.9 * std[0], 0, 0], mean + [0, 0, -3.1 * std[2]]],
                 dtype=np.float32)
    scores, flags = zscore.score(fitted, X)
    assert flags.tolist() == [False, False, True]
    assert abs(scores[2] - 3.1) < 1e-5
    assert fitted.report["evaluation"]["f1"] >= 0.95


def test_non_finite_samples_score_infinity_and_are_flagged(iot_bundle, iot_host):
    X = np.array([[np.nan, 0, 0], [0, np.inf, 0], [0, 0, -np.inf]], dtype=np.float32)
    for scores, flags in (zscore.score(iot_bundle.detectors["zscore"], X),
                          iot_host.score("zscore", X)):
        assert np.isposinf(scores).all() and flags.all()


def test_percentile_threshold(iot):
    fitted = zscore.fit(iot.normal, {"threshold": "percentile:99"}, 0, False, iot.channels)
    normal_scores, flags = zscore.score(fitted, iot.normal)
    assert 0.005 < flags.mean() <= 0.011
