"""Build the firmware with PlatformIO and run it in simulators, offline.

Offline environments (platformio.ini): ``uno`` (ATmega328P, simavr with exact
cycle counts), ``cortex_m4f`` (qemu-system-arm mps2-an386) and ``rv32imc``
(qemu-system-riscv32 virt), both qemu targets with semihosting and exact
instruction counts from qemu's exec trace.  Firmware output is parsed with
:func:`parse_output`; the line format is in firmware_targets/README.md.
"""

from __future__ import annotations

import bisect
import fcntl
import hashlib
import importlib.util
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from importlib.resources import as_file, files
from pathlib import Path

from codegen.firmware.lines import Result, parse_done, parse_info, parse_result
from codegen.resources import firmware_project

SIMAVR_RUNNER_SOURCE = files("host_sim") / "simavr_runner.c"

# Debian packages of the firmware path (run `apt-get update` first).
APT_PACKAGES = [
    "gcc",
    "gcc-avr",
    "avr-libc",
    "arduino-core-avr",
    "avrdude",
    "simavr",
    "libsimavr-dev",
    "gcc-arm-none-eabi",
    "libnewlib-arm-none-eabi",
    "gcc-riscv64-unknown-elf",
    "picolibc-riscv64-unknown-elf",
    "qemu-system-arm",
    "qemu-system-misc",
]
# PlatformIO 6.2.0 asks for core package tool-scons ~4.41101.0, its name for
# SCons 4.11.1; install_offline_platformio() makes it from PyPI's scons.
SCONS_VERSION = "4.11.1"
TOOL_SCONS_VERSION = "4.41101.0"
# PyPI packages, installed into the Python that runs this module.
PIP_PACKAGES = ["platformio==6.2.0", f"scons=={SCONS_VERSION}"]

_BINUTILS_PREFIX = {"uno": "avr", "cortex_m4f": "arm-none-eabi", "rv32imc": "riscv64-unknown-elf"}
_QEMU = {
    "cortex_m4f": ["qemu-system-arm", "-M", "mps2-an386"],
    "rv32imc": ["qemu-system-riscv32", "-machine", "virt", "-bios", "none"],
}
# Semihosting console on stdout: without the chardev, qemu prints the console
# output (picolibc's stdout on rv32imc) on stderr.
_QEMU_COMMON = [
    "-display", "none", "-serial", "none", "-monitor", "none",
    "-chardev", "stdio,id=semihost",
    "-semihosting-config", "enable=on,target=native,chardev=semihost",
]
_PIO_ENVIRON = {
    "PLATFORMIO_SETTING_ENABLE_TELEMETRY": "No",
    "PLATFORMIO_SETTING_CHECK_PLATFORMIO_INTERVAL": "36500",
    "PLATFORMIO_NO_ANSI": "true",
}
_AVR_MCU, _AVR_HZ = "atmega328p", 16_000_000
AVR_RAM_START = 0x100  # the ATmega328P's first data address of RAM: .data, then .bss
# Simulated time without UART traffic after which the Uno is taken to have
# answered an input line (or finished): far above any detector's run time.
UNO_QUIET_MS = 20
ARDUINO_CORE = Path("/usr/share/arduino/hardware/arduino/avr/cores/arduino")


class FirmwareError(RuntimeError):
    """A firmware build, simulation or tool set-up failed."""


def default_core_dir() -> Path:
    """PlatformIO's core directory, platformio.ini's [platformio] core_dir."""
    return firmware_project() / ".pio-core"


def offline_platform() -> Path:
    """The project's PlatformIO platform (firmware_targets/platforms/mcua_offline)."""
    return firmware_project() / "firmware_targets" / "platforms" / "mcua_offline"


def boards_dir() -> Path:
    return offline_platform() / "boards"


@dataclass
class RunResult:
    stdout_lines: list[str]
    cycles: list[int] | None  # per measured call; uno only
    exit_code: int
    sp_min: int | None = None  # uno: the lowest data address the stack pointer reached


@dataclass
class Output:
    """A firmware run's output: the I line's fields, the results of the test vectors
    (checked complete and in order), and every line after DONE (answers to input)."""

    model: str
    n_channels: int
    detectors: list[str]
    results: list[Result]
    answers: list[str]


def parse_output(lines: list[str]) -> Output:
    """Parse a firmware run (format in firmware_targets/README.md); ValueError if the
    I line or DONE is missing, or the vector results are malformed or out of order."""
    lines = [line.rstrip("\r") for line in lines]
    start = next((i for i, line in enumerate(lines) if parse_info(line)), None)
    if start is None:
        raise ValueError("firmware output has no I line")
    info = parse_info(lines[start])
    results: list[Result] = []
    for number, line in enumerate(lines[start + 1:], start + 1):
        count = parse_done(line)
        if count is not None:
            expected = [(s, d) for s in range(count) for d in range(len(info.detectors))]
            if [(r.sample, r.detector) for r in results] != expected:
                raise ValueError(f"{line!r} does not match the {len(results)} result lines "
                                 f"of {len(info.detectors)} detectors before it")
            return Output(*info, results, lines[number + 1:])
        result = parse_result(line)
        if result is None:
            raise ValueError(f"unexpected firmware output line {line!r}")
        results.append(result)
    raise ValueError("firmware output ends without a DONE line")


def missing_tools(env: str) -> list[str]:
    """What this machine lacks to build and run `env` (empty when all is there)."""
    missing = [m for m in ("platformio", "SCons") if importlib.util.find_spec(m) is None]
    prefix = _BINUTILS_PREFIX[env]
    missing += [t for t in (prefix + "-gcc", prefix + "-size", prefix + "-nm", prefix + "-objdump")
                if not shutil.which(t)]
    if env == "uno":
        if not ARDUINO_CORE.is_dir():
            missing.append(str(ARDUINO_CORE))
        if not Path("/usr/include/simavr/sim_avr.h").is_file():
            missing.append("libsimavr-dev")
        if not shutil.which("gcc"):
            missing.append("gcc")
    else:
        if not shutil.which(_QEMU[env][0]):
            missing.append(_QEMU[env][0])
    return missing


def install_offline_platformio(core_dir: Path | None = None) -> Path:
    """Provide PlatformIO's core package tool-scons from the installed PyPI scons.

    Otherwise `pio run` downloads it from PlatformIO's registry.  The package
    needs `.piopm` with spec.owner "platformio", or pio does not find it.
    Idempotent; returns the package directory.
    """
    try:
        scons = importlib.import_module("SCons")
    except ImportError:
        scons = None
    if scons is None or scons.__version__ != SCONS_VERSION:
        raise FirmwareError(f"PlatformIO 6.2.0 needs SCons {SCONS_VERSION}: pip install scons=={SCONS_VERSION}")
    scons_src = Path(scons.__file__).parent

    meta = {
        "type": "tool",
        "name": "tool-scons",
        "version": TOOL_SCONS_VERSION,
        "spec": {"owner": "platformio", "id": None, "name": "tool-scons",
                 "requirements": None, "uri": None},
    }
    package = Path(core_dir or default_core_dir()) / "packages" / "tool-scons"
    piopm = package / ".piopm"
    if piopm.is_file() and json.loads(piopm.read_text()) == meta:
        return package

    staging = package.with_name(".tool-scons.tmp")
    shutil.rmtree(staging, ignore_errors=True)
    shutil.copytree(scons_src, staging / "SCons", ignore=shutil.ignore_patterns("__pycache__"))
    (staging / "scons.py").write_text(
        "import os, sys\n"
        "sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))\n"
        "from SCons.Script import main\n"
        "main()\n"
    )
    (staging / "package.json").write_text(
        json.dumps({"name": "tool-scons", "version": TOOL_SCONS_VERSION})
    )
    (staging / ".piopm").write_text(json.dumps(meta))
    shutil.rmtree(package, ignore_errors=True)
    staging.rename(package)
    return package


def offline_uno_config(core_dir: Path | None = None) -> str:
    """platformio.ini sections with which a project anywhere builds for the Uno offline,
    through this repository's platform (an absolute symlink://) and a core directory
    holding tool-scons, installed there first (docs/library.md)."""
    core = Path(core_dir or default_core_dir()).resolve()
    install_offline_platformio(core)
    return (f"[platformio]\ncore_dir = {core}\n\n"
            f"[env:uno]\nplatform = symlink://{offline_platform()}\nboard = uno\n"
            f"framework = arduino\n")


def flash_limit(board: str) -> int:
    """Flash a firmware may take on an offline board: its upload.maximum_size."""
    return json.loads((boards_dir() / f"{board}.json").read_text())["upload"]["maximum_size"]


def pio_command() -> list[str]:
    if importlib.util.find_spec("platformio") is not None:
        return [sys.executable, "-m", "platformio"]
    pio = shutil.which("pio")
    if pio is None:
        raise FirmwareError(f"PlatformIO is not installed: pip install {PIP_PACKAGES[0]}")
    return [pio]


def pio_environ(
    generated_dir: Path | None = None,
    workspace_dir: Path | None = None,
    core_dir: Path | None = None,
    include_dirs: tuple = (),
    build_flags: tuple = (),
) -> dict[str, str]:
    """Environment for `pio run`: no telemetry or update check, optional overrides;
    include_dirs: more include directories for the generated sources; build_flags: flags
    after the environment's own (for GCC the last -O, -std, -ffp-contract wins)."""
    environ = dict(os.environ, **_PIO_ENVIRON)
    for name in ("MCUA_INCLUDE_DIRS", "PLATFORMIO_BUILD_FLAGS"):
        environ.pop(name, None)
    if include_dirs:
        environ["MCUA_INCLUDE_DIRS"] = os.pathsep.join(str(Path(d).resolve())
                                                       for d in include_dirs)
    if build_flags:
        environ["PLATFORMIO_BUILD_FLAGS"] = " ".join(build_flags)
    for name, value in (
        ("MCUA_GENERATED_DIR", generated_dir),
        ("PLATFORMIO_WORKSPACE_DIR", workspace_dir),
        ("PLATFORMIO_CORE_DIR", core_dir),
    ):
        if value is not None:
            environ[name] = str(Path(value).resolve())
    return environ


def build(
    env: str,
    generated_dir: Path | None = None,
    workspace_dir: Path | None = None,
    core_dir: Path | None = None,
    timeout: float = 600,
    include_dirs: tuple = (),
    project_dir: Path | None = None,
    build_flags: tuple = (),
) -> Path:
    """`pio run -e env` in project_dir (default: this repository's firmware); returns the
    ELF.  generated_dir defaults to firmware_targets/generated; include_dirs: more include
    directories for the generated sources; build_flags: appended to the environment's.

    One build at a time per core directory, across processes: PlatformIO links the
    platform and packages into it on first use, and two first uses at once break it."""
    project_dir = Path(project_dir or firmware_project())
    core = Path(core_dir or default_core_dir())
    core.mkdir(parents=True, exist_ok=True)
    with open(core / ".mcua-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        install_offline_platformio(core)
        proc = subprocess.run(
            pio_command() + ["run", "-e", env, "-d", str(project_dir)],
            env=pio_environ(generated_dir, workspace_dir, core_dir, include_dirs, build_flags),
            stdin=subprocess.DEVNULL,
            capture_output=True,
            text=True,
            timeout=timeout,
        )
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).splitlines()[-40:])
        raise FirmwareError(f"pio run -e {env} failed (exit {proc.returncode}):\n{tail}")
    elf = Path(workspace_dir or project_dir / ".pio") / "build" / env / "firmware.elf"
    if not elf.is_file():
        raise FirmwareError(f"pio run -e {env} succeeded but made no {elf}")
    return elf


def build_simavr_runner(cache_dir: Path | None = None) -> Path:
    """Compile host_sim/simavr_runner.c against libsimavr (cached by source hash, by
    default in the project's .pio/host_sim)."""
    source = SIMAVR_RUNNER_SOURCE.read_bytes()
    cache = Path(cache_dir or firmware_project() / ".pio" / "host_sim")
    binary = cache / f"simavr_runner-{hashlib.sha256(source).hexdigest()[:12]}"
    if binary.is_file():
        return binary
    binary.parent.mkdir(parents=True, exist_ok=True)
    staging = binary.with_suffix(f".{os.getpid()}.tmp")  # several processes may build it
    with as_file(SIMAVR_RUNNER_SOURCE) as path:
        proc = subprocess.run(
            ["gcc", "-O2", "-Wall", "-I/usr/include/simavr", str(path), "-lsimavr", "-o",
             str(staging)],
            capture_output=True,
            text=True,
        )
    if proc.returncode != 0:
        raise FirmwareError(f"cannot build simavr_runner (needs libsimavr-dev):\n{proc.stderr}")
    os.replace(staging, binary)
    return binary


def run(env: str, elf: Path, input_lines: list[str] | None = None,
        timeout: float = 600, profile: Path | None = None) -> RunResult:
    """Run the firmware in its simulator until it stops; stdout lines as printed.

    profile (uno only): where simavr_runner writes the profile of the marked calls (-P;
    function_profile reads it).

    On the Uno, input_lines go to the serial line protocol one at a time, each once
    the firmware has answered the previous one.  The Uno never stops by itself: the
    run ends once it has been quiet for UNO_QUIET_MS after the last input.  The qemu
    targets take no input (the app returns after its test vectors).
    """
    if env == "uno":
        with tempfile.TemporaryDirectory() as tmp:
            feed = Path(tmp) / "input.txt"
            feed.write_text("".join(line + "\n" for line in input_lines or []))
            # Simulated seconds capped like host seconds: simavr runs faster than real time.
            cmd = [str(build_simavr_runner()), "-m", _AVR_MCU, "-f", str(_AVR_HZ),
                   "-t", str(timeout), "-q", str(UNO_QUIET_MS), "-i", str(feed)]
            cmd += ["-P", str(profile)] if profile else []
            cmd.append(str(elf))
            proc = subprocess.run(
                cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                errors="replace", timeout=timeout
            )
    elif input_lines or profile:
        raise FirmwareError(f"{env} takes no serial input and has no profile in simulation; "
                            f"use uno")
    else:
        proc = _run_qemu(_qemu_command(env, elf), timeout)
    cycles = sp_min = None
    if env == "uno":
        cycles = [int(n) for n in re.findall(r"^CYCLES (\d+)$", proc.stderr, re.M)]
        sp_min = next((int(n) for n in re.findall(r"^SP_MIN (\d+)$", proc.stderr, re.M)), None)
    return RunResult(proc.stdout.splitlines(), cycles, proc.returncode, sp_min)


def _run_qemu(cmd: list[str], timeout: float) -> subprocess.CompletedProcess:
    """Run qemu with its stdout in a regular file, not a pipe.  qemu's stdio chardev
    writes without blocking and drops what a full pipe refuses: with a reader slowed
    by a loaded machine, whole result lines went missing (measured: 18k of 100k lines
    left with a slow reader).  A file never refuses a write."""
    with tempfile.TemporaryFile("w+") as out:
        proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=out,
                              stderr=subprocess.PIPE, text=True, timeout=timeout)
        out.seek(0)
        proc.stdout = out.read()
    return proc


def _qemu_command(env: str, elf: Path) -> list[str]:
    if env not in _QEMU:
        raise FirmwareError(f"no simulator for environment {env!r}")
    return _QEMU[env] + _QEMU_COMMON + ["-kernel", str(elf)]


def symbols(env: str, elf: Path) -> dict[str, tuple[int, int]]:
    """Defined symbols of the ELF: name -> (address, size), from <prefix>-nm."""
    out = subprocess.run(
        [_BINUTILS_PREFIX[env] + "-nm", "-S", "--defined-only", str(elf)],
        capture_output=True, text=True, check=True,
    ).stdout
    table = {}
    for line in out.splitlines():
        fields = line.split()
        if len(fields) == 4:
            # Thumb function symbols have bit 0 set; qemu traces even addresses.
            table[fields[3]] = (int(fields[0], 16) & ~1, int(fields[1], 16))
    return table


@dataclass(frozen=True)
class FunctionCost:
    name: str
    cycles: int  # spent in the function's own instructions, over the whole run
    calls: int  # executions of its first instruction


def function_profile(env: str, elf: Path, profile: Path) -> list[FunctionCost]:
    """simavr_runner's profile (run(..., profile=...)) by function of the ELF, costliest
    first: where the cycles of the marked calls went, and how often each routine ran."""
    functions = sorted((address, size, name) for name, (address, size)
                       in symbols(env, elf).items() if size)
    starts = [f[0] for f in functions]
    cycles: dict[str, int] = {}
    calls: dict[str, int] = {}
    for line in profile.read_text().splitlines():
        address, spent, executed = (int(v) for v in line.split())
        i = bisect.bisect_right(starts, address) - 1
        if i < 0 or address >= functions[i][0] + functions[i][1]:
            name = f"0x{address:x}"
        else:
            name = functions[i][2]
            if address == functions[i][0]:
                calls[name] = calls.get(name, 0) + executed
        cycles[name] = cycles.get(name, 0) + spent
    return sorted((FunctionCost(n, c, calls.get(n, 0)) for n, c in cycles.items()),
                  key=lambda f: (-f.cycles, f.name))


_TRACE_PC = re.compile(r"^Trace \d+: \S+ \[[0-9a-f]+/([0-9a-f]+)/")


def instruction_count(
    env: str,
    elf: Path,
    begin: str = "mcua_mark_begin",
    end: str = "mcua_mark_end",
    timeout: float = 300,
) -> list[int]:
    """Instructions executed in each marked region, from qemu's one-instruction-per-block trace.

    A region runs from the return of `begin` to the call of `end`; in the app
    that is the measured call plus the few instructions around it (argument
    set-up, call, result stores).
    """
    table = symbols(env, elf)
    begin_lo, begin_size = table[begin]
    end_lo = table[end][0]
    counts: list[int] = []
    with tempfile.TemporaryDirectory() as tmp:
        trace = Path(tmp) / "trace.log"
        cmd = _qemu_command(env, elf) + ["-singlestep", "-d", "exec,nochain", "-D", str(trace)]
        proc = _run_qemu(cmd, timeout)
        if proc.returncode != 0:
            raise FirmwareError(f"{env} exited with {proc.returncode} under the trace")
        count = None
        with trace.open() as lines:
            for line in lines:
                match = _TRACE_PC.match(line)
                if not match:
                    continue
                pc = int(match[1], 16)
                if begin_lo <= pc < begin_lo + begin_size:
                    count = 0
                elif pc == end_lo and count is not None:
                    counts.append(count)
                    count = None
                elif count is not None:
                    count += 1
    return counts


_FUNCTION = re.compile(r"^[0-9a-f]+ <([^>]+)>:$")
_REFERENCE = re.compile(r"<([^>+]+)(?:\+0x[0-9a-f]+)?>")
# Library routines: the compiler's support calls and the C library's maths.
_LIBM = {"sqrt", "sqrtf", "exp", "expf", "log", "logf", "pow", "powf", "fabs", "fabsf",
         "floor", "floorf", "ceil", "ceilf", "ldexp", "ldexpf", "frexp", "frexpf"}
_FLOAT_ROUTINE = re.compile(r"(sf|df)\d*$|^__aeabi_[fd]|^__(fix|float)|^(" + "|".join(_LIBM) + ")$")


def float_routines(env: str, elf: Path, entry: str = "mcua_fw_detect") -> list[str]:
    """The floating-point library routines (soft-float arithmetic, conversions, libm) that
    code reachable from `entry` calls, following the program's own functions (not into the
    library's), from <prefix>-objdump's disassembly: what a detector's call pulls in when
    the app runs only that detector."""
    out = subprocess.run([_BINUTILS_PREFIX[env] + "-objdump", "-d", str(elf)],
                         capture_output=True, text=True, check=True).stdout
    calls: dict[str, set[str]] = {}
    current = None
    for line in out.splitlines():
        match = _FUNCTION.match(line)
        if match:
            current = calls.setdefault(match[1], set())
        elif current is not None and "\t" in line:
            current.update(_REFERENCE.findall(line.split(";")[-1] if ";" in line else line))
    if entry not in calls:
        raise FirmwareError(f"{elf} has no function {entry}")
    seen, todo, routines = {entry}, [entry], set()
    while todo:
        for callee in calls.get(todo.pop(), ()):
            if callee.startswith("__") or callee in _LIBM:
                routines.add(callee)
            elif callee not in seen:
                seen.add(callee)
                todo.append(callee)
    return sorted(r for r in routines if _FLOAT_ROUTINE.search(r))


def size(env: str, elf: Path) -> tuple[int, int]:
    """(flash bytes, static RAM bytes) = (text + data, data + bss) from <prefix>-size."""
    out = subprocess.run(
        [_BINUTILS_PREFIX[env] + "-size", "-B", "-d", str(elf)],
        capture_output=True, text=True, check=True,
    ).stdout
    text, data, bss = (int(v) for v in out.splitlines()[1].split()[:3])
    return text + data, data + bss
