"""Offline firmware path: pio builds uno, cortex_m4f and rv32imc from generated sources,
the simulators run them and measure them, and building makes no network attempt.

Needs host_sim.targets.APT_PACKAGES and PIP_PACKAGES (support.require_env: a missing tool
skips, or fails under `make test`).  On-target parity at scale: test_firmware_parity.py.
"""

import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from codegen.firmware import OFFLINE_ENVS
from codegen.firmware import sources as firmware
from host_sim import targets
from support import ROOT, reference, require_env

pytestmark = pytest.mark.firmware

VECTORS = np.array(
    [
        [1.0, 2.0, 3.0],
        [0.333333343, -0.1, 1234.5678],
        [0.1, 0.1, 0.9],
        [np.nan, -3.75, 0.0],
        [3.14159274, 2.71828175, 1.0e-40],
    ],
    dtype=np.float32,
)


@pytest.fixture(scope="module")
def built(iot_bundle, tmp_path_factory):
    """env -> ELF of the app with the iot bundle's four detectors and VECTORS."""
    generated = tmp_path_factory.mktemp("firmware") / "generated"
    firmware.write(firmware.render(iot_bundle, VECTORS), generated)
    workspace = tmp_path_factory.mktemp("workspace")
    elves = {}

    def build(env):
        require_env(env)
        if env not in elves:
            elves[env] = targets.build(env, generated_dir=generated, workspace_dir=workspace)
        return elves[env]

    return build


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_firmware_prints_the_reference_bits(env, built, iot_bundle):
    result = targets.run(env, built(env))
    assert result.exit_code == 0, result.stdout_lines
    out = targets.parse_output(result.stdout_lines)
    assert (out.model, out.n_channels, out.detectors) == ("sensors", 3, list(iot_bundle.detectors))
    scores, flags = reference(iot_bundle, VECTORS)
    expected = [(d, s, int(scores[d, s].view(np.uint32)), int(flags[d, s]))
                for s in range(len(VECTORS)) for d in range(len(iot_bundle.detectors))]
    assert [(r.detector, r.sample, r.score_bits, r.flag) for r in out.results] == expected
    assert out.answers == []


@pytest.mark.firmware(group="uno")
def test_uno_reports_exact_cycles(built, iot_bundle):
    result = targets.run("uno", built("uno"))
    calls = len(VECTORS) * len(iot_bundle.detectors)
    assert result.cycles is not None and len(result.cycles) == calls
    # Software float on an 8-bit core: hundreds to thousands of cycles a call.
    assert all(20 < c < 100_000 for c in result.cycles), result.cycles


@pytest.mark.parametrize("env", ["cortex_m4f", "rv32imc"])
def test_qemu_instruction_counts(env, built, iot_bundle):
    counts = targets.instruction_count(env, built(env))
    assert len(counts) == len(VECTORS) * len(iot_bundle.detectors)
    assert all(5 < c < 100_000 for c in counts), counts


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_size(env, built):
    flash, ram = targets.size(env, built(env))
    assert 0 < flash and 0 < ram
    if env == "uno":
        assert flash <= 32256 and ram <= 2048


def test_build_without_generated_sources_says_how_to_make_them(tmp_path):
    require_env("uno")
    with pytest.raises(targets.FirmwareError, match="mcu-anomaly generate BUNDLE --firmware"):
        targets.build("uno", generated_dir=tmp_path, workspace_dir=tmp_path / "workspace")


# Logs every Python-level name lookup or connection, in pio and its SCons child.
_AUDIT_HOOK = textwrap.dedent(
    """
    import os, socket, sys

    _EVENTS = {"socket.connect", "socket.getaddrinfo", "socket.gethostbyname",
               "socket.gethostbyname_ex", "socket.gethostbyaddr", "socket.sendto",
               "socket.sendmsg"}

    def _hook(event, args, _log=os.environ["MCUA_NET_AUDIT_LOG"]):
        if event in _EVENTS and not (
            event == "socket.connect" and args[0].family == socket.AF_UNIX
        ):
            with open(_log, "a") as log:
                log.write(f"{os.getpid()} {event} {args[1:]!r}\\n")

    sys.addaudithook(_hook)
    """
)


def _no_network_prefix():
    """`unshare -n` (a network namespace without interfaces) where it is allowed."""
    unshare = shutil.which("unshare")
    if unshare and subprocess.run([unshare, "-n", "true"]).returncode == 0:
        return [unshare, "-n"]
    return []


def test_offline_build_makes_no_network_attempt(tmp_path, iot_bundle):
    for env in OFFLINE_ENVS:
        require_env(env)
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(_AUDIT_HOOK)
    log = tmp_path / "network.log"
    core_dir = tmp_path / "core"  # fresh: holds only what install_offline_platformio makes
    targets.install_offline_platformio(core_dir)
    # What `mcu-anomaly generate BUNDLE --firmware` writes: no test vectors.
    generated = firmware.write(firmware.render(iot_bundle), tmp_path / "generated")
    environ = targets.pio_environ(generated_dir=generated, workspace_dir=tmp_path / "workspace",
                                  core_dir=core_dir)
    environ["PYTHONPATH"] = str(hook_dir)
    environ["MCUA_NET_AUDIT_LOG"] = str(log)

    # The hook does see a lookup: an empty log below is evidence, not silence.
    probe = [sys.executable, "-c", "import socket; socket.getaddrinfo('localhost', 80)"]
    subprocess.run(probe, env=environ, check=True)
    assert "socket.getaddrinfo" in log.read_text()
    log.unlink()

    env_args = [arg for env in OFFLINE_ENVS for arg in ("-e", env)]
    proc = subprocess.run(
        _no_network_prefix()
        + targets.pio_command()
        + ["run", "-d", str(ROOT)]
        + env_args,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not log.exists(), log.read_text()
    for env in OFFLINE_ENVS:
        assert (tmp_path / "workspace" / "build" / env / "firmware.elf").is_file()
