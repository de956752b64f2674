"""Tiny dense int8 autoencoder: Keras training, full-integer TFLite conversion,
TensorFlow Lite Micro reference inference, and everything the generated C
needs to reproduce it bit for bit.

The device pipeline (identical here and in codegen/runtime/mcua_autoencoder.c)
------------------------------------------------------------------------------
For one window of W raw values x[0..W-1] of one channel (oldest first):

1. standardise, float32:         z[i] = (x[i] - mean) / std
2. quantise like TFLite's QUANTIZE (reference AffineQuantize):
                                  q[i] = clamp(round_half_away(z[i] / s_in) + zp_in,
                                               -128, 127)
   with z / s_in a float32 division and round = std::round (half away from
   zero).  Values more than 256 steps out are clamped before rounding, so
   +-Inf and huge values saturate (TFLite's int32 cast is undefined there).
3. int8 network = the .tflite model run by TensorFlow Lite Micro's reference
   kernels (FULLY_CONNECTED, per-channel int8, double rounding).
4. dequantise like TFLite's DEQUANTIZE: r[i] = float32(y[i] - zp_out) * s_out
5. score = (sum over i = 0..W-1, left to right, of (z[i] - r[i])^2) / W, all
   float32.
6. flag  = score > threshold (float32).

The threshold is taken from the scores of the normal *validation* windows
computed by exactly this pipeline ("percentile:P" or "sigma:K" = mean + K*std).

The Python reference for parity is steps 1, 2, 4, 5, 6 in numpy float32 with
explicit ordering, and step 3 = the `tflite-micro` package.  LiteRT
(ai-edge-litert) is run on the same int8 inputs for information only: it rounds
once instead of twice and differs from TFLite Micro by a few LSB.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import math
import os
import sys
import tempfile
import time
import warnings
from dataclasses import dataclass

import numpy as np

from codegen.emit import floatkeys
from codegen.training import thresholds
from codegen.tflite import arena as tflm_arena
from codegen.emit.literals import c_float
from codegen.errors import UserError
from codegen.detectors.base import DetectorSpec, Fitted, Kind, Scored

NAME = "autoencoder"

DEFAULTS: dict = {
    "channel": 0,                   # which column of the data the detector watches
    "window": 20,                   # W: network input/output width
    "hidden": [8, 4, 8],            # hidden Dense layer widths (ReLU)
    "activation": "relu",           # hidden activation; only ReLU fuses into int8 FC
    "epochs": 50,
    "batch_size": 32,
    "learning_rate": 0.001,         # Adam
    "validation_split": 0.1,        # last fraction of the rows, chronologically
    "threshold": "percentile:99",   # or "sigma:K"
    "representative_samples": 500,  # training windows used to calibrate int8
    "arena_cap": 262144,            # largest TFLite Micro arena the search tries
}

BLOB_MODEL = "autoencoder.tflite"
BLOB_ARENA = "autoencoder_arena.json"

MIN_TRAIN_WINDOWS = 64
MIN_VAL_WINDOWS = 16
MAX_WINDOW = 1024        # keeps every int32 accumulator far from overflow
MAX_WIDTH = 1024
MAX_HIDDEN_LAYERS = 8
LITERT_RANDOM_WINDOWS = 2000


# ---------------------------------------------------------------------------
# errors: all ValueError subclasses whose message names the problem and the fix

class AutoencoderError(UserError):
    """Base class of every error this detector raises."""


class AutoencoderConfigError(AutoencoderError):
    """A parameter is missing, malformed or out of range."""


class UnsupportedLayerError(AutoencoderConfigError):
    """A layer choice the int8 TFLite Micro path or the plain-C engine cannot run."""


class InsufficientDataError(AutoencoderError):
    """Not enough rows for the window, or too few normal windows."""


class NonFiniteInputError(AutoencoderError):
    """NaN or +-Inf where a finite sensor value is required."""


class ConstantChannelError(AutoencoderError):
    """The watched channel does not vary, so it cannot be standardised."""


class NotInt8ModelError(AutoencoderError):
    """The .tflite model is not an int8-end-to-end chain of FULLY_CONNECTED ops."""


class BundleMismatchError(AutoencoderError):
    """Stored scalars/blobs disagree with each other or are missing."""


ArenaSearchError = tflm_arena.ArenaSearchError


# ---------------------------------------------------------------------------

@dataclass
class Layer:
    weights: np.ndarray        # int8 [out, in]
    bias: np.ndarray           # int32 [out]
    multiplier: np.ndarray     # int32 [out]
    shift: np.ndarray          # int8  [out]
    input_offset: int          # -input zero point
    output_offset: int         # output zero point
    act_min: int
    act_max: int
    activation: str           # "RELU" or "NONE"
    per_channel: bool
    input_scale: float
    output_scale: float
    weight_scales: np.ndarray  # float32

    @property
    def in_dim(self) -> int:
        return int(self.weights.shape[1])

    @property
    def out_dim(self) -> int:
        return int(self.weights.shape[0])


@dataclass
class Network:
    window: int
    input_scale: np.float32
    input_zero_point: int
    output_scale: np.float32
    output_zero_point: int
    layers: list
    ops: list                  # builtin op names, in first-use order

    @property
    def scratch_sizes(self) -> tuple:
        """(scratch_a, scratch_b) byte counts the C engine needs.

        Layer k < last writes to scratch_b when k is even, scratch_a when odd;
        scratch_a also holds the quantised input."""
        a, b = self.window, 1
        for k, layer in enumerate(self.layers[:-1]):
            if k % 2 == 0:
                b = max(b, layer.out_dim)
            else:
                a = max(a, layer.out_dim)
        return a, b


# ---------------------------------------------------------------------------
# parameters

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_params(params: dict | None) -> dict:
    """Merge with DEFAULTS and validate; every layer choice is checked here,
    before any training, so that nothing fails at conversion or on the device."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise AutoencoderConfigError(
            f"unknown autoencoder parameter(s) {unknown}: the known ones are "
            f"{sorted(DEFAULTS)}; check the spelling")
    p = {**DEFAULTS, **params}
    p["hidden"] = list(p["hidden"]) if isinstance(p["hidden"], (list, tuple)) else p["hidden"]

    if not _is_int(p["channel"]) or p["channel"] < 0:
        raise AutoencoderConfigError(
            f"channel {p['channel']!r} must be a column index >= 0 (e.g. 0)")
    if not _is_int(p["window"]) or not 2 <= p["window"] <= MAX_WINDOW:
        raise AutoencoderConfigError(
            f"window {p['window']!r} must be an integer from 2 to {MAX_WINDOW} "
            f"(the default is 20)")
    act = p["activation"]
    if not isinstance(act, str) or act.lower() != "relu":
        raise UnsupportedLayerError(
            f"hidden activation {act!r} is not supported: TensorFlow Lite Micro's int8 "
            f"FULLY_CONNECTED fuses only ReLU, and the plain-C engine implements only "
            f"fused ReLU; use activation 'relu'")
    hidden = p["hidden"]
    if (not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_HIDDEN_LAYERS
            or not all(_is_int(h) for h in hidden)):
        raise UnsupportedLayerError(
            f"hidden {hidden!r} must be a list of 1 to {MAX_HIDDEN_LAYERS} layer widths "
            f"(integers), e.g. [8, 4, 8]; only Dense layers are supported")
    bad = [h for h in hidden if not 1 <= h <= MAX_WIDTH]
    if bad:
        raise UnsupportedLayerError(
            f"hidden layer width(s) {bad} out of range: each Dense layer needs 1 to "
            f"{MAX_WIDTH} units, e.g. [8, 4, 8]")
    p["hidden"] = [int(h) for h in hidden]
    p["window"] = int(p["window"])
    p["channel"] = int(p["channel"])
    for key, lo in (("epochs", 1), ("batch_size", 1), ("representative_samples", 1),
                    ("arena_cap", 64)):
        if not _is_int(p[key]) or p[key] < lo:
            raise AutoencoderConfigError(
                f"{key} {p[key]!r} must be an integer >= {lo} (default {DEFAULTS[key]})")
        p[key] = int(p[key])
    vs = p["validation_split"]
    if isinstance(vs, bool) or not isinstance(vs, (int, float)) or not 0.0 < vs <= 0.5:
        raise AutoencoderConfigError(
            f"validation_split {vs!r} must be a fraction in (0, 0.5], e.g. 0.1: the "
            f"threshold is set on that last part of the normal rows")
    p["validation_split"] = float(vs)
    lr = p["learning_rate"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0.0 < lr < 1.0):
        raise AutoencoderConfigError(
            f"learning_rate {lr!r} must be a number in (0, 1), e.g. 0.001")
    p["learning_rate"] = float(lr)
    thresholds.parse(p["threshold"])
    return p


# ---------------------------------------------------------------------------
# the float32 pipeline (numpy reference of the C)

def standardise(x, mean, std) -> np.ndarray:
    """(x - mean) / std, elementwise float32."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return (x - np.float32(mean)) / np.float32(std)


def quantize(z, scale, zero_point) -> np.ndarray:
    """TFLite QUANTIZE to int8: round half away from zero of z / scale
    (float32 division), plus zero point, clamped; saturating beyond +-256 steps."""
    z = np.asarray(z, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        v = z / np.float32(scale)
    v = np.clip(v, np.float32(-256.0), np.float32(256.0))
    t = np.trunc(v)
    frac = v - t                           # exact: |v| <= 256
    r = t.astype(np.int32) + (frac >= np.float32(0.5)) - (frac <= np.float32(-0.5))
    return np.clip(r + np.int32(zero_point), -128, 127).astype(np.int8)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """TFLite DEQUANTIZE: float32(q - zero_point) * scale."""
    q = np.asarray(q)
    return (q.astype(np.int32) - np.int32(zero_point)).astype(np.float32) * np.float32(scale)


def reconstruction_error(z, y, out_scale, out_zero_point) -> np.ndarray:
    """Per window: sum_i (z_i - r_i)^2 left to right in float32, then / W."""
    z = np.asarray(z, dtype=np.float32)
    r = dequantize(y, out_scale, out_zero_point)
    with np.errstate(over="ignore", invalid="ignore"):
        d = z - r
        sq = d * d
        acc = np.zeros(z.shape[0], dtype=np.float32)
        for i in range(z.shape[1]):          # fixed order, float32 adds
            acc = acc + sq[:, i]
        return acc / np.float32(z.shape[1])


def input_steps(mean, std, scale, zero_point) -> np.ndarray:
    """The 255 order keys (codegen/floatkeys.py) where quantize(standardise(x)) steps up:
    step j is the smallest finite reading whose int8 input is >= -127 + j, so a finite x
    quantises to -128 + #{steps <= key(x)}.  Exact because standardising and quantising
    are monotone in x (std and scale are positive)."""
    levels = np.arange(-127, 128)
    top = floatkeys.MAX_FINITE + 1

    def reached(keys):  # one key per level
        z = standardise(floatkeys.from_order_key(keys), mean, std)
        return quantize(z, scale, zero_point).astype(np.int32) >= levels

    return floatkeys.first_true(reached, np.full(levels.shape, -top),
                                np.full(levels.shape, top)).astype(np.int32)


def sliding_windows(x: np.ndarray, window: int) -> np.ndarray:
    x = np.ascontiguousarray(x, dtype=np.float32)
    if x.shape[0] < window:
        return np.zeros((0, window), dtype=np.float32)
    return np.lib.stride_tricks.sliding_window_view(x, window).copy()


def _first_nonfinite(x: np.ndarray):
    bad = np.flatnonzero(~np.isfinite(x))
    return (int(bad[0]), int(bad.size)) if bad.size else None


# ---------------------------------------------------------------------------
# the .tflite model -> int8 network parameters

def _schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    return fb


def _enum_names(cls) -> dict:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


# TFLite Micro MicroMutableOpResolver method for each builtin op we may list
RESOLVER_METHODS = {"FULLY_CONNECTED": "AddFullyConnected", "QUANTIZE": "AddQuantize",
                    "DEQUANTIZE": "AddDequantize", "RESHAPE": "AddReshape"}


def quantize_multiplier(real: float) -> tuple:
    """TFLite's QuantizeMultiplier: real = q * 2^shift with q in Q31, rounded
    half away from zero (frexp; 2^31 carried into the shift; tiny -> 0)."""
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0.0:
        raise NotInt8ModelError(
            f"requantisation scale {real!r} is not a finite positive number: the model's "
            f"quantisation parameters are broken; re-convert it")
    q, shift = math.frexp(real)
    x = q * float(1 << 31)                   # exact in double
    q_fixed = int(math.floor(x + 0.5))        # x > 0: half away from zero
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        raise NotInt8ModelError(
            f"requantisation scale {real!r} needs a left shift of {shift} > 30, which "
            f"TFLite's kernels do not support: retrain (the layer's output range is "
            f"degenerate)")
    return q_fixed, shift


def _buffer_bytes(model, blob: bytes, idx: int) -> bytes:
    buf = model.buffers[idx]
    if buf.data is not None and len(buf.data):
        return bytes(np.asarray(buf.data, dtype=np.uint8))
    if getattr(buf, "offset", 0) and getattr(buf, "size", 0):
        return blob[buf.offset: buf.offset + buf.size]
    return b""


def extract_network(blob: bytes) -> Network:
    """Parse a .tflite flatbuffer into the plain-C engine's parameters.

    Accepts exactly: one subgraph, int8 input [1, W] -> chain of
    FULLY_CONNECTED (int8 weights, zero point 0, per-channel or per-tensor,
    int32 or no bias, fused NONE/RELU) -> int8 output [1, W].  Anything else
    raises NotInt8ModelError naming what was found and how to fix it."""
    fb = _schema()
    tname = _enum_names(fb.TensorType)
    opname = _enum_names(fb.BuiltinOperator)
    actname = _enum_names(fb.ActivationFunctionType)
    fix = ("convert with full-integer quantisation: optimizations=[DEFAULT], a "
           "representative dataset, supported_ops=[TFLITE_BUILTINS_INT8], "
           "inference_input_type=tf.int8 and inference_output_type=tf.int8")
    try:
        model = fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(blob), 0))
    except Exception as exc:
        raise NotInt8ModelError(
            f"the model bytes are not a readable .tflite flatbuffer ({exc}); "
            f"re-run training to regenerate {BLOB_MODEL}") from None
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise NotInt8ModelError(
            f"the model has {len(model.subgraphs or [])} subgraphs, expected 1: {fix}")
    sg = model.subgraphs[0]
    tensors = sg.tensors
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise NotInt8ModelError(
            f"the model has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs, "
            f"expected one of each (a window in, its reconstruction out)")

    def qparams(t, what):
        q = t.quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            raise NotInt8ModelError(f"{what} tensor '{t.name.decode()}' has no quantisation "
                                    f"parameters: {fix}")
        zp = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale), np.int64)
        return np.asarray(q.scale, np.float32), np.asarray(zp, np.int64), q.quantizedDimension

    def need_int8(t, what):
        if t.type != fb.TensorType.INT8:
            raise NotInt8ModelError(
                f"the model is not int8 end to end: {what} tensor '{t.name.decode()}' is "
                f"{tname.get(t.type, t.type)}: {fix}")

    t_in, t_out = tensors[sg.inputs[0]], tensors[sg.outputs[0]]
    need_int8(t_in, "input")
    need_int8(t_out, "output")
    shape_in = list(t_in.shape)
    if len(shape_in) != 2 or shape_in[0] != 1:
        raise NotInt8ModelError(f"input shape {shape_in} is not [1, W]: build the model "
                                f"with keras.Input((W,))")
    window = int(shape_in[1])
    if list(t_out.shape) != [1, window]:
        raise NotInt8ModelError(f"output shape {list(t_out.shape)} is not [1, {window}]: "
                                f"the last Dense layer must have W={window} units")

    ops = []
    layers = []
    prev = sg.inputs[0]
    for n, op in enumerate(sg.operators or []):
        code = model.operatorCodes[op.opcodeIndex]
        b = max(code.builtinCode, code.deprecatedBuiltinCode)
        name = opname.get(b, str(b))
        if name not in ops:
            ops.append(name)
        if b != fb.BuiltinOperator.FULLY_CONNECTED:
            raise NotInt8ModelError(
                f"op {n} is {name}; the int8 engine runs only a chain of FULLY_CONNECTED "
                f"ops (Dense layers with ReLU or linear activation): "
                + ("the model has float input/output, " + fix
                   if name in ("QUANTIZE", "DEQUANTIZE") else "use only Dense layers"))
        opts = op.builtinOptions
        act = actname.get(opts.fusedActivationFunction, str(opts.fusedActivationFunction))
        if act not in ("NONE", "RELU"):
            raise NotInt8ModelError(
                f"FULLY_CONNECTED op {n} has fused activation {act}; the plain-C engine "
                f"implements NONE and RELU only: use activation 'relu' (or linear)")
        if getattr(opts, "keepNumDims", False) or getattr(opts, "weightsFormat", 0) != 0:
            raise NotInt8ModelError(
                f"FULLY_CONNECTED op {n} uses keep_num_dims or shuffled weights, which the "
                f"engine does not implement: build the model from plain Dense layers")
        ins = list(op.inputs)
        if ins[0] != prev:
            raise NotInt8ModelError(
                f"FULLY_CONNECTED op {n} does not consume the previous layer's output: the "
                f"engine runs a plain chain (Sequential Dense layers only)")
        ti, tw, to = tensors[ins[0]], tensors[ins[1]], tensors[op.outputs[0]]
        tb = tensors[ins[2]] if len(ins) > 2 and ins[2] >= 0 else None
        need_int8(ti, f"layer {n} input")
        need_int8(to, f"layer {n} output")
        if tw.type != fb.TensorType.INT8:
            raise NotInt8ModelError(
                f"layer {n} weights are {tname.get(tw.type, tw.type)}, not INT8: {fix}")
        s_in, zp_in, _ = qparams(ti, f"layer {n} input")
        s_out, zp_out, _ = qparams(to, f"layer {n} output")
        s_w, zp_w, qdim = qparams(tw, f"layer {n} weights")
        if len(s_in) != 1 or len(s_out) != 1:
            raise NotInt8ModelError(f"layer {n} activations are not per-tensor quantised: {fix}")
        out_dim, in_dim = (int(d) for d in tw.shape)
        raw = _buffer_bytes(model, blob, tw.buffer)
        if len(raw) != out_dim * in_dim:
            raise NotInt8ModelError(f"layer {n} weights are not stored in the model "
                                    f"(found {len(raw)} bytes): {fix}")
        weights = np.frombuffer(raw, dtype=np.int8).reshape(out_dim, in_dim).copy()
        if np.any(zp_w != 0):
            raise NotInt8ModelError(f"layer {n} weights are not symmetric (zero point != 0), "
                                    f"which TFLite Micro's int8 FULLY_CONNECTED requires: {fix}")
        per_channel = len(s_w) > 1
        if per_channel and (len(s_w) != out_dim or qdim != 0):
            raise NotInt8ModelError(f"layer {n} weight scales ({len(s_w)}, dimension {qdim}) do "
                                    f"not match its {out_dim} output channels: {fix}")
        if tb is not None:
            if tb.type != fb.TensorType.INT32:
                raise NotInt8ModelError(
                    f"layer {n} bias is {tname.get(tb.type, tb.type)}, not INT32: {fix}")
            rawb = _buffer_bytes(model, blob, tb.buffer)
            if len(rawb) != 4 * out_dim:
                raise NotInt8ModelError(f"layer {n} bias is not stored in the model: {fix}")
            bias = np.frombuffer(rawb, dtype="<i4").astype(np.int32)
        else:
            bias = np.zeros(out_dim, np.int32)
        if n == 0 and in_dim != window:
            raise NotInt8ModelError(f"first layer takes {in_dim} inputs, the model input has {window}")
        if layers and in_dim != layers[-1].out_dim:
            raise NotInt8ModelError(f"layer {n} takes {in_dim} inputs but the previous layer "
                                    f"gives {layers[-1].out_dim}")

        in_scale, out_scale = np.float32(s_in[0]), np.float32(s_out[0])
        mults, shifts = [], []
        for c in range(out_dim):
            if per_channel:   # TFLite Micro: double(in) * double(w[c]) / double(out)
                real = float(in_scale) * float(s_w[c]) / float(out_scale)
            else:             # GetQuantizedConvolutionMultipler: float product first
                real = float(np.float32(in_scale * np.float32(s_w[0]))) / float(out_scale)
            m, s = quantize_multiplier(real)
            mults.append(m)
            shifts.append(s)
        ozp = int(zp_out[0])
        if act == "RELU":     # CalculateActivationRangeQuantized: zp + round(0 / scale)
            amin, amax = max(-128, ozp), 127
        else:
            amin, amax = -128, 127
        layers.append(Layer(
            weights=weights, bias=bias, multiplier=np.array(mults, np.int32),
            shift=np.array(shifts, np.int8), input_offset=-int(zp_in[0]),
            output_offset=ozp, act_min=amin, act_max=amax, activation=act,
            per_channel=per_channel, input_scale=float(in_scale),
            output_scale=float(out_scale),
            weight_scales=np.array(s_w, np.float32)))
        prev = op.outputs[0]
    if not layers:
        raise NotInt8ModelError(f"the model has no FULLY_CONNECTED op: {fix}")
    if prev != sg.outputs[0]:
        raise NotInt8ModelError("the last FULLY_CONNECTED op's output is not the model output")
    if layers[-1].out_dim != window:
        raise NotInt8ModelError(f"the last layer has {layers[-1].out_dim} units, not W={window}")
    s_i, z_i, _ = qparams(t_in, "input")
    s_o, z_o, _ = qparams(t_out, "output")
    return Network(window=window, input_scale=np.float32(s_i[0]),
                   input_zero_point=int(z_i[0]), output_scale=np.float32(s_o[0]),
                   output_zero_point=int(z_o[0]), layers=layers, ops=ops)


def numpy_int8_network(net: Network, q: np.ndarray) -> np.ndarray:
    """The C engine's integer arithmetic in numpy (int64, exact).  Not the
    parity reference (that is TFLite Micro); used as a third witness."""
    x = np.asarray(q, dtype=np.int64)
    for layer in net.layers:
        acc = (x + layer.input_offset) @ layer.weights.astype(np.int64).T + layer.bias
        m = layer.multiplier.astype(np.int64)
        s = layer.shift.astype(np.int64)
        left = np.where(s > 0, s, 0)
        right = np.where(s > 0, 0, -s)
        a = ((acc << left) + 2**31) % 2**32 - 2**31          # int32 wrap
        ab = a * m
        nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
        num = ab + nudge
        high = np.where(num >= 0, num // 2**31, -((-num) // 2**31))   # truncating
        sat = (a == m) & (a == -2**31)
        high = np.where(sat, 2**31 - 1, high)
        mask = (np.int64(1) << right) - 1
        rem = high & mask
        thr = (mask >> 1) + (high < 0)
        v = (high >> right) + (rem > thr)
        v = v + layer.output_offset
        x = np.clip(v, layer.act_min, layer.act_max)
    return x.astype(np.int8)


# ---------------------------------------------------------------------------
# TensorFlow Lite Micro and LiteRT

class TflmRunner:
    """TensorFlow Lite Micro's reference kernels via the tflite-micro wheel."""

    def __init__(self, blob: bytes, arena_size: int):
        from tflite_micro.python.tflite_micro import runtime
        self._interp = runtime.Interpreter.from_bytes(blob, arena_size=int(arena_size))
        det = self._interp.get_input_details(0)
        self.window = int(det["shape"][1])

    def run(self, q: np.ndarray) -> np.ndarray:
        q = np.ascontiguousarray(q, dtype=np.int8).reshape(-1, self.window)
        out = np.empty_like(q)
        ip = self._interp
        for i in range(q.shape[0]):
            ip.set_input(q[i:i + 1], 0)
            ip.invoke()
            out[i] = ip.get_output(0)[0]
        return out


def litert_run(blob: bytes, q: np.ndarray) -> np.ndarray:
    """LiteRT (ai-edge-litert), default CPU path, batched."""
    from ai_edge_litert.interpreter import Interpreter
    q = np.ascontiguousarray(q, dtype=np.int8)
    ip = Interpreter(model_content=blob)
    d = ip.get_input_details()[0]
    ip.resize_tensor_input(d["index"], [q.shape[0], q.shape[1]])
    ip.allocate_tensors()
    ip.set_tensor(d["index"], q)
    ip.invoke()
    return ip.get_tensor(ip.get_output_details()[0]["index"]).copy()


def lsb_histogram(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int32) - b.astype(np.int32)).ravel()
    counts = np.bincount(d)
    return {"values": int(d.size), "differ": int(np.count_nonzero(d)),
            "by_lsb": {str(k): int(v) for k, v in enumerate(counts) if k > 0 and v > 0},
            "max_lsb": int(d.max()) if d.size else 0}


# Derived state is cached by model content, never stored on the Fitted (which
# stays plain data: copyable, comparable, and safe to edit in tests).
_NETWORKS: dict = {}
_RUNNERS: dict = {}


def _blob_key(blob: bytes) -> str:
    return hashlib.sha256(blob).hexdigest()


def network_of(fitted: Fitted) -> Network:
    """The parsed int8 network of fitted's .tflite (cached by content)."""
    if BLOB_MODEL not in fitted.blobs:
        raise BundleMismatchError(f"the autoencoder has no {BLOB_MODEL}: re-run training")
    blob = fitted.blobs[BLOB_MODEL]
    key = _blob_key(blob)
    if key not in _NETWORKS:
        _NETWORKS[key] = extract_network(blob)
    return _NETWORKS[key]


def _tflm(fitted: Fitted) -> TflmRunner:
    blob = fitted.blobs[BLOB_MODEL]
    key = (_blob_key(blob), int(fitted.scalars["arena_size"]))
    if key not in _RUNNERS:
        if len(_RUNNERS) > 8:
            _RUNNERS.clear()
        _RUNNERS[key] = TflmRunner(blob, key[1])
    return _RUNNERS[key]


def network_int8(fitted: Fitted, q: np.ndarray) -> np.ndarray:
    """Reference int8 network (TensorFlow Lite Micro) on int8 windows [n, W]."""
    return _tflm(fitted).run(q)


def score_windows(fitted: Fitted, windows: np.ndarray) -> tuple:
    """Reference score and flag of raw windows [n, W] (values of the watched
    channel, oldest first).  A window holding NaN/Inf scores +Inf and is flagged."""
    s = fitted.scalars
    net = network_of(fitted)
    windows = np.asarray(windows, dtype=np.float32).reshape(-1, net.window)
    finite = np.isfinite(windows).all(axis=1)
    scores = np.full(len(windows), np.inf, dtype=np.float32)
    if finite.any():
        z = standardise(windows[finite], s["mean"], s["std"])
        q = quantize(z, net.input_scale, net.input_zero_point)
        y = network_int8(fitted, q)
        scores[finite] = reconstruction_error(z, y, net.output_scale, net.output_zero_point)
    return scores, scores > np.float32(s["threshold"])


# ---------------------------------------------------------------------------
# training

@contextlib.contextmanager
def _quiet(enabled: bool = True, keep_stdout: bool = False):
    """Silence file descriptors 1 and 2 (TensorFlow's C++ logs, the converter's
    prints, LiteRT's delegate notice); with keep_stdout, only fd 2 and Python
    warnings (Keras prints its progress to sys.stdout).  Yields a callable that
    returns what was captured, for error messages."""
    if not enabled:
        yield lambda: ""
        return
    fds = (2,) if keep_stdout else (1, 2)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    tmp = tempfile.TemporaryFile(mode="w+b")
    text = {"v": None}

    def captured():
        if text["v"] is None:
            tmp.flush()
            tmp.seek(0)
            return tmp.read().decode("utf-8", "replace")
        return text["v"]

    try:
        for fd in fds:
            os.dup2(tmp.fileno(), fd)
        with contextlib.ExitStack() as stack:
            if not keep_stdout:
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            yield captured
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # pragma: no cover
            pass
        for fd, dup in saved.items():
            os.dup2(dup, fd)
            os.close(dup)
        text["v"] = captured()
        tmp.close()


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"[autoencoder] {msg}", file=sys.stderr, flush=True)


def _import_tf(verbose: bool):
    # TensorFlow's C++ INFO/WARNING logs are noise even in verbose mode
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with _quiet():
        import tensorflow as tf
        import keras
    return tf, keras


def _train_and_convert(p: dict, z_train_w: np.ndarray, z_val_w: np.ndarray, seed: int,
                       verbose: bool) -> tuple:
    tf, keras = _import_tf(verbose)
    W = p["window"]
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
    layers = [keras.Input(shape=(W,), name="window")]
    for k, h in enumerate(p["hidden"]):
        layers.append(keras.layers.Dense(h, activation="relu", name=f"hidden{k}"))
    layers.append(keras.layers.Dense(W, activation="linear", name="reconstruction"))
    model = keras.Sequential(layers, name="autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=p["learning_rate"]),
                  loss="mse")
    fit_verbose = (1 if sys.stdout.isatty() else 2) if verbose else 0
    t0 = time.time()
    with _quiet(keep_stdout=verbose):   # TF's C++ logs; Keras progress when verbose
        hist = model.fit(z_train_w, z_train_w, validation_data=(z_val_w, z_val_w),
                         epochs=p["epochs"], batch_size=p["batch_size"], shuffle=True,
                         verbose=fit_verbose)
    t_train = time.time() - t0

    n_rep = min(p["representative_samples"], z_train_w.shape[0])
    idx = np.unique(np.linspace(0, z_train_w.shape[0] - 1, n_rep).round().astype(np.int64))
    rep = z_train_w[idx]

    def representative():
        for i in range(rep.shape[0]):
            yield [rep[i:i + 1]]

    t0 = time.time()
    with _quiet() as captured:   # converter chatter; shown only if it fails
        try:
            conv = tf.lite.TFLiteConverter.from_keras_model(model)
            conv.optimizations = [tf.lite.Optimize.DEFAULT]
            conv.representative_dataset = representative
            conv.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
            conv.inference_input_type = tf.int8
            conv.inference_output_type = tf.int8
            blob = bytes(conv.convert())
        except Exception as exc:
            err = exc
        else:
            err = None
    if err is not None:
        tail = captured()[-800:]
        raise NotInt8ModelError(
            f"full-integer int8 conversion failed: {err}. Converter output: {tail!r}. "
            f"Use only Dense layers with ReLU hidden activations") from None
    t_conv = time.time() - t0
    history = {k: np.asarray(v, dtype=np.float32) for k, v in hist.history.items()}
    return blob, history, {"train_s": round(t_train, 3), "convert_s": round(t_conv, 3),
                           "representative_windows": int(rep.shape[0]),
                           "tensorflow": tf.__version__, "keras": keras.__version__}


def _threshold(val_scores: np.ndarray, spec: str) -> np.float32:
    t32 = thresholds.choose(spec, val_scores)
    if not np.isfinite(t32):
        raise AutoencoderError(
            f"threshold from {spec!r} is not finite: the validation scores overflow "
            f"float32; check the data for extreme values")
    return t32


def _pkg_version(name: str) -> str:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return "not installed"


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool,
        channels: list[str] | None = None) -> Fitted:
    """Train on normal data only, convert to int8, size the arena, set the threshold."""
    p = check_params(params)
    W, ch = p["window"], p["channel"]
    normal = np.asarray(normal)
    if normal.ndim == 1:
        normal = normal.reshape(-1, 1)
    if normal.ndim != 2:
        raise InsufficientDataError(
            f"normal data has shape {normal.shape}; pass a 2-D array (rows, channels)")
    if ch >= normal.shape[1]:
        raise AutoencoderConfigError(
            f"channel {ch} does not exist: the data has {normal.shape[1]} channel(s) "
            f"(0..{normal.shape[1] - 1}); set param 'channel'")
    x = normal[:, ch].astype(np.float32)
    n = x.shape[0]
    if W > n:
        raise InsufficientDataError(
            f"window {W} is longer than the data ({n} rows): use a shorter window "
            f"(param 'window') or supply more normal rows")
    bad = _first_nonfinite(x)
    if bad is not None:
        raise NonFiniteInputError(
            f"{bad[1]} NaN/Inf value(s) in channel {ch} of the normal data (first at row "
            f"{bad[0]}): training needs finite values; drop or interpolate those rows")
    n_val_rows = int(round(n * p["validation_split"]))
    n_train_rows = n - n_val_rows
    n_train_w = max(0, n_train_rows - W + 1)
    n_val_w = max(0, n_val_rows - W + 1)
    if n_train_w < MIN_TRAIN_WINDOWS or n_val_w < MIN_VAL_WINDOWS:
        need = max(math.ceil((MIN_VAL_WINDOWS + W - 1) / p["validation_split"]),
                   math.ceil((MIN_TRAIN_WINDOWS + W - 1) / (1.0 - p["validation_split"])))
        raise InsufficientDataError(
            f"too few normal windows: {n} rows give {n_train_w} training and {n_val_w} "
            f"validation windows of {W} (need at least {MIN_TRAIN_WINDOWS} and "
            f"{MIN_VAL_WINDOWS}); supply at least {need} normal rows, or use a shorter "
            f"window or a larger validation_split")

    xt = x[:n_train_rows]
    mean = np.float32(xt.astype(np.float64).mean())
    std = np.float32(xt.astype(np.float64).std())
    if not (np.isfinite(std) and std > 0 and np.isfinite(mean)):
        raise ConstantChannelError(
            f"channel {ch} is constant (or overflows float32) in the normal training rows "
            f"(std {float(std)!r}): it cannot be standardised; watch another channel or use "
            f"another detector")
    raw_train_w = sliding_windows(xt, W)
    raw_val_w = sliding_windows(x[n_train_rows:], W)
    z_train_w = standardise(raw_train_w, mean, std)
    z_val_w = standardise(raw_val_w, mean, std)
    if _first_nonfinite(z_train_w) or _first_nonfinite(z_val_w):
        raise NonFiniteInputError(
            f"standardised values of channel {ch} overflow float32 (values far beyond "
            f"the mean +- 1e38 std): rescale the channel")

    arch = "-".join(str(v) for v in [W, *p["hidden"], W])
    _log(verbose, f"training {arch} on {n_train_w} windows (validation {n_val_w}), "
                  f"{p['epochs']} epochs, seed {seed}")
    blob, history, timing = _train_and_convert(p, z_train_w, z_val_w, seed, verbose)
    _log(verbose, f"converted to int8: {len(blob)} bytes")
    net = extract_network(blob)

    _log(verbose, "searching the smallest TensorFlow Lite Micro arena (one subprocess per try)")
    scratch = 4 * max(layer.out_dim for layer in net.layers)
    t0 = time.time()
    arena = tflm_arena.find_arena(blob, cap=p["arena_cap"], kernel_scratch_bytes=scratch)
    t_arena = time.time() - t0
    arena_d = arena.as_dict()
    _log(verbose, f"arena: minimum {arena.minimum} B, emitted {arena.emitted} B; {arena.note}")

    scalars = {
        "channel": ch, "window": W,
        "mean": float(mean), "std": float(std),
        "input_scale": float(net.input_scale), "input_zero_point": net.input_zero_point,
        "output_scale": float(net.output_scale), "output_zero_point": net.output_zero_point,
        "threshold": 0.0,
        "arena_size": arena.emitted, "arena_minimum": arena.minimum,
        "n_train_windows": n_train_w, "n_val_windows": n_val_w,
    }
    fitted = Fitted(params=p, scalars=scalars, arrays={},
                    blobs={BLOB_MODEL: blob,
                           BLOB_ARENA: json.dumps(arena_d, indent=1, sort_keys=True).encode()})
    val_scores, _ = score_windows(fitted, raw_val_w)
    thr = _threshold(val_scores, p["threshold"])
    scalars["threshold"] = float(thr)
    fitted.arrays = {"validation_scores": val_scores,
                     **{f"history_{k}": v for k, v in history.items()}}

    # LiteRT vs TFLite Micro on the same int8 inputs
    litert: dict = {"version": _pkg_version("ai-edge-litert")}
    try:
        q_val = quantize(z_val_w, net.input_scale, net.input_zero_point)
        rng = np.random.default_rng(int(seed))
        q_rand = rng.integers(-128, 128, size=(LITERT_RANDOM_WINDOWS, W)).astype(np.int8)
        with _quiet():
            lr_val = litert_run(blob, q_val)
            lr_rand = litert_run(blob, q_rand)
        litert["validation_windows"] = {"windows": int(q_val.shape[0]),
                                        **lsb_histogram(lr_val, network_int8(fitted, q_val))}
        litert["random_int8_windows"] = {"windows": LITERT_RANDOM_WINDOWS,
                                         **lsb_histogram(lr_rand, network_int8(fitted, q_rand))}
    except Exception as exc:  # informative only; never blocks training
        litert["error"] = f"{type(exc).__name__}: {exc}"

    fitted.report = {
        "architecture": arch,
        "tflite_bytes": len(blob),
        "tflite_sha256": hashlib.sha256(blob).hexdigest(),
        "ops": list(net.ops),
        "per_channel_layers": [bool(layer.per_channel) for layer in net.layers],
        "arena": {k: arena_d[k] for k in ("minimum", "emitted", "margin", "margin_parts",
                                          "report_total", "report_head", "report_tail",
                                          "runtime", "consistent", "note")},
        "arena_search_s": round(t_arena, 3),
        "arena_probes": len(arena.probes),
        "litert_vs_tflm": litert,
        "threshold": {"spec": p["threshold"], "value": float(thr),
                      "validation_windows": n_val_w,
                      "validation_flagged": int(np.count_nonzero(val_scores > thr))},
        "final_loss": float(history["loss"][-1]) if "loss" in history else None,
        "final_val_loss": float(history["val_loss"][-1]) if "val_loss" in history else None,
        "versions": {**{k: timing[k] for k in ("tensorflow", "keras")},
                     "tflite-micro": _pkg_version("tflite-micro"),
                     "ai-edge-litert": _pkg_version("ai-edge-litert"),
                     "numpy": np.__version__},
        "timing_s": {k: timing[k] for k in ("train_s", "convert_s")},
        "c_engine_ram_bytes": sum(net.scratch_sizes),
    }
    _log(verbose, f"threshold {p['threshold']} = {float(thr)!r}")
    return fitted


# ---------------------------------------------------------------------------

def load(params, scalars, arrays, blobs) -> Fitted:
    """Rebuild a Fitted from what fit() returned and the caller stored."""
    p = check_params(params)
    if BLOB_MODEL not in (blobs or {}):
        raise BundleMismatchError(
            f"the stored autoencoder has no {BLOB_MODEL}: re-run training")
    blob = bytes(blobs[BLOB_MODEL])
    net = extract_network(blob)
    s = dict(scalars)
    need = ("channel", "window", "mean", "std", "threshold", "arena_size")
    missing = [k for k in need if k not in s]
    if missing:
        raise BundleMismatchError(f"stored autoencoder scalars lack {missing}: re-run training")
    checks = {"window": (s["window"], net.window),
              "input_scale": (s.get("input_scale", float(net.input_scale)), float(net.input_scale)),
              "input_zero_point": (s.get("input_zero_point", net.input_zero_point),
                                   net.input_zero_point),
              "output_scale": (s.get("output_scale", float(net.output_scale)),
                               float(net.output_scale)),
              "output_zero_point": (s.get("output_zero_point", net.output_zero_point),
                                    net.output_zero_point)}
    for k, (a, b) in checks.items():
        if a != b:
            raise BundleMismatchError(
                f"stored {k} = {a!r} disagrees with {BLOB_MODEL} ({b!r}): the bundle was "
                f"edited or mixed up; re-run training")
    for k in ("mean", "std", "threshold"):
        v = s[k]
        if not (isinstance(v, (int, float)) and math.isfinite(v) and float(np.float32(v)) == v):
            raise BundleMismatchError(
                f"stored {k} = {v!r} is not a finite float32 value: re-run training")
    if BLOB_ARENA in blobs:
        arena = json.loads(bytes(blobs[BLOB_ARENA]).decode())
    else:
        arena = {"minimum": s.get("arena_minimum"), "emitted": s["arena_size"],
                 "runtime": "unknown (arena record missing)"}
    report = {"tflite_bytes": len(blob), "tflite_sha256": hashlib.sha256(blob).hexdigest(),
              "ops": list(net.ops), "arena": arena}
    return Fitted(params=p, scalars=s, arrays=dict(arrays or {}),
                  blobs={k: bytes(v) for k, v in blobs.items()}, report=report)


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False) -> Scored:
    """Per-row float32 scores and bool flags of a stream X [n_rows, n_channels];
    row i >= W-1 scores the window of rows i-W+1..i; earlier rows get 0, False."""
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    ch, W = fitted.scalars["channel"], fitted.scalars["window"]
    if X.ndim != 2 or ch >= X.shape[1]:
        raise AutoencoderConfigError(
            f"data of shape {X.shape} has no channel {ch}, which this autoencoder was "
            f"trained on: pass the same columns as in training")
    x = X[:, ch].astype(np.float32)
    n = x.shape[0]
    scores = np.zeros(n, dtype=np.float32)
    flags = np.zeros(n, dtype=bool)
    if n >= W:
        s, f = score_windows(fitted, sliding_windows(x, W))
        scores[W - 1:] = s
        flags[W - 1:] = f
    return Scored(scores, flags)


# ---------------------------------------------------------------------------
# C formatting

def c_int(v: int) -> str:
    v = int(v)
    if v == -2**31:
        return "(-2147483647 - 1)"
    return str(v)


def _rows(values, per_row: int, fmt) -> list:
    vals = [fmt(v) for v in values]
    return [", ".join(vals[i:i + per_row]) for i in range(0, len(vals), per_row)]


def template_context(fitted: Fitted) -> dict:
    """Everything templates/autoencoder.h.j2 needs except model_name."""
    net = network_of(fitted)
    s = fitted.scalars
    blob = fitted.blobs[BLOB_MODEL]
    arena = json.loads(fitted.blobs[BLOB_ARENA].decode()) if BLOB_ARENA in fitted.blobs else {}
    a, b = net.scratch_sizes
    layers = []
    for k, layer in enumerate(net.layers):
        layers.append({
            "index": k, "in_dim": layer.in_dim, "out_dim": layer.out_dim,
            "activation": layer.activation,
            "quantization": "per-channel" if layer.per_channel else "per-tensor",
            "input_offset": c_int(layer.input_offset),
            "output_offset": c_int(layer.output_offset),
            "act_min": c_int(layer.act_min), "act_max": c_int(layer.act_max),
            "weights_rows": [", ".join(str(int(w)) for w in row) for row in layer.weights],
            "bias_rows": _rows(layer.bias, 8, c_int),
            "multiplier_rows": _rows(layer.multiplier, 6, c_int),
            "shift_rows": _rows(layer.shift, 16, c_int),
        })
    return {
        "detector": NAME,
        "architecture": "-".join(str(v) for v in [net.window] + [l_.out_dim for l_ in net.layers]),
        "window": net.window,
        "channel": int(s["channel"]),
        "mean": c_float(s["mean"]),
        "std": c_float(s["std"]),
        "input_scale": c_float(net.input_scale),
        "input_zero_point": c_int(net.input_zero_point),
        "output_scale": c_float(net.output_scale),
        "output_zero_point": c_int(net.output_zero_point),
        "threshold": c_float(s["threshold"]),
        "threshold_spec": str(fitted.params.get("threshold", "")),
        "input_steps": [int(k) for k in input_steps(s["mean"], s["std"], net.input_scale,
                                                    net.input_zero_point)],
        "model_len": len(blob),
        "model_rows": _rows(blob, 12, lambda v: f"0x{v:02x}"),
        "tflite_sha256": hashlib.sha256(blob).hexdigest(),
        "ops": [{"name": o, "method": RESOLVER_METHODS.get(
            o, "Add" + "".join(w.capitalize() for w in o.split("_")))} for o in net.ops],
        "op_count": len(net.ops),
        "arena_size": int(s["arena_size"]),
        "arena_minimum": int(arena.get("minimum", s.get("arena_minimum", 0)) or 0),
        "arena_report_total": int(arena.get("report_total") or 0),
        "arena_margin_alignment": int(arena.get("margin_parts", {}).get("alignment", 16)),
        "arena_margin_scratch": int(arena.get("margin_parts", {}).get("kernel_scratch", 0)),
        "arena_runtime": str(arena.get("runtime", "unknown")),
        "n_layers": len(net.layers),
        "layers": layers,
        "scratch_a": a,
        "scratch_b": b,
    }


def describe(fitted: Fitted) -> str:
    window = fitted.scalars["window"]
    return "-".join(str(n) for n in [window, *fitted.params["hidden"], window])


SPEC = DetectorSpec(NAME, units=("autoencoder",), kind=Kind.WINDOWED,
                    window=lambda fitted: fitted.scalars["window"], mutable=("std",),
                    describe=describe, load=load)
