"""Reading a .tflite flatbuffer (with the schema module the tflite-micro wheel ships): the
generic readers (model, builtin op, tensor type and quantisation, buffer bytes), the
parser of an int8 chain of FULLY_CONNECTED ops into the plain-C dense engine's
parameters, and the TFLite Micro op resolver method of each builtin op."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.tflite.errors import NotInt8ModelError
from codegen.tflite.quantize import quantize_multiplier

# How to make a model int8 end to end (codegen/tflite/convert.py does exactly this).
CONVERSION_FIX = ("convert with full-integer quantisation: optimizations=[DEFAULT], a "
                  "representative dataset, supported_ops=[TFLITE_BUILTINS_INT8], "
                  "inference_input_type=tf.int8 and inference_output_type=tf.int8")

# TFLite Micro MicroMutableOpResolver method for each builtin op we may list
RESOLVER_METHODS = {"FULLY_CONNECTED": "AddFullyConnected", "QUANTIZE": "AddQuantize",
                    "DEQUANTIZE": "AddDequantize", "RESHAPE": "AddReshape"}


def resolver_method(op: str) -> str:
    """The MicroMutableOpResolver method that registers builtin op `op` (its name in
    CamelCase when RESOLVER_METHODS does not list it)."""
    return RESOLVER_METHODS.get(op, "Add" + "".join(w.capitalize() for w in op.split("_")))


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

    @property
    def folded_bias(self) -> np.ndarray:
        """int64 [out]: the bias with the input zero point folded in, bias + input_offset *
        (each row's sum of weights), so that folded_bias + weights @ in equals TFLite's
        accumulator bias + weights @ (in + input_offset) (what the C engine sums)."""
        return (self.bias.astype(np.int64)
                + self.input_offset * self.weights.astype(np.int64).sum(axis=1))


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
        scratch_a also holds the quantised input, and the score puts the network's
        output in the buffer the last layer does not read: scratch_a after an even
        number of layers, scratch_b after an odd one."""
        a, b = self.window, 1
        for k, layer in enumerate(self.layers[:-1]):
            if k % 2 == 0:
                b = max(b, layer.out_dim)
            else:
                a = max(a, layer.out_dim)
        if len(self.layers) % 2 == 1:
            b = max(b, self.window)
        return a, b


# ---------------------------------------------------------------------------
# generic readers

def schema():
    from tflite_micro.tensorflow.lite.micro.python import schema_py_generated as fb
    return fb


def enum_names(cls) -> dict:
    return {v: k for k, v in vars(cls).items() if not k.startswith("_") and isinstance(v, int)}


def type_name(tensor_type: int):
    return enum_names(schema().TensorType).get(tensor_type, tensor_type)


def read_model(blob: bytes, file: str):
    """The model's object tree (schema ModelT); `file` names the model in the error
    raised when the bytes do not parse."""
    fb = schema()
    try:
        return fb.ModelT.InitFromObj(fb.Model.GetRootAsModel(bytearray(blob), 0))
    except Exception as exc:
        raise NotInt8ModelError(
            f"the model bytes are not a readable .tflite flatbuffer ({exc}); "
            f"re-run training to regenerate {file}") from None


def builtin_op(model, op) -> tuple:
    """(builtin operator code, its name) of operator `op`."""
    code = model.operatorCodes[op.opcodeIndex]
    b = max(code.builtinCode, code.deprecatedBuiltinCode)
    return b, enum_names(schema().BuiltinOperator).get(b, str(b))


def quantization(tensor, what: str) -> tuple:
    """(scales float32, zero points int64, quantised dimension) of a quantised tensor."""
    q = tensor.quantization
    if q is None or q.scale is None or len(q.scale) == 0:
        raise NotInt8ModelError(f"{what} tensor '{tensor.name.decode()}' has no quantisation "
                                f"parameters: {CONVERSION_FIX}")
    zp = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale), np.int64)
    scales, zero_points = np.asarray(q.scale, np.float32), np.asarray(zp, np.int64)
    if zero_points.shape != scales.shape:
        raise NotInt8ModelError(f"{what} tensor has {len(scales)} scales and "
                                f"{len(zero_points)} zero points: {CONVERSION_FIX}")
    _check_quantization(scales, zero_points, what)
    return scales, zero_points, q.quantizedDimension


def require_int8(tensor, what: str) -> None:
    if tensor.type != schema().TensorType.INT8:
        raise NotInt8ModelError(
            f"the model is not int8 end to end: {what} tensor '{tensor.name.decode()}' is "
            f"{type_name(tensor.type)}: {CONVERSION_FIX}")


def buffer_bytes(model, blob: bytes, idx: int) -> bytes:
    """The bytes of buffer `idx`: inside the flatbuffer, or at its offset and size."""
    buf = model.buffers[idx]
    if buf.data is not None and len(buf.data):
        return bytes(np.asarray(buf.data, dtype=np.uint8))
    if getattr(buf, "offset", 0) and getattr(buf, "size", 0):
        return blob[buf.offset: buf.offset + buf.size]
    return b""


# ---------------------------------------------------------------------------
# an int8 FULLY_CONNECTED chain -> the plain-C engine's parameters

def extract_network(blob: bytes, file: str) -> Network:
    """Parse a .tflite flatbuffer into the plain-C engine's parameters.

    Accepts exactly: one subgraph, int8 input [1, W] -> chain of
    FULLY_CONNECTED (int8 weights, zero point 0, per-channel or per-tensor,
    int32 or no bias, fused NONE/RELU) -> int8 output [1, W], every scale a positive
    float32 and every zero point an int8.  Anything else raises NotInt8ModelError naming
    what was found and how to fix it; `file` names the model when its bytes do not parse
    (a model is untrusted input: a damaged one must not get further than here)."""
    try:
        return _extract_network(blob, file)
    except (IndexError, TypeError, AttributeError, KeyError, OverflowError,
            ValueError) as error:
        if isinstance(error, NotInt8ModelError):
            raise
        raise NotInt8ModelError(f"{file} is damaged: its structure does not hold together "
                                f"({type(error).__name__}: {error}); re-run training to "
                                f"regenerate it") from None


def _check_quantization(scales: np.ndarray, zero_points: np.ndarray, what: str) -> None:
    if not (np.isfinite(scales).all() and (scales > 0).all()):
        raise NotInt8ModelError(f"{what} scales {scales.tolist()[:4]} are not positive finite "
                                f"numbers: {CONVERSION_FIX}")
    if not ((zero_points >= -128) & (zero_points <= 127)).all():
        raise NotInt8ModelError(f"{what} zero points {zero_points.tolist()[:4]} are not int8 "
                                f"values: {CONVERSION_FIX}")


def _extract_network(blob: bytes, file: str) -> Network:
    fb = schema()
    actname = enum_names(fb.ActivationFunctionType)
    fix = CONVERSION_FIX
    model = read_model(blob, file)
    if not model.subgraphs or len(model.subgraphs) != 1:
        raise NotInt8ModelError(
            f"the model has {len(model.subgraphs or [])} subgraphs, expected 1: {fix}")
    sg = model.subgraphs[0]
    tensors = sg.tensors
    if len(sg.inputs) != 1 or len(sg.outputs) != 1:
        raise NotInt8ModelError(
            f"the model has {len(sg.inputs)} inputs and {len(sg.outputs)} outputs, "
            f"expected one of each (a window in, its reconstruction out)")

    t_in, t_out = tensors[sg.inputs[0]], tensors[sg.outputs[0]]
    require_int8(t_in, "input")
    require_int8(t_out, "output")
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
        b, name = builtin_op(model, op)
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
        require_int8(ti, f"layer {n} input")
        require_int8(to, f"layer {n} output")
        if tw.type != fb.TensorType.INT8:
            raise NotInt8ModelError(
                f"layer {n} weights are {type_name(tw.type)}, not INT8: {fix}")
        s_in, zp_in, _ = quantization(ti, f"layer {n} input")
        s_out, zp_out, _ = quantization(to, f"layer {n} output")
        s_w, zp_w, qdim = quantization(tw, f"layer {n} weights")
        if len(s_in) != 1 or len(s_out) != 1:
            raise NotInt8ModelError(f"layer {n} activations are not per-tensor quantised: {fix}")
        out_dim, in_dim = (int(d) for d in tw.shape)
        raw = buffer_bytes(model, blob, tw.buffer)
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
                    f"layer {n} bias is {type_name(tb.type)}, not INT32: {fix}")
            rawb = buffer_bytes(model, blob, tb.buffer)
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
    s_i, z_i, _ = quantization(t_in, "input")
    s_o, z_o, _ = quantization(t_out, "output")
    return Network(window=window, input_scale=np.float32(s_i[0]),
                   input_zero_point=int(z_i[0]), output_scale=np.float32(s_o[0]),
                   output_zero_point=int(z_o[0]), layers=layers, ops=ops)
