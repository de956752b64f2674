"""Constants that Python and the C runtime (or two config files) must agree on.

Each value lives in one place where it can; where C needs its own copy, a test here reads
the `#define` from the runtime header and compares it with the Python twin.
"""

from __future__ import annotations

import configparser
import json
import re
import tomllib
from pathlib import Path

import numpy as np
import pytest

from codegen.bench import firmware as bench
from codegen.bench import peers
from codegen.cli import build_parser
from codegen.detectors import f32math, gmm, isolation_forest, streaming_zscore, window
from codegen.emit import render as emit
from codegen.firmware import OFFLINE_ENVS, memory, sources
from codegen.verify import serial_port
from host_sim import targets
from support import require

ROOT = Path(__file__).resolve().parents[1]
_INT = re.compile(r"(0[xX][0-9a-fA-F]+|[1-9][0-9]*|0)[uUlL]*\Z")
_FLOAT = re.compile(r"((?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?)[fF]?\Z")


def parse_literal(text: str) -> int | float:
    """The value of a C integer (decimal or hex, any u/l suffix) or float literal."""
    if match := _INT.match(text):
        return int(match[1], 0)
    if match := _FLOAT.match(text):
        return float(match[1])
    raise ValueError(f"not a C number literal: {text!r}")


def runtime_define(header: str, name: str) -> int | float:
    """The value of `#define NAME value` in codegen/runtime/<header>."""
    text = (emit.RUNTIME / header).read_text()
    values = re.findall(rf"^[ \t]*#[ \t]*define[ \t]+{name}[ \t]+([^\s/]+)", text, re.M)
    assert len(values) == 1, f"{header} defines {name} {len(values)} times"
    return parse_literal(values[0])


def _makefile_apt_packages() -> set[str]:
    text = (ROOT / "Makefile").read_text().replace("\\\n", " ")
    return set(re.search(r"^APT_PACKAGES\s*:=(.*)$", text, re.M)[1].split())


def _platformio_ini() -> configparser.ConfigParser:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "platformio.ini")
    return ini


def test_parse_literal():
    assert parse_literal("0x8000u") == 0x8000
    assert parse_literal("32768UL") == 32768
    assert parse_literal("2") == 2
    assert parse_literal("1e15f") == 1e15
    assert parse_literal("0.5f") == 0.5


def test_runtime_version():
    assert runtime_define("mcua_common.h", "MCUA_RUNTIME_VERSION") == emit.RUNTIME_VERSION


def test_window_max_deviation_as_float32():
    c_value = np.float32(runtime_define("mcua_window.h", "MCUA_WINDOW_MAX_DEVIATION"))
    assert window.MAX_DEVIATION.dtype == np.float32
    assert c_value.view(np.uint32) == window.MAX_DEVIATION.view(np.uint32)


def test_streaming_zscore_absorb_limit():
    assert runtime_define("mcua_streaming_zscore.h", "MCUA_STREAMING_ZSCORE_ABSORB_LIMIT") == \
        streaming_zscore.ABSORB_LIMIT


def test_window_restart():
    assert runtime_define("mcua_window.h", "MCUA_WINDOW_RESTART") == window.RESTART


def test_isolation_forest_leaf():
    assert runtime_define("mcua_isolation_forest.h", "MCUA_IFOREST_LEAF") == isolation_forest.LEAF


def test_f32math_constants():
    """The C's #defines are the Python mirror's float32 constants, bit for bit."""
    floats = {"MCUA_LOG2E": f32math.LOG2E, "MCUA_LN2_HI": f32math.LN2_HI,
              "MCUA_LN2_LO": f32math.LN2_LO}
    floats.update({f"MCUA_EXP_Q{i}": c for i, c in enumerate(f32math.EXP_Q)})
    floats.update({f"MCUA_LOG_L{i + 1}": c for i, c in enumerate(f32math.LOG_L)})
    for name, value in floats.items():
        c_value = np.float32(runtime_define("mcua_f32math.c", name))
        assert c_value.view(np.uint32) == value.view(np.uint32), name
    assert runtime_define("mcua_f32math.c", "MCUA_EXP_MAX_BITS") == f32math.EXP_MAX.view(np.uint32)
    assert runtime_define("mcua_f32math.c", "MCUA_EXP_MIN_BITS") == \
        (-f32math.EXP_MIN).view(np.uint32)
    assert runtime_define("mcua_f32math.c", "MCUA_SQRT2_MANTISSA") == \
        f32math.SQRT2_BITS & 0x007FFFFF
    assert runtime_define("mcua_f32math.c", "MCUA_NAN_BITS") == f32math.NAN_BITS


def test_gmm_negligible_term():
    c_value = -np.float32(runtime_define("mcua_gmm.c", "MCUA_GMM_NEGLIGIBLE"))
    assert c_value.view(np.uint32) == gmm.NEGLIGIBLE.view(np.uint32)


def test_uno_flash_limit_is_the_board_file():
    """Target.chunk_size (host_sim/firmware_target.py) sizes the Uno's test vectors by
    targets.flash_limit("uno"), which must be the maximum_size of the board that
    platformio.ini's env:uno builds for."""
    board = _platformio_ini()["env:uno"]["board"]
    board_file = ROOT / "firmware_targets/platforms/mcua_offline/boards" / f"{board}.json"
    assert targets.flash_limit(board) == json.loads(board_file.read_text())["upload"]["maximum_size"]


def test_board_limits_are_the_board_files():
    """codegen.firmware.memory checks a bundle against each offline board's RAM and flash,
    the maximum_ram_size and maximum_size of the board platformio.ini's env builds for."""
    assert set(memory.BOARDS) == set(OFFLINE_ENVS)
    for env, limits in memory.BOARDS.items():
        board = _platformio_ini()[f"env:{env}"]["board"]
        upload = json.loads((ROOT / "firmware_targets/platforms/mcua_offline/boards"
                             / f"{board}.json").read_text())["upload"]
        assert (limits.ram, limits.flash) == (upload["maximum_ram_size"], upload["maximum_size"])


def test_the_apps_line_buffer_is_the_estimates():
    """memory.parts counts the app's serial line buffer as 24 B per channel plus 9."""
    app = (ROOT / "firmware_targets/app/mcua_app.c").read_text()
    assert "#define LINE_MAX (MCUA_FW_N_CHANNELS * 24 + 8)" in app
    assert "static char rx_line[LINE_MAX + 1];" in app


def test_the_serial_link_is_the_apps(capsys):
    """verify --port talks at the baud rate the Arduino port opens Serial with (and `pio
    device monitor` uses), and keeps no more unread bytes on the Uno than the Arduino core's
    receive ring holds (SERIAL_RX_BUFFER_SIZE, one slot kept free; 64 with >= 1 KB RAM)."""
    port = (ROOT / "firmware_targets/app/port_arduino.cpp").read_text()
    assert f"Serial.begin({serial_port.BAUD});" in port
    assert _platformio_ini()["env"]["monitor_speed"] == str(serial_port.BAUD)
    with pytest.raises(SystemExit):
        build_parser().parse_args(["verify", "--help"])
    assert f"(default {serial_port.BAUD}, the app's)" in " ".join(capsys.readouterr().out.split())
    header = targets.ARDUINO_CORE / "HardwareSerial.h"
    require(header.is_file(), str(header))
    sizes = re.findall(r"#define SERIAL_RX_BUFFER_SIZE (\d+)", header.read_text())
    assert serial_port.RX_ROOM == max(int(n) for n in sizes) - 1


def test_makefile_installs_every_firmware_apt_package():
    assert set(targets.APT_PACKAGES) <= _makefile_apt_packages()


def test_firmware_extra_is_the_firmware_pip_packages():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["firmware"] == targets.PIP_PACKAGES


def test_peers_extra_is_the_emlearn_the_bench_names_and_make_installs_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    assert pyproject["project"]["optional-dependencies"]["peers"] == [peers.PIP_PACKAGE]
    extras = re.search(r"pip install -q -e '\.\[([\w,]+)\]'", (ROOT / "Makefile").read_text())
    assert "peers" in extras[1].split(",")


def test_fleet_extra_holds_what_the_fleet_imports_and_make_installs_it():
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    extra = pyproject["project"]["optional-dependencies"]["fleet"]
    names = {re.match(r"[\w-]+(\[\w+\])?", p)[0] for p in extra}
    assert names == {"joblib", "dask[distributed]", "pyarrow", "psutil"}
    imported = set(re.findall(r'require\("(\w+)', "".join(
        p.read_text() for p in (ROOT / "codegen" / "fleet").glob("*.py"))))
    assert imported == {"joblib", "distributed", "pyarrow"}  # psutil: the bench's, optional
    extras = re.search(r"pip install -q -e '\.\[([\w,]+)\]'", (ROOT / "Makefile").read_text())
    assert "fleet" in extras[1].split(",")


def test_offline_envs_are_platformio_ini_and_cli():
    ini = _platformio_ini()
    offline = tuple(s.removeprefix("env:") for s in ini.sections()
                    if s.startswith("env:") and ini[s].get("platform") == "${offline.platform}")
    assert offline == OFFLINE_ENVS
    default_envs = tuple(e.strip() for e in ini["platformio"]["default_envs"].split(","))
    assert default_envs == OFFLINE_ENVS
    assert set(bench.COUNTER) == set(OFFLINE_ENVS)

    parser = build_parser()
    args = parser.parse_args(["bench"])
    assert args.targets == ",".join(OFFLINE_ENVS)
    for env in OFFLINE_ENVS:
        assert parser.parse_args(["verify", "b.json", "--target", env]).target == env
    with pytest.raises(SystemExit):  # in platformio.ini, but no simulator runs it
        parser.parse_args(["verify", "b.json", "--target", "esp32dev"])


def test_platformio_script_reads_what_python_writes(tmp_path):
    """firmware_targets/scripts/generated_sources.py runs inside PlatformIO and cannot import
    codegen: it repeats the generated directory's variable and marker file."""
    script = (ROOT / "firmware_targets/scripts/generated_sources.py").read_text()
    environ = targets.pio_environ(generated_dir=tmp_path)
    variable = next(k for k, v in environ.items() if v == str(tmp_path.resolve()))
    assert f'os.environ.get("{variable}")' in script
    assert f'"{sources.FIRMWARE_HEADER}"' in script
