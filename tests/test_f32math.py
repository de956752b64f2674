"""mcua_f32math (exp, log): the C and codegen/detectors/f32math.py give the same bits on
the host compilers and on every firmware target, within 1 ulp of float64, with the edge
rules of the contract header."""

from __future__ import annotations

import configparser
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.detectors import f32math
from codegen.emit import render as emit
from codegen.firmware import OFFLINE_ENVS
from host_sim import targets
from support import (COMPILERS, ROOT, WARN, build_program, require_env, require_tool,
                     run_program)

F32, U32 = np.float32, np.uint32

HOST_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "mcua_f32math.h"

/* stdin: uint32 n, then n floats; stdout: n exp results, then n log results. */
int main(void)
{
    uint32_t n, i;
    float *x, *y;
    if (fread(&n, sizeof n, 1, stdin) != 1) {
        return 1;
    }
    x = (float *)malloc((size_t)n * sizeof *x);
    y = (float *)malloc((size_t)n * 2 * sizeof *y);
    if (!x || !y || fread(x, sizeof *x, n, stdin) != n) {
        return 1;
    }
    for (i = 0; i < n; ++i) {
        y[i] = mcua_exp(x[i]);
        y[n + i] = mcua_log(x[i]);
    }
    fwrite(y, sizeof *y, (size_t)n * 2, stdout);
    free(x);
    free(y);
    return 0;
}
"""


def around(centres, steps=4) -> np.ndarray:
    """Every float within `steps` ulps of each centre (float32)."""
    out = [np.asarray(centres, dtype=F32)]
    for direction in (np.inf, -np.inf):
        x = out[0]
        for _ in range(steps):
            x = np.nextafter(x, F32(direction))
            out.append(x)
    return np.concatenate(out)


def inputs(n_random: int, seed: int = 0) -> np.ndarray:
    """Random bits over the whole float32 range, the two functions' domains, and the
    places where their arithmetic changes: the cut-offs, the range-reduction boundaries
    ((k + 1/2) ln 2 for exp, sqrt(2) * 2^e for log), powers of two, near 0, NaN, +-Inf,
    +-0, subnormals."""
    rng = np.random.default_rng(seed)
    k = np.arange(-126, 128, dtype=np.float64)
    special = np.array([np.nan, np.inf, -np.inf, 0.0, -0.0, 1.0, -1.0], dtype=F32)
    parts = [
        rng.integers(0, 2**32, n_random, dtype=np.uint64).astype(U32).view(F32),
        rng.uniform(-90.0, 90.0, n_random // 2).astype(F32),
        rng.uniform(-1.0, 1.0, n_random // 4).astype(F32),
        np.exp(rng.uniform(-87.0, 88.0, n_random // 4)).astype(F32),
        rng.uniform(np.sqrt(0.5), np.sqrt(2.0), n_random // 4).astype(F32),  # log's e = 0
        around([f32math.EXP_MAX, f32math.EXP_MIN, -87.3365448, 88.7228394], 64),
        around((np.arange(-130, 131) + 0.5) * np.log(2.0), 8),
        around(np.sqrt(2.0) * 2.0 ** k, 8),
        around(2.0 ** k, 4),
        around([1.0], 256),
        rng.integers(0, 0x00800000, 20000).astype(U32).view(F32),  # +subnormals
        (rng.integers(0, 0x00800000, 20000) | 0x80000000).astype(U32).view(F32),
        np.array([0x7F800001, 0x7FC00000, 0xFFC00000, 0x7FFFFFFF, 0x00000001], U32).view(F32),
        special,
    ]
    return np.concatenate(parts)


def reference(x: np.ndarray) -> np.ndarray:
    return np.concatenate([f32math.exp(x), f32math.log(x)]).view(U32)


def ulps(y: np.ndarray, exact: np.ndarray) -> np.ndarray:
    """|y - exact| in ulps of the float32 binade of exact."""
    _, e = np.frexp(exact)
    return np.abs(y.astype(np.float64) - exact) / np.ldexp(1.0, e - 24)


@pytest.mark.parametrize("compiler", ["gcc", "clang", "g++", "clang++"])
def test_host_c_equals_the_reference_bit_for_bit(tmp_path, compiler):
    command = COMPILERS[compiler]
    files = {name: (emit.RUNTIME / name).read_text()
             for name in ("mcua_common.h", "mcua_f32math.h", "mcua_f32math.c")}
    files["main.c"] = HOST_MAIN
    exe = build_program(command[0], tmp_path, files, [*command[1:], *WARN])
    x = inputs(1_000_000)
    got = np.frombuffer(run_program(exe, U32(len(x)).tobytes() + x.tobytes()), dtype=U32)
    want = reference(x)
    assert len(x) >= 1_000_000 and len(got) == len(want)
    wrong = np.nonzero(got != want)[0]
    assert not len(wrong), [(hex(x.view(U32)[i % len(x)]), hex(got[i]), hex(want[i]))
                            for i in wrong[:5]]


def test_accuracy_within_one_ulp_of_float64():
    x = inputs(1_000_000)
    finite = np.isfinite(x)
    in_exp = finite & (x >= f32math.EXP_MIN) & (x <= f32math.EXP_MAX)
    in_log = finite & (x > 0) & (x >= np.finfo(F32).tiny)
    exp_err = ulps(f32math.exp(x[in_exp]), np.exp(x[in_exp].astype(np.float64)))
    log_err = ulps(f32math.log(x[in_log]), np.log(x[in_log].astype(np.float64)))
    assert in_exp.sum() > 300_000 and in_log.sum() > 300_000
    assert exp_err.max() <= 1.0 and log_err.max() <= 1.0, (exp_err.max(), log_err.max())


def test_edge_rules():
    inf, nan, tiny = F32(np.inf), F32(np.nan), np.finfo(F32).tiny
    exp = f32math.exp(np.array([nan, f32math.EXP_MAX, np.nextafter(f32math.EXP_MAX, inf),
                                inf, f32math.EXP_MIN, np.nextafter(f32math.EXP_MIN, -inf),
                                -inf, 0.0, -0.0], dtype=F32))
    assert np.isnan(exp[0])
    assert np.isfinite(exp[1]) and exp[1] > 3.4e38 and exp[2] == inf and exp[3] == inf
    assert exp[4] >= tiny and exp[5] == 0 and exp[6] == 0 and not np.signbit(exp[5])
    assert exp[7] == 1 and exp[8] == 1
    log = f32math.log(np.array([nan, -1.0, -inf, -1e-45, 0.0, -0.0, 1e-45, tiny, inf, 1.0],
                               dtype=F32))
    assert np.isnan(log[:4]).all()
    assert (log[4:7] == -inf).all() and np.isfinite(log[7]) and log[8] == inf and log[9] == 0


def _board(env: str) -> dict:
    ini = configparser.ConfigParser(interpolation=None)
    ini.read(ROOT / "platformio.ini")
    board = ini[f"env:{env}"]["board"]
    return json.loads((targets.boards_dir() / f"{board}.json").read_text())["build"]


def build_for(env: str, directory: Path) -> Path:
    """tests/f32math_ops.c and the unit, with the board's compiler and flags (those of the
    offline platform's builder, firmware_targets/platforms/mcua_offline)."""
    build = _board(env)
    platform = targets.boards_dir().parent
    sources = [ROOT / "tests" / "f32math_ops.c", emit.RUNTIME / "mcua_f32math.c"]
    extra = []
    if "startup" in build:
        sources += sorted((platform / "startup" / build["startup"]).glob("*.c"))
    if "ldscript" in build:
        extra = ["-T", str(platform / "ldscripts" / build["ldscript"])]
    compiler = build["toolchain"] + "-gcc"
    require_tool(compiler)
    elf = directory / "f32math.elf"
    subprocess.run([compiler, *build["cpu_flags"].split(), "-Os", "-std=c99", "-ffp-contract=off",
                    "-Wall", "-Wextra", "-Werror", "-I", str(directory), "-I", str(emit.RUNTIME),
                    *map(str, sources), *build.get("link_flags", "").split(), *extra,
                    "-o", str(elf)], check=True)
    return elf


@pytest.mark.firmware
@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_targets_equal_the_reference_bit_for_bit(tmp_path, env):
    require_env(env)
    rng = np.random.default_rng(3)
    x = inputs(600, seed=4)
    x = x[rng.choice(len(x), 3000, replace=False)]
    (tmp_path / "f32math_ops.h").write_text(
        f"#define N_INPUTS {len(x)}\nstatic const uint32_t inputs[N_INPUTS] MCUA_FLASH = {{\n"
        + "".join(f"0x{b:08x}UL,\n" for b in x.view(U32)) + "};\n")
    result = targets.run(env, build_for(env, tmp_path))
    lines = [line.split() for line in result.stdout_lines if line.strip()]
    got = np.array([[int(field, 16) for field in line] for line in lines], dtype=U32)
    want = reference(x).reshape(2, -1).T
    assert got.shape == want.shape
    wrong = np.nonzero((got != want).any(axis=1))[0]
    assert not len(wrong), [(hex(x.view(U32)[i]), got[i], want[i]) for i in wrong[:5]]
    if env == "uno":
        cycles = np.array(result.cycles).reshape(-1, 2)
        inside = (x >= -87.0) & (x <= 88.0) & (x > np.finfo(F32).tiny)
        print(f"Uno cycles per call (median over {inside.sum()} inputs where both compute): "
              f"exp {np.median(cycles[inside, 0]):.0f}, log {np.median(cycles[inside, 1]):.0f}; "
              f"max exp {cycles[inside, 0].max()}, log {cycles[inside, 1].max()}")
