"""Model names whose generated headers would take the name of a system header are refused;
the list of taken names covers every top-level header of the toolchains installed here."""

import re
import subprocess
from pathlib import Path

import pytest

from codegen.emit import headers
from codegen.emit import render as emit
from codegen.emit.cnames import check_model_name, generated_headers
from codegen.errors import UserError
from codegen.training import train as training
from host_sim.targets import ARDUINO_CORE

from support import require, require_tool

IDENTIFIER = re.compile(r"[A-Za-z][A-Za-z0-9_]*\Z")
# Directories of the host's compilers that hold other packages' headers too (zlib.h, ...):
# the C library's part of them is read from its package instead.
SHARED_DIRS = re.compile(r"^/usr(/local)?/include(/[^/]*-linux-gnu)?/?$")


@pytest.mark.parametrize("name, header", [
    ("math", "math.h"), ("stdint", "stdint.h"), ("string", "string.h"),
    ("Arduino", "Arduino.h"), ("arduino", "arduino.h"), ("STDIO", "STDIO.h"),
    ("WString", "WString.h"), ("HardwareSerial", "HardwareSerial.h"), ("Wire", "Wire.h"),
    ("Servo", "Servo.h"), ("EEPROM", "EEPROM.h"), ("features", "features.h"),
    ("newlib", "newlib.h"), ("immintrin", "immintrin.h"), ("windows", "windows.h"),
])
def test_a_model_name_that_is_a_header_name_is_refused(name, header):
    with pytest.raises(UserError) as error:
        check_model_name(name)
    message = str(error.value)
    assert f"gives the header {header}" in message and "--name" in message


@pytest.mark.parametrize("name", ["sensors", "plant", "model", "mathematics", "string_1"])
def test_other_names_pass(name):
    assert check_model_name(name) == name


def _top_level(directory: Path) -> set[str]:
    return {p.name for p in directory.glob("*.h")}


def _search_dirs(command: list[str]) -> list[Path]:
    out = subprocess.run([*command, "-xc", "-E", "-v", "-"], input="", capture_output=True,
                         text=True).stderr
    listed = out.split("#include <...> search starts here:")[1].split("End of search list.")[0]
    return [Path(line.strip()) for line in listed.splitlines()
            if line.strip() and not SHARED_DIRS.match(str(Path(line.strip()).resolve()))]


def _uncovered(names: set[str]) -> list[str]:
    return sorted(n for n in names
                  if IDENTIFIER.match(n.removesuffix(".h")) and headers.origin(n) is None)


@pytest.mark.parametrize("compiler", [
    ["gcc"], ["clang"], ["avr-gcc"], ["arm-none-eabi-gcc"],
    ["riscv64-unknown-elf-gcc", "--specs=picolibc.specs"],
])
def test_every_toolchain_header_is_taken(compiler):
    require_tool(compiler[0])
    found = set().union(*(_top_level(d) for d in _search_dirs(compiler)))
    assert found and _uncovered(found) == []


def test_every_c_library_header_of_the_host_is_taken():
    require_tool("dpkg")
    files = subprocess.run(["dpkg", "-L", "libc6-dev"], capture_output=True, text=True).stdout
    found = {Path(f).name for f in files.split()
             if re.fullmatch(r"/usr/include/([^/]*-linux-gnu/)?[^/]*\.h", f)}
    assert found and _uncovered(found) == []


def test_every_arduino_core_and_library_header_is_taken():
    require(ARDUINO_CORE.is_dir(), f"the Arduino core {ARDUINO_CORE}")
    avr = ARDUINO_CORE.parents[1]
    found = _top_level(ARDUINO_CORE) | _top_level(avr / "variants" / "standard")
    for library in (avr / "libraries").glob("*/src"):
        found |= _top_level(library)
    assert len(found) > 20 and _uncovered(found) == []


def test_every_file_named_after_the_model_is_checked(iot):
    bundle = training.train(iot, ["zscore", "moving_average"], {}, 0, "m", verbose=False)
    named = {f for f in emit.render(bundle) if not f.startswith("mcua_")}
    assert named == {"m.h", "m_channels.h", "m_zscore.h", "m_moving_average.h"}
    assert named <= set(generated_headers("m"))
