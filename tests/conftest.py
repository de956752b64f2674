import copy
import csv
from pathlib import Path

import numpy as np
import pytest

from codegen.data import dataset as data
from codegen.verify import compare as parity
from codegen.training import train as training
from host_sim.hostlib import HostModel

ROOT = Path(__file__).resolve().parent.parent
NAB = ROOT.parent / "shared" / "data" / "nab"
ALL = ["zscore", "streaming_zscore", "moving_average", "kmeans"]


@pytest.fixture(scope="session")
def iot():
    return data.iot_sensors()


@pytest.fixture(scope="session")
def iot_bundle(iot):
    return training.train(iot, ALL, {}, seed=0, name="sensors", verbose=False)


@pytest.fixture(scope="session")
def iot_host(iot_bundle):
    return HostModel(iot_bundle)


@pytest.fixture(scope="session")
def battery(iot_bundle):
    assert (NAB / "data").is_dir(), f"real data missing: {NAB}"
    return parity.battery(iot_bundle, 100_000, NAB)


def perturbed(bundle, detector, constant, index=0):
    """A copy of bundle with one constant (an array element or a scalar such as the
    threshold) moved by one ulp towards +inf."""
    other = copy.deepcopy(bundle)
    fitted = other.detectors[detector]
    if constant in fitted.scalars:
        value = np.float32(fitted.scalars[constant])
        fitted.scalars[constant] = float(np.nextafter(value, np.float32(np.inf)))
    else:
        flat = fitted.arrays[constant].reshape(-1)
        flat[index] = np.nextafter(flat[index], np.float32(np.inf))
    return other


def assert_parity(bundle, host, inputs, detector):
    results = [r for r in parity.compare(bundle, host, inputs) if r.detector == detector]
    assert results and all(r.ok for r in results), parity.table(results)
    return sum(r.inputs for r in results)


def count_mismatches(reference_bundle, host, inputs, detector):
    results = [r for r in parity.compare(reference_bundle, host, inputs) if r.detector == detector]
    return sum(r.score_mismatches + r.flag_mismatches + (r.state_mismatches or 0)
               for r in results)


def write_csv(path, header, rows):
    with open(path, "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(header)
        writer.writerows(rows)
    return path


def write_labelled(path, dataset, label="is_anomaly", columns=None):
    columns = columns or dataset.channels
    index = [dataset.channels.index(c) for c in columns]
    rows = [[t] + [repr(float(row[i])) for i in index] + [int(l)]
            for t, row, l in zip(dataset.time, dataset.values, dataset.labels)]
    return write_csv(path, ["time"] + list(columns) + [label], rows)


@pytest.fixture(scope="session")
def labelled_csv(tmp_path_factory, iot):
    return write_labelled(tmp_path_factory.mktemp("data") / "iot.csv", iot)
