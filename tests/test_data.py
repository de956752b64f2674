import csv

import numpy as np
import pytest

from codegen.data import dataset as data
from codegen.errors import UserError


def write(tmp_path, text, name="d.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_reads_channels_labels_and_time(tmp_path):
    ds = data.load_csv(write(tmp_path, "timestamp,temp,hum,is_anomaly\nt0,1.5,2,0\nt1,3,4e1,1\n"))
    assert ds.channels == ["temp", "hum"]
    assert ds.values.dtype == np.float32 and ds.values.tolist() == [[1.5, 2.0], [3.0, 40.0]]
    assert ds.labels.tolist() == [False, True] and ds.time == ["t0", "t1"]
    assert ds.normal.tolist() == [[1.5, 2.0]]


def test_notebook_generator_is_the_notebooks_data():
    ds = data.iot_sensors()
    assert ds.values.shape == (5000, 3) and ds.labels.sum() == 50
    assert np.isclose(np.abs(ds.values[ds.labels]).mean(), 5, atol=0.5)


@pytest.mark.parametrize("text, message", [
    ("", "is empty"),
    ("a,b\n", "no data rows"),
    ("a,b\n1,x\n", "1 cell(s) are not numeric, by column: column 'b': 1 (first line 2: 'x'); "
                  "the cells: line 2 column 'b' holds 'x'"),
    ("a,b,anomaly\n1,2,3\n", "labels must be 0 (normal) or 1"),
    ("a,b\n1\n", "has 1 fields, the header has 2"),
    ("a,b,a\n1,2,3\n", "names the column 'a' 2 times"),
    ("a;b\n1,5;2\n", "decimal commas are not read"),
])
def test_bad_files_are_refused_with_the_problem_named(tmp_path, text, message):
    with pytest.raises(UserError) as error:
        data.load_csv(write(tmp_path, text))
    assert message in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        data.load_csv(tmp_path / "nope.csv")


@pytest.mark.parametrize("header, channels", [
    ("Flow rate (l/min),Temperature (C)", ["Flow_rate_l_min", "Temperature_C"]),
    ('"a*/",b', ["a", "b"]),
    ('"a#",b', ["a", "b"]),
    ('"x\ny",b', ["x_y", "b"]),
    ('"say ""hi""",back\\slash', ["say_hi", "back_slash"]),
    ("class,int,NULL", ["class_", "int_", "NULL_"]),
    ("temp,TEMP", ["temp", "TEMP_2"]),
    ("a b,a_b", ["a_b_2", "a_b"]),
    ("1st,2nd", ["c_1st", "c_2nd"]),
    ("Température (°C),()", ["Temperature_C", "channel_1"]),
    ("mcua_x,ok", ["ch_mcua_x", "ok"]),
    ("x" * 60 + ",y", ["x" * 40, "y"]),
])
def test_column_names_map_to_unique_c_identifiers(tmp_path, header, channels):
    values = ",".join("1" for _ in channels)
    ds = data.load_csv(write(tmp_path, f"{header}\n{values}\n"))
    assert ds.channels == channels
    assert ds.columns == next(csv.reader([header]))


def test_renames_choose_the_c_names(tmp_path):
    path = write(tmp_path, "Flow rate (l/min),b\n1,2\n")
    ds = data.load_csv(path, renames={"Flow rate (l/min)": "flow"})
    assert ds.channels == ["flow", "b"] and ds.columns == ["Flow rate (l/min)", "b"]
    assert ds.renamed == [("Flow rate (l/min)", "flow")]


@pytest.mark.parametrize("renames, message", [
    ({"nope": "x"}, "--rename 'nope'=... names no column"),
    ({"a b": "9x"}, "is not a C identifier"),
    ({"a b": "int"}, "reserved"),
    ({"a b": "c", "d": "C"}, "the same C macro C"),
])
def test_bad_renames_are_refused(tmp_path, renames, message):
    with pytest.raises(UserError, match=message.replace("(", r"\(").replace(".", r"\.")):
        data.load_csv(write(tmp_path, "a b,d\n1,2\n"), renames=renames)


@pytest.mark.parametrize("text", [
    "t;a;b;anomaly\n0;1.5;2;0\n1;3;4;1\n",
    "t\ta\tb\tanomaly\n0\t1.5\t2\t0\n1\t3\t4\t1\n",
    "\ufefft,a,b,anomaly\r\n0,1.5,2,0\r\n1,3,4,1\r\n",
    "t, a, b, anomaly\n0, 1.5, 2, 0\n\n1, 3, 4, 1\n",
])
def test_separators_bom_and_crlf_are_read(tmp_path, text):
    ds = data.load_csv(write(tmp_path, text))
    assert ds.channels == ["a", "b"] and ds.values.tolist() == [[1.5, 2.0], [3.0, 4.0]]
    assert ds.labels.tolist() == [False, True] and ds.time == ["0", "1"]


def test_sep_overrides_the_sniffed_separator(tmp_path):
    path = write(tmp_path, "a;b\n1;2\n")
    assert data.load_csv(path, sep=";").channels == ["a", "b"]
    with pytest.raises(UserError, match="line 2 column 'a;b' holds '1;2'"):
        data.load_csv(path, sep=",")
    with pytest.raises(UserError, match="--sep '|' is not a separator"):
        data.load_csv(path, sep="|")


def test_a_zero_one_column_beside_the_label_is_warned_about_and_can_be_ignored(tmp_path, capsys):
    """A changepoint marker next to the label is 0/1 too: read as a channel it would leak
    the labels into the model (issue 17, item 3)."""
    from codegen.cli import main

    rows = "".join(f"{1 + 0.1 * (i % 5)},{2 - 0.1 * (i % 3)},{int(i == 7)},{int(i == 9)}\n"
                   for i in range(40))
    path = write(tmp_path, "a,b,changepoint,anomaly\n" + rows)
    assert data.load_csv(path).label_like() == ["changepoint"]
    assert data.load_csv(path, ignore=["changepoint"]).channels == ["a", "b"]
    out = tmp_path / "m"
    assert main(["train", str(path), "--detectors", "zscore", "--out", str(out), "--quiet"]) == 0
    assert "column 'changepoint' holds only 0 and 1" in capsys.readouterr().err
    assert main(["train", str(path), "--detectors", "zscore", "--out", str(out), "--quiet",
                 "--ignore", "changepoint"]) == 0
    assert "holds only 0 and 1" not in capsys.readouterr().err
    assert main(["train", str(path), "--detectors", "zscore", "--out", str(out), "--quiet",
                 "--ignore", "nope"]) == 2
    assert "ignored column 'nope' is not in" in capsys.readouterr().err


def test_missing_readings_are_nan_left_out_of_training_and_every_bad_cell_is_named(tmp_path):
    """A logger's dropout is an empty cell: read as NaN, as the device is fed it, and left
    out of the normal rows (issue 16, item 1); cells that are not numbers are all named at
    once, the first 20 and a count."""
    rows = [f"{i},{'' if i % 5 == 0 else 1 + i % 3},{'nan' if i == 7 else 2},0" for i in range(30)]
    ds = data.load_csv(write(tmp_path, "t,a,b,anomaly\n" + "\n".join(rows) + "\n"))
    assert np.isnan(ds.values[0, 0]) and np.isnan(ds.values[7, 1])
    assert ds.missing.sum() == 7 and len(ds.normal) == 23 and np.isfinite(ds.normal).all()
    bad = "\n".join(f"{i},x{i}" for i in range(25))
    with pytest.raises(UserError) as error:
        data.load_csv(write(tmp_path, "a,b\n" + bad + "\n", "bad.csv"))
    message = str(error.value)
    assert "25 cell(s) are not numeric, by column: column 'b': 25 (first line 2: 'x0')" in message
    assert "the cells: line 2 column 'b' holds 'x0'" in message
    assert "line 21 column 'b' holds 'x19'; fix" not in message and "and 5 more" in message
    assert "--ignore 'b'" in message
