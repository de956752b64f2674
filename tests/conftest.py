"""Session fixtures: the notebook's data, a bundle of the default detectors, its host
build and the parity battery.  Helpers live in support.py."""

import pytest

from codegen.data import dataset as data
from codegen.detectors import DEFAULT
from codegen.training import train as training
from codegen.verify import battery as battery_mod
from host_sim.hostlib import HostModel

from support import NAB, require, write_labelled


def pytest_collection_modifyitems(items):
    """Under pytest-xdist (`make test` runs two workers), the firmware tests form two
    groups, each on one worker: the Uno's (an `env` parameter "uno", or
    `@pytest.mark.firmware(group="uno")`) and the qemu targets' (which share the
    reference's runs).  Builds take turns on PlatformIO's core directory
    (host_sim.targets.build); simulator runs and the reference run side by side."""
    for item in items:
        marker = item.get_closest_marker("firmware")
        if marker:
            env = getattr(item, "callspec", None) and item.callspec.params.get("env")
            group = marker.kwargs.get("group") or ("uno" if env == "uno" else "qemu")
            item.add_marker(pytest.mark.xdist_group(f"firmware-{group}"))


@pytest.fixture(scope="session")
def iot():
    return data.iot_sensors()


@pytest.fixture(scope="session")
def iot_bundle(iot):
    return training.train(iot, DEFAULT, {}, seed=0, name="sensors", verbose=False)


@pytest.fixture(scope="session")
def iot_host(iot_bundle):
    return HostModel(iot_bundle)


@pytest.fixture(scope="session")
def battery(iot_bundle):
    require((NAB / "data").is_dir(), f"the real data {NAB}")
    return battery_mod.battery(iot_bundle, 100_000, NAB)


@pytest.fixture(scope="session")
def labelled_csv(tmp_path_factory, iot):
    return write_labelled(tmp_path_factory.mktemp("data") / "iot.csv", iot)
