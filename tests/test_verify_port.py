"""verify --port: parity against a board on a serial port, here the Uno in simavr bridged
to a pseudo-terminal (host_sim/simavr_runner.c -p), so the real-board path runs without
hardware: the bundle's firmware passes, a firmware one ulp off fails, another bundle's
firmware and a silent port are refused with the fix."""

import contextlib
import os
import re
import subprocess
import time

import pytest

from codegen import bundle as bundle_mod
from codegen import cli
from codegen.verify import serial_port
from host_sim import targets
from host_sim.firmware_target import Target
from support import only, perturbed, require_env

pytestmark = pytest.mark.firmware(group="uno")


@contextlib.contextmanager
def uno_on_pty(elf, log):
    """The firmware running in simavr behind a new pseudo-terminal; yields its path."""
    runner = subprocess.Popen([str(targets.build_simavr_runner()), "-p", str(elf)],
                              stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                              stderr=log.open("w"))
    try:
        deadline = time.monotonic() + 10
        while not (found := re.search(r"^PTY (\S+)$", log.read_text(), re.M)):
            assert runner.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.02)
        yield found[1]
    finally:
        if runner.poll() is None:
            runner.terminate()
        runner.wait(timeout=10)


@pytest.fixture(scope="module")
def saved(iot_bundle, tmp_path_factory):
    return bundle_mod.save(iot_bundle, tmp_path_factory.mktemp("port") / "model")


def firmware(bundle, workdir):
    require_env("uno")
    return Target("uno", workdir).build(bundle)


def test_the_bundles_firmware_passes_over_the_port(iot_bundle, saved, tmp_path, capsys):
    with uno_on_pty(firmware(iot_bundle, tmp_path), tmp_path / "runner.log") as pty:
        assert cli.main(["verify", str(saved), "--port", pty, "--samples", "200"]) == 0
    out = capsys.readouterr().out
    assert f"{pty}: the board's firmware app" in out and "0 mismatches" in out
    for detector in iot_bundle.detectors:  # every detector, every kind of the battery
        assert re.search(rf"^{detector} +extreme +100 +0 +0 +-$", out, re.M), out
    assert re.search(r"^stack: [1-9][\d,]* B of free RAM never reached during the run$", out,
                     re.M), out


def test_a_firmware_one_ulp_off_fails(iot_bundle, saved, tmp_path, capsys):
    """The firmware of the bundle with zscore's mean one ulp up, verified against the
    bundle: the identification matches, the scores do not."""
    elf = firmware(perturbed(iot_bundle, "zscore", "mean", 1), tmp_path)
    with uno_on_pty(elf, tmp_path / "runner.log") as pty:
        assert cli.main(["verify", str(saved), "--port", pty, "--samples", "100"]) == 1
    out = capsys.readouterr().out
    rows = re.findall(r"^(\w+) +(?:random|extreme|real) +\d+ +(\d+) +(\d+) ", out, re.M)
    assert rows and len(rows) % len(iot_bundle.detectors) == 0, out
    assert {d for d, scores, flags in rows if scores != "0" or flags != "0"} == {"zscore"}, out
    assert re.search(rf"^  zscore random\[\d+\] x=.*: reference [0-9a-f]{{8}} .*, "
                     rf"{re.escape(pty)} [0-9a-f]{{8}}", out, re.M), out

    with uno_on_pty(elf, tmp_path / "again.log") as pty:  # another bundle's firmware
        other = bundle_mod.save(only(iot_bundle, "zscore"), tmp_path / "zscore")
        assert cli.main(["verify", str(other), "--port", pty]) == 2
    err = capsys.readouterr().err
    assert "runs another bundle's firmware: detectors" in err
    assert f"generate {other} --firmware" in err and f"--upload-port {pty}" in err


def test_a_silent_port_is_refused_with_the_causes(saved, monkeypatch, capsys):
    monkeypatch.setattr(serial_port, "ANSWER_SECONDS", 0.2)
    monkeypatch.setattr(serial_port, "IDENTIFY_SECONDS", 0.5)
    master, slave = os.openpty()  # nothing answers on the other side
    try:
        assert cli.main(["verify", str(saved), "--port", os.ttyname(slave)]) == 2
    finally:
        os.close(slave)
        os.close(master)
    err = capsys.readouterr().err
    assert "no identification (I line)" in err and "baud rate" in err
    assert "running the mcu-anomaly firmware app" in err and "pio run -e uno -t upload" in err


def test_port_options(saved, tmp_path, capsys):
    with pytest.raises(SystemExit):
        cli.main(["verify", str(saved), "--port", "/dev/null", "--target", "uno"])
    assert "not allowed with argument" in capsys.readouterr().err
    assert cli.main(["verify", str(saved), "--baud", "9600"]) == 2
    assert "--baud is the speed of --port" in capsys.readouterr().err
    assert cli.main(["verify", str(saved), "--port", str(tmp_path / "ttyNONE")]) == 2
    assert "cannot open" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["verify", "--help"])
    shown = " ".join(capsys.readouterr().out.split())
    assert f"with --port {cli.PORT_SAMPLES}" in shown
