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
    ("a,b\n1,x\n", "column 'b' is not numeric: line 2 holds 'x'"),
    ("a,b\n1,nan\n", "column 'b' holds 'nan' on line 2"),
    ("a,b\n1,inf\n", "must be finite"),
    ("a,b\n1,1e39\n", "not a finite float32"),
    ("a,b,anomaly\n1,2,3\n", "labels must be 0 (normal) or 1"),
    ("a,b\n1\n", "has 1 fields, the header has 2"),
    ("a b,c\n1,2\n", "column name 'a b' is not a C identifier"),
    ("a*/,c\n1,2\n", "is not a C identifier"),
    ('"a#",c\n1,2\n', "is not a C identifier"),
    ('"x\ny",c\n1,2\n', "is not a C identifier"),
    ("class,c\n1,2\n", "reserved in C"),
    ("temp,TEMP\n1,2\n", "give the same C macro TEMP"),
])
def test_bad_files_are_refused_with_the_problem_named(tmp_path, text, message):
    with pytest.raises(UserError) as error:
        data.load_csv(write(tmp_path, text))
    assert message in str(error.value)


def test_missing_file(tmp_path):
    with pytest.raises(UserError, match="does not exist"):
        data.load_csv(tmp_path / "nope.csv")
