"""streaming_zscore's behaviour: drift followed, spikes caught, sums that stay sound (the
detector contract: test_contract.py)."""

import copy

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.bundle import Bundle
from codegen.detectors import streaming_zscore, window
from codegen.detectors.base import Fitted
from codegen.errors import UserError
from codegen.training import train as training
from codegen.verify import battery as battery_mod
from codegen.verify.compare import compare
from host_sim.hostlib import HostModel
from support import NAB, only, perturbed, require

NAME = "streaming_zscore"


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
    n = int(counters[-1, 0])
    held = x[-n:, 0].astype(np.float64)  # the window's readings (none is clipped here)
    mean_rel = np.float64(total) / n
    var = np.float64(total_sq) / n - mean_rel ** 2
    assert abs(anchor + mean_rel - held.mean()) < 1e-2
    assert abs(var - held.var()) / held.var() < 1e-3
    naive_sum = np.float32(0)
    naive_sq = np.float32(0)
    for i, v in enumerate(x[:, 0]):
        naive_sum += v
        naive_sq += v * v
        if i >= 50:
            naive_sum -= x[i - 50, 0]
            naive_sq -= x[i - 50, 0] * x[i - 50, 0]
    naive_var = float(naive_sq) / 50 - (float(naive_sum) / 50) ** 2
    assert abs(naive_var - held.var()) / held.var() > 1  # the naive way is off by > 100%


def test_no_flag_before_the_minimum_count(iot):
    fitted = streaming_zscore.fit(iot.normal, {"min_count": 20}, 0, False, iot.channels)
    X = iot.normal[:40].copy()
    X[5] += 100
    _, flags, _ = streaming_zscore.score(fitted, X)
    assert not flags[:20].any()


# --- the flag API: <model>_streaming_zscore_flag_update -------------------------------

MODES = {"window": {}, "frozen": {"calibration": 200}, "slow": {"memory": 200}}


@pytest.fixture(scope="module")
def by_mode(iot):
    """mode -> a streaming_zscore bundle of the iot data in that mode, and its host build."""
    made = {}
    for mode, params in MODES.items():
        b = training.train(iot, [NAME], {NAME: {"mode": mode, **params}}, seed=0,
                           name="sensors", verbose=False)
        made[mode] = (b, HostModel(b))
    return made


@pytest.mark.parametrize("mode", MODES)
def test_flag_update_gives_the_score_apis_flag_and_state_on_every_sample(by_mode, mode):
    """On the host build, in every mode: flag_update's flags and the state after every
    sample are the score API's, bit for bit, on random, extreme and real (NAB) inputs; and
    both are the reference's (compare's "streaming_zscore flag" rows, state included)."""
    require((NAB / "data").is_dir(), f"the real data {NAB}")
    b, host = by_mode[mode]
    inputs = battery_mod.battery(b, 20_000, NAB)
    for kind, X in inputs.items():
        scored = host.run(X, [NAME])[NAME]
        flagged = host.run(X, [NAME], flag_api=True)[NAME]
        assert np.array_equal(flagged.flags, scored.flags), kind
        assert not flagged.scores.any()
        for got, want in zip(flagged.state, scored.state):
            assert np.array_equal(got.view(np.uint8), want.view(np.uint8)), kind
    result = compare(b, host, inputs)
    rows = [r for r in result.results if r.detector == f"{NAME} flag"]
    assert result.ok, result.table()
    assert sum(r.inputs for r in rows) == sum(len(X) for X in inputs.values())
    assert all(r.state_mismatches == 0 for r in rows)  # compared, not skipped


def floor_edges(fitted, n_channels: int) -> np.ndarray:
    """Rows that judge readings at the variance floor's edge: stretches of zeros longer than
    the window (variance 0, so the floor is the variance), each followed by a reading a few
    ulps either side of k * sqrt(floor) on one channel."""
    k2 = streaming_zscore.threshold_squared(fitted)
    edges = np.sqrt(k2 * fitted.arrays["var_floor"])
    rows = []
    for c, edge in enumerate(edges):
        for step in range(-3, 4):
            rows += [np.zeros(n_channels, np.float32)] * (2 * fitted.params["window"] + 10)
            rows.append(np.zeros(n_channels, np.float32))
            rows[-1][c] = edge + np.float32(step) * np.spacing(edge)
    return np.array(rows)


@pytest.mark.parametrize("constant", streaming_zscore.SPEC.mutable)
def test_flag_update_fails_when_a_constant_moves_one_ulp(by_mode, constant):
    """The flag API's comparison sees a one-ulp move of every constant it reads (the
    threshold also moves its square, threshold_sq), on the battery and the floor's edge."""
    require((NAB / "data").is_dir(), f"the real data {NAB}")
    b, _ = by_mode["window"]
    host = HostModel(perturbed(b, NAME, constant, index=None))
    inputs = battery_mod.battery(b, 20_000, NAB)
    inputs["floor"] = floor_edges(b.detectors[NAME], len(b.channels))
    result = compare(b, host, inputs)
    rows = [r for r in result.results if r.detector == f"{NAME} flag"]
    assert sum(r.flag_mismatches + r.state_mismatches for r in rows) > 0


def test_the_flag_compares_squares_against_k_squared_times_the_variance(iot_bundle):
    """A channel is over the threshold when d * d > k^2 * var in float32 (k^2 rounded to
    float32 once, the C's constant): readings a few ulps either side of the edge flag
    exactly as that rule says, and a flagged one is clipped to mean + k * sd."""
    fitted = iot_bundle.detectors[NAME]
    k = np.float32(fitted.scalars["threshold"])
    assert streaming_zscore.threshold_squared(fitted) == k * k
    n_channels = len(iot_bundle.channels)
    rng = np.random.default_rng(0)
    warm = (np.asarray(iot_bundle.channel_mean) + np.asarray(iot_bundle.channel_std)
            * rng.standard_normal((60, n_channels))).astype(np.float32)
    state = window.new_state(fitted, n_channels)
    streaming_zscore.score(fitted, warm, state=state)
    offset, mean, var = state.view()
    var = np.maximum(var, fitted.arrays["var_floor"])
    edge = offset + (mean + k * np.sqrt(var))
    over = []
    for step in range(-4, 5):
        x = edge.copy()
        x[0] = edge[0] + np.float32(step) * np.spacing(edge[0])
        d = (x - offset) - mean
        rule = bool((d * d > (k * k) * var).any())
        trial = copy.deepcopy(state)
        _, flags, _ = streaming_zscore.score(fitted, x[None, :], state=trial)
        assert flags[0] == rule, step
        over.append(rule)
    assert any(over) and not all(over)  # the edge lies within the steps


def test_a_threshold_whose_square_overflows_is_refused(iot_bundle, tmp_path):
    """threshold_sq reaches the C: a bundle whose threshold squares beyond float32 is
    refused when it is loaded."""
    b = copy.deepcopy(only(iot_bundle, NAME))  # the fixture is shared
    b.detectors[NAME].scalars["threshold"] = 2e19
    bundle_mod.save(b, tmp_path / "b")
    with pytest.raises(UserError, match="threshold"):
        bundle_mod.load(tmp_path / "b")


# outliers=absorb: a flagged sample enters the window as it is (up to ABSORB_LIMIT deviations)

def absorbing(x, **params):
    return streaming_zscore.fit(x, {"outliers": "absorb", **params}, 0, False, ["x"])


def noise(n, seed=4, offset=0.0):
    return (offset + np.random.default_rng(seed).standard_normal((n, 1))).astype(np.float32)


def held_readings(state, counters):
    """Per row of a one-channel state, the readings its window holds, in float64: the buffer
    keeps each as its deviation from the fresh anchor of its block (window.Window.push), so
    the current block's fresh_count slots before head from fresh_anchor, the others (the
    previous block's) from the anchor."""
    slots = np.arange(state.shape[1] - 6)
    head, fresh = counters[:, 1:2].astype(int), counters[:, 2:3].astype(int)
    current = (head - 1 - slots) % len(slots) < fresh
    base = np.where(current, state[:, 3:4], state[:, 0:1]).astype(np.float64)
    return state[:, 6:].astype(np.float64) + base


def window_variance(state, counters):
    """Per row, the variance the window's sums hold and the variance of its readings."""
    n = counters[:, 0].astype(np.float64)
    mean = state[:, 1] / n
    return state[:, 2] / n - mean * mean, held_readings(state, counters).var(axis=1)


def test_absorb_learns_a_spike_as_it_is_and_a_repeat_scores_lower():
    """Absorbed, a spike of A deviations in a window of W raises the variance by about
    A^2 / W, so a repeat within the window scores below sqrt(W): 4.5 for W = 20."""
    x = noise(600)
    x[400] = x[410] = 10.0  # two 10-sigma spikes 10 samples apart, inside one window of 20
    scores = {}
    for outliers in ("clip", "absorb"):
        fitted = streaming_zscore.fit(x[:300], {"outliers": outliers, "window": 20}, 0, False,
                                      ["x"])
        scores[outliers], flags, (state, counters) = streaming_zscore.score(fitted, x,
                                                                            with_state=True)
        assert flags[400]
        held = held_readings(state[400:401], counters[400:401])[0]
        assert (np.abs(held - 10.0) < 1e-5).any() == (outliers == "absorb")  # else mean + 5 sd
    assert scores["absorb"][400] == scores["clip"][400]  # judged against the same window
    assert scores["absorb"][410] < 0.6 * scores["absorb"][400]  # it widened the window
    # the clipped window flags the repeat again, the absorbing one does not
    assert scores["absorb"][410] < np.sqrt(20) < 5 < scores["clip"][410]


def test_absorb_clips_beyond_the_limit_so_the_sums_stay_sound():
    """A spike of 1e6 deviations enters at mean + 64 sd: when it leaves the window the
    variance the sums hold is the buffer's (unclipped, its square's rounding left them 100x
    off until the next swap of fresh sums) and nothing after it flags."""
    x = noise(3000)
    fitted = absorbing(x[:1000], window=100)
    spiky = x.copy()
    spiky[1230] = 1e6
    _, flags, (state, counters) = streaming_zscore.score(fitted, spiky, with_state=True)
    _, clean_flags, _ = streaming_zscore.score(fitted, x)
    assert flags[1230] and not flags[1231:].any() and not clean_flags[1231:].any()
    held, true = window_variance(state[1231:], counters[1231:])
    assert np.max(np.abs(held - true) / true) < 1e-4
    level = state[1230, 0] + state[1230, 1] / 100  # about the window's mean
    highest = held_readings(state[1230:1231], counters[1230:1231]).max()
    assert 40 < highest - level < 80  # the spike, admitted at ~64 sd


def test_absorb_survives_a_glitch_at_power_up():
    """1e20 first: the warm-up flags it out of line three times in a row and restarts, as
    when clipping (test_warm_up_glitch.py), so the sensor after it is judged as without it."""
    x = noise(3000, offset=20.0)
    fitted = absorbing(x[:1000])
    glitched = np.vstack([[[1e20]], x]).astype(np.float32)
    _, flags, _ = streaming_zscore.score(fitted, glitched)
    _, clean, _ = streaming_zscore.score(fitted, x)
    assert flags[1:].sum() <= clean.sum() + 2


def test_outliers_must_be_clip_or_absorb():
    with pytest.raises(UserError, match="outliers must be one of clip, absorb"):
        streaming_zscore.fit(noise(100), {"outliers": "drop"}, 0, False, ["x"])


def test_a_bundle_from_before_the_setting_clips():
    x = noise(600)
    x[400] = 10.0
    fitted = streaming_zscore.fit(x[:300], {}, 0, False, ["x"])
    old = Fitted({k: v for k, v in fitted.params.items() if k != "outliers"}, fitted.scalars,
                 fitted.arrays)
    for a, b in zip(streaming_zscore.score(fitted, x, with_state=True).state,
                    streaming_zscore.score(old, x, with_state=True).state):
        assert np.array_equal(a, b)
    assert streaming_zscore.template_context(old)["clip"] == 1


def test_absorb_stays_sound_over_ten_million_samples_in_c():
    """1e7 samples at 1e4 +- 1 with a 30-sigma spike every 1,000, absorbed: the host C
    (bit for bit the reference: test_contract.py) flags every spike and next to nothing else, and
    after the last row the window's sums hold its buffer's mean and variance."""
    fitted = absorbing(noise(5000, offset=1e4), window=100)
    host = HostModel(Bundle("sensor", ["x"], [0.0], [1.0], {"streaming_zscore": fitted}, {}))
    chunk, chunks = 1_000_000, 10
    for i in range(chunks):
        x = noise(chunk, seed=100 + i, offset=1e4)
        x[500::1000] += 30
        flags = host.score("streaming_zscore", x, resume=i > 0).flags
        assert flags[500::1000].all(), i
        assert flags.sum() - chunk // 1000 <= 20, i  # noise beyond 5 sd of 100 samples: ~5
    tail = noise(300, seed=99, offset=1e4)
    state, counters = host.run_with_state("streaming_zscore", tail, resume=True).state
    held, true = window_variance(state[-1:], counters[-1:])
    assert abs(held[0] - true[0]) / true[0] < 1e-3
    held_mean = held_readings(state[-1:], counters[-1:]).mean()
    assert abs(state[-1, 0] + state[-1, 1] / counters[-1, 0] - held_mean) < 1e-2
