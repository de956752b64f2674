"""Three ways to run an int8 .tflite model on int8 windows [n, W]: TensorFlow Lite Micro's
reference kernels (the parity reference), LiteRT (for information: it rounds once instead
of twice), and the plain-C engine's integer arithmetic in numpy (a third witness); and how
far two int8 outputs are apart."""

from __future__ import annotations

import numpy as np

from codegen.tflite.flatbuffer import Network
from codegen.tflite.quantize import multiply_by_quantized_multiplier


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


def numpy_int8_network(net: Network, q: np.ndarray) -> np.ndarray:
    """The C engine's integer arithmetic in numpy (int64, exact).  Not the
    parity reference (that is TFLite Micro); used as a third witness."""
    x = np.asarray(q, dtype=np.int64)
    for layer in net.layers:
        acc = x @ layer.weights.astype(np.int64).T + layer.folded_bias
        v = multiply_by_quantized_multiplier(acc, layer.multiplier, layer.shift)
        v = v + layer.output_offset
        x = np.clip(v, layer.act_min, layer.act_max)
    return x.astype(np.int8)


def lsb_histogram(a: np.ndarray, b: np.ndarray) -> dict:
    d = np.abs(a.astype(np.int32) - b.astype(np.int32)).ravel()
    counts = np.bincount(d)
    return {"values": int(d.size), "differ": int(np.count_nonzero(d)),
            "by_lsb": {str(k): int(v) for k, v in enumerate(counts) if k > 0 and v > 0},
            "max_lsb": int(d.max()) if d.size else 0}
