"""A glitch at power-up (issue 18, item 4): one absurd reading right after a reset, then
normal data, must not blind the streaming detectors.  The window clips from its second
sample on and restarts when its warm-up keeps clipping (mcua_window.h); here the glitch
shapes in the reference, the host C with its state, and the Uno."""

import numpy as np
import pytest

from codegen.data.dataset import Dataset
from codegen.detectors import get, window
from codegen.training import train as training
from codegen.verify.engines import PythonEngine
from host_sim.hostlib import HostModel
from support import assert_parity, count_mismatches, require_env

F32 = np.float32
DETECTORS = ["streaming_zscore", "moving_average"]
MIN_COUNT = 10  # both detectors' default
FEW = 2  # flags a glitch may add after itself, beyond the clean stream's


def normal_stream(n, seed=1):
    """A sensor at 20.0 +- 1."""
    return (20 + np.random.default_rng(seed).standard_normal((n, 1))).astype(F32)


@pytest.fixture(scope="module")
def sensor():
    """Both detectors with their defaults, trained on the sensor's normal readings."""
    rows = normal_stream(5000, seed=0)
    return training.train(Dataset("sensor", ["x"], rows), DETECTORS, {}, seed=0,
                          name="sensor", verbose=False)


# (name, first row, readings): the glitch shapes.  Rows before MIN_COUNT are the warm-up,
# where nothing flags; from MIN_COUNT on a glitch flags.
SHAPES = [
    ("1e20 at power-up", 0, [1e20]),
    ("-1e20 at power-up", 0, [-1e20]),
    ("1e10 at power-up", 0, [1e10]),
    ("100 at power-up", 0, [100.0]),
    ("1e20 at sample 2", 1, [1e20]),
    ("1e20 at sample 3", 2, [1e20]),
    ("1e20 as the last warm-up sample", MIN_COUNT - 1, [1e20]),
    ("1e20 at min_count", MIN_COUNT, [1e20]),
    ("3 x 1e20 at power-up", 0, [1e20] * 3),
    ("3 x 1e20 in the warm-up", 4, [1e20, -1e20, 1e20]),
    ("3 x 1e20 across min_count", MIN_COUNT - 2, [1e20] * 3),
    ("1e20 in a full window", 500, [1e20]),
    ("-1e20 in a full window", 500, [-1e20]),
]


def glitched(clean, first, readings):
    X = clean.copy()
    X[first:first + len(readings), 0] = readings
    return X


@pytest.mark.parametrize("detector", DETECTORS)
@pytest.mark.parametrize("name, first, readings", SHAPES, ids=[s[0] for s in SHAPES])
def test_a_glitch_flags_where_judged_and_at_most_a_few_samples_after_it(
        sensor, detector, name, first, readings):
    fitted = sensor.detectors[detector]
    score = get(detector).score
    clean = normal_stream(20_000)
    X = glitched(clean, first, readings)
    scores, flags, (state, _) = score(fitted, X, with_state=True)
    _, clean_flags, _ = score(fitted, clean)
    end = first + len(readings)
    judged = np.arange(first, end) >= MIN_COUNT
    assert (flags[first:end] == judged).all()
    assert flags[end:].sum() <= clean_flags[end:].sum() + FEW
    assert flags[-5000:].sum() <= clean_flags[-5000:].sum() + FEW
    assert np.isfinite(state).all() and np.isfinite(scores).all()


def test_the_window_restarts_after_its_warm_up_clipped_three_samples_in_a_row(sensor):
    """1e20 first: readings 2-4 are clipped towards it (no flag: warm-up), then the window
    is empty and warms up again from reading 5 on."""
    fitted = sensor.detectors["streaming_zscore"]
    X = glitched(normal_stream(100), 0, [1e20])
    _, flags, (state, counters) = get("streaming_zscore").score(fitted, X, with_state=True)
    assert window.RESTART == 3
    assert counters[:4, 3].tolist() == [0, 1, 2, 0]  # streak
    assert counters[:6, 0].tolist() == [1, 2, 3, 0, 1, 2]  # count
    anchor = state[:, 0]
    assert anchor[4] == X[4, 0]
    assert not flags[:4 + MIN_COUNT].any()  # a new warm-up from row 4 on


def test_a_warm_up_outlier_is_clipped_not_learnt(sensor):
    """A 1e20 at sample 3 enters the window at the mean + the clipping bound: the window
    sums stay those of normal readings."""
    fitted = sensor.detectors["moving_average"]
    X = glitched(normal_stream(12), 2, [1e20])
    _, flags, (state, _) = get("moving_average").score(fitted, X, with_state=True)
    buffer = state[-1, 6:]
    assert buffer[2] < 30
    assert not flags.any()


def test_a_glitch_on_one_channel_of_three(iot, iot_bundle, iot_host):
    """The iot data with 1e20 on sensor_1 at power-up: the flags after it are the clean
    stream's, for both detectors, and the host C holds the same state bit for bit."""
    X = iot.values.copy()
    X[0, 0] = 1e20
    for detector in DETECTORS:
        fitted = iot_bundle.detectors[detector]
        _, flags, _ = get(detector).score(fitted, X)
        _, clean_flags, _ = get(detector).score(fitted, iot.values)
        assert flags[1:].sum() <= clean_flags[1:].sum() + FEW, detector
        assert (flags & iot.labels).sum() == (clean_flags & iot.labels).sum() == 50
        assert assert_parity(iot_bundle, iot_host, {"glitch": X}, detector) == len(X)


@pytest.fixture(scope="module")
def glitch_inputs():
    """Every shape on a 2,000-row stream, as parity inputs."""
    clean = normal_stream(2000)
    return {name: glitched(clean, first, readings) for name, first, readings in SHAPES}


@pytest.mark.parametrize("detector", DETECTORS)
def test_host_c_matches_the_reference_on_every_glitch_state_included(sensor, glitch_inputs,
                                                                     detector):
    host = HostModel(sensor)
    assert assert_parity(sensor, host, glitch_inputs, detector) == 2000 * len(SHAPES)


@pytest.mark.firmware(group="uno")
def test_the_uno_is_not_blinded_by_a_glitch_at_power_up(sensor, tmp_path):
    """1e20 then normal readings, one firmware run from reset in simavr: every score bit and
    flag is the reference's, and the last 5,000 readings flag as few as without the
    glitch."""
    require_env("uno")
    from host_sim.firmware_target import Target, TargetEngine

    engine = TargetEngine(sensor, Target("uno", tmp_path))
    assert engine.chunk >= 5001
    clean = normal_stream(engine.chunk)
    X = glitched(clean, 0, [1e20])
    got = engine.run(X, DETECTORS)
    want = PythonEngine(sensor).run(X, DETECTORS)
    for detector in DETECTORS:
        scores, flags = got[detector].scores, got[detector].flags
        assert np.array_equal(scores.view(np.uint32), want[detector].scores.view(np.uint32))
        assert np.array_equal(flags, want[detector].flags)
        assert np.isfinite(scores[1:]).all()
        _, clean_flags, _ = get(detector).score(sensor.detectors[detector], clean)
        assert flags[-5000:].sum() <= clean_flags[-5000:].sum() + FEW, detector


def test_the_glitch_streams_exercise_the_restart_rule(sensor, glitch_inputs, monkeypatch):
    """The parity above would catch a C restart rule that differs from the reference's:
    the reference with RESTART 4 mismatches the C on the glitch streams."""
    host = HostModel(sensor)
    monkeypatch.setattr(window, "RESTART", 4)
    assert count_mismatches(sensor, host, glitch_inputs, "streaming_zscore") > 0
