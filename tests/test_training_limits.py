"""Training refuses bundles generate could not turn into working C: constants beyond
float32, degenerate models (issue 18, item 7).  Each case is a tiny CSV through the CLI:
exit 2, an `error:` naming the channel, the figure and the fix, and no bundle written."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from codegen import cli
from codegen.data import dataset as data
from codegen.errors import UserError
from codegen.training import train as training

from support import write_csv

ROWS = 300


def readings(scale: float, offset: float = 0.0, seed: int = 0) -> np.ndarray:
    return offset + scale * np.random.default_rng(seed).standard_normal((ROWS, 2))


def train(tmp_path, capsys, values: np.ndarray, detector: str):
    """(exit code, stderr, whether a bundle was written) of `train` on values."""
    csv = write_csv(tmp_path / "data.csv", ["x", "y"], [[repr(float(v)) for v in row]
                                                        for row in values])
    out = tmp_path / "model"
    code = cli.main(["train", str(csv), "--detectors", detector, "--out", str(out), "--quiet"])
    return code, capsys.readouterr().err, out.exists()


REFUSED = [
    # readings near 1e-44: 1/std overflows float32 (was: inv_std = inf in the header)
    ("zscore", readings(1e-44), ["channel 'x'", "standard deviation 1.01e-44",
                                 "below float32's range", "rescale the channel"]),
    ("kmeans", readings(1e-44), ["channel 'x'", "standard deviation 1.01e-44",
                                 "below float32's range"]),  # was: a NaN traceback
    ("moving_average", readings(1e-39), ["channel 'x'", "deviation from the moving average",
                                         "below float32's range"]),
    # the window's variance underflows float32 long before an inverse overflows
    ("streaming_zscore", readings(1e-25), ["channel 'x'", "standard deviation 1e-25",
                                           "variance (1.01e-50)", "smallest normal"]),
    # readings near 1e30 (was: var_floor = inf); the window holds +-1e15 around its mean
    ("streaming_zscore", readings(1e30), ["channel 'x' spans 6.66e+30", "1e+15",
                                          "MCUA_WINDOW_MAX_DEVIATION"]),
    ("moving_average", readings(1e18), ["channel 'x' spans 6.66e+18", "1e+15"]),
    # a range under 1e-7: scikit-learn grows no split (was: zero-size arrays)
    ("isolation_forest", readings(1e-8, 1.0), ["channel 'x' spans only 5.96e-08", "1e-07",
                                               "never split"]),
    ("isolation_forest", readings(1e-44), ["channel 'x' spans only"]),
]


@pytest.mark.parametrize("detector, values, expected", REFUSED,
                         ids=[f"{d}-{i}" for i, (d, _, _) in enumerate(REFUSED)])
def test_refused_with_the_figure_and_the_fix(tmp_path, capsys, detector, values, expected):
    code, err, written = train(tmp_path, capsys, values, detector)
    assert code == 2 and not written, err
    assert err.splitlines()[-1].startswith(f"error: {detector}: ") and "Traceback" not in err
    for text in expected + ["--columns"]:
        assert text in err, err


@pytest.mark.parametrize("detector", ["zscore", "kmeans"])
def test_a_deviation_beyond_float32_is_refused(tmp_path, capsys, detector):
    """Readings of both signs near float32's limits: x - mean overflows on the device."""
    values = readings(1.0)
    values[:, 0] = np.where(np.arange(ROWS) % 4 == 0, 3e38, -3e38)
    code, err, written = train(tmp_path, capsys, values, detector)
    assert code == 2 and not written
    assert "channel 'x'" in err and "their difference overflows float32" in err


@pytest.mark.parametrize("detector", ["zscore", "streaming_zscore", "moving_average", "kmeans",
                                      "isolation_forest"])
def test_the_ends_of_the_range_train(tmp_path, capsys, detector):
    """Within the stated limits (README, Data): deviations of 1e-18 (the forest: spans of
    1e-7) and spans of 1e14 far from zero."""
    small = 1e-7 if detector == "isolation_forest" else 1e-18
    for values in (readings(small, 10 * small), readings(1e13, 1e20)):
        code, err, written = train(tmp_path, capsys, values, detector)
        assert code == 0 and written, err


@pytest.fixture(scope="module")
def small():
    values = readings(1.0).astype(np.float32)
    dataset = data.Dataset("small", ["x", "y"], values)
    return training.train(dataset, ["zscore", "streaming_zscore", "moving_average", "kmeans",
                                    "isolation_forest"], {}, 0, "small", verbose=False)


def test_every_detectors_constants_are_checked(small):
    """The check after fit: a float constant that is not a finite float32, or an empty
    array, is refused for any detector, naming it (and the channel of a per-channel one)."""
    for name, fitted in small.detectors.items():
        training.check_constants(name, fitted, ["x", "y"])
        key = next(k for k, a in fitted.arrays.items() if a.dtype.kind == "f")
        broken = copy.deepcopy(fitted)
        broken.arrays[key].reshape(-1)[-1] = np.inf
        with pytest.raises(UserError, match=f"{name}: its constant {key}.* is inf"):
            training.check_constants(name, broken, ["x", "y"])
        empty = copy.deepcopy(fitted)
        empty.arrays[key] = empty.arrays[key][:0]
        with pytest.raises(UserError, match=f"{name}: training left its array '{key}' empty"):
            training.check_constants(name, empty, ["x", "y"])
        scalar = copy.deepcopy(fitted)
        scalar.scalars["threshold"] = float("inf")
        with pytest.raises(UserError, match="threshold = inf is not a finite float32"):
            training.check_constants(name, scalar, ["x", "y"])
    inv_std = copy.deepcopy(small.detectors["zscore"])
    inv_std.arrays["inv_std"][1] = np.inf
    with pytest.raises(UserError, match=r"inv_std \(channel 'y'\) is inf"):
        training.check_constants("zscore", inv_std, ["x", "y"])
    # finite, but what bundle.load refuses: train never writes it
    inv_std.arrays["inv_std"][1] = -1.0
    with pytest.raises(UserError, match=r"zscore: training gave a model that bundle.load "
                                        r"would refuse \(zscore.arrays.inv_std holds .*-1.0.*, "
                                        r"below 0\)"):
        training.check_constants("zscore", inv_std, ["x", "y"])


def test_an_autoencoder_on_subnormal_readings_is_refused_before_training(tmp_path, capsys):
    """Readings near 1e-44 have a float32 std of a few subnormal steps, which bundle.load
    refuses; the refusal comes before Keras is ever imported."""
    values = 1e-44 * np.random.default_rng(0).standard_normal((600, 1))
    csv = write_csv(tmp_path / "data.csv", ["x"], [[repr(float(v))] for v in values[:, 0]])
    out = tmp_path / "model"
    assert cli.main(["train", str(csv), "--detectors", "autoencoder", "--out", str(out),
                     "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "error: channel 0: standard deviation 9.81e-45 is below float32's normal range" in err
    assert not out.exists()
