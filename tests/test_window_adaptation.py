"""The adaptation modes of the clipping window detectors (mcua_window.h): what each one
does with a sustained fault and with drift, the freeze API on the host build against the
reference, and the running statistics over a long stream against exact ones.  Bit parity
with the state after every sample is in test_contract.py (the *-frozen and *-slow cases)."""

import numpy as np
import pytest

from codegen.bundle import Bundle
from codegen.detectors import moving_average, streaming_zscore, window
from codegen.errors import UserError
from codegen.verify.engines import PythonEngine
from host_sim.hostlib import HostModel

F32 = np.float32
DETECTORS = {"streaming_zscore": streaming_zscore, "moving_average": moving_average}


def fitted(module, seed=0, **params):
    normal = np.random.default_rng(seed).normal(0, 1, (5000, 1)).astype(F32)
    return module.fit(normal, params, 0, False, ["x"])


def step_stream(shift, before=3000, during=20_000, seed=1):
    """Unit noise, then the same noise shifted by `shift` for `during` rows."""
    rng = np.random.default_rng(seed)
    x = rng.standard_normal(before + during)
    x[before:] += shift
    return x.astype(F32)[:, None]


def bundle(name, fit):
    return Bundle("adapt", ["x"], [0.0], [1.0], {name: fit}, {})


@pytest.mark.parametrize("name", DETECTORS)
def test_frozen_holds_a_sustained_fault_that_the_sliding_window_absorbs(name):
    x = step_stream(10.0)
    flags = {mode: DETECTORS[name].score(fitted(DETECTORS[name], mode=mode,
                                                calibration=2000), x).flags
             for mode in ("window", "frozen")}
    assert flags["window"][3000:].mean() < 0.05  # followed within a window
    assert flags["frozen"][3000:].mean() > 0.99  # flagged until the end
    assert flags["frozen"][:3000].mean() < 0.02  # moving_average: percentile 99


def test_slow_keeps_flagging_for_about_its_memory_then_follows():
    """A step of D = 4k standard deviations flags about (D/k - 1) x memory rows, then is
    followed; the sliding window follows it within a few rows."""
    x = step_stream(20.0)
    for memory in (1000, 2000):
        flags = streaming_zscore.score(fitted(streaming_zscore, mode="slow", memory=memory),
                                       x).flags[3000:]
        assert 0.8 * 3 * memory <= flags.sum() <= 1.5 * 3 * memory
        assert not flags[-10_000:].any()  # the new level is normal now


def test_slow_follows_drift_that_locks_a_frozen_baseline_out():
    """A ramp of 30 standard deviations over 200,000 rows: the frozen baseline flags it
    once it has moved off, the slow one follows it."""
    rng = np.random.default_rng(2)
    n = 200_000
    x = (np.linspace(0, 30, n) + rng.standard_normal(n)).astype(F32)[:, None]
    flags = {mode: streaming_zscore.score(fitted(streaming_zscore, mode=mode), x).flags
             for mode in ("frozen", "slow")}
    assert flags["frozen"][-50_000:].mean() > 0.99
    assert flags["slow"].mean() < 0.001


@pytest.mark.parametrize("name", DETECTORS)
def test_freeze_ends_the_calibration_on_the_host_as_in_the_reference(name):
    """The host build's <model>_<detector>_freeze against Window.freeze: refused before
    one window is learnt, then the baseline of the windows so far is kept; every score bit,
    flag and the state agree throughout."""
    fit = fitted(DETECTORS[name], mode="frozen", calibration=5000)
    b = bundle(name, fit)
    x = step_stream(10.0, before=2000, during=3000)
    host, reference = HostModel(b), PythonEngine(b)
    results = []
    for part, freeze in ((x[:30], True), (x[30:420], True), (x[420:], False)):
        out = [engine.run(part, [name], resume=bool(results))[name]
               for engine in (host, reference)]
        results.append(out)
        if freeze:
            frozen = (host.freeze(name), reference.windows[name].freeze())
            assert frozen[0] == frozen[1] == (len(results) == 2)  # 30 rows: no window yet
    for h, r in results:
        assert np.array_equal(h.scores.view(np.uint32), r.scores.view(np.uint32))
        assert np.array_equal(h.flags, r.flags)
        assert all(np.array_equal(a.view(np.uint32) if a.dtype == F32 else a,
                                  c.view(np.uint32) if c.dtype == F32 else c)
                   for a, c in zip(h.state, r.state))
    final = results[-1][1].state[1][-1]
    assert final[-3:-1].tolist() == [8, 1]  # 420 rows: 8 windows of 50, then frozen
    assert results[-1][1].flags[2000 - 420:].mean() > 0.99  # the shift after the freeze


def test_running_statistics_stay_exact_over_ten_million_samples():
    """10^7 samples of a drifting signal far from zero through the host build (slow mode):
    at every window swap the window's sums and the baseline, both float32, against exact
    float64 values of the same admitted readings (the baseline: its recurrence in float64
    on the exact means and variances of each window)."""
    W, memory, n, chunk = 50, 5000, 10_000_000, 200_000
    fit = fitted(streaming_zscore, mode="slow", memory=memory, window=W)
    host = HostModel(bundle("streaming_zscore", fit))
    rng = np.random.default_rng(3)
    blocks, limit = 0, window.adaptation(fit).blocks
    exact_mean = exact_var = 0.0
    worst = {"window mean": 0.0, "window var": 0.0, "baseline mean": 0.0, "baseline var": 0.0}
    for start in range(0, n, chunk):
        t = np.arange(start, start + chunk)
        x = (1000 + 5 * np.sin(2 * np.pi * t / 3e6) + rng.standard_normal(chunk)).astype(F32)
        result = host.run(x[:, None], ["streaming_zscore"], resume=start > 0)
        floats, counters = result["streaming_zscore"].state
        swaps = np.flatnonzero(counters[:, 2] == 0)  # fresh_count 0: a window swapped in
        for row in swaps:
            anchor, s, sq = floats[row, :3].astype(np.float64)
            # the buffer holds each reading as its deviation from its block's fresh
            # anchor, which the swap has just made the anchor
            deviations = floats[row, 6:6 + W]
            values = anchor + deviations.astype(np.float64)
            mean, var = values.mean(), values.var()
            worst["window mean"] = max(worst["window mean"], abs(anchor + s / W - mean))
            worst["window var"] = max(worst["window var"], abs(sq / W - (s / W) ** 2 - var))
            prior, blocks = blocks, min(blocks + 1, limit)
            w = 1 / blocks
            if blocks == 1:
                exact_mean, exact_var = mean, var
            else:
                # a window with a clipped reading leaves the variance (mcua_window.h);
                # the last reading's clip shows in the buffer, the others' in the counter
                slot = (int(counters[row, 1]) - 1) % W
                clipped = blocks == prior == limit and (
                    counters[row - 1, 6] or deviations[slot] != x[row] - floats[row, 0])
                delta = mean - exact_mean
                exact_var += 0.0 if clipped else w * ((var - exact_var) + (1 - w) * delta ** 2)
                exact_mean += w * delta
            base_mean, base_var = floats[row, 6 + W:8 + W].astype(np.float64)
            worst["baseline mean"] = max(worst["baseline mean"], abs(base_mean - exact_mean))
            worst["baseline var"] = max(worst["baseline var"],
                                        abs(base_var - exact_var) / exact_var)
    print({k: f"{v:.3g}" for k, v in worst.items()})
    # Absolute errors in units of the signal (sd 1, level ~1000), the baseline's variance
    # relative.  The baseline's mean rounds by up to half an ulp per fold, an error its
    # forgetting (1 / limit per window) bounds by limit half-ulps; the measured worst is
    # 5e-4, about 8 ulps.  That error enters the variance through the spread term
    # (m_b - mean)^2: measured 3.6e-5 of it, relative.
    half_ulp = float(np.spacing(F32(1005))) / 2
    assert worst["window mean"] < 1e-3 and worst["window var"] < 1e-5
    assert worst["baseline mean"] <= limit * half_ulp and worst["baseline var"] < 1e-4


def test_a_calibration_longer_than_the_counters_hold_is_refused():
    with pytest.raises(UserError, match="calibration"):
        fitted(streaming_zscore, mode="frozen", calibration=50 * 65535 + 1)
    with pytest.raises(UserError, match="mode"):
        fitted(moving_average, mode="fast")
