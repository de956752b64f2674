"""Fleets (docs/fleet.md): one bundle per device from a long table (CSV, Parquet) or a folder,
on joblib and on a Dask LocalCluster with the same bundles whatever the engine and worker
count; resuming by content hash; a bad device failing alone; a killed run leaving no
partial bundle; device ids mapped to C identifiers, hostile ones refused or sanitised;
the per-device headers and the report."""

from __future__ import annotations

import hashlib
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from codegen import bundle
from codegen.cli import main
from codegen.errors import UserError
from codegen.fleet import ids

from support import ROOT, require_tool, write_csv

pa = pytest.importorskip("pyarrow")
pq = pytest.importorskip("pyarrow.parquet")

DEVICES = ["pump-a", "pump-b", "fan 3", "Motor/7"]
ROWS = 240
OPTIONS = ["--detectors", "zscore,kmeans", "--set", "kmeans.k=2", "--min-rows", "50"]


def readings(device: int, rows: int = ROWS) -> np.ndarray:
    """A device's two channels: a level of its own plus noise, an anomaly every 60 rows."""
    rng = np.random.default_rng(device)
    values = rng.normal(device * 3.0, 1.0 + device * 0.2, (rows, 2))
    values[30::60] += 12.0
    return values.astype(np.float32)


def labels(rows: int = ROWS) -> np.ndarray:
    out = np.zeros(rows, dtype=int)
    out[30::60] = 1
    return out


def long_rows(devices=DEVICES, special=None):
    """The fleet as a long table's rows (time, device_id, a, b, is_anomaly), the devices
    interleaved time step by time step; special: {device id: its readings} to replace."""
    data = {d: (special or {}).get(d, readings(i)) for i, d in enumerate(devices)}
    rows = []
    for t in range(max(len(v) for v in data.values())):
        for d, values in data.items():
            if t < len(values):
                rows.append([t, d, *(repr(float(x)) for x in values[t]), int(labels()[t % ROWS])])
    return rows


HEADER = ["time", "device_id", "a", "b", "is_anomaly"]


def write_parquet(path: Path, rows: list[list]) -> Path:
    columns = list(zip(*rows))
    table = pa.table({"time": pa.array(columns[0], pa.int64()),
                      "device_id": pa.array(columns[1], pa.string()),
                      "a": pa.array([float(x) for x in columns[2]], pa.float32()),
                      "b": pa.array([float(x) for x in columns[3]], pa.float32()),
                      "is_anomaly": pa.array(columns[4], pa.int8())})
    pq.write_table(table, path, row_group_size=100)
    return path


def tree(folder: Path) -> dict[str, str]:
    """Relative path -> sha256 of every file under folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def train(data, out, *extra) -> int:
    return main(["fleet", "train", str(data), "--out", str(out), *OPTIONS, *map(str, extra)])


def records(out: Path) -> dict[str, dict]:
    return {r["id"]: r for r in json.loads((out / "fleet.json").read_text())["devices"]}


@pytest.fixture(scope="module")
def long_csv(tmp_path_factory) -> Path:
    return write_csv(tmp_path_factory.mktemp("data") / "history.csv", HEADER, long_rows())


@pytest.fixture(scope="module")
def reference(long_csv, tmp_path_factory) -> Path:
    """The fleet trained from the long CSV on joblib with one worker."""
    out = tmp_path_factory.mktemp("reference") / "fleet"
    assert train(long_csv, out, "--workers", "1") == 0
    return out


def test_every_device_gets_a_bundle_named_by_its_c_identifier(reference):
    found = records(reference)
    assert sorted(found) == sorted(DEVICES)
    assert {d: r["name"] for d, r in found.items()} == {
        "pump-a": "pump_a", "pump-b": "pump_b", "fan 3": "fan_3", "Motor/7": "Motor_7"}
    for record in found.values():
        loaded = bundle.load(reference / "devices" / record["name"])
        assert loaded.name == record["name"] and record["status"] == "ok"
        assert record["thresholds"] == {d: f.scalars["threshold"]
                                        for d, f in loaded.detectors.items()}
        assert set(record["evaluation"]) == {"zscore", "kmeans"}  # the data is labelled
    # each device trained on its own rows: its levels are its own
    means = {d: records(reference)[d]["channel_mean"]["a"] for d in DEVICES}
    assert means["pump-a"] < means["pump-b"] < means["fan 3"] < means["Motor/7"]


def test_parquet_folder_and_chunks_give_the_same_bundles(reference, long_csv, tmp_path):
    rows = long_rows()
    write_parquet(tmp_path / "history.parquet", rows)
    folder = tmp_path / "folder"
    folder.mkdir()
    for i, device in enumerate(DEVICES):
        mine = [r for r in rows if r[1] == device]
        if i % 2:
            write_parquet(folder / f"{device.replace('/', '_')}.parquet", mine)
        else:
            write_csv(folder / f"{device}.csv", HEADER, mine)
    expected = tree(reference / "devices")
    assert train(tmp_path / "history.parquet", tmp_path / "pq", "--chunk-rows", "37") == 0
    assert tree(tmp_path / "pq" / "devices") == expected
    assert train(long_csv, tmp_path / "csv", "--chunk-rows", "5") == 0
    assert tree(tmp_path / "csv" / "devices") == expected
    # a folder's device id is the file name: Motor/7 cannot be one, Motor_7 is its name
    assert train(folder, tmp_path / "folder-fleet", "--device-column", "x") == 2
    assert train(folder, tmp_path / "folder-fleet", "--ignore", "device_id") == 0
    got = tree(tmp_path / "folder-fleet" / "devices")
    assert {k: v for k, v in got.items() if not k.startswith("Motor_7/")} == {
        k: v for k, v in expected.items() if not k.startswith("Motor_7/")}


def test_two_joblib_workers_write_the_same_bytes(reference, long_csv, tmp_path):
    assert train(long_csv, tmp_path / "two", "--workers", "2") == 0
    assert tree(tmp_path / "two") == tree(reference)


def test_a_dask_local_cluster_writes_the_same_bytes(reference, long_csv, tmp_path):
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        assert train(long_csv, tmp_path / "dask", "--scheduler", cluster.scheduler_address) == 0
    assert tree(tmp_path / "dask") == tree(reference)


def test_a_run_skips_the_devices_whose_input_and_settings_are_unchanged(long_csv, tmp_path,
                                                                        capsys):
    out = tmp_path / "fleet"
    assert train(long_csv, out) == 0
    before = {d: (out / "devices" / d / "bundle.json").stat().st_ino
              for d in ("pump_a", "pump_b", "fan_3", "Motor_7")}
    capsys.readouterr()
    assert train(long_csv, out) == 0
    assert "(4 unchanged since the last run" in capsys.readouterr().out
    changed = readings(1)
    changed[5, 0] += 0.5
    write_csv(tmp_path / "changed.csv", HEADER, long_rows(special={"pump-b": changed}))
    assert train(tmp_path / "changed.csv", out) == 0
    assert "(3 unchanged since the last run" in capsys.readouterr().out
    after = {d: (out / "devices" / d / "bundle.json").stat().st_ino for d in before}
    assert [d for d in before if before[d] != after[d]] == ["pump_b"]
    assert train(tmp_path / "changed.csv", out, "--seed", "1") == 0  # settings changed
    assert "(0 unchanged since the last run" in capsys.readouterr().out


def test_a_bad_device_fails_alone_with_its_reason(tmp_path, capsys):
    constant = readings(0)
    constant[:, 1] = 4.0
    empty = np.full((ROWS, 2), np.nan, dtype=np.float32)
    special = {"flat": constant, "short": readings(2, rows=20), "gone": empty}
    devices = ["good", "flat", "short", "gone"]
    write_csv(tmp_path / "bad.csv", HEADER, long_rows(devices, special))
    out = tmp_path / "fleet"
    assert train(tmp_path / "bad.csv", out, "--workers", "2") == 1
    err = capsys.readouterr().err
    found = records(out)
    assert found["good"]["status"] == "ok"
    assert sorted(p.name for p in (out / "devices").iterdir()) == ["good"]
    assert "channel 'b' is constant" in found["flat"]["reason"]
    assert "fewer than --min-rows 50" in found["short"]["reason"]
    assert "0 normal row(s) with every reading present" in found["gone"]["reason"]
    for device in ("flat", "short", "gone"):
        assert found[device]["status"] == "failed" and f"'{device}'" in err
    # the report shows the reasons
    assert main(["fleet", "report", str(out), "--report", str(tmp_path / "r.html"),
                 "--json", str(tmp_path / "r.json")]) == 0
    summary = json.loads((tmp_path / "r.json").read_text())
    assert {f["id"] for f in summary["failures"]} == {"flat", "short", "gone"}
    assert "channel &#39;b&#39; is constant" in (tmp_path / "r.html").read_text()


def test_a_killed_run_leaves_no_partial_bundle(tmp_path):
    many = [f"dev{i:02d}" for i in range(16)]
    write_csv(tmp_path / "many.csv", HEADER,
              long_rows(many, {d: readings(i, rows=3000) for i, d in enumerate(many)}))
    out = tmp_path / "fleet"
    (tmp_path / "tmp").mkdir()  # the killed run's spool stays there, not in /tmp
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TMPDIR": str(tmp_path / "tmp")}
    command = [sys.executable, "-m", "codegen.cli", "fleet", "train", str(tmp_path / "many.csv"),
               "--out", str(out), *OPTIONS]
    proc = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + 120
        while not (out / "devices").is_dir() or len(list((out / "devices").iterdir())) < 3:
            assert proc.poll() is None and time.monotonic() < deadline, "the run ended first"
            time.sleep(0.005)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    assert not (out / "fleet.json").exists()  # written last
    done = [p for p in (out / "devices").iterdir() if not p.name.startswith(".")]
    assert 0 < len(done) < len(many)
    for path in done:  # each whole: its bundle loads and its record is there
        bundle.load(path)
        assert json.loads((path / "device.json").read_text())["name"] == path.name
    assert train(tmp_path / "many.csv", out) == 0
    assert sorted(p.name for p in (out / "devices").iterdir()) == many  # no leftovers


HOSTILE = ['x"; evil(); //', "../../etc/passwd", "<script>alert(1)</script>", "pump-1",
           "Pump_1", "math", "int", "日本", " "]


def test_device_ids_are_mapped_sanitised_or_refused():
    names, refused = ids.mapping(HOSTILE)
    assert names['x"; evil(); //'] == "x_evil"
    assert names["../../etc/passwd"] == "etc_passwd"
    assert names["<script>alert(1)</script>"] == "script_alert_1_script"
    assert names["int"] == "int_"  # a C keyword
    assert names["日本"].startswith("device_") and names["日本"] == ids.c_name("日本")
    assert set(refused) == {"pump-1", "Pump_1", "math", " "}
    assert "as does 'Pump_1'" in refused["pump-1"] and "as does 'pump-1'" in refused["Pump_1"]
    assert "math.h" in refused["math"]
    assert "empty" in refused[" "]
    with pytest.raises(UserError, match="longer than"):
        ids.c_name("d" * (ids.MAX_ID + 1))


def test_hostile_ids_never_reach_the_c_or_a_path(tmp_path):
    write_csv(tmp_path / "hostile.csv", HEADER, long_rows(HOSTILE))
    out, include = tmp_path / "fleet", tmp_path / "include"
    assert train(tmp_path / "hostile.csv", out) == 1  # the refused ids fail
    assert main(["fleet", "generate", str(out), "--out", str(include)]) == 0
    mapping = json.loads((include / "devices.json").read_text())
    assert {m["id"]: m["name"] for m in mapping} == ids.mapping(HOSTILE)[0]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fleet", "hostile.csv", "include"]
    for m in mapping:
        text = "".join(p.read_text() for p in (include / m["name"]).iterdir())
        if any(c in m["id"] for c in "\"/<"):
            assert m["id"] not in text
        assert (include / m["header"]).is_file()
    require_tool("gcc")
    name = ids.c_name('x"; evil(); //')
    main_c = tmp_path / "main.c"
    main_c.write_text(f'#include "{name}.h"\nint main(void) {{ return 0; }}\n')
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-fsyntax-only",
                    "-I", str(include / name), str(main_c)], check=True)
    assert main(["fleet", "report", str(out), "--report", str(tmp_path / "r.html"),
                 "--json", str(tmp_path / "r.json")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "<script>alert" not in page and "&lt;script&gt;alert(1)&lt;/script&gt;" in page


def test_generate_replaces_its_own_directories_only(reference, tmp_path):
    include = tmp_path / "include"
    assert main(["fleet", "generate", str(reference), "--out", str(include)]) == 0
    first = tree(include)
    assert main(["fleet", "generate", str(reference), "--out", str(include)]) == 0
    assert tree(include) == first
    assert {p.name for p in include.iterdir()} == {"devices.json", ".mcu-anomaly-fleet-include",
                                                   "pump_a", "pump_b", "fan_3", "Motor_7"}
    foreign = tmp_path / "foreign"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    assert main(["fleet", "generate", str(reference), "--out", str(foreign)]) == 2
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]


def test_the_report_names_the_device_that_stands_out(tmp_path):
    devices = [f"m{i}" for i in range(6)]
    special = {d: readings(0) for d in devices}
    special["m5"] = readings(0) + np.float32(40.0)  # the same noise, a level far off
    write_csv(tmp_path / "f.csv", HEADER, long_rows(devices, special))
    out = tmp_path / "fleet"
    assert train(tmp_path / "f.csv", out) == 0
    assert main(["fleet", "report", str(out), "--report", str(tmp_path / "r.html"),
                 "--json", str(tmp_path / "r.json")]) == 0
    summary = json.loads((tmp_path / "r.json").read_text())
    assert {(o["id"], o["quantity"]) for o in summary["outliers"]} >= {("m5", "mean a"),
                                                                       ("m5", "mean b")}
    assert {o["id"] for o in summary["outliers"]} == {"m5"}
    assert summary["counts"] == {"devices": 6, "trained": 6, "failed": 0, "labelled": 6}
    assert "m5" in (tmp_path / "r.html").read_text()


@pytest.mark.parametrize("argv, message", [
    (["fleet", "train", "{csv}", "--device-column", "nope"], "device column 'nope' is not in"),
    (["fleet", "train", "{csv}", "--workers", "2", "--scheduler", "tcp://h:1"],
     "leave --workers out"),
    (["fleet", "train", "{csv}", "--scheduler", "h:1"], "like tcp://host:8786"),
    (["fleet", "train", "{csv}", "--detectors", "zscore,nope"], "nope"),
    (["fleet", "train", "{csv}", "--set", "gmm.k=3"], "add it to --detectors"),
    (["fleet", "train", "{dir}/missing.csv"], "does not exist"),
    (["fleet", "generate", "{dir}"], "is not a fleet"),
    (["fleet", "report", "{dir}"], "is not a fleet"),
])
def test_bad_input_is_refused_with_its_fix_and_writes_nothing(argv, message, long_csv, tmp_path,
                                                              capsys):
    out = tmp_path / "out"
    argv = [a.format(csv=long_csv, dir=tmp_path) for a in argv] + ["--out", str(out)]
    if argv[1] == "report":
        argv[-2:] = ["--report", str(out / "r.html"), "--json", str(out / "r.json")]
    assert main(argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists()


def test_a_foreign_directory_is_not_taken(long_csv, tmp_path):
    (tmp_path / "mine.txt").write_text("mine")
    with pytest.raises(UserError, match="was not written by `fleet train`"):
        from codegen.fleet import device, reading, train as fleet

        fleet.train(long_csv, tmp_path, device.Settings(("zscore",)), reading.Reading())
    assert [p.name for p in tmp_path.iterdir()] == ["mine.txt"]


def test_a_missing_extra_names_it(monkeypatch, long_csv, tmp_path, capsys):
    for name in ("pyarrow", "pyarrow.parquet"):
        monkeypatch.setitem(sys.modules, name, None)  # import then raises ImportError
    table = tmp_path / "h.parquet"
    table.write_bytes(b"PAR1")
    assert train(table, tmp_path / "out") == 2
    assert "needs pyarrow, which is not installed; install the fleet extra: pip install " \
           "'mcu-anomaly[fleet]'" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
