"""streaming_zscore's behaviour: drift followed, spikes caught, sums that stay sound (the
detector contract: test_contract.py)."""

import numpy as np

from codegen.detectors import streaming_zscore


def lab_literal(x, window=50, threshold=2.5, min_count=10):
    """The lab's Arduino detector as written: update only with samples not flagged."""
    buf, count, idx, s, sq = np.zeros(window), 0, 0, 0.0, 0.0
    flags = np.zeros(len(x), dtype=bool)
    for i, v in enumerate(x):
        mean = s / max(count, 1)
        var = sq / count - mean * mean if count else 0.0
        z = abs(v - mean) / np.sqrt(max(var, 1e-4))
        flags[i] = count >= min_count and z > threshold
        if not flags[i]:
            if count == window:
                s -= buf[idx]
                sq -= buf[idx] ** 2
            else:
                count += 1
            s, sq, buf[idx], idx = s + v, sq + v * v, v, (idx + 1) % window
    return flags


def longest_run(flags):
    edges = np.diff(np.r_[0, flags.astype(int), 0])
    runs = np.flatnonzero(edges == -1) - np.flatnonzero(edges == 1)
    return int(runs.max()) if len(runs) else 0


def drifting_stream(n=100_000, seed=1):
    """Noise on a slow, large sine plus a ramp and a level shift, with 100 +-10 sigma spikes."""
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    x = 20 * np.sin(2 * np.pi * t / 5000) + t / 2000 + 0.5 * rng.standard_normal(n)
    x[n // 2:] += 15
    spikes = rng.choice(np.arange(100, n), 100, replace=False)
    x[spikes] += rng.choice([-5.0, 5.0], 100)
    labels = np.zeros(n, dtype=bool)
    labels[spikes] = True
    return x.astype(np.float32)[:, None], labels


def test_notebook_data_f1_per_channel_or_across_channels(iot_bundle):
    evaluation = iot_bundle.detectors["streaming_zscore"].report["evaluation"]
    assert evaluation["f1"] >= 0.95, evaluation


def test_follows_drift_where_the_lab_rule_locks_out():
    x, labels = drifting_stream()
    lab = lab_literal(x[:, 0])
    assert longest_run(lab) > 1000  # the lab's rule: stuck flagging once the sine moved on
    fitted = streaming_zscore.fit(x[~labels][:20_000], {}, 0, False, ["x"])
    _, flags, _ = streaming_zscore.score(fitted, x)
    # the 30-sigma level shift is flagged for a few samples, then followed
    assert longest_run(flags) <= 10
    assert flags[labels].mean() >= 0.95  # spikes are caught
    assert (flags & ~labels).sum() <= 20  # and drift, ramp and level shift raise few alarms


def test_spikes_do_not_drag_the_statistics():
    rng = np.random.default_rng(2)
    x = rng.standard_normal((400, 1)).astype(np.float32)
    fitted = streaming_zscore.fit(x, {}, 0, False, ["x"])
    clean = x.copy()
    spiky = x.copy()
    spiky[200] = 1e6
    _, _, (state_clean, _) = streaming_zscore.score(fitted, clean, with_state=True)
    _, flags, (state_spiky, _) = streaming_zscore.score(fitted, spiky, with_state=True)
    assert flags[200]
    # after the spike the window mean moved by at most one clipped value / window
    mean_shift = abs(state_spiky[200, 1] - state_clean[200, 1]) / 50
    assert mean_shift < 0.2


def test_long_run_statistics_stay_exact_on_a_large_offset():
    """1e5 samples at 1e4 +- 1: the window variance must stay that of the buffer, where a
    plain float running sum of squares (the lab's) has long lost it."""
    rng = np.random.default_rng(3)
    x = (1e4 + rng.standard_normal((100_000, 1))).astype(np.float32)
    fitted = streaming_zscore.fit(x[:5000], {}, 0, False, ["x"])
    _, flags, (state, counters) = streaming_zscore.score(fitted, x, with_state=True)
    last = state[-1]
    anchor, total, total_sq = last[0], last[1], last[2]
    buffer = last[6:].astype(np.float64)
    n = counters[-1, 0]
    mean_rel = np.float64(total) / n
    var = np.float64(total_sq) / n - mean_rel ** 2
    assert abs(anchor + mean_rel - buffer.mean()) < 1e-2
    assert abs(var - buffer.var()) / buffer.var() < 1e-3
    naive_sum = np.float32(0)
    naive_sq = np.float32(0)
    for i, v in enumerate(x[:, 0]):
        naive_sum += v
        naive_sq += v * v
        if i >= 50:
            naive_sum -= x[i - 50, 0]
            naive_sq -= x[i - 50, 0] * x[i - 50, 0]
    naive_var = float(naive_sq) / 50 - (float(naive_sum) / 50) ** 2
    assert abs(naive_var - buffer.var()) / buffer.var() > 1  # the naive way is off by > 100%


def test_no_flag_before_the_minimum_count(iot):
    fitted = streaming_zscore.fit(iot.normal, {"min_count": 20}, 0, False, iot.channels)
    X = iot.normal[:40].copy()
    X[5] += 100
    _, flags, _ = streaming_zscore.score(fitted, X)
    assert not flags[:20].any()
