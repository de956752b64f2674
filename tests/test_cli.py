import json
import subprocess
import sys
from pathlib import Path

import pytest

from codegen.cli import main

CSV = "time,temp,hum,is_anomaly\n" + "".join(
    f"{i},{20 + (i % 7) * 0.1},{50 + (i % 5) * 0.3},{int(i == 90)}\n" for i in range(200))


def run(*args):
    return main([str(a) for a in args])


def tree(path: Path) -> dict:
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in sorted(path.rglob("*")) if p.is_file()}


def test_console_script_end_to_end(tmp_path):
    csv = tmp_path / "s.csv"
    csv.write_text(CSV)
    out = tmp_path / "model"
    cmd = [sys.executable, "-m", "codegen.cli"]
    subprocess.run(cmd + ["train", str(csv), "--out", str(out), "--name", "plant", "--quiet",
                          "--set", "kmeans.k=2"], check=True)
    subprocess.run(cmd + ["generate", str(out), "--out", str(tmp_path / "inc")], check=True)
    result = subprocess.run(cmd + ["verify", str(out), "--samples", "5000"], check=True,
                            capture_output=True, text=True)
    assert "0 mismatches" in result.stdout
    assert (tmp_path / "inc" / "plant_zscore.h").is_file()


def test_same_inputs_and_seed_give_byte_identical_files(tmp_path):
    for i in (1, 2):
        assert run("train", "--out", tmp_path / f"m{i}", "--quiet", "--name", "s") == 0
        assert run("generate", tmp_path / f"m{i}", "--out", tmp_path / f"inc{i}") == 0
    assert tree(tmp_path / "m1") == tree(tmp_path / "m2")
    assert tree(tmp_path / "inc1") == tree(tmp_path / "inc2")


def test_a_bundle_of_another_format_version_is_refused(tmp_path, capsys):
    assert run("train", "--out", tmp_path / "m", "--quiet", "--detectors", "zscore") == 0
    meta = tmp_path / "m" / "bundle.json"
    doc = json.loads(meta.read_text())
    doc["format_version"] = 1  # before the adaptation modes
    meta.write_text(json.dumps(doc))
    assert run("generate", tmp_path / "m", "--out", tmp_path / "inc") == 2
    assert "format version 1" in capsys.readouterr().err
    assert not (tmp_path / "inc").exists()


@pytest.mark.parametrize("csv, extra, message", [
    (None, ["--name", "bad name"], "model name 'bad name' is not a C identifier"),
    (None, ["--name", "x*/"], "is not a C identifier"),
    (None, ["--name", 'a"b'], "is not a C identifier"),
    (None, ["--name", "int"], "reserved"),
    (None, ["--set", "kmeans.k=9999"], "larger than the 4950 normal rows"),
    (None, ["--set", "zscore.k=3"], "zscore has no parameter k"),
    (None, ["--set", "zscore.threshold=median"], "is not understood"),
    (None, ["--detectors", "zscore,isolation"], "unknown detector 'isolation'"),
    ("time,a,is_anomaly\n1,2,1\n2,3,1\n", [], "every row of d is labelled anomalous"),
    ("a,b\n1,2\n1,3\n1,4\n", [], "channel 'a' is constant"),
    ("a,b\n" + "".join(f"{i},{i * i}\n" for i in range(20)), ["--detectors", "streaming_zscore"],
     "20 normal rows are fewer than the window of 50"),
    ("a,b\n1,x\n", [], "not numeric"),
])
def test_bad_input_exits_non_zero_and_writes_nothing(tmp_path, capsys, csv, extra, message):
    args = ["train", "--out", tmp_path / "model", "--quiet", *extra]
    if csv is not None:
        (tmp_path / "d.csv").write_text(csv)
        args.insert(1, tmp_path / "d.csv")
    assert run(*args) == 2
    assert message in capsys.readouterr().err
    assert list(tmp_path.glob("model*")) == [] and list(tmp_path.glob(".model*")) == []


def test_missing_data_file_and_missing_bundle(tmp_path, capsys):
    assert run("train", tmp_path / "none.csv", "--out", tmp_path / "m") == 2
    assert run("generate", tmp_path / "none", "--out", tmp_path / "inc") == 2
    err = capsys.readouterr().err
    assert "does not exist" in err and "is not a bundle" in err
    assert not (tmp_path / "inc").exists()


def test_unlabelled_data_trains_on_every_row_with_a_warning(tmp_path, capsys):
    (tmp_path / "d.csv").write_text("a,b\n" + "".join(f"{i % 9},{i % 4}\n" for i in range(100)))
    assert run("train", tmp_path / "d.csv", "--out", tmp_path / "m", "--quiet",
               "--detectors", "zscore") == 0
    assert "no label column" in capsys.readouterr().err


def test_verify_finds_nab_from_the_working_directory(tmp_path, monkeypatch):
    """verify's NAB default: ../shared/data/nab, then shared/data/nab, from the working
    directory; the checkout's only when neither is there."""
    from codegen import resources
    from codegen.verify import battery

    work, elsewhere = tmp_path / "project", tmp_path / "empty" / "deeper"
    beside, under = tmp_path.resolve() / "shared/data/nab", work.resolve() / "shared/data/nab"
    for nab in (beside, under):
        (nab / "data").mkdir(parents=True)
    elsewhere.mkdir(parents=True)
    monkeypatch.setattr(resources, "checkout", lambda: work / "checkout")
    monkeypatch.chdir(work)
    assert battery.default_nab() == beside
    (beside / "data").rmdir()
    assert battery.default_nab() == under
    monkeypatch.chdir(elsewhere)
    assert battery.default_nab() == under  # beside the checkout
    monkeypatch.setattr(resources, "checkout", lambda: None)  # a wheel install
    assert battery.default_nab() is None
