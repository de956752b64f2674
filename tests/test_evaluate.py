"""evaluate: metrics per detector on labelled data, the notebook's IsolationForest baseline,
event-level recall, and the bad inputs it must refuse with a clear message."""

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.evaluate import evaluation as evaluate
from codegen.evaluate import metrics
from codegen.cli import main
from codegen.errors import UserError
from support import write_csv, write_labelled


@pytest.fixture(scope="module")
def result(iot_bundle, iot):
    return evaluate.evaluate(iot_bundle, iot)


def test_every_detector_and_the_baseline_are_measured(result, iot_bundle):
    names = [r.name for r in result.results]
    assert names[:-1] == list(iot_bundle.detectors) and names[-1] == evaluate.BASELINE
    for r in result.results:
        m = r.metrics
        (tn, fp), (fn, tp) = r.confusion
        assert tn + fp + fn + tp == 5000 and tp + fn == 50
        assert m["false_alarm_rate"] == pytest.approx(fp / (fp + tn))
        assert m["missed_alarm_rate"] == pytest.approx(fn / (fn + tp))
        assert 0 <= m["pr_auc"] <= 1 and 0 <= m["roc_auc"] <= 1
        assert m["events"] == 49  # two of the 50 spikes are neighbours: one span


def test_the_notebooks_isolation_forest_is_reproduced(result):
    """seed-baselines.md: P 0.62 R 0.62 F1 0.62 for the notebook's Isolation Forest."""
    baseline = result.results[-1]
    assert baseline.host_only
    assert round(baseline.metrics["f1"], 2) == 0.62
    assert round(baseline.metrics["precision"], 2) == 0.62


def test_metrics_match_the_training_evaluation(result, iot_bundle):
    for r in result.results[:-1]:
        expected = iot_bundle.detectors[r.name].report["evaluation"]
        assert r.metrics["f1"] == pytest.approx(expected["f1"], abs=1e-6)
        assert r.confusion[1][1] == expected["tp"] and r.confusion[0][1] == expected["fp"]


def test_event_recall_and_delay():
    labels = np.zeros(30, dtype=bool)
    labels[5:10] = True
    labels[20:22] = True
    labels[25] = True
    flags = np.zeros(30, dtype=bool)
    flags[7] = True  # span 1 caught 2 rows late
    flags[0] = True  # a false alarm
    flags[25] = True  # span 3 caught at once
    scores = flags.astype(float) + 0.1 * labels
    r = evaluate.measure("x", scores, flags, 0.5, labels)
    assert [e["caught"] for e in r.events] == [True, False, True]
    assert [e["delay"] for e in r.events] == [2, None, 0]
    assert r.metrics["event_recall"] == pytest.approx(2 / 3)
    assert r.metrics["mean_delay"] == 1.0 and r.metrics["max_delay"] == 2
    assert r.metrics["median_delay"] == 1.0
    assert r.confusion == [[21, 1], [6, 2]]


def test_an_undetected_event_and_one_at_the_end():
    labels = np.array([0, 1, 1, 0, 0, 1, 1, 1], dtype=bool)
    flags = np.array([1, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    spans = metrics.events(labels, flags)
    assert [(e["start"], e["end"], e["caught"], e["delay"]) for e in spans] == [
        (1, 2, False, None), (5, 7, True, 2)]
    m = metrics.event_metrics(spans)
    assert m["events"] == 2 and m["events_caught"] == 1 and m["event_recall"] == 0.5
    assert m["median_delay"] == 2.0 and m["mean_delay"] == 2.0 and m["max_delay"] == 2


def test_adjacent_events_stay_apart_with_ids():
    """Two faults back to back are one span of labels, two events with ids."""
    labels = np.array([0, 1, 1, 1, 1, 0], dtype=bool)
    ids = np.array([0, 1, 1, 2, 2, 0])
    flags = np.array([0, 0, 0, 0, 1, 0], dtype=bool)
    assert len(metrics.events(labels, flags)) == 1
    spans = metrics.events(labels, flags, ids)
    assert [(e["start"], e["end"], e["caught"], e["delay"], e["flagged"]) for e in spans] == [
        (1, 2, False, None, 0), (3, 4, True, 1, 1)]
    by_kind = metrics.recall_by_kind(spans, ["valve", "drift"])
    assert by_kind == {"drift": {"events": 1, "event_recall": 1.0, "recall": 0.5},
                       "valve": {"events": 1, "event_recall": 0.0, "recall": 0.0}}


def test_the_median_delay_and_hold_over_the_caught_events_only():
    flags = np.zeros(200, dtype=bool)
    flags[[1, 2, 3, 43, 153, 160, 199]] = True
    labels = np.zeros(200, dtype=bool)
    labels[0:50] = labels[100:170] = labels[180:190] = True
    spans = metrics.events(labels, flags)
    assert [(e["delay"], e["hold"]) for e in spans] == [(1, 43), (53, 8), (None, None)]
    m = metrics.event_metrics(spans)
    assert m["median_delay"] == 27.0 and m["mean_delay"] == 27.0
    assert m["event_recall"] == pytest.approx(2 / 3)
    # hold: rows from the first flag to the last, of the rows from the first flag on
    assert m["median_hold"] == pytest.approx((43 / 49 + 8 / 17) / 2)
    assert metrics.event_metrics(spans[-1:])["median_hold"] is None
    assert metrics.event_metrics([])["event_recall"] is None  # undefined, not 0
    assert metrics.event_metrics(spans[-1:])["median_delay"] is None


def test_alarm_rates():
    point = metrics.point_metrics(np.array([1, 0, 1, 0, 0], bool), np.array([0, 0, 1, 1, 1], bool))
    assert metrics.alarm_rates(point) == {"false_alarm_rate": 0.5,
                                          "missed_alarm_rate": pytest.approx(2 / 3)}
    none = metrics.point_metrics(np.zeros(3, bool), np.zeros(3, bool))
    assert metrics.alarm_rates(none) == {"false_alarm_rate": 0.0, "missed_alarm_rate": None}
    assert (none["precision"], none["recall"], none["f1"]) == (None, None, None)


def test_undefined_metrics_print_as_a_dash(tmp_path, capsys):
    """A labelled training CSV without an anomalous row has no recall: train and evaluate
    print '–' (issue 17, item 5), not 0.000."""
    path = write_csv(tmp_path / "normal.csv", ["a", "b", "anomaly"],
                     [[1 + 0.01 * i, 2 - 0.02 * (i % 7), 0] for i in range(50)])
    model = tmp_path / "model"
    assert main(["train", str(path), "--detectors", "zscore", "--out", str(model)]) == 0
    assert "P – R – F1 – (TP 0 FP 0 FN 0)" in capsys.readouterr().out
    assert main(["evaluate", str(model), str(path), "--no-baseline"]) == 0
    row = next(l for l in capsys.readouterr().out.splitlines() if l.startswith("zscore"))
    assert row.split()[1:] == ["–", "–", "–", "0.0000", "–", "–", "–", "0/0", "–", "-",
                               "50/0/0/0"]


def test_infinite_scores_rank_first():
    labels = np.array([0, 0, 1, 1, 0], dtype=bool)
    scores = np.array([0.1, 0.2, np.inf, 5.0, 0.3])
    r = evaluate.measure("x", scores, scores > 1, 1.0, labels)
    assert r.metrics["roc_auc"] == 1.0 and r.metrics["pr_auc"] == 1.0


def test_cli_prints_the_table(tmp_path, iot_bundle, labelled_csv, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    assert main(["evaluate", str(model), str(labelled_csv)]) == 0
    out = capsys.readouterr().out
    for name in list(iot_bundle.detectors) + ["sklearn_iforest", "PR-AUC", "ROC-AUC", "ev.rec"]:
        assert name in out


def test_columns_in_another_order_are_matched_by_name(tmp_path, iot_bundle, iot):
    shuffled = write_labelled(tmp_path / "x.csv", iot, columns=iot.channels[::-1])
    dataset = evaluate.load_labelled(shuffled, iot_bundle)
    assert np.array_equal(dataset.values, iot.values)


# ---------------------------------------------------------------- bad input

def run_bad(tmp_path, model, csv_path, capsys):
    out = tmp_path / "report.html"
    code = main(["evaluate", str(model), str(csv_path), "--report", str(out)])
    err = capsys.readouterr().err
    assert code != 0
    assert not out.exists()
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".report")]
    return err


def test_missing_labels_are_refused(tmp_path, iot_bundle, iot, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    rows = [[t] + [float(v) for v in row] for t, row in zip(iot.time, iot.values)]
    path = write_csv(tmp_path / "unlabelled.csv", ["time"] + iot.channels, rows)
    err = run_bad(tmp_path, model, path, capsys)
    assert "no label column" in err
    with pytest.raises(UserError):
        evaluate.evaluate(iot_bundle, evaluate.Dataset("x", iot.channels, iot.values))


def test_labels_other_than_0_1_are_refused(tmp_path, iot_bundle, iot, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    rows = [[t] + [float(v) for v in row] + [2 if i == 7 else int(l)]
            for i, (t, row, l) in enumerate(zip(iot.time, iot.values, iot.labels))]
    path = write_csv(tmp_path / "bad_labels.csv", ["time"] + iot.channels + ["is_anomaly"], rows)
    err = run_bad(tmp_path, model, path, capsys)
    assert "labels must be 0 (normal) or 1 (anomaly)" in err and "line 9" in err


def test_columns_that_differ_from_the_bundle_are_refused(tmp_path, iot_bundle, iot, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    rows = [[t] + [float(v) for v in row] + [int(l)]
            for t, row, l in zip(iot.time, iot.values, iot.labels)]
    renamed = write_csv(tmp_path / "renamed.csv",
                        ["time", "sensor_1", "sensor_2", "pressure", "is_anomaly"], rows)
    err = run_bad(tmp_path, model, renamed, capsys)
    assert "lacks 'sensor_3'" in err and "pressure" in err and "trained on" in err
    fewer = write_csv(tmp_path / "fewer.csv", ["time", "sensor_1", "sensor_2", "is_anomaly"],
                      [[r[0], r[1], r[2], r[4]] for r in rows])
    assert "lacks 'sensor_3'" in run_bad(tmp_path, model, fewer, capsys)


# ---------------------------------------------------------------- host-side cost

def test_host_table(tmp_path, iot_bundle):
    from codegen.bench.host import host_table
    from host_sim.hostlib import HostModel

    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    rows, text = host_table(model, samples=5_000, engine=HostModel)
    by_name = {r["detector"]: r for r in rows}
    for name in iot_bundle.detectors:
        r = by_name[name]
        assert r["bit_exact"] is True  # the C and the Python reference on the same inputs
        assert r["python_samples_per_s"] > 0 and r["c_samples_per_s"] > r["python_samples_per_s"]
        assert r["train_s"] is not None and r["train_s"] >= 0  # built-in iot data: refit
        assert r["header_bytes"] > 0 and r["runtime_bytes"] > 0 and r["bundle_bytes"] > 0
        assert name in text
    assert by_name["(bundle.json)"]["bundle_bytes"] > 0


def test_a_semicolon_file_is_evaluated_like_a_comma_one(tmp_path, iot_bundle, labelled_csv,
                                                        capsys):
    """evaluate read the header split on ',' by hand, so a ';' file had "no label column"
    (issue 17, item 4); it now reads the file as train does."""
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    semi = tmp_path / "semi.csv"
    semi.write_text(labelled_csv.read_text().replace(",", ";"))
    tables = []
    for path in (labelled_csv, semi):
        assert main(["evaluate", str(model), str(path), "--no-baseline"]) == 0
        tables.append(capsys.readouterr().out.split("detector", 1)[1])
    assert tables[0] == tables[1]


def test_columns_name_the_bundles_channels_in_a_csv_that_calls_them_otherwise(
        tmp_path, iot_bundle, iot, capsys):
    """evaluate and score --columns: the CSV's names for the channels, in the bundle's order;
    the CSV's other columns are left out, as they are without --columns."""
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    rows = [[t, float(v[2]), "x", float(v[0]), float(v[1]), int(l)]
            for t, v, l in zip(iot.time, iot.values, iot.labels)]
    other = write_csv(tmp_path / "other.csv", ["time", "c", "note", "a", "b", "is_anomaly"], rows)
    dataset = evaluate.load_labelled(other, iot_bundle, columns=["a", "b", "c"])
    assert np.array_equal(dataset.values, iot.values)
    assert dataset.channels == iot_bundle.channels
    assert main(["evaluate", str(model), str(other), "--columns", "a,b,c", "--no-baseline"]) == 0
    scored = [tmp_path / "by_columns.csv", tmp_path / "by_name.csv"]
    assert main(["score", str(model), str(other), "--columns", "a,b,c", "--out",
                 str(scored[0]), "--engine", "python"]) == 0
    named = write_labelled(tmp_path / "named.csv", iot)
    assert main(["score", str(model), str(named), "--out", str(scored[1]),
                 "--engine", "python"]) == 0
    assert scored[0].read_bytes() == scored[1].read_bytes()
    capsys.readouterr()
    assert main(["evaluate", str(model), str(other), "--columns", "a,b"]) == 2
    assert "--columns names 2 column(s) and the bundle has 3" in capsys.readouterr().err
    assert main(["evaluate", str(model), str(other)]) == 2
    assert "with --columns" in capsys.readouterr().err
