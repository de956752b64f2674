"""Offline firmware path: pio builds uno, cortex_m4f and rv32imc, the simulators run
them, and every target prints the float32 bits numpy computes.

Needs host_sim.targets.APT_PACKAGES and PIP_PACKAGES; skips an environment only
when one of its tools is absent.
"""

import functools
import shutil
import subprocess
import sys
import textwrap

import numpy as np
import pytest

from host_sim import targets

# Mirror of the placeholder in firmware_targets/generated (placeholder_dot.c,
# mcua_bench.h).  When the generator replaces that directory, compare with the
# Python reference detector instead.
WEIGHTS = np.array([0.5, -1.25, 0.003, 0.1], dtype=np.float32)
BIAS = np.float32(0.3)
THRESHOLD = np.float32(1.0)
INPUTS = np.array(
    [
        [1.0, 2.0, 3.0, 4.0],
        [0.333333343, -0.1, 1234.5678, 7.0e-4],
        [0.1, 0.1, 0.9, 5.5],
        [-2.5, -3.75, 0.0, 1.0e-3],
        [3.14159274, 2.71828175, -1.41421354, 1.0e10],
    ],
    dtype=np.float32,
)


def reference(x):
    """(score bits, flag) of the placeholder: float32, no fused multiply-add, index order."""
    score = BIAS
    for w, v in zip(WEIGHTS, x):
        score = np.float32(score + np.float32(w * v))
    return int(score.view(np.uint32)), int(score > THRESHOLD)


def require(env):
    missing = targets.missing_tools(env)
    if missing:
        pytest.skip(f"{env}: missing {', '.join(missing)}")


@functools.cache
def built(env):
    require(env)
    return targets.build(env)


@pytest.mark.parametrize("env", targets.OFFLINE_ENVS)
def test_firmware_prints_numpy_bits(env):
    elf = built(env)
    result = targets.run(env, elf)
    assert result.exit_code == 0, result.stdout_lines
    lines = targets.parse_output(result.stdout_lines)
    assert [(r.score_bits, r.flag) for r in lines] == [reference(x) for x in INPUTS]


def test_uno_reports_exact_cycles():
    result = targets.run("uno", built("uno"))
    assert result.cycles is not None and len(result.cycles) == len(INPUTS)
    # Software float on an 8-bit core: hundreds to thousands of cycles a call.
    assert all(100 < c < 100_000 for c in result.cycles), result.cycles


@pytest.mark.parametrize("env", ["cortex_m4f", "rv32imc"])
def test_qemu_instruction_counts(env):
    counts = targets.instruction_count(env, built(env))
    assert len(counts) == len(INPUTS)
    assert all(10 < c < 100_000 for c in counts), counts


@pytest.mark.parametrize("env", targets.OFFLINE_ENVS)
def test_size(env):
    flash, ram = targets.size(env, built(env))
    assert 0 < flash and 0 < ram
    if env == "uno":
        assert flash <= 32256 and ram <= 2048


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


def test_offline_build_makes_no_network_attempt(tmp_path):
    for env in targets.OFFLINE_ENVS:
        require(env)
    hook_dir = tmp_path / "hook"
    hook_dir.mkdir()
    (hook_dir / "sitecustomize.py").write_text(_AUDIT_HOOK)
    log = tmp_path / "network.log"
    core_dir = tmp_path / "core"  # fresh: holds only what install_offline_platformio makes
    targets.install_offline_platformio(core_dir)
    environ = targets.pio_environ(workspace_dir=tmp_path / "workspace", core_dir=core_dir)
    environ["PYTHONPATH"] = str(hook_dir)
    environ["MCUA_NET_AUDIT_LOG"] = str(log)

    # The hook does see a lookup: an empty log below is evidence, not silence.
    probe = [sys.executable, "-c", "import socket; socket.getaddrinfo('localhost', 80)"]
    subprocess.run(probe, env=environ, check=True)
    assert "socket.getaddrinfo" in log.read_text()
    log.unlink()

    env_args = [arg for env in targets.OFFLINE_ENVS for arg in ("-e", env)]
    proc = subprocess.run(
        _no_network_prefix()
        + targets.pio_command()
        + ["run", "-d", str(targets.PROJECT_DIR)]
        + env_args,
        env=environ,
        stdin=subprocess.DEVNULL,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert not log.exists(), log.read_text()
    for env in targets.OFFLINE_ENVS:
        assert (tmp_path / "workspace" / "build" / env / "firmware.elf").is_file()
