"""Every user error of the CLI exits 2 with `error: <problem>; <fix>`, no traceback and no
output left behind (issue 18, items 8 and 9); every detector parameter of the wrong type or
range is refused at train time, naming detector.param, what it accepts and what was given."""

from __future__ import annotations

import argparse
import json
import os
import shutil

import pytest

from codegen.cli import main, os_error_message
from codegen.detectors.autoencoder.params import check_params
from codegen.errors import UserError

from support import write_csv

ROWS = [[i, 20 + (i % 7) * 0.1, 50 + (i % 5) * 0.3, int(i == 90)] for i in range(120)]


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    """A tiny labelled CSV, a zscore bundle trained on it, a regular file, a non-UTF-8 CSV."""
    root = tmp_path_factory.mktemp("cli-errors")
    csv = write_csv(root / "s.csv", ["time", "temp", "hum", "is_anomaly"], ROWS)
    (root / "latin1.csv").write_bytes(b"temp,hum\n20.5,50\n21,51\n\xb0C,52\n")
    (root / "file").write_text("not a directory\n")
    assert main(["train", str(csv), "--out", str(root / "bundle"), "--quiet",
                 "--detectors", "zscore"]) == 0
    meta = json.loads((root / "bundle" / "bundle.json").read_text())
    shutil.copytree(root / "bundle", root / "string-version")
    meta["format_version"] = "1"
    (root / "string-version" / "bundle.json").write_text(json.dumps(meta))
    return root


@pytest.fixture
def read_only(tmp_path, monkeypatch):
    """A directory nothing may be created in: mode 0555, and as root (whom modes do not
    stop) os.mkdir and os.open refuse inside it as the kernel would, with EACCES."""
    directory = tmp_path / "read-only"
    directory.mkdir()
    directory.chmod(0o555)
    if os.geteuid() == 0:
        for name in ("mkdir", "open"):
            real = getattr(os, name)

            def refuse(path, *args, _real=real, **kwargs):
                if os.path.abspath(os.fspath(path)).startswith(str(directory) + os.sep):
                    raise PermissionError(13, "Permission denied", os.fspath(path))
                return _real(path, *args, **kwargs)

            monkeypatch.setattr(os, name, refuse)
    yield directory
    directory.chmod(0o755)


def run(argv) -> int:
    """main's exit code; argparse's own errors (a bad --seed) exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exit:
        return exit.code


def train(data, out, *extra):
    return ["train", str(data / "s.csv"), "--out", str(out), "--quiet", "--detectors", "zscore",
            *extra]


def train_kmeans(data, out, *extra):
    return [*train(data, out)[:-1], "kmeans", *extra]


# (id, argv from (data dir, output path), words the message holds).  Items 8 and 9 of
# issue 18, in its order.
CASES = [
    ("non-utf8-csv", lambda d, o: ["train", str(d / "latin1.csv"), "--out", str(o), "--quiet",
                                   "--detectors", "zscore"], "is not UTF-8 text"),
    ("floor-abc", lambda d, o: [*train(d, o)[:-1], "streaming_zscore", "--set",
                                "streaming_zscore.floor=abc"],
     "streaming_zscore.floor must be a number in (0, 1], not 'abc'"),
    ("k_max-abc", lambda d, o: train_kmeans(d, o, "--set", "kmeans.k_max=abc"),
     "kmeans.k_max must be an integer from 2 to 65535, not 'abc'"),
    ("n_init-0", lambda d, o: train_kmeans(d, o, "--set", "kmeans.n_init=0"),
     "kmeans.n_init must be an integer from 1 to 65535, not 0"),
    ("threshold-value-1e39", lambda d, o: train(d, o, "--threshold", "value:1e39"),
     "beyond the float32 range"),
    ("threshold-sigma-1e300", lambda d, o: train(d, o, "--threshold", "sigma:1e300"),
     "beyond the float32 range"),
    ("seed-negative", lambda d, o: train(d, o, "--seed", "-1"), "is not a seed"),
    ("verify-samples-negative", lambda d, o: ["verify", str(d / "bundle"), "--samples", "-5"],
     "is not a count of samples"),
    ("train-out-read-only", lambda d, o: train(d, o), "Permission denied"),
    ("generate-out-read-only", lambda d, o: ["generate", str(d / "bundle"), "--out", str(o)],
     "Permission denied"),
    ("firmware-out-read-only",
     lambda d, o: ["generate", str(d / "bundle"), "--firmware", "--out", str(o)],
     "Permission denied"),
    ("train-out-under-a-file", lambda d, o: train(d, d / "file" / "model"), "a file is in the way"),
    ("generate-out-under-a-file",
     lambda d, o: ["generate", str(d / "bundle"), "--out", str(d / "file" / "include")],
     "a file is in the way"),
    ("firmware-out-under-a-file",
     lambda d, o: ["generate", str(d / "bundle"), "--firmware", "--out",
                   str(d / "file" / "include")], "a file is in the way"),
    ("detectors-empty", lambda d, o: [*train(d, o)[:-1], ""], "no detector to train"),
    ("verify-samples-0", lambda d, o: ["verify", str(d / "bundle"), "--samples", "0"],
     "is not a count of samples"),
    ("verify-nab-missing", lambda d, o: ["verify", str(d / "bundle"), "--samples", "10",
                                         "--nab", str(d / "no-such-folder")],
     "is not a NAB folder"),
    ("k_max-0", lambda d, o: train_kmeans(d, o, "--set", "kmeans.k_max=0"),
     "kmeans.k_max must be an integer from 2"),
    ("k_max-1", lambda d, o: train_kmeans(d, o, "--set", "kmeans.k_max=1"),
     "kmeans.k_max must be an integer from 2"),
    ("threshold-max-f1-number", lambda d, o: train(d, o, "--threshold", "max-f1:3"),
     "max-f1 takes no number"),
    ("format-version-string", lambda d, o: ["generate", str(d / "string-version"), "--out",
                                            str(o)], "has format version '1'"),
    ("model-name-header", lambda d, o: train(d, o, "--name", "math"), "gives the header math.h"),
]


@pytest.mark.parametrize("argv, words", [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_user_error_exits_2_with_a_fix_and_writes_nothing(data, tmp_path, request, capsys,
                                                          argv, words):
    parent = (request.getfixturevalue("read_only") if "read-only" in request.node.name
              else tmp_path / "outputs")
    out = parent / "result"
    before = sorted(data.rglob("*"))
    assert run(argv(data, out)) == 2
    err = capsys.readouterr().err
    assert "error: " in err and words in err and "Traceback" not in err
    assert ";" in err.split("error: ", 1)[1]  # <problem>; <fix>
    assert not out.exists() and not (parent.exists() and any(parent.iterdir()))
    assert sorted(data.rglob("*")) == before


TRAIN_PARAMS = [
    ("zscore", "threshold", "3", "zscore.threshold '3' is not understood"),
    ("streaming_zscore", "window", "0", "streaming_zscore.window must be an integer from 1"),
    ("streaming_zscore", "window", "2.5", "not 2.5"),
    ("streaming_zscore", "min_count", "60", "streaming_zscore.min_count must be an integer "
                                            "from 1 to 50, not 60"),
    ("streaming_zscore", "floor", "0", "streaming_zscore.floor must be a number in (0, 1]"),
    ("streaming_zscore", "floor", "true", "not True"),
    ("streaming_zscore", "threshold", "value:-1", "streaming_zscore.threshold 'value:-1'"),
    ("moving_average", "window", "[3]", "moving_average.window must be an integer"),
    ("moving_average", "min_count", "x", "moving_average.min_count must be an integer"),
    ("kmeans", "k", "0", "kmeans.k must be 'auto' or an integer from 1 to 65535, not 0"),
    ("kmeans", "k", "two", "not 'two'"),
    ("kmeans", "k_max", "2.0", "kmeans.k_max must be an integer from 2 to 65535, not 2.0"),
    ("kmeans", "n_init", "-3", "kmeans.n_init must be an integer from 1"),
    ("kmeans", "threshold", "percentile:0", "kmeans.threshold 'percentile:0'"),
    ("isolation_forest", "target", "avr", "isolation_forest.target must be one of"),
    ("isolation_forest", "n_trees", "0", "isolation_forest.n_trees must be 'auto' or an "
                                         "integer from 1 to 4096, not 0"),
    ("isolation_forest", "max_samples", "1", "isolation_forest.max_samples must be 'auto' or"),
    ("isolation_forest", "features", "both", "isolation_forest.features must be one of"),
    ("isolation_forest", "window", "0", "isolation_forest.window must be an integer from 1"),
    ("isolation_forest", "threshold", "value:2", "isolation_forest.threshold 'value:2'"),
]


@pytest.mark.parametrize("detector, param, value, words", TRAIN_PARAMS,
                         ids=[f"{d}.{p}={v}" for d, p, v, _ in TRAIN_PARAMS])
def test_a_parameter_of_the_wrong_type_or_range_is_refused(data, tmp_path, capsys, detector,
                                                           param, value, words):
    out = tmp_path / "model"
    argv = [*train(data, out)[:-1], detector, "--set", f"{detector}.{param}={value}"]
    assert run(argv) == 2
    err = capsys.readouterr().err
    assert words in err, err
    assert not out.exists()


AUTOENCODER_PARAMS = [
    ("channel", -1, "autoencoder.channel"), ("channel", "0", "autoencoder.channel"),
    ("window", 1, "autoencoder.window"), ("window", "abc", "autoencoder.window"),
    ("hidden", [8, "4"], "autoencoder.hidden"), ("hidden", [0], "autoencoder.hidden"),
    ("activation", "tanh", "autoencoder.activation"), ("epochs", 0, "autoencoder.epochs"),
    ("batch_size", 2.5, "autoencoder.batch_size"),
    ("representative_samples", None, "autoencoder.representative_samples"),
    ("arena_cap", 8, "autoencoder.arena_cap"),
    ("validation_split", 0.9, "autoencoder.validation_split"),
    ("learning_rate", "fast", "autoencoder.learning_rate"),
    ("threshold", "sigma", "autoencoder.threshold"),
    ("channels", 3, "autoencoder.channels"), ("channels", [0, -1], "autoencoder.channels"),
    ("channels", [], "autoencoder.channels"), ("pointwise", "max", "autoencoder.pointwise"),
]


@pytest.mark.parametrize("param, value, words", AUTOENCODER_PARAMS,
                         ids=[f"autoencoder.{p}={v!r}" for p, v, _ in AUTOENCODER_PARAMS])
def test_an_autoencoder_parameter_of_the_wrong_type_or_range_is_refused(param, value, words):
    """Checked before TensorFlow is imported, so no TensorFlow is needed here."""
    with pytest.raises(UserError) as error:
        check_params({param: value})
    assert words in str(error.value) and repr(value) in str(error.value)


def test_the_autoencoders_channel_may_be_named():
    from codegen.detectors.autoencoder.training import channel_index

    assert channel_index({"channel": "b"}, ["a", "b"], 2) == {"channel": 1}
    assert channel_index({"channel": 0}, ["a", "b"], 2) == {"channel": 0}
    with pytest.raises(UserError, match="autoencoder.channel 'c' is not a channel of the "
                                        "data; give one of a, b or its index"):
        channel_index({"channel": "c"}, ["a", "b"], 2)


@pytest.mark.parametrize("error, words", [
    (PermissionError(13, "Permission denied", "/data/in.csv"),
     "/data/in.csv: Permission denied; check that the path exists"),
    (OSError(28, "No space left on device", "/out/.model.x1"),
     "cannot write --out /out/model (/out/.model.x1: No space left on device); free some space"),
    (PermissionError(13, "Permission denied", "/out/in.csv"),
     "/out/in.csv: Permission denied; check that the path exists"),
    (NotADirectoryError(20, "Not a directory", "/out"), "cannot write --out /out/model"),
])
def test_an_os_error_names_the_path_and_a_fix(error, words):
    """Only an OSError on the output's path (above, at, beside or inside it) blames --out."""
    assert words in os_error_message(error, argparse.Namespace(out="/out/model"))
