"""Threshold strategies: percentile, sigma, max-f1, recall:R, precision:P; chosen at training
time, stored in the bundle, carried by the generated headers, and parity still holds."""

import json

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.emit import render as emit
from codegen.training import thresholds
from codegen.training import train as training
from codegen.cli import main
from codegen.detectors import DEFAULT, get
from codegen.errors import UserError
from codegen.verify.battery import battery
from host_sim.hostlib import HostModel

from support import assert_parity, write_csv


@pytest.mark.parametrize("spec, expected", [
    ("value:3", ("value", 3.0)), ("percentile:99", ("percentile", 99.0)),
    ("sigma:3", ("sigma", 3.0)), ("max-f1", ("max-f1", None)),
    ("recall:0.95", ("recall", 0.95)), ("precision:0.9", ("precision", 0.9))])
def test_parse(spec, expected):
    assert thresholds.parse(spec) == expected


@pytest.mark.parametrize("spec", ["max-f2", "recall", "recall:95", "precision:0",
                                  "percentile:101", "value:-1", "sigma:x", "f1"])
def test_parse_refuses(spec):
    with pytest.raises(UserError, match="threshold"):
        thresholds.parse(spec)


def brute_force(scores, labels):
    """(threshold, precision, recall, f1) for flags = scores > t over every candidate t."""
    out = []
    for t in np.unique(scores):
        for cut in (t, np.nextafter(np.float32(t), np.float32(-np.inf))):
            flags = scores > cut
            tp = (flags & labels).sum()
            p = tp / flags.sum() if flags.sum() else 0.0
            r = tp / labels.sum()
            out.append((float(cut), p, r, 2 * p * r / (p + r) if p + r else 0.0))
    return out


def test_labelled_strategies_against_brute_force():
    rng = np.random.default_rng(0)
    labels = rng.random(400) < 0.1
    scores = (rng.standard_normal(400) + 2.5 * labels).astype(np.float32)
    table = brute_force(scores, labels)

    def metrics(t):
        flags = scores > t
        tp = (flags & labels).sum()
        return tp / max(flags.sum(), 1), tp / labels.sum()

    p, r = metrics(thresholds.choose("max-f1", None, scores, labels))
    assert 2 * p * r / (p + r) == pytest.approx(max(row[3] for row in table))
    t = thresholds.choose("recall:0.9", None, scores, labels)
    assert metrics(t)[1] >= 0.9
    assert t == pytest.approx(max(row[0] for row in table if row[2] >= 0.9))
    t = thresholds.choose("precision:0.8", None, scores, labels)
    assert metrics(t)[0] >= 0.8
    assert metrics(t)[1] == pytest.approx(max(row[2] for row in table if row[1] >= 0.8))
    with pytest.raises(UserError, match="no threshold reaches precision"):
        thresholds.choose("precision:1", None, np.zeros(10, np.float32),
                          np.r_[True, np.zeros(9, bool)])


def test_percentile_and_sigma_on_normal_scores():
    normal = np.arange(101, dtype=np.float32)
    assert thresholds.choose("percentile:90", normal) == np.float32(90)
    assert thresholds.choose("sigma:2", normal) == np.float32(50 + 2 * normal.astype(np.float64).std())
    # the labelled ones are provisional (percentile:99) until training has labels
    assert thresholds.choose("max-f1", normal) == np.float32(99)


@pytest.mark.parametrize("detector", ["streaming_zscore", "moving_average"])
def test_with_threshold_rederives_what_the_threshold_feeds(iot, detector):
    module = get(detector)
    assert module.SPEC.threshold_feeds_state
    fitted = module.fit(iot.normal, {}, 0, False, iot.channels)
    moved = thresholds.apply(module, fitted, np.float32(7.5))
    assert moved.scalars["threshold"] == 7.5 and fitted.scalars["threshold"] != 7.5
    if detector == "moving_average":
        inv = moved.arrays["inv_scale"].astype(np.float64)
        assert np.array_equal(moved.arrays["bound"], (7.5 / inv).astype(np.float32))
    # the same as fitting with that fixed value
    direct = module.fit(iot.normal, {"threshold": "value:7.5"}, 0, False, iot.channels)
    for key in direct.arrays:
        assert np.array_equal(direct.arrays[key], moved.arrays[key])


@pytest.fixture(scope="module")
def strategy_bundles(iot):
    return {spec: training.train(iot, DEFAULT, {}, 0, "sensors", verbose=False, threshold=spec)
            for spec in ("max-f1", "recall:0.95", "precision:0.95", "sigma:4", "percentile:99.5")}


def test_each_strategy_meets_its_target_on_the_validation_data(strategy_bundles):
    for spec, trained in strategy_bundles.items():
        for name, fitted in trained.detectors.items():
            ev = fitted.report["evaluation"]
            assert fitted.params["threshold"] == spec
            if spec == "recall:0.95":
                assert ev["recall"] >= 0.95, (name, ev)
            if spec == "precision:0.95":
                assert ev["precision"] >= 0.95, (name, ev)
            if spec == "max-f1":
                assert ev["f1"] >= 0.98, (name, ev)  # spikes of 6-7 sigma: all separable
            if thresholds.needs_labels(spec):
                choice = fitted.report["threshold_choice"]
                assert choice["strategy"] == spec and choice["threshold"] == \
                    fitted.scalars["threshold"]


def test_headers_carry_the_chosen_threshold_and_parity_holds(strategy_bundles):
    trained = strategy_bundles["max-f1"]
    files = emit.render(trained)
    for name, fitted in trained.detectors.items():
        literal = emit.c_float(fitted.scalars["threshold"])
        assert f"_THRESHOLD {literal}" in files[f"sensors_{name}.h"], name
    host = HostModel(trained)
    inputs = battery(trained, 20_000)
    for name in trained.detectors:
        assert_parity(trained, host, inputs, name)


def test_bundle_round_trip_keeps_the_choice(tmp_path, strategy_bundles):
    trained = strategy_bundles["recall:0.95"]
    loaded = bundle_mod.load(bundle_mod.save(trained, tmp_path / "m"))
    for name, fitted in trained.detectors.items():
        assert loaded.detectors[name].scalars == fitted.scalars
        assert loaded.detectors[name].report["threshold_choice"]["strategy"] == "recall:0.95"


def test_cli_threshold_and_validation(tmp_path, labelled_csv, capsys):  # noqa: F811
    out = tmp_path / "m"
    assert main(["train", str(labelled_csv), "--threshold", "max-f1", "--detectors",
                 "zscore,kmeans", "--set", "kmeans.threshold=percentile:99", "--out", str(out),
                 "--quiet"]) == 0
    doc = json.loads((out / "bundle.json").read_text())
    assert doc["detectors"]["zscore"]["params"]["threshold"] == "max-f1"
    assert doc["detectors"]["kmeans"]["params"]["threshold"] == "percentile:99"  # --set wins
    assert main(["train", str(labelled_csv), "--threshold", "precision:0.9", "--validation",
                 str(labelled_csv), "--detectors", "zscore", "--out", str(out), "--quiet"]) == 0


def test_labelled_strategy_without_labels_is_refused(tmp_path, iot, capsys):
    rows = [[float(v) for v in row] for row in iot.values]
    path = write_csv(tmp_path / "unlabelled.csv", iot.channels, rows)
    assert main(["train", str(path), "--threshold", "max-f1", "--out", str(tmp_path / "m")]) == 2
    assert "is chosen on labelled data" in capsys.readouterr().err
    assert not (tmp_path / "m").exists()


def test_validation_with_other_columns_is_refused(tmp_path, iot, labelled_csv, capsys):  # noqa
    rows = [[float(v) for v in row[:2]] + [int(l)] for row, l in zip(iot.values, iot.labels)]
    other = write_csv(tmp_path / "other.csv", ["sensor_1", "sensor_2", "is_anomaly"], rows)
    assert main(["train", str(labelled_csv), "--threshold", "max-f1", "--validation", str(other),
                 "--out", str(tmp_path / "m")]) == 2
    assert "sensor_3" in capsys.readouterr().err



def _noise_csv(tmp_path, labels, quiet_anomalies=False):
    """Two channels of Gaussian noise with these labels: no detector can tell the rows
    labelled anomalous from the others (quiet_anomalies: those rows read 0, the mean)."""
    rng = np.random.default_rng(5)
    values = rng.standard_normal((len(labels), 2)).astype(np.float32)
    if quiet_anomalies:
        values[labels] = 0
    rows = [[float(a), float(b), int(l)] for (a, b), l in zip(values, labels)]
    return write_csv(tmp_path / "noise.csv", ["a", "b", "is_anomaly"], rows)


def test_a_threshold_that_flags_most_normal_rows_is_refused_with_the_figures(tmp_path,
                                                                            capsys):
    """max-f1 on half the rows labelled at random: flagging everything has the best F1
    (2/3), a threshold that would alarm through normal operation (the NAB case: 20,180 of
    20,427 normal rows flagged); refused, unless --max-alarm-share allows it."""
    labels = np.random.default_rng(6).random(2000) < 0.5
    path = _noise_csv(tmp_path, labels)
    out = tmp_path / "m"
    args = ["train", str(path), "--detectors", "zscore", "--threshold", "max-f1", "--quiet",
            "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "zscore: threshold max-f1 = " in err
    assert f"normal rows of noise" in err and "more than --max-alarm-share 0.2" in err
    assert f"of the {int((~labels).sum()):,} normal rows" in err
    assert not out.exists()
    assert main(args + ["--max-alarm-share", "1"]) == 0


def test_a_fixed_threshold_that_flags_the_training_rows_is_refused(tmp_path, capsys):
    """Without labels the share is of the training rows: value:0 flags every row off the
    mean."""
    rng = np.random.default_rng(8)
    path = write_csv(tmp_path / "plain.csv", ["a", "b"],
                     [[float(a), float(b)] for a, b in rng.standard_normal((500, 2))])
    assert main(["train", str(path), "--detectors", "zscore", "--set",
                 "zscore.threshold=value:0", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "zscore: threshold value:0 = 0 flags 500 of the 500 normal rows of plain (100.0%)" in err
    assert not (tmp_path / "m").exists()


def test_a_threshold_that_catches_no_labelled_anomaly_is_warned_about(tmp_path, capsys):
    labels = np.zeros(2000, dtype=bool)
    labels[1500:1520] = True
    path = _noise_csv(tmp_path, labels, quiet_anomalies=True)
    assert main(["train", str(path), "--detectors", "zscore", "--quiet",
                 "--out", str(tmp_path / "m")]) == 0
    err = capsys.readouterr().err
    assert "warning: zscore: threshold value:3 = 3 flags none of the 20" in err
    assert "labelled anomalous rows of noise" in err
