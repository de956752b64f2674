"""The generated C turns floating-point contraction off itself (MCUA_FP_CONTRACT_OFF_BEGIN
in mcua_common.h), so no build flag is needed for bit-exact results: compiled at -O2 with
a compiler's default contraction, or with more, no object of the runtime, of the generated
headers or of code calling every API holds a fused multiply-add; without the pragmas the
same objects do (so this check can fail); the pragmas build what -ffp-contract=off builds;
the includer's own code after the headers still fuses; an unknown compiler stops with a
message.  (On-target parity of such a build: test_firmware_parity.py.)"""

from __future__ import annotations

import dataclasses
import importlib.util
import re
import shutil
import subprocess

import pytest

from codegen.detectors import DETECTORS
from codegen.emit import render as emit
from codegen.training import train as training
from host_sim.hostlib import glue_source

from support import require_tool
from test_contract import CASES

M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard"]
ARM_FUSED = r"vfn?m[as]"  # vfma, vfms, vfnma, vfnms (with or without a condition)
X86_FUSED = r"vfn?m(add|sub)"  # vfmadd132ss, vfmsub231ss, vfnmadd213ss, ...
RV_FUSED = r"fn?m(add|sub)\.s"
# GNU modes: an ISO -std makes GCC's C front end turn contraction off by itself.
TOOLCHAINS = {
    "arm-none-eabi-gcc": (["arm-none-eabi-gcc", "-std=gnu99", *M4F], ARM_FUSED),
    "arm-none-eabi-g++": (["arm-none-eabi-g++", "-x", "c++", "-std=gnu++11", *M4F], ARM_FUSED),
    "gcc": (["gcc", "-std=gnu99", "-mfma"], X86_FUSED),
    "g++": (["g++", "-x", "c++", "-std=gnu++11", "-mfma"], X86_FUSED),
    "clang": (["clang", "-std=gnu99", "-mfma"], X86_FUSED),
    "clang++": (["clang++", "-x", "c++", "-std=gnu++11", "-mfma"], X86_FUSED),
    "riscv64-unknown-elf-gcc": (["riscv64-unknown-elf-gcc", "--specs=picolibc.specs",
                                 "-march=rv32imafc", "-mabi=ilp32f", "-std=gnu99"], RV_FUSED),
}
OBJDUMP = {"arm-none-eabi": "arm-none-eabi-objdump",
           "riscv64-unknown-elf": "riscv64-unknown-elf-objdump"}
# The contraction each compiler is built with: its default and the most it allows that a
# pragma can still turn off.  clang's -ffp-contract=fast (and -ffast-math) fuses across
# statements regardless of any pragma, by design (clang's manual): documented, not tested.
CONTRACTION = {"gcc": ["", "-ffp-contract=fast"], "clang": ["", "-ffp-contract=on"]}
WARN = ["-O2", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
NO_PRAGMAS = "-DMCUA_FP_CONTRACT_OFF_BY_FLAG"
HAVE_AUTOENCODER = all(importlib.util.find_spec(m) for m in ("tensorflow", "tflite_micro"))


def family(toolchain: str) -> str:
    return "clang" if toolchain.startswith("clang") else "gcc"


def builds():
    return [pytest.param(t, c, id=f"{t}{c}") for t in TOOLCHAINS for c in CONTRACTION[family(t)]]


@pytest.fixture(scope="module")
def generated(iot, iot_bundle, tmp_path_factory):
    """What `generate` writes for the iot bundle and every other registered detector
    (trained as tests/test_contract.py's cases; the autoencoder with its extra), and the
    host glue, a translation unit calling every API."""
    others = [d for d in DETECTORS if d not in iot_bundle.detectors
              and (HAVE_AUTOENCODER or d != "autoencoder")]
    more = training.train(iot, others, {d: CASES[d][1] or {} for d in others}, seed=0,
                          name="sensors", verbose=False)
    bundle = dataclasses.replace(iot_bundle,
                                 detectors={**iot_bundle.detectors, **more.detectors})
    out = tmp_path_factory.mktemp("generated")
    emit.write(emit.render(bundle), out)
    (out / "mcua_host_glue.c").write_text(glue_source(bundle))
    return out


def compile_all(toolchain: str, flags: list[str], directory, out) -> dict[str, str]:
    """Every .c file of directory compiled warning-free; object name -> its disassembly.
    GCC's C also keeps every inline function of the headers, called or not, so that their
    code is in the objects too (in C++ -fkeep-inline-functions would keep the C++ library's
    as well, std::fma among them)."""
    command, _ = TOOLCHAINS[toolchain]
    require_tool(command[0])
    in_c = family(toolchain) == "gcc" and "c++" not in command
    keep = ["-fkeep-inline-functions"] if in_c else []
    objdump = next((tool for prefix, tool in OBJDUMP.items() if command[0].startswith(prefix)),
                   "objdump")
    disassembly = {}
    for source in sorted(directory.glob("*.c")):
        obj = out / (source.stem + ".o")
        result = subprocess.run([*command, *WARN, *keep, *flags, "-I", str(directory), "-c",
                                 str(source), "-o", str(obj)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, f"{source.name}:\n{result.stderr}"
        disassembly[obj.name] = subprocess.run([objdump, "-d", str(obj)], capture_output=True,
                                               text=True, check=True).stdout
    return disassembly


def fused(toolchain: str, disassembly: str) -> list[str]:
    """The fused multiply-add instructions of an objdump -d listing."""
    pattern = re.compile(TOOLCHAINS[toolchain][1])
    lines = [line.split("\t") for line in disassembly.splitlines()]
    return [" ".join(f[2:]) for f in lines if len(f) >= 3 and pattern.match(f[2])]


def code(disassembly: str) -> str:
    """An objdump -d listing without its file name line."""
    return disassembly.split("\n", 2)[2]


@pytest.mark.parametrize("toolchain, contraction", builds())
def test_no_fused_multiply_add_in_any_object(generated, toolchain, contraction, tmp_path):
    objects = compile_all(toolchain, contraction.split(), generated, tmp_path)
    assert {f"{unit.stem}.o" for unit in emit.RUNTIME.glob("mcua_*.c")
            if HAVE_AUTOENCODER or unit.stem != "mcua_autoencoder"} < set(objects)
    found = {name: fused(toolchain, text) for name, text in objects.items()}
    assert not any(found.values()), {name: f for name, f in found.items() if f}


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_without_the_pragmas_the_same_build_fuses(generated, toolchain, tmp_path):
    objects = compile_all(toolchain, [NO_PRAGMAS], generated, tmp_path)
    units = [name for name, text in objects.items() if fused(toolchain, text)]
    assert len(units) >= 5, units  # measured: 8 to 11 of the 12 objects


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_the_pragmas_build_what_the_flag_builds(generated, toolchain, tmp_path):
    """At -O2 the pragmas change nothing but contraction.  (At -Os GCC's optimize pragma
    reorders a few instructions of two units for the Cortex-M4F, same size.)"""
    (tmp_path / "pragmas").mkdir()
    (tmp_path / "flag").mkdir()
    pragmas = compile_all(toolchain, [], generated, tmp_path / "pragmas")
    flag = compile_all(toolchain, ["-ffp-contract=off", NO_PRAGMAS], generated, tmp_path / "flag")
    assert {n: code(t) for n, t in pragmas.items()} == {n: code(t) for n, t in flag.items()}


USER_CODE = """
#include "sensors.h"

float user_multiply_add(float a, float b, float c)
{
    return a * b + c;
}
"""


@pytest.mark.parametrize("toolchain", TOOLCHAINS)
def test_the_includers_code_after_the_headers_still_fuses(generated, toolchain, tmp_path):
    """The pragmas are pushed and popped (clang: back to the command line's mode)."""
    user = tmp_path / "user"
    shutil.copytree(generated, user)
    for source in user.glob("*.c"):
        source.unlink()
    (user / "user.c").write_text(USER_CODE)
    objects = compile_all(toolchain, [], user, tmp_path)
    assert len(fused(toolchain, objects["user.o"])) == 1


def test_an_unknown_compiler_stops_with_a_message(generated, tmp_path):
    """A compiler that is neither GCC nor clang (here gcc with both undefined): #error
    naming the flag and the macro, unless the macro acknowledges the flag."""
    require_tool("gcc")
    unknown = ["gcc", "-std=c99", "-E", "-U__GNUC__", "-U__clang__", "-I", str(generated),
               str(generated / "mcua_common.h"), "-o", str(tmp_path / "out.i")]
    result = subprocess.run(unknown, capture_output=True, text=True)
    assert result.returncode != 0
    assert "-ffp-contract=off" in result.stderr and "MCUA_FP_CONTRACT_OFF_BY_FLAG" in result.stderr
    result = subprocess.run([*unknown, NO_PRAGMAS], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_fast_math_stops_with_a_message(generated, compiler, tmp_path):
    """-ffast-math changes float results beyond contraction, with either compiler."""
    require_tool(compiler)
    result = subprocess.run([compiler, "-std=c99", "-ffast-math", "-I", str(generated), "-c",
                             str(generated / "mcua_zscore.c"), "-o", str(tmp_path / "z.o")],
                            capture_output=True, text=True)
    assert result.returncode != 0 and "built with -ffast-math" in result.stderr
