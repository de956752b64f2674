import numpy as np

from codegen.verify import compare as parity
from codegen.detectors import moving_average
from host_sim.hostlib import HostModel

from conftest import assert_parity, count_mismatches, perturbed


def test_parity_with_state_after_every_sample(iot_bundle, iot_host, battery):
    assert assert_parity(iot_bundle, iot_host, battery, "moving_average") >= 100_000


def test_parity_fails_when_an_inverse_scale_moves_one_ulp(iot_bundle):
    host = HostModel(perturbed(iot_bundle, "moving_average", "inv_scale", 1))
    inputs = parity.battery(iot_bundle, 20_000)
    assert count_mismatches(iot_bundle, host, inputs, "moving_average") > 0


def test_threshold_from_normal_deviations(iot):
    fitted = moving_average.fit(iot.normal, {"threshold": "percentile:99.5"}, 0, False,
                                iot.channels)
    scores, flags = moving_average.score(fitted, iot.normal)
    assert 0.002 < flags[10:].mean() < 0.01
    # the bound a flagged sample is clipped to is the threshold in the channel's own unit
    bound = fitted.arrays["bound"].astype(np.float64) * fitted.arrays["inv_scale"]
    assert np.allclose(bound, fitted.scalars["threshold"], rtol=1e-6)


def test_level_shift_is_followed_and_spikes_caught():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(3000)
    x[1500:] += 10  # level shift
    x[[700, 2200]] += 12  # spikes
    X = x.astype(np.float32)[:, None]
    fitted = moving_average.fit(X[:1000], {"threshold": "value:6"}, 0, False, ["x"])
    _, flags = moving_average.score(fitted, X)
    assert flags[700] and flags[2200]
    assert flags[1500] and not flags[1600:2190].any()


def test_non_finite_samples_leave_the_state_alone(iot_bundle, iot_host):
    X = np.random.default_rng(6).standard_normal((60, 3)).astype(np.float32)
    X[30, 2] = np.nan
    for scores, flags, (state_f, state_i) in (
            moving_average.score(iot_bundle.detectors["moving_average"], X, with_state=True),
            iot_host.run_with_state("moving_average", X)):
        assert flags[30] and np.isposinf(scores[30])
        assert np.array_equal(state_f[29], state_f[30]) and np.array_equal(state_i[29], state_i[30])
