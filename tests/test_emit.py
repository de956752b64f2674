"""The generated C: compiles everywhere without a warning, constants exact and in flash."""

import dataclasses
import re
import shutil
import subprocess

import numpy as np
import pytest

from codegen.emit import render as emit
from codegen.training import train as training

WARN = ["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-ffp-contract=off", "-Os"]
AVR = ["-mmcu=atmega328p"]
M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
COMPILERS = {
    "gcc": ["gcc", "-std=c99"],
    "clang": ["clang", "-std=c99"],
    "g++": ["g++", "-x", "c++", "-std=c++11"],
    "avr-gcc": ["avr-gcc", "-std=c99", *AVR],
    "avr-g++": ["avr-g++", "-x", "c++", "-std=c++11", *AVR],
    "arm-none-eabi-gcc": ["arm-none-eabi-gcc", "-std=c99", *M4F],
}
USE_ALL = """
#include "sensors.h"
float use_all(const float *x);
float use_all(const float *x)
{
    static sensors_streaming_zscore_state s1;
    static sensors_moving_average_state s2;
    static sensors_isolation_forest_state s3;
    uint8_t f1, f2, f3, f4, f5;
    uint16_t cluster;
    float total;
    sensors_streaming_zscore_reset(&s1);
    sensors_moving_average_reset(&s2);
    sensors_isolation_forest_reset(&s3);
    total = sensors_zscore_score(x, &f1) + sensors_kmeans_score(x, &f2, &cluster) +
            sensors_streaming_zscore_update(&s1, x, &f3) +
            sensors_moving_average_update(&s2, x, &f4) +
            sensors_isolation_forest_update(&s3, x, &f5);
    return total + (float)(f1 + f2 + f3 + f4 + f5 + cluster);
}
"""


@pytest.fixture(scope="module")
def generated(iot, iot_bundle, tmp_path_factory):
    """The iot bundle's four detectors and an isolation forest on rolling features, small
    enough for an AVR build (the raw forests: tests/test_isolation_forest.py)."""
    forest = training.train(iot, ["isolation_forest"], {"isolation_forest": {
        "features": "rolling", "n_trees": 10, "max_samples": 64}}, seed=0, name="sensors",
        verbose=False)
    bundle = dataclasses.replace(iot_bundle, detectors={**iot_bundle.detectors,
                                                        **forest.detectors})
    out = tmp_path_factory.mktemp("include")
    emit.write(emit.render(bundle), out)
    (out / "use_all.c").write_text(USE_ALL)
    return out


@pytest.mark.parametrize("compiler", COMPILERS)
def test_compiles_warning_free(generated, compiler, tmp_path):
    command = COMPILERS[compiler]
    assert shutil.which(command[0]), f"{command[0]} is not installed (make setup installs it)"
    for source in sorted(generated.glob("*.c")):
        result = subprocess.run([*command, *WARN, "-I", str(generated), "-c", str(source),
                                 "-o", str(tmp_path / (source.stem + ".o"))],
                                capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, f"{source.name}:\n{result.stderr}"


def test_constants_live_in_flash_on_avr(generated, tmp_path):
    obj = tmp_path / "use_all.o"
    subprocess.run([*COMPILERS["avr-gcc"], *WARN, "-I", str(generated), "-c",
                    str(generated / "use_all.c"), "-o", str(obj)], check=True)
    table = subprocess.run(["avr-objdump", "-t", str(obj)], capture_output=True, text=True,
                           check=True).stdout
    constants = [line for line in table.splitlines() if re.search(r"sensors_\w+$", line)
                 and " O " in line]
    assert len(constants) >= 8
    assert all(".progmem" in line for line in constants), "\n".join(constants)


def test_every_float_literal_has_an_f_suffix(generated):
    number = re.compile(r"(?<![\w.])(\d+\.\d*(?:e[+-]?\d+)?|\d+e[+-]?\d+)(\w?)", re.I)
    for path in generated.iterdir():
        if path.suffix in (".c", ".h"):
            code = re.sub(r"/\*.*?\*/|//[^\n]*|\"[^\"\n]*\"", "", path.read_text(), flags=re.S)
            bare = [m.group(0) for m in number.finditer(code) if m.group(2).lower() != "f"]
            assert not bare, f"{path.name}: {bare}"


def test_version_guard_stops_a_mismatched_runtime(generated, tmp_path):
    for path in generated.iterdir():
        shutil.copy(path, tmp_path)
    common = tmp_path / "mcua_common.h"
    ours = f"#define MCUA_RUNTIME_VERSION {emit.RUNTIME_VERSION}"
    assert ours in common.read_text()
    common.write_text(common.read_text().replace(
        ours, f"#define MCUA_RUNTIME_VERSION {emit.RUNTIME_VERSION + 1}"))
    result = subprocess.run(["gcc", "-std=c99", "-I", str(tmp_path), "-c",
                             str(tmp_path / "use_all.c"), "-o", str(tmp_path / "x.o")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "regenerate it" in result.stderr


def test_float_literals_round_trip_through_the_c_compiler(tmp_path):
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = np.concatenate([values[np.isfinite(values)],
                             np.array([0.0, -0.0, 1e-45, 3.4028235e38, 0.1, 1 / 3], np.float32)])
    literals = ", ".join(emit.c_float(v) for v in values)
    (tmp_path / "r.c").write_text(
        "#include <stdio.h>\n#include <string.h>\n#include <stdint.h>\n"
        f"static const float v[] = {{{literals}}};\n"
        "int main(void) { size_t i; for (i = 0; i < sizeof v / sizeof v[0]; ++i) {"
        " uint32_t b; memcpy(&b, &v[i], 4); printf(\"%08x\\n\", (unsigned)b); } return 0; }\n")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", str(tmp_path / "r.c"), "-o",
                    str(tmp_path / "r")], check=True)
    printed = subprocess.run([str(tmp_path / "r")], capture_output=True, text=True).stdout.split()
    assert [int(p, 16) for p in printed] == values.view(np.uint32).tolist()


def test_non_finite_constant_is_refused():
    from codegen.errors import UserError

    with pytest.raises(UserError, match="must be finite"):
        emit.c_float(np.float32(np.inf))
