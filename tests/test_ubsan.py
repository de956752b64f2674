"""The C runtime under the undefined-behaviour sanitizer: every public function fed NaN,
+-Inf, huge and tiny values, built with -fsanitize=undefined,float-cast-overflow
-fno-sanitize-recover=all (a report aborts the program), and its results equal to the
Python reference's, bit for bit.

The detectors run through the host glue (their generated API); the autoencoder, which
needs TensorFlow to train, runs on a network made up here, with the numpy twin of its
integer arithmetic (codegen/tflite/runners.py) as the reference, so no TensorFlow is
needed."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from codegen.detectors.autoencoder.pipeline import (input_steps, reconstruction_error, standardise,
                                                 std_reciprocal)
from codegen.emit import render as emit
from codegen.emit.literals import c_float
from codegen.tflite.flatbuffer import Layer, Network
from codegen.tflite.quantize import dequantize, quantize
from codegen.tflite.runners import numpy_int8_network
from codegen.training import train as training
from codegen.verify import battery
from codegen.verify.engines import PythonEngine

from support import build_program, host_program, rows_input, run_program

F32 = np.float32
SANITIZE = ["-fsanitize=undefined,float-cast-overflow", "-fno-sanitize-recover=all"]
FLAGS = ["-std=c99", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", *SANITIZE]
SPECIALS = F32([np.nan, -np.nan, np.inf, -np.inf, 3.4028235e38, -3.4028235e38, 1e38, -1e38,
                1e20, -1e20, 1e-45, -1e-45, 1e-38, 0.0, -0.0, 0.5, -0.5, 2.5, 127.5, 1e10])


def same_bits(a, b) -> bool:
    return np.array_equal(np.asarray(a, F32).view(np.uint32), np.asarray(b, F32).view(np.uint32))


# ---------------------------------------------------------------------------
# the detectors, through their generated API (the host glue)

def hostile_rows(bundle) -> np.ndarray:
    """The parity battery's random and extreme streams, then every special value in every
    channel, alone and among normal readings, and a huge glitch at the start of a stream."""
    inputs = battery.battery(bundle, 2000)
    c = len(bundle.channels)
    mean = F32(bundle.channel_mean)
    alone = np.repeat(SPECIALS, c).reshape(-1, c)
    mixed = np.tile(mean, (len(SPECIALS) * c, 1))
    for i, (v, ch) in enumerate(itertools.product(SPECIALS, range(c))):
        mixed[i, ch] = v
    glitch = np.vstack([np.full((1, c), 1e20, F32), np.tile(mean, (200, 1))])
    return np.vstack([inputs["random"], inputs["extreme"], alone, mixed, glitch]).astype(F32)


@pytest.fixture(scope="module")
def cases(iot):
    """(bundle, hostile rows, the reference's results on them) for every detector but the
    autoencoder; the isolation forest with raw and with rolling features."""
    raw = training.train(iot, ["zscore", "streaming_zscore", "moving_average", "kmeans",
                               "isolation_forest"],
                         {"kmeans": {"k": 3}, "isolation_forest": {"n_trees": 10}}, 0,
                         "hostile", verbose=False)
    rolling = training.train(iot, ["isolation_forest"],
                             {"isolation_forest": {"n_trees": 10, "features": "rolling",
                                                   "window": 16}}, 0, "rolling", verbose=False)
    out = []
    for bundle in (raw, rolling):
        X = hostile_rows(bundle)
        out.append((bundle, X, PythonEngine(bundle).run(X, list(bundle.detectors))))
    return out


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_detectors_have_no_undefined_behaviour(cases, tmp_path, compiler):
    for bundle, X, reference in cases:
        exe = build_program(compiler, tmp_path / bundle.name, host_program(bundle), FLAGS)
        out = run_program(exe, rows_input(X))
        n, at = len(X), 0
        for call in emit.detector_calls(bundle):
            expected = reference[call["name"]]
            scores = np.frombuffer(out, F32, n, at)
            flags = np.frombuffer(out, np.uint8, n, at + 4 * n).astype(bool)
            assert same_bits(scores, expected.scores), call["name"]
            assert np.array_equal(flags, expected.flags), call["name"]
            at += 5 * n
            if call["flag_api"]:
                flag_only = np.frombuffer(out, np.uint8, n, at).astype(bool)
                assert np.array_equal(flag_only, expected.flags), call["name"] + " flag"
                at += n
        assert at == len(out)


# ---------------------------------------------------------------------------
# the autoencoder's runtime, on a network made up here

W = 8
MEAN, STD = F32(1.5), F32(0.75)


def made_up_network(rng) -> Network:
    """Three FULLY_CONNECTED layers W -> 4 -> 3 -> W with int8 weights, biases far from
    zero, Q31 multipliers and shifts right and left, ReLU and none."""
    dims = [W, 4, 3, W]
    layers = []
    for k, (n_in, n_out) in enumerate(zip(dims, dims[1:])):
        last = k == len(dims) - 2
        out_zp = int(rng.integers(-128, 0)) if not last else 3
        layers.append(Layer(
            weights=rng.integers(-127, 128, (n_out, n_in)).astype(np.int8),
            bias=rng.integers(-40000, 40000, n_out).astype(np.int32),
            multiplier=rng.integers(2**30, 2**31 - 1, n_out).astype(np.int32),
            shift=rng.choice([-12, -9, -1, 0, 1], n_out).astype(np.int8),
            input_offset=128 if k == 0 else -layers[-1].output_offset,
            output_offset=out_zp, act_min=-128 if last else out_zp, act_max=127,
            activation="NONE" if last else "RELU", per_channel=True, input_scale=1.0,
            output_scale=1.0, weight_scales=np.ones(n_out, F32)))
    return Network(W, F32(0.03125), -128, F32(0.0625), 3, layers, ["FULLY_CONNECTED"])


def c_ints(values) -> str:
    return ", ".join(str(int(v)) for v in np.asarray(values).ravel())


def autoencoder_model(net: Network) -> str:
    """The network as the generated header would hold it (mcua_autoencoder_model)."""
    steps = input_steps(MEAN, STD, net.input_scale, net.input_zero_point)
    a, b = net.scratch_sizes
    parts, layers = [], []
    for k, layer in enumerate(net.layers):
        halves = [(int(m) >> 16, int(m) & 0xFFFF) for m in layer.multiplier]
        for field, ctype, values in (("weights", "int8_t", layer.weights),
                                     ("folded_bias", "int32_t", layer.folded_bias),
                                     ("multiplier", "uint16_t", halves),
                                     ("shift", "int8_t", layer.shift)):
            parts.append(f"static const {ctype} l{k}_{field}[] = {{{c_ints(values)}}};")
        layers.append(f"{{l{k}_weights, l{k}_folded_bias, l{k}_multiplier, l{k}_shift, "
                      f"{layer.output_offset}, {layer.in_dim}, "
                      f"{layer.out_dim}, {layer.act_min}, {layer.act_max}}}")
    parts += [f"static const mcua_autoencoder_layer layers[] = {{{', '.join(layers)}}};",
              f"static const int32_t steps[] = {{{c_ints(steps)}}};",
              f"static int8_t scratch_a[{a}], scratch_b[{b}];",
              f"static const mcua_autoencoder_model model = {{layers, steps, scratch_a, "
              f"scratch_b, {W}, {len(net.layers)}, {c_float(MEAN)}, {c_float(STD)}, "
              f"{c_float(std_reciprocal(STD))}, "
              f"{c_float(net.input_scale)}, {net.input_zero_point}, "
              f"{c_float(net.output_scale)}, {net.output_zero_point}, 0.5f}};"]
    return "\n".join(parts)


AUTOENCODER_MAIN = r"""
#include <stdio.h>
#include "mcua_autoencoder.h"

{model}

/* stdin: uint32 windows, uint32 triples; the windows (W floats each); the triples
 * (float z, float scale, int32 zero point).  stdout: per window its score, flag,
 * quantize_input's result and input, the network's output and score_output's score and
 * flag; per triple mcua_autoencoder_quantize of it and the dequantized value of its low
 * byte as q. */
int main(void)
{{
    uint32_t n_windows, n_triples, i;
    float x[{W}];
    int8_t q[{W}], y[{W}];
    uint8_t flag;
    float score;
    int ok;
    if (fread(&n_windows, 4, 1, stdin) != 1 || fread(&n_triples, 4, 1, stdin) != 1) {{
        return 1;
    }}
    for (i = 0; i < n_windows; ++i) {{
        if (fread(x, sizeof x, 1, stdin) != 1) {{
            return 1;
        }}
        score = mcua_autoencoder_score(&model, x, &flag);
        fwrite(&score, 4, 1, stdout);
        fwrite(&flag, 1, 1, stdout);
        ok = mcua_autoencoder_quantize_input(&model, x, q);
        fwrite(&ok, sizeof ok, 1, stdout);
        if (ok) {{
            mcua_autoencoder_invoke_int8(&model, q, y);
            score = mcua_autoencoder_score_output(&model, x, y, &flag);
            fwrite(q, 1, sizeof q, stdout);
            fwrite(y, 1, sizeof y, stdout);
            fwrite(&score, 4, 1, stdout);
            fwrite(&flag, 1, 1, stdout);
        }}
    }}
    for (i = 0; i < n_triples; ++i) {{
        float z, scale, r;
        int32_t zp;
        int8_t out;
        if (fread(&z, 4, 1, stdin) != 1 || fread(&scale, 4, 1, stdin) != 1 ||
            fread(&zp, 4, 1, stdin) != 1) {{
            return 1;
        }}
        out = mcua_autoencoder_quantize(z, scale, zp);
        r = mcua_autoencoder_dequantize((int8_t)(zp & 0xFF), scale, zp);
        fwrite(&out, 1, 1, stdout);
        fwrite(&r, 4, 1, stdout);
    }}
    return 0;
}}
"""

SCALES = F32([0.03125, 1.0, 1e-38, 1e38, 0.0, -0.5, np.nan, np.inf])
ZERO_POINTS = np.int32([-128, 0, 5, 127, 384, 385, -385, 2**31 - 1, -2**31])


def windows(rng) -> np.ndarray:
    """Windows of normal readings, of huge ones, and with each special value in each place."""
    normal = (MEAN + STD * rng.standard_normal((200, W))).astype(F32)
    wide = (10.0 ** rng.uniform(-30, 30, (200, W)) * rng.choice([-1, 1], (200, W))).astype(F32)
    special = np.tile(MEAN, (len(SPECIALS) * W, W)).astype(F32)
    for i, (v, j) in enumerate(itertools.product(SPECIALS, range(W))):
        special[i, j] = v
    return np.vstack([normal, wide, special, np.repeat(SPECIALS, W).reshape(-1, W)])


@pytest.mark.parametrize("compiler", ["gcc", "clang"])
def test_autoencoder_runtime_has_no_undefined_behaviour(tmp_path, compiler):
    rng = np.random.default_rng(7)
    net = made_up_network(rng)
    files = {name: (emit.RUNTIME / name).read_text()
             for name in ("mcua_common.h", "mcua_autoencoder.h", "mcua_autoencoder.c")}
    files["main.c"] = AUTOENCODER_MAIN.format(model=autoencoder_model(net), W=W)
    exe = build_program(compiler, tmp_path, files, FLAGS)
    x = windows(rng)
    triples = list(itertools.product(SPECIALS, SCALES, ZERO_POINTS))
    data = (np.uint32([len(x), len(triples)]).tobytes() + x.tobytes()
            + b"".join(F32(z).tobytes() + F32(s).tobytes() + np.int32(zp).tobytes()
                       for z, s, zp in triples))
    out = run_program(exe, data)

    finite = np.isfinite(x).all(axis=1)
    z = standardise(x, MEAN, STD)
    q_ref = quantize(z, net.input_scale, net.input_zero_point)
    y_ref = numpy_int8_network(net, q_ref)
    score_ref = reconstruction_error(z, y_ref, net.output_scale, net.output_zero_point, W)
    at = 0
    for i in range(len(x)):
        score, flag, ok = np.frombuffer(out, F32, 1, at)[0], out[at + 4], out[at + 5]
        at += 5 + np.dtype(np.intc).itemsize
        assert ok == finite[i]
        if not finite[i]:
            assert np.isposinf(score) and flag == 1
            continue
        assert same_bits(score, score_ref[i]) and flag == (score_ref[i] > F32(0.5))
        q = np.frombuffer(out, np.int8, W, at)
        y = np.frombuffer(out, np.int8, W, at + W)
        assert np.array_equal(q, q_ref[i]) and np.array_equal(y, y_ref[i])
        assert same_bits(np.frombuffer(out, F32, 1, at + 2 * W)[0], score)
        at += 2 * W + 5
    for z_i, scale, zp in triples:
        got_q = np.frombuffer(out, np.int8, 1, at)[0]
        got_r = np.frombuffer(out, F32, 1, at + 1)[0]
        at += 5
        assert got_q == quantize(F32(z_i), scale, zp), (z_i, scale, zp)
        with np.errstate(over="ignore", invalid="ignore"):  # scales of 1e38, NaN, Inf
            r = dequantize(np.uint8(int(zp) & 0xFF).view(np.int8), scale, zp)
        assert same_bits(got_r, r) or (np.isnan(got_r) and np.isnan(r)), (scale, zp)
    assert at == len(out)


def test_nan_quantizes_to_the_zero_point():
    """The choice for NaN (the conversion TFLite does is undefined there): as 0 does."""
    for zp in (-128, -5, 0, 7, 127):
        assert quantize(F32([np.nan, -np.nan, 0.0]), F32(0.05), zp).tolist() == [zp] * 3
    assert quantize(F32([np.inf, -np.inf]), F32(0.05), 0).tolist() == [127, -128]
