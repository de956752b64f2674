"""moving_average's behaviour (the detector contract: test_contract.py)."""

import numpy as np

from codegen.detectors import moving_average


def test_threshold_from_normal_deviations(iot):
    fitted = moving_average.fit(iot.normal, {"threshold": "percentile:99.5"}, 0, False,
                                iot.channels)
    scores, flags, _ = moving_average.score(fitted, iot.normal)
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
    _, flags, _ = moving_average.score(fitted, X)
    assert flags[700] and flags[2200]
    assert flags[1500] and not flags[1600:2190].any()
