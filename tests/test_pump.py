"""The simulated pump (codegen/data/pump.py), `--builtin pump` and the benchmark protocol
(codegen/evaluate/protocol.py, `mcu-anomaly evaluate --builtin pump`)."""

import json
from types import SimpleNamespace

import numpy as np
import pytest

from codegen.cli import main
from codegen.data import dataset as data
from codegen.data import pump
from codegen.detectors import DETECTORS
from codegen.evaluate import protocol


@pytest.fixture(scope="module")
def runs():
    return pump.benchmark()


def test_same_seed_same_runs_other_seed_other_runs(runs):
    again = pump.benchmark()
    for a, b in zip(runs, again):
        assert a.values.tobytes() == b.values.tobytes() and a.faults == b.faults
    other = pump.benchmark(seed=1, runs=1)[0]
    assert not np.array_equal(other.values, runs[0].values)
    assert pump.simulate(5).values.tobytes() == pump.simulate(5).values.tobytes()


def test_shapes_labels_and_the_normal_head(runs):
    assert len(runs) >= 6 and len({r.seed for r in runs}) == len(runs)
    for run in runs:
        assert run.values.shape == (pump.ROWS, len(pump.CHANNELS)) >= (0, 6)
        assert run.values.dtype == np.float32 and np.isfinite(run.values).all()
        assert run.labels.dtype == bool
        assert not run.labels[:run.train_rows].any()
        assert np.array_equal(run.labels, run.event_ids() > 0)
        ends = [-1] + [f.end for f in run.faults]
        for fault, previous_end in zip(run.faults, ends):
            low, high = pump.DURATION[fault.kind]
            assert low <= fault.end - fault.start + 1 < high
            assert fault.start - previous_end > pump.GAP  # apart, after the normal head
        assert run.faults[0].start >= run.train_rows


def test_every_fault_type_each_run_its_own_mix(runs):
    mixes = [frozenset(f.kind for f in r.faults) for r in runs]
    assert set().union(*mixes) == set(pump.FAULTS)
    assert len(set(mixes)) == len(runs)
    for fault in (f for r in runs for f in r.faults):
        assert (fault.channel is not None) == (fault.kind in ("stuck_sensor", "sensor_drift"))


def test_readings_are_adc_steps(runs):
    steps = runs[0].values.astype(np.float64) / pump.STEP
    assert np.abs(steps - np.round(steps)).max() < 1e-3


def test_channels_follow_each_other_in_normal_rows(runs):
    run = runs[0]
    normal = run.values[~run.labels].astype(np.float64)
    c = {name: normal[:, i] for i, name in enumerate(pump.CHANNELS)}

    def corr(a, b):
        return np.corrcoef(c[a], c[b])[0, 1]

    assert corr("vib_de", "vib_nde") > 0.95  # both follow the speed
    assert corr("current", "flow") > 0.8  # current tracks the load
    assert corr("motor_temp", "current") > 0.7  # a lag of the copper losses
    # A voltage sag is normal: the power stays, so current rises as the voltage falls.
    power = c["current"] * c["voltage"]
    assert abs(corr("current", "voltage")) < corr("current", "flow")
    sag = c["voltage"] < 380
    assert sag.sum() > 50
    same_load = np.abs(c["flow"] - np.median(c["flow"][sag])) < 2
    assert (c["current"][sag & same_load].mean() > c["current"][~sag & same_load].mean()
            and abs(power[sag & same_load].mean() / power[~sag & same_load].mean() - 1) < 0.03)


def _jitter(rows: np.ndarray) -> np.ndarray:
    """Per column, the median change from one row to the next."""
    return np.median(np.abs(np.diff(rows, axis=0)), axis=0)


def test_the_faults_signatures(runs):
    seen = set()
    for run in runs:
        for fault in run.faults:
            span = run.values[fault.start:fault.end + 1].astype(np.float64)
            before = run.values[fault.start - 100:fault.start].astype(np.float64)
            if fault.kind == "stuck_sensor":  # frozen, while the machine moves
                c = pump.CHANNELS.index(fault.channel)
                assert np.ptp(span[:, c]) == 0 and np.ptp(span[:, 0]) > 0.1
            elif fault.kind == "bearing_wear":  # one end only, growing
                ratio = span[:, 0] / span[:, 1]
                assert ratio[-20:].mean() > ratio[:20].mean() + 0.1
            elif fault.kind == "cavitation":  # flow and pressure fluctuate
                assert (_jitter(span[:, 4:6]) > 2 * _jitter(before[:, 4:6])).all()
            else:
                continue
            seen.add(fault.kind)
    assert seen == {"stuck_sensor", "bearing_wear", "cavitation"}


def test_builtin_pump_is_run_0_and_the_benchmark_every_run(runs):
    ds = data.builtin("pump")
    assert ds.channels == list(pump.CHANNELS) and ds.labels is not None
    assert np.array_equal(ds.values, runs[0].values)
    assert len(data.BENCHMARKS["pump"]()) == pump.RUNS


def test_protocol_params_cut_epochs_and_name_the_one_channel():
    module = SimpleNamespace(NAME="net", DEFAULTS={"epochs": 50, "channel": 0})
    params, notes = protocol.protocol_params(module, {}, ["a", "b"])
    assert params == {"epochs": protocol.EPOCHS} and len(notes) == 2 and "a" in notes[1]
    params, notes = protocol.protocol_params(module, {"epochs": 80, "channel": 1}, ["a", "b"])
    assert params == {"epochs": 80, "channel": 1} and len(notes) == 1 and "b" in notes[0]


REDUCED = ["evaluate", "--builtin", "pump", "--runs", "2", "--rows", "1800"]


def test_the_cli_protocol_on_a_reduced_configuration(tmp_path, capsys):
    out = tmp_path / "r.json"
    argv = REDUCED + ["--detectors", "zscore,kmeans", "--set", "kmeans.k=5000",
                      "--json", str(out)]
    assert main(argv) == 0
    text = capsys.readouterr().out
    assert "2 runs, each trained on its first 600 rows" in text
    assert "kmeans             not applicable: kmeans.k = 5000 is larger than the 600" in text
    assert "per fault type" in text
    document = json.loads(out.read_text())
    assert document["runs"] == 2 and document["train_rows"] == 600
    z = document["detectors"]["zscore"]
    m = z["metrics"]
    assert m["tp"] + m["fn"] == sum(int(r.labels[600:].sum())
                                   for r in pump.benchmark(0, 2, 1800))
    assert 0 <= m["event_recall"] <= 1 and len(z["runs"]) == 2
    assert set(z["by_fault"]) <= set(pump.FAULTS)
    assert document["detectors"]["kmeans"]["not_applicable"]
    # the same seed, the same table and file
    again = tmp_path / "again.json"
    assert main(argv[:-1] + [str(again)]) == 0
    assert capsys.readouterr().out.replace(str(again), str(out)) == text
    assert again.read_bytes() == out.read_bytes()


def test_every_registered_detector_by_default(monkeypatch, capsys):
    asked = []

    def fake(runs, channels, detectors, params, seed, progress=None):
        asked.extend(detectors)
        return [protocol.Outcome(name, reason="skipped") for name in detectors]

    monkeypatch.setattr(protocol, "evaluate", fake)
    assert main(REDUCED) == 0
    assert asked == list(DETECTORS)
    assert capsys.readouterr().out.count("not applicable: skipped") == len(DETECTORS)


@pytest.mark.parametrize("argv", [
    ["evaluate", "--builtin", "pump", "model", "data.csv"],
    ["evaluate", "--builtin", "pump", "--report", "r.html"],
    ["evaluate", "model", "data.csv", "--runs", "2"],
    ["evaluate", "model", "data.csv", "--seed", "0"],
    ["evaluate", "model"],
    ["evaluate", "--builtin", "pump", "--detectors", "nope"],
])
def test_cli_refusals(argv, capsys):
    assert main(argv) == 2
    assert capsys.readouterr().err.startswith("error: ")


def test_too_few_rows_are_refused_by_argparse(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["evaluate", "--builtin", "pump", "--rows", "100"])
    assert exit_.value.code == 2 and "from 1500" in capsys.readouterr().err
