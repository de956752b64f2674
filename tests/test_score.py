"""`mcu-anomaly score`: one row out per row in, the generated C and the Python reference
giving the same file byte for byte, chunked reading giving what one pass over the stream
gives, and bad input refused with nothing written."""

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.cli import main
from codegen.data import dataset as data
from codegen.detectors.autoencoder import fit as fit_autoencoder
from codegen.evaluate import scores
from codegen.training import train as training
from codegen.verify.engines import PythonEngine
from host_sim.hostlib import HostModel

from support import perturbed, write_csv, write_labelled

DETECTORS = ["zscore", "streaming_zscore", "moving_average", "kmeans", "isolation_forest",
             "mahalanobis"]
CHUNK = 97  # not a divisor of anything here: chunks end mid-window
KILLS = 12
ROOT = Path(__file__).resolve().parents[1]


def _with_faults(dataset):
    """The iot rows with a NaN, an Inf and (written as 1e39) a value beyond float32: the device
    flags those and goes on, so score must too."""
    values = dataset.values.copy()
    values[100, 0], values[2000, 1], values[3000, 2] = np.nan, np.inf, -np.inf
    return data.Dataset(dataset.name, dataset.channels, values, dataset.labels, dataset.time)


@pytest.fixture(scope="module")
def scored_bundle(iot):
    return training.train(iot, DETECTORS, {"isolation_forest": {"features": "rolling"}},
                          seed=0, name="sensors", verbose=False)


@pytest.fixture(scope="module")
def faulty_csv(tmp_path_factory, iot):
    path = write_labelled(tmp_path_factory.mktemp("score") / "iot.csv", _with_faults(iot))
    path.write_text(path.read_text().replace(",inf,", ",1e39,", 1))  # beyond float32
    return path


def _read(path):
    with open(path, newline="") as handle:
        return list(csv.reader(handle))


def _one_pass(bundle, X):
    """The reference over the whole stream at once, as text the way score writes it."""
    out = PythonEngine(bundle).run(X, list(bundle.detectors), state=False)
    return {d: ([str(v) for v in r.scores], [str(int(f)) for f in r.flags])
            for d, r in out.items()}


def test_the_c_and_the_reference_write_the_same_file_chunked_or_not(
        scored_bundle, faulty_csv, tmp_path):
    names = list(scored_bundle.detectors)
    written = {}
    for engine, chunk in [("c", CHUNK), ("python", CHUNK), ("c", scores.CHUNK_ROWS)]:
        out = tmp_path / f"{engine}-{chunk}.csv"
        model = HostModel(scored_bundle) if engine == "c" else PythonEngine(scored_bundle)
        rows = scores.score_csv(scored_bundle, faulty_csv, out, model, names, chunk=chunk)
        assert rows == 5000
        written[engine, chunk] = out.read_bytes()
    assert len(set(written.values())) == 1
    table = _read(out)
    assert table[0] == ["time", "is_anomaly"] + [f"{d}_{w}" for d in names
                                                  for w in ("score", "flag")]
    X = next(data.open_csv(faulty_csv).chunks()).values
    expected = _one_pass(scored_bundle, X)
    body = table[1:]
    for i, d in enumerate(names):
        assert [r[2 + 2 * i] for r in body] == expected[d][0], d
        assert [r[3 + 2 * i] for r in body] == expected[d][1], d
    assert body[100][2 + 2 * names.index("zscore") + 1] == "1"  # the NaN row is flagged
    assert [r[1] for r in body] == [str(int(v)) for v in _with_faults(data.iot_sensors()).labels]


def test_a_one_ulp_change_of_a_constant_changes_the_file(scored_bundle, faulty_csv, tmp_path):
    """The comparison above can fail: the C of a bundle whose first kmeans centroid moved one
    ulp writes another file than the reference of the original."""
    names = ["kmeans"]
    moved = perturbed(scored_bundle, "kmeans", "centroids", index=0)
    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    scores.score_csv(scored_bundle, faulty_csv, a, PythonEngine(scored_bundle), names)
    scores.score_csv(moved, faulty_csv, b, HostModel(moved), names)
    assert a.read_bytes() != b.read_bytes()


@pytest.mark.tensorflow
def test_a_windowed_detector_is_scored_across_chunks_as_in_one_pass(iot, tmp_path):
    fitted = fit_autoencoder(iot.normal[:, :1], {"epochs": 2}, seed=7,
                             verbose=False)
    ae = bundle_mod.Bundle("sensors", ["sensor_1"], [0.0], [1.0], {"autoencoder": fitted}, {})
    one = data.Dataset("iot", ["sensor_1"], iot.values[:1500, :1], None, iot.time[:1500])
    path = write_csv(tmp_path / "one.csv", ["time", "sensor_1"],
                     [[t, repr(float(v[0]))] for t, v in zip(one.time, one.values)])
    outs = []
    for engine, chunk in [(HostModel(ae), 37), (PythonEngine(ae), 10_000)]:
        outs.append(tmp_path / f"{len(outs)}.csv")
        scores.score_csv(ae, path, outs[-1], engine, ["autoencoder"], chunk=chunk)
    assert outs[0].read_bytes() == outs[1].read_bytes()
    expected = _one_pass(ae, one.values)["autoencoder"]
    body = _read(outs[0])[1:]
    assert [r[1] for r in body] == expected[0] and [r[2] for r in body] == expected[1]
    assert sum(r[2] == "1" for r in body) > 0


def test_the_command_finds_renamed_columns_and_writes_one_row_per_row(tmp_path, capsys):
    rows = [[f"2024-01-01 00:00:{i % 60:02d}", f"{10 + np.sin(i / 9):.4f}",
             f"{40 + np.cos(i / 7):.4f}"] for i in range(300)]
    rows[200][1] = "25.0"
    path = tmp_path / "log.csv"
    path.write_text("timestamp;Flow rate (l/min);Temperature (C)\n"
                    + "".join(";".join(r) + "\n" for r in rows))
    model, out = tmp_path / "m", tmp_path / "scores.csv"
    assert main(["train", str(path), "--detectors", "zscore,streaming_zscore", "--out",
                 str(model), "--quiet"]) == 0
    assert main(["score", str(model), str(path), "--out", str(out)]) == 0
    assert "300 rows scored by streaming_zscore, zscore" in capsys.readouterr().out
    table = _read(out)
    assert table[0] == ["timestamp", "streaming_zscore_score", "streaming_zscore_flag",
                        "zscore_score", "zscore_flag"]
    assert len(table) == 301 and table[201][0] == rows[200][0] and table[201][4] == "1"


@pytest.mark.parametrize("edit, words", [
    (lambda lines: [lines[0].replace("sensor_3", "pressure")] + lines[1:],
     "lacks 'sensor_3'"),
    (lambda lines: lines[:50] + ["x,1,2\n"] + lines[50:], "line 51"),
    (lambda lines: lines[:50] + [lines[50].replace(",", ",abc", 1)] + lines[51:],
     "are not numeric"),
])
def test_bad_input_is_refused_and_the_old_output_stays(iot_bundle, labelled_csv, tmp_path,
                                                       capsys, edit, words):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    out = tmp_path / "scores.csv"
    assert main(["score", str(model), str(labelled_csv), "--out", str(out),
                 "--engine", "python"]) == 0
    before = out.read_bytes()
    bad = tmp_path / "bad.csv"
    bad.write_text("".join(edit(labelled_csv.read_text().splitlines(keepends=True))))
    assert main(["score", str(model), str(bad), "--out", str(out), "--engine", "python"]) == 2
    err = capsys.readouterr().err
    assert words in err and "Traceback" not in err
    assert out.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.csv", "model", "scores.csv"]


def test_detectors_the_bundle_lacks_are_refused(iot_bundle, labelled_csv, tmp_path, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    assert main(["score", str(model), str(labelled_csv), "--out", str(tmp_path / "s.csv"),
                 "--detectors", "zscore,gmm"]) == 2
    assert "names gmm; the bundle holds" in capsys.readouterr().err
    assert not (tmp_path / "s.csv").exists()


def _score_command(model, csv_path, out):
    return [sys.executable, "-m", "codegen.cli", "score", str(model), str(csv_path), "--out",
            str(out), "--engine", "python"]


def _leftovers(directory):
    return sorted(p.name for p in directory.iterdir() if p.name.startswith("."))


@pytest.mark.slow
def test_killed_and_concurrent_scores_leave_the_old_or_the_new_file_whole(
        iot_bundle, labelled_csv, tmp_path):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    out = tmp_path / "out" / "scores.csv"
    complete = tmp_path / "complete.csv"
    subprocess.run(_score_command(model, labelled_csv, complete), check=True, cwd=ROOT,
                   capture_output=True)
    new = complete.read_bytes()
    start = time.monotonic()
    subprocess.run(_score_command(model, labelled_csv, out), check=True, cwd=ROOT,
                   capture_output=True)
    duration = time.monotonic() - start
    rng = np.random.default_rng(0)
    outcomes = []
    for delay in rng.uniform(0.1 * duration, 1.3 * duration, KILLS):  # some after the end
        out.write_bytes(b"old\n")
        run = subprocess.Popen(_score_command(model, labelled_csv, out), cwd=ROOT,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        time.sleep(delay)
        run.send_signal(signal.SIGKILL)
        run.wait()
        outcomes.append(out.read_bytes() == new)
        assert out.read_bytes() in (b"old\n", new)
    assert 0 < sum(outcomes) < KILLS, outcomes  # some kills landed before the rename
    both = [subprocess.Popen(_score_command(model, labelled_csv, out), cwd=ROOT,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
            for _ in range(2)]
    assert [run.wait() for run in both] == [0, 0]
    assert out.read_bytes() == new
    assert _leftovers(out.parent) == []  # the killed runs' files went with the next run
