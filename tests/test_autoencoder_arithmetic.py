"""The autoencoder engine's integer shortcuts, each against what it replaces (no TensorFlow
needed): the requantisation in 16-bit pieces against TFLite's 64-bit formula
(codegen/tflite/quantize.py) over the whole int32 range, and the standardisation by a
power-of-two std, as an exponent move, against numpy's float32 division by that std."""

from __future__ import annotations

import numpy as np
import pytest

from codegen.detectors.autoencoder.pipeline import std_reciprocal
from codegen.detectors.autoencoder.training import power_of_two_scale
from codegen.emit import render as emit
from codegen.tflite.quantize import multiply_by_quantized_multiplier

from support import build_program, run_program

F32 = np.float32
I32_MIN, I32_MAX = -2**31, 2**31 - 1
SANITIZE = ["-fsanitize=undefined,float-cast-overflow", "-fno-sanitize-recover=all"]

# The runtime's static functions, reached by including its source.
MAIN = r"""
#include <stdio.h>
#include "mcua_autoencoder.c"

/* stdin: uint32 n_requantize, uint32 n_scale; n_requantize (int32 x, int32 multiplier,
 * int32 shift); n_scale (float x, float p).  stdout: each requantised int32, then each
 * mcua_ae_pow2_times(p, x) as float. */
int main(void)
{
    uint32_t n_requantize, n_scale, i;
    if (fread(&n_requantize, 4, 1, stdin) != 1 || fread(&n_scale, 4, 1, stdin) != 1) {
        return 1;
    }
    for (i = 0; i < n_requantize; ++i) {
        int32_t v[3], r;
        if (fread(v, 4, 3, stdin) != 3) {
            return 1;
        }
        r = mcua_ae_requantize(v[0], (uint16_t)((uint32_t)v[1] >> 16),
                               (uint16_t)((uint32_t)v[1] & 0xFFFFu), (int)v[2]);
        fwrite(&r, 4, 1, stdout);
    }
    for (i = 0; i < n_scale; ++i) {
        float v[2], r;
        mcua_ae_pow2 s;
        if (fread(v, 4, 2, stdin) != 2) {
            return 1;
        }
        mcua_ae_pow2_init(&s, v[1]);
        r = mcua_ae_pow2_times(&s, v[0]);
        fwrite(&r, 4, 1, stdout);
    }
    return 0;
}
"""


def requantize_operands(rng) -> np.ndarray:
    """[n, 3] int64: every edge accumulator with every edge multiplier and every shift
    QuantizeMultiplier makes (-31 to 30), and 3,000,000 random triples over the whole int32
    range (multipliers over their whole range 0 to 2^31 - 1)."""
    xs = [I32_MIN, I32_MIN + 1, -2**30, -65537, -65536, -65535, -32768, -2, -1, 0, 1, 2,
          32767, 65535, 65536, 65537, 2**30, I32_MAX - 1, I32_MAX]
    ms = [0, 1, 2, 65535, 65536, 65537, 2**30, 2**30 + 1, I32_MAX - 1, I32_MAX]
    grid = np.array(np.meshgrid(xs, ms, np.arange(-31, 31), indexing="ij")).reshape(3, -1).T
    n = 3_000_000
    rand = np.column_stack([rng.integers(I32_MIN, I32_MAX + 1, n),
                            rng.integers(0, I32_MAX + 1, n), rng.integers(-31, 31, n)])
    # accumulators of trained models' size, where the shifts and roundings bite most
    small = rand.copy()
    small[:, 0] = rng.integers(-2**20, 2**20, n)
    return np.vstack([grid, rand, small]).astype(np.int64)


def scale_operands(rng) -> np.ndarray:
    """[n, 2] float32 (x, p): p every power of two a power-of-two std's reciprocal can be
    (2^-127 to 2^126); x every exponent field (zeros, subnormals, normals, infinities), each
    with random mantissas and both signs."""
    fields = np.repeat(np.arange(256, dtype=np.uint32), 16)
    mantissas = rng.integers(0, 2**23, fields.size, dtype=np.uint32)
    mantissas[::16] = 0                                  # exact powers of two, and 0, Inf
    bits = (fields << 23) | mantissas
    x = np.concatenate([bits, bits | np.uint32(2**31)]).view(F32)
    x = x[~np.isnan(x)]
    p = np.exp2(np.arange(-127, 127)).astype(F32)
    return np.array(np.meshgrid(x, p, indexing="ij")).reshape(2, -1).T.astype(F32)


@pytest.fixture(scope="module")
def program(tmp_path_factory):
    """main.c includes mcua_autoencoder.c, so only main.c is compiled."""
    directory = tmp_path_factory.mktemp("arithmetic")
    for name in ("mcua_common.h", "mcua_autoencoder.h", "mcua_autoencoder.c"):
        (directory / name).write_text((emit.RUNTIME / name).read_text())
    flags = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *SANITIZE]
    return build_program("gcc", directory, {"main.c": MAIN}, flags)


def run(program, requantize=np.zeros((0, 3)), scale=np.zeros((0, 2))):
    data = (np.uint32([len(requantize), len(scale)]).tobytes()
            + requantize.astype(np.int32).tobytes() + scale.astype(F32).tobytes())
    out = run_program(program, data)
    return (np.frombuffer(out, np.int32, len(requantize)),
            np.frombuffer(out, F32, len(scale), 4 * len(requantize)))


def test_requantisation_in_16_bit_pieces_equals_tflites_64_bit_formula(program):
    ops = requantize_operands(np.random.default_rng(13))
    got, _ = run(program, requantize=ops)
    want = multiply_by_quantized_multiplier(ops[:, 0], ops[:, 1], ops[:, 2])
    assert np.array_equal(got, want), np.flatnonzero(got != want)[:10]


def test_a_power_of_two_std_standardises_by_an_exponent_move_as_numpy_divides(program):
    ops = scale_operands(np.random.default_rng(14))
    _, got = run(program, scale=ops)
    x, p = ops[:, 0], ops[:, 1]
    with np.errstate(over="ignore", under="ignore"):
        divided = x / (F32(1) / p)          # the reference: (x - mean) / std, std = 1 / p
    assert np.array_equal(got.view(np.uint32), divided.view(np.uint32))


def test_std_reciprocal_only_for_powers_of_two():
    assert std_reciprocal(F32(0.25)) == F32(4) and std_reciprocal(F32(2**127)) == F32(2.0**-127)
    assert std_reciprocal(F32(2.0**-126)) == F32(2**126)
    for std in (F32(0.3), F32(1.5), np.nextafter(F32(1), F32(2)), F32(3e38)):
        assert std_reciprocal(std) == 0


@pytest.mark.parametrize("std, scale", [(0.9, 1.0), (1.4, 1.0), (1.5, 2.0), (0.7, 0.5),
                                        (3e38, 2.0**127), (1.2e-38, 2.0**-126), (6.0, 8.0)])
def test_the_training_scale_is_the_nearest_power_of_two_in_the_normal_range(std, scale):
    assert power_of_two_scale(F32(std)) == F32(scale)
    assert std_reciprocal(power_of_two_scale(F32(std))) != 0
