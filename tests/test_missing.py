"""Missing readings (docs/data.md, codegen/data/missing.py): a pump log with dropouts, written
as a logger writes them (empty cells), through train, score and evaluate under each
--missing policy; and the Uno firmware in simavr, fed the log as it is, answers what score's
host replay of the device says, row for row."""

import csv

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.cli import main
from codegen.data import pump
from codegen.evaluate import evaluation as evaluate
from host_sim.firmware_target import Target, TargetEngine
from support import require_env

F32 = np.float32
ROWS, TRAIN_ROWS = 3000, 1500
DETECTORS = "streaming_zscore,moving_average,mahalanobis"
# Windows of 8 rows: the three detectors' state on 8 channels then fits the Uno's 2 KB beside
# the firmware app's buffers and stack.
TRAIN = ["--detectors", DETECTORS, "--window", "8", "--set", "streaming_zscore.min_count=4",
         "--set", "moving_average.min_count=4", "--name", "pump", "--quiet"]


def _gaps(rng, rows: int, channels: int) -> np.ndarray:
    """(rows, channels) bool: single dropped cells, a few rows where every sensor dropped
    out together (one of them 6 rows long) and, early in the log, a cluster the Uno's first
    run sees."""
    gaps = np.zeros((rows, channels), dtype=bool)
    gaps[rng.integers(0, rows, 40), rng.integers(0, channels, 40)] = True
    gaps[rng.integers(0, 300, 8), rng.integers(0, channels, 8)] = True
    gaps[200:206] = True
    gaps[rng.integers(0, rows, 3)] = True
    return gaps


def _write(path, values: np.ndarray, labels: np.ndarray, gaps: np.ndarray,
           times: np.ndarray, nan_at: int | None = None) -> None:
    """The log: a time column, the pump's channels (each cell the shortest text of its
    float32, empty where it dropped out, `nan` in row nan_at) and the label."""
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["time", *pump.CHANNELS, "is_anomaly"])
        for i, (row, gap) in enumerate(zip(values, gaps)):
            cells = ["" if g else str(F32(v)) for v, g in zip(row, gap)]
            if i == nan_at:
                cells[2] = "nan"
            writer.writerow([times[i], *cells, int(labels[i])])


@pytest.fixture(scope="module")
def log(tmp_path_factory):
    """(path of the log, its readings with NaN at the gaps, labels, path of the same log
    with the incomplete rows deleted)."""
    run = pump.simulate(seed=3, rows=ROWS, train_rows=TRAIN_ROWS)
    gaps = _gaps(np.random.default_rng(7), ROWS, len(pump.CHANNELS))
    gaps[1234, 2] = True  # the `nan` cell
    folder = tmp_path_factory.mktemp("missing")
    path, complete = folder / "pump_log.csv", folder / "pump_complete.csv"
    times = np.arange(ROWS)
    _write(path, run.values, run.labels, gaps, times, nan_at=1234)
    values = np.where(gaps, F32(np.nan), run.values).astype(F32)
    keep = ~gaps.any(axis=1)
    _write(complete, run.values[keep], run.labels[keep], gaps[keep], times[keep])
    return path, values, run.labels, complete


@pytest.fixture(scope="module")
def trained(log, tmp_path_factory):
    out = tmp_path_factory.mktemp("bundle") / "pump"
    assert main(["train", str(log[0]), *TRAIN, "--target", "uno", "--out", str(out)]) == 0
    return out


def _score(bundle, csv_path, out, *extra):
    assert main(["score", str(bundle), str(csv_path), "--out", str(out), "--engine", "python",
                 *extra]) == 0
    with out.open() as handle:
        return list(csv.DictReader(handle))


def _bits(cells):
    return np.array([F32(c) for c in cells], dtype=F32).view(np.uint32)


def test_training_leaves_the_incomplete_rows_out_and_says_which(log, trained, tmp_path, capsys):
    path, values, _, complete = log
    incomplete = int((~np.isfinite(values).all(axis=1)).sum())
    capsys.readouterr()
    same = tmp_path / "complete"
    assert main(["train", str(complete), *TRAIN, "--out", str(same)]) == 0
    ours, theirs = bundle_mod.load(trained), bundle_mod.load(same)
    for name, fitted in ours.detectors.items():  # as if the rows had never been logged
        other = theirs.detectors[name]
        assert fitted.scalars == other.scalars
        assert all(np.array_equal(a, other.arrays[k]) for k, a in fitted.arrays.items())
    assert main(["train", str(path), "--detectors", "zscore", "--out", str(tmp_path / "w"),
                 "--quiet"]) == 0
    err = capsys.readouterr().err
    assert f"warning: {incomplete} of the {ROWS} rows of pump_log hold a missing reading" in err
    assert f"and {incomplete - 20} more" in err
    assert main(["train", str(path), "--detectors", "zscore", "--out", str(tmp_path / "r"),
                 "--missing", "refuse"]) == 2
    err = capsys.readouterr().err
    assert f"{incomplete} row(s) hold a missing reading" in err and "--missing skip" in err
    assert not (tmp_path / "r").exists()


def test_score_flags_every_gap_as_the_device_and_skip_leaves_it_unscored(log, trained,
                                                                         tmp_path, capsys):
    path, values, _, complete = log
    incomplete = ~np.isfinite(values).all(axis=1)
    flagged = _score(trained, path, tmp_path / "flag.csv")
    skipped = _score(trained, path, tmp_path / "skip.csv", "--missing", "skip")
    replay = _score(trained, complete, tmp_path / "complete.csv")
    assert len(flagged) == len(skipped) == ROWS
    assert [r["time"] for r in skipped] == [str(i) for i in range(ROWS)]
    for name in DETECTORS.split(","):
        gap = [r for r, g in zip(flagged, incomplete) if g]
        assert {(r[f"{name}_score"], r[f"{name}_flag"]) for r in gap} == {("inf", "1")}
        assert all(r[f"{name}_score"] == r[f"{name}_flag"] == ""
                   for r, g in zip(skipped, incomplete) if g)
        # the gap never enters a detector's state or window: the rows around it score as
        # if it had never been logged, under either policy
        for rows in (flagged, skipped):
            kept = [r for r, g in zip(rows, incomplete) if not g]
            assert np.array_equal(_bits(r[f"{name}_score"] for r in kept),
                                  _bits(r[f"{name}_score"] for r in replay)), name
            assert [r[f"{name}_flag"] for r in kept] == [r[f"{name}_flag"] for r in replay]
    assert main(["score", str(trained), str(path), "--out", str(tmp_path / "r.csv"),
                 "--missing", "refuse"]) == 2
    assert f"row(s) of data rows 1 to {ROWS:,} hold a missing reading" in capsys.readouterr().err
    assert not (tmp_path / "r.csv").exists()


def test_evaluate_takes_the_log_under_each_policy(log, trained, capsys):
    path, values = log[0], log[1]
    incomplete = int((~np.isfinite(values).all(axis=1)).sum())
    rows = {}
    for policy in ("flag", "skip"):
        assert main(["evaluate", str(trained), str(path), "--missing", policy]) == 0
        out = capsys.readouterr().out
        assert all(name in out for name in DETECTORS.split(","))
        rows[policy] = evaluate.load_labelled(path, bundle_mod.load(trained),
                                              policy=policy).values
    assert len(rows["flag"]) == ROWS and len(rows["skip"]) == ROWS - incomplete
    assert main(["evaluate", str(trained), str(path), "--missing", "refuse"]) == 2
    assert "hold a missing reading" in capsys.readouterr().err


@pytest.mark.firmware
def test_the_uno_fed_the_log_answers_what_score_replays(log, trained, tmp_path):
    """The firmware in simavr gets the log's readings as they are, NaN at every gap, from a
    fresh state, in runs as long as one build holds; score's replay of the device (the
    Python reference) wrote the same score bits and flags for each of those rows."""
    require_env("uno")
    loaded = bundle_mod.load(trained)
    engine = TargetEngine(loaded, Target("uno", tmp_path / "uno"))
    values = log[1]
    first = values[:engine.chunk]
    assert not np.isfinite(first).all(axis=1).all()  # the run holds gaps
    device = engine.run(first, list(loaded.detectors))
    replay = _score(trained, log[0], tmp_path / "replay.csv")[:engine.chunk]
    for name, got in device.items():
        assert np.array_equal(_bits(r[f"{name}_score"] for r in replay),
                              np.asarray(got.scores, dtype=F32).view(np.uint32)), name
        assert [int(r[f"{name}_flag"]) for r in replay] == np.asarray(got.flags, int).tolist()
