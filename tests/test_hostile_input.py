"""CSV files as careless users and broken loggers write them, through `train`: each either
trains (names mapped, separators read) or is refused with exit 2 and a message naming the
problem, never a traceback, and the bundle already at --out stays as it was, with nothing
left beside it.  Then `train` and `generate` killed at random moments: the output is the
old one or the new one, whole."""

import codecs
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from codegen.cli import main

ROOT = Path(__file__).resolve().parents[1]
RNG = np.random.default_rng(17)


def _rows(n=60, channels=2, label=True):
    values = 10 + RNG.standard_normal((n, channels)).round(4)
    return [[*map(str, row), *(["0"] if label else [])] for row in values]


def _table(header, rows, sep=",", end="\n"):
    return end.join(sep.join(r) for r in [header, *rows]) + end


def _wide(channels):
    return _table([f"s{i}" for i in range(channels)] + ["anomaly"], _rows(40, channels))


GOOD = _table(["a", "b", "anomaly"], _rows())
# (id, file bytes, exit code, words in stdout+stderr, C names of a file that trains)
CASES = [
    ("empty", b"", 2, "is empty", None),
    ("header-only", b"a,b,anomaly\n", 2, "no data rows", None),
    ("one-row", b"a,b,anomaly\n1,2,0\n", 2, "only 1 normal row", None),
    ("ragged", _table(["a", "b"], [["1", "2"], ["3"]]).encode(), 2,
     "line 3 of", None),
    ("binary", bytes(RNG.integers(0, 256, 300, dtype=np.uint8)), 2, "is not UTF-8 text", None),
    ("nul-bytes", b"a,b,anomaly\n1,2\x00,0\n3,4,0\n", 2, "are not numeric", None),
    ("latin-1", _table(["Température", "b", "anomaly"], _rows()).encode("latin-1"), 2,
     "is not UTF-8 text", None),
    ("bom", codecs.BOM_UTF8 + GOOD.encode(), 0, "", ["a", "b"]),
    ("crlf", _table(["a", "b", "anomaly"], _rows(), end="\r\n").encode(), 0, "", ["a", "b"]),
    ("semicolon", _table(["a", "b", "anomaly"], _rows(), sep=";").encode(), 0, "", ["a", "b"]),
    ("tab", _table(["a", "b", "anomaly"], _rows(), sep="\t").encode(), 0, "", ["a", "b"]),
    ("duplicate-names", _table(["a", "a", "anomaly"], _rows()).encode(), 2,
     "names the column 'a' 2 times", None),
    ("case-duplicates", _table(["temp", "TEMP", "anomaly"], _rows()).encode(), 0,
     "'TEMP'", ["temp", "TEMP_2"]),
    ("comment-end", _table(['"a*/"', '"#b"', "anomaly"], _rows()).encode(), 0, "", ["a", "b"]),
    ("quotes-backslash-newline", _table(['"say ""x"""', '"c\\\\d\ne"', "anomaly"],
                                        _rows()).encode(), 0, "", ["say_x", "c_d_e"]),
    ("keywords", _table(["int", "class", "anomaly"], _rows()).encode(), 0, "",
     ["int_", "class_"]),
    # read and fitted; 40 rows of noise on that many channels put the Z-score's maximum above
    # 3 in most rows, a threshold train refuses
    ("300-channels", _wide(300).encode(), 2, "flags 15 of the 40 normal rows", None),
    ("5000-channels", _wide(5000).encode(), 2, "flags 40 of the 40 normal rows", None),
    ("1e30", _table(["a", "b", "anomaly"], [["1e30", "2", "0"], ["-1e30", "3", "0"],
                                            ["5e29", "4", "0"]]).encode(), 0, "", ["a", "b"]),
    ("beyond-float32", _table(["a", "b", "anomaly"], [["1e39", "2", "0"], ["1", "3", "0"]]
                              ).encode(), 2, "only 1 normal row", None),
    ("hex-float", _table(["a", "b", "anomaly"], [["0x1p3", "2", "0"]] * 3).encode(), 2,
     "line 2 column 'a' holds '0x1p3'", None),
    ("all-anomalous", _table(["a", "b", "anomaly"], [["1", "2", "1"], ["2", "3", "1"]]
                             ).encode(), 2, "every row of", None),
    ("label-2", _table(["a", "b", "anomaly"], [["1", "2", "2"]]).encode(), 2,
     "labels must be 0 (normal) or 1", None),
    ("label-minus-1", _table(["a", "b", "anomaly"], [["1", "2", "-1"]]).encode(), 2,
     "labels must be 0 (normal) or 1", None),
    ("label-half", _table(["a", "b", "anomaly"], [["1", "2", "0.5"]]).encode(), 2,
     "labels must be 0 (normal) or 1", None),
    ("label-string", _table(["a", "b", "anomaly"], [["1", "2", "yes"]]).encode(), 2,
     "labels must be 0 (normal) or 1", None),
    ("huge-field", ("a,b\n" + "x" * 200_000 + ",1\n").encode(), 2, "cannot be read as CSV",
     None),
]


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """A good bundle at --out, as an earlier run left it: (its directory, its files)."""
    root = tmp_path_factory.mktemp("previous")
    good = root / "good.csv"
    good.write_text(GOOD)
    assert main(["train", str(good), "--detectors", "zscore", "--out", str(root / "m"),
                 "--quiet"]) == 0
    return root / "m", _snapshot(root / "m")


def _snapshot(directory: Path) -> dict:
    return {p.relative_to(directory).as_posix(): p.read_bytes()
            for p in sorted(directory.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("name, content, code, words, channels", CASES,
                         ids=[c[0] for c in CASES])
def test_a_pathological_csv_trains_or_is_refused_cleanly(name, content, code, words, channels,
                                                         previous, tmp_path, capfd):
    import shutil

    model, before = previous
    out = tmp_path / "m"
    shutil.copytree(model, out)
    path = tmp_path / f"{name}.csv"
    path.write_bytes(content)
    got = main(["train", str(path), "--detectors", "zscore", "--out", str(out)])
    captured = capfd.readouterr()
    text = captured.out + captured.err
    assert got == code, text
    assert words in text and "Traceback" not in text
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m", path.name])
    if code:
        assert text.startswith("error: ") or "\nerror: " in text
        assert _snapshot(out) == before  # the old bundle, untouched
    else:
        from codegen import bundle as bundle_mod

        assert bundle_mod.load(out).channels == channels


def _command(*args):
    return [sys.executable, "-m", "codegen.cli", *args]


def _run(command):
    subprocess.run(command, check=True, cwd=ROOT, capture_output=True)


def _leftovers(directory: Path) -> list[str]:
    return [p.name for p in directory.iterdir() if p.name.startswith(".out.")]


KILLS = 20


@pytest.mark.slow
@pytest.mark.parametrize("what", ["train", "generate"])
def test_killed_at_random_or_run_twice_at_once_the_output_is_one_run_whole(what, tmp_path):
    import shutil

    a, b = tmp_path / "a.csv", tmp_path / "b.csv"
    a.write_text(_table(["x", "y", "anomaly"], _rows(300)))
    b.write_text(_table(["p", "q", "r", "anomaly"], _rows(300, 3)))
    out, work = tmp_path / "out", tmp_path / "work"
    work.mkdir()
    if what == "train":
        make = {n: _command("train", str(c), "--detectors", "zscore,streaming_zscore",
                            "--quiet", "--out", str(out)) for n, c in (("a", a), ("b", b))}
    else:
        make = {}
        for name, csv_path in (("a", a), ("b", b)):
            _run(_command("train", str(csv_path), "--detectors", "zscore,streaming_zscore",
                          "--quiet", "--out", str(work / name)))
            make[name] = _command("generate", str(work / name), "--out", str(out))
    _run(make["a"])
    old = _snapshot(out)
    shutil.copytree(out, work / "old")
    start = time.monotonic()
    _run(make["b"])
    duration = time.monotonic() - start
    new = _snapshot(out)
    outcomes = []
    for delay in np.random.default_rng(3).uniform(0.05 * duration, 1.1 * duration, KILLS):
        shutil.rmtree(out)
        shutil.copytree(work / "old", out)
        run = subprocess.Popen(make["b"], cwd=ROOT, stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
        time.sleep(delay)
        run.send_signal(signal.SIGKILL)
        run.wait()
        now = _snapshot(out)
        assert now in (old, new), f"a mix after a kill at {delay:.2f} s of {duration:.2f} s"
        outcomes.append(now == new)
    assert False in outcomes  # some kills landed before the new output was in place
    both = [subprocess.Popen(make[n], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.PIPE) for n in ("a", "b")]
    assert [run.wait() for run in both] == [0, 0]
    assert _snapshot(out) in (old, new)
    _run(make["b"])  # the next run removes what the killed ones left
    assert _snapshot(out) == new and _leftovers(tmp_path) == []
