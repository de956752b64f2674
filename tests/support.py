"""Helpers every test module imports from one place: the skip policy, the compiler matrix,
one-ulp mutations, parity on one engine, CSV writers."""

from __future__ import annotations

import copy
import csv
import dataclasses
import hashlib
import os
import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.verify import compare
from codegen.detectors.base import Scored
from codegen.verify.engines import PythonEngine

ROOT = Path(__file__).resolve().parent.parent
NAB = ROOT.parent / "shared" / "data" / "nab"
# Set by `make test` (and so by CI), which installs everything: a missing tool is then a
# failure, not a silent skip.
STRICT = os.environ.get("MCUA_TESTS_STRICT") == "1"


def require(available: bool, what: str) -> None:
    """Skip the test when `what` is missing, or fail it under MCUA_TESTS_STRICT=1."""
    if not available:
        message = f"{what} is missing (`make setup` installs it)"
        if STRICT:
            pytest.fail(message)
        pytest.skip(message)


def require_tool(command: str) -> None:
    require(shutil.which(command) is not None, command)


def require_env(env: str) -> None:
    """The tools of one offline firmware environment (host_sim.targets)."""
    from host_sim import targets

    missing = targets.missing_tools(env)
    require(not missing, f"{env}: {', '.join(missing)}")


def reference(bundle, rows, flag_api=False):
    """The reference's (scores, flags) of a firmware run over rows, each [detector, sample]."""
    out = PythonEngine(bundle).run(np.asarray(rows, dtype=np.float32), list(bundle.detectors),
                                   flag_api)
    return (np.array([s.scores for s in out.values()]),
            np.array([s.flags for s in out.values()]))


# The generated C compiles without a warning under each of these.
WARN = ["-Wall", "-Wextra", "-Wpedantic", "-Werror", "-ffp-contract=off", "-Os"]
AVR = ["-mmcu=atmega328p"]
M4F = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]
RV32 = ["--specs=picolibc.specs", "-march=rv32imc", "-mabi=ilp32"]
COMPILERS = {
    "gcc": ["gcc", "-std=c99"],
    "gcc-c11": ["gcc", "-std=c11"],
    "clang": ["clang", "-std=c99"],
    "g++": ["g++", "-x", "c++", "-std=c++11"],
    "clang++": ["clang++", "-x", "c++", "-std=c++11"],
    "avr-gcc": ["avr-gcc", "-std=c99", *AVR],
    "avr-g++": ["avr-g++", "-x", "c++", "-std=c++11", *AVR],
    "arm-none-eabi-gcc": ["arm-none-eabi-gcc", "-std=c99", *M4F],
    "arm-none-eabi-g++": ["arm-none-eabi-gcc", "-x", "c++", "-std=c++11", *M4F],
    "riscv64-unknown-elf-gcc": ["riscv64-unknown-elf-gcc", "-std=c99", *RV32],
}


def compile_objects(compiler: str, directory: Path, out: Path) -> list[Path]:
    """Compile every .c file of directory with one of COMPILERS and WARN; the objects."""
    command = COMPILERS[compiler]
    require_tool(command[0])
    objects = []
    for source in sorted(directory.glob("*.c")):
        obj = out / (source.stem + ".o")
        result = subprocess.run([*command, *WARN, "-I", str(directory), "-c", str(source),
                                 "-o", str(obj)], capture_output=True, text=True)
        assert result.returncode == 0 and not result.stderr, f"{source.name}:\n{result.stderr}"
        objects.append(obj)
    return objects


_NUMBER = re.compile(r"(?<![\w.])(\d+\.\d*(?:e[+-]?\d+)?|\d+e[+-]?\d+)(\w?)", re.I)


def bare_float_literals(code: str) -> list[str]:
    """Float literals of C code (comments and strings left out) without an f suffix."""
    code = re.sub(r"/\*.*?\*/|//[^\n]*|\"[^\"\n]*\"", "", code, flags=re.S)
    return [m.group(0) for m in _NUMBER.finditer(code) if m.group(2).lower() != "f"]


def perturbed(bundle, detector, constant, index=0):
    """A copy of bundle with one constant (an array element, every element for index None,
    or a scalar such as the threshold) moved by one ulp towards +inf."""
    other = copy.deepcopy(bundle)
    fitted = other.detectors[detector]
    if constant in fitted.scalars:
        value = np.float32(fitted.scalars[constant])
        fitted.scalars[constant] = float(np.nextafter(value, np.float32(np.inf)))
    else:
        flat = fitted.arrays[constant].reshape(-1)
        at = slice(None) if index is None else index
        flat[at] = np.nextafter(flat[at], np.float32(np.inf))
    return other


def only(bundle, *detectors):
    """The bundle with just these detectors."""
    return dataclasses.replace(bundle, detectors={d: bundle.detectors[d] for d in detectors})


def assert_parity(bundle, engine, inputs, detector) -> int:
    """Every score bit, flag and state of `detector` on the engine equals the reference's;
    the number of inputs compared."""
    result = compare.compare(bundle, engine, inputs, detectors=[detector])
    assert result.results and result.ok, result.table()
    return sum(r.inputs for r in result.results if r.detector == detector)


def count_mismatches(bundle, engine, inputs, detector) -> int:
    result = compare.compare(bundle, engine, inputs, detectors=[detector])
    return sum(r.score_mismatches + r.flag_mismatches + (r.state_mismatches or 0)
               for r in result.results)


class RememberedReference:
    """The Python reference engine, remembering scores and flags (not the state) of every
    run: firmware targets that cut the battery into the same chunks share its runs."""

    name = "python"
    chunk = None

    def __init__(self, bundle):
        self.engine = PythonEngine(bundle)
        self.runs = {}

    def run(self, X, detectors, flag_api=False, resume=False):
        assert not resume, "the firmware targets' chunks start from a fresh state"
        X = np.ascontiguousarray(X, dtype=np.float32)
        key = (hashlib.sha256(X.tobytes()).digest(), X.shape, tuple(detectors), flag_api)
        if key not in self.runs:
            out = self.engine.run(X, detectors, flag_api)
            self.runs[key] = {d: Scored(s.scores, s.flags) for d, s in out.items()}
        return self.runs[key]


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


# --- a host program over the generated API, for the sanitizer tests --------------------

HOST_PROGRAM_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include <stdint.h>

{declarations}

/* stdin: uint32 n, then n rows of {n_channels} floats.  stdout: per call, n float scores
 * (none for a flag call) and n flags. */
int main(void)
{{
    uint32_t n;
    float *x, *scores;
    uint8_t *flags;
    if (fread(&n, sizeof n, 1, stdin) != 1) {{
        return 1;
    }}
    x = malloc((size_t)n * {n_channels} * sizeof *x);
    scores = malloc((size_t)n * sizeof *scores);
    flags = malloc(n);
    if (!x || !scores || !flags || fread(x, sizeof *x, (size_t)n * {n_channels}, stdin) !=
        (size_t)n * {n_channels}) {{
        return 1;
    }}
{calls}
    free(x);
    free(scores);
    free(flags);
    return 0;
}}
"""


STATE_ARGS = ", float *state_f, uint16_t *state_i, uint8_t resume"  # templates/host_glue.c.j2


def host_program(bundle) -> dict[str, str]:
    """The generated files, the host glue and a main() that runs every detector's batch
    entry points (a streaming one from a fresh state) over the rows on stdin and writes
    what they return (file name -> text)."""
    from codegen.emit import render as emit
    from host_sim.hostlib import glue_source

    declarations, calls = [], []
    for call in emit.detector_calls(bundle):
        name = f"mcua_host_{call['name']}"
        state = call["kind"] == "streaming"
        declarations.append(f"void {name}(const float *X, uint32_t n, float *scores, "
                            f"uint8_t *flags{STATE_ARGS if state else ''});")
        calls.append(f"    {name}(x, n, scores, flags{', NULL, NULL, 0' if state else ''});\n"
                     f"    fwrite(scores, sizeof *scores, n, stdout);\n"
                     f"    fwrite(flags, 1, n, stdout);")
        if call["flag_api"]:
            declarations.append(f"void {name}_flag(const float *X, uint32_t n, uint8_t *flags"
                                f"{STATE_ARGS if state else ''});")
            calls.append(f"    {name}_flag(x, n, flags{', NULL, NULL, 0' if state else ''});\n"
                         f"    fwrite(flags, 1, n, stdout);")
    files = emit.render(bundle)
    files["mcua_host_glue.c"] = glue_source(bundle)
    files["main.c"] = HOST_PROGRAM_MAIN.format(declarations="\n".join(declarations),
                                               calls="\n".join(calls),
                                               n_channels=len(bundle.channels))
    return files


def rows_input(X) -> bytes:
    """host_program's stdin for the rows X."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    return np.uint32(len(X)).tobytes() + X.tobytes()


def build_program(compiler: str, directory: Path, files: dict[str, str], flags) -> Path:
    """Write files into directory and build their .c files into one program."""
    require_tool(compiler)
    directory.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (directory / name).write_text(text)
    exe = directory / "program"
    sources = sorted(str(directory / n) for n in files if n.endswith(".c"))
    result = subprocess.run([compiler, *flags, "-I", str(directory), *sources, "-o", str(exe),
                             "-lm"], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return exe


def run_program(exe: Path, data: bytes) -> bytes:
    """The program's output; no sanitizer report (on stderr) and a clean exit."""
    result = subprocess.run([str(exe)], input=data, capture_output=True, timeout=300)
    assert result.returncode == 0 and result.stderr == b"", result.stderr.decode()[:3000]
    return result.stdout
