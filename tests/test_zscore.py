"""zscore's behaviour and its flag API (the detector contract: test_contract.py)."""

import numpy as np
import pytest

from codegen.detectors import zscore
from codegen.emit import floatkeys
from host_sim import hostlib
from host_sim.hostlib import HostModel


def boundary_inputs(fitted, n_channels):
    """Rows at the mean with one channel set to each accepted interval's ends and the
    floats just outside them."""
    lo, hi = zscore.flag_bounds(fitted)
    rows = []
    for c in range(n_channels):
        for key in (lo[c] - 1, lo[c], hi[c], hi[c] + 1):
            row = fitted.arrays["mean"].copy()
            row[c] = floatkeys.from_order_key(key)
            rows.append(row)
    return np.array(rows, dtype=np.float32)


def test_flag_alone_equals_the_reference_flag(iot_bundle, iot_host, battery):
    """<model>_zscore_flag: integer comparisons only, the reference's flag on every input
    of the battery and at both ends of every channel's accepted interval."""
    fitted = iot_bundle.detectors["zscore"]
    edges = boundary_inputs(fitted, len(iot_bundle.channels))
    assert zscore.score(fitted, edges)[1].tolist() == [True, False, False, True] * 3
    n = 0
    for X in [*battery.values(), edges]:
        assert np.array_equal(iot_host.flags("zscore", X), zscore.score(fitted, X)[1])
        n += len(X)
    assert n >= 100_000


def test_flag_alone_fails_when_a_bound_moves_one_ulp(iot_bundle, monkeypatch):
    fitted = iot_bundle.detectors["zscore"]
    edges = boundary_inputs(fitted, len(iot_bundle.channels))
    lo, hi = zscore.flag_bounds(fitted)
    monkeypatch.setattr(zscore, "flag_bounds", lambda f: (lo, hi + np.int32(1)))
    host = HostModel(iot_bundle)
    # each channel's first float beyond hi is now accepted
    assert (host.flags("zscore", edges) != zscore.score(fitted, edges)[1]).sum() == 3


def test_flag_alone_on_degenerate_thresholds(iot_bundle):
    """A negative threshold accepts nothing; a huge one every finite reading whose z stays
    finite.  NaN and +-Inf flag either way."""
    import dataclasses

    fitted = iot_bundle.detectors["zscore"]
    special = np.array([[np.nan, 0, 0], [0, np.inf, 0], [0, 0, -np.inf],
                        [3e38, 0, 0], [-3e38, 0, 0], fitted.arrays["mean"]], dtype=np.float32)
    for threshold in (-1.0, 0.0, 3.0e38):
        changed = dataclasses.replace(fitted, scalars={**fitted.scalars, "threshold": threshold})
        bundle = dataclasses.replace(iot_bundle, detectors={"zscore": changed})
        X = np.concatenate([special, boundary_inputs(changed, 3)])
        assert np.array_equal(HostModel(bundle).flags("zscore", X), zscore.score(changed, X)[1])


def test_flags_a_channel_beyond_k_sigma(iot, iot_bundle):
    fitted = iot_bundle.detectors["zscore"]
    mean = fitted.arrays["mean"].astype(np.float64)
    std = 1 / fitted.arrays["inv_std"].astype(np.float64)
    X = np.array([mean, mean + [2.9 * std[0], 0, 0], mean + [0, 0, -3.1 * std[2]]],
                 dtype=np.float32)
    scores, flags, _ = zscore.score(fitted, X)
    assert flags.tolist() == [False, False, True]
    assert abs(scores[2] - 3.1) < 1e-5
    assert fitted.report["evaluation"]["f1"] >= 0.95


def test_percentile_threshold(iot):
    fitted = zscore.fit(iot.normal, {"threshold": "percentile:99"}, 0, False, iot.channels)
    normal_scores, flags, _ = zscore.score(fitted, iot.normal)
    assert 0.005 < flags.mean() <= 0.011


def near_ties(fitted, n, seed=0):
    """Rows whose channels' z lie within a few percent of each other, at magnitudes from
    the subnormals to near overflow: where mcua_zscore_many's test that leaves a
    multiplication out is closest to being wrong."""
    rng = np.random.default_rng(seed)
    mean = fitted.arrays["mean"].astype(np.float64)
    std = 1 / fitted.arrays["inv_std"].astype(np.float64)
    z = 10.0 ** rng.uniform(-44, 38, (n, 1)) * rng.uniform(0.8, 1.05, (n, len(mean)))
    sign = rng.choice([-1.0, 1.0], (n, len(mean)))
    with np.errstate(over="ignore"):
        return (mean + sign * z * std).astype(np.float32)


@pytest.mark.parametrize("skip", [0, 1])
def test_score_at_near_ties_equals_the_reference(iot_bundle, monkeypatch, skip):
    """Bit for bit where one channel's z barely beats or misses another's, with the test
    that leaves a multiplication out (MCUA_ZSCORE_SKIP 1, as on AVR and rv32imc) and
    without it (0, as with a float unit)."""
    render = hostlib.emit.render

    def with_skip(bundle):
        files = render(bundle)
        files["mcua_zscore.c"] = f"#define MCUA_ZSCORE_SKIP {skip}\n" + files["mcua_zscore.c"]
        return files

    monkeypatch.setattr(hostlib.emit, "render", with_skip)
    fitted = iot_bundle.detectors["zscore"]
    X = near_ties(fitted, 200_000)
    want = zscore.score(fitted, X)
    got = HostModel(iot_bundle).score("zscore", X)
    assert np.array_equal(got.scores.view(np.uint32), want.scores.view(np.uint32))
    assert np.array_equal(got.flags, want.flags)


def test_one_channel_equals_the_reference(iot):
    """A model of one channel calls mcua_zscore_one: bit for bit from the subnormals to
    overflow, and +Inf (flagged) for NaN and +-Inf."""
    from codegen.data.dataset import Dataset
    from codegen.training import train as training

    one = Dataset("one", iot.channels[:1], iot.values[:, :1], np.zeros(len(iot.values), bool))
    bundle = training.train(one, ["zscore"], {}, seed=0, name="one", verbose=False)
    fitted = bundle.detectors["zscore"]
    special = np.array([[np.nan], [np.inf], [-np.inf], [3e38], [-3e38], [0.0]], np.float32)
    X = np.concatenate([near_ties(fitted, 100_000), special])
    want = zscore.score(fitted, X)
    got = HostModel(bundle).score("zscore", X)
    assert np.array_equal(got.scores.view(np.uint32), want.scores.view(np.uint32))
    assert np.array_equal(got.flags, want.flags)
    assert got.flags[-6:-3].all() and np.isinf(got.scores[-6:-3]).all()
