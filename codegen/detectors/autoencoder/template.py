"""The variables of templates/autoencoder.h.j2: the network's constants as C literals, the
.tflite bytes, its TFLite Micro ops and arena."""

from __future__ import annotations

import hashlib
import json

from codegen.detectors.autoencoder.params import NAME
from codegen.detectors.autoencoder.pipeline import (all_input_steps, needs_rows, pointwise,
                                                    scored_values, std_reciprocal, watched)
from codegen.detectors.autoencoder.stored import BLOB_ARENA, BLOB_MODEL, network_of
from codegen.detectors.base import Fitted
from codegen.emit.literals import c_comment, c_float, c_int
from codegen.tflite.flatbuffer import resolver_method


def _rows(values, per_row: int, fmt) -> list:
    vals = [fmt(v) for v in values]
    return [", ".join(vals[i:i + per_row]) for i in range(0, len(vals), per_row)]


def _halves(multipliers) -> list:
    """Each Q31 multiplier (0 to 2^31 - 1) as its high and low 16 bits, the engine's
    layout."""
    return [h for m in multipliers for h in (int(m) >> 16, int(m) & 0xFFFF)]


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
            "output_offset": c_int(layer.output_offset),
            "act_min": c_int(layer.act_min), "act_max": c_int(layer.act_max),
            "weights_rows": [", ".join(str(int(w)) for w in row) for row in layer.weights],
            "bias_rows": _rows(layer.folded_bias, 8, c_int),
            "multiplier_rows": _rows(_halves(layer.multiplier), 8, str),
            "shift_rows": _rows(layer.shift, 16, c_int),
        })
    channels, means, stds = watched(fitted)
    return {
        "detector": NAME,
        "architecture": "-".join(str(v) for v in [net.window] + [l_.out_dim for l_ in net.layers]),
        "window": int(s["window"]),
        "width": net.window,
        "rows": needs_rows(fitted),
        "pointwise": pointwise(fitted),
        "scored": scored_values(fitted),
        "channel": int(channels[0]),
        "channels": [int(c) for c in channels],
        "mean": c_float(means[0]),
        "std": c_float(stds[0]),
        "std_reciprocal": c_float(std_reciprocal(stds[0])),
        "means": [float(v) for v in means],
        "stds": [float(v) for v in stds],
        "std_reciprocals": [float(std_reciprocal(v)) for v in stds],
        "input_scale": c_float(net.input_scale),
        "input_zero_point": c_int(net.input_zero_point),
        "output_scale": c_float(net.output_scale),
        "output_zero_point": c_int(net.output_zero_point),
        "threshold": c_float(s["threshold"]),
        "threshold_spec": c_comment(fitted.params.get("threshold", "")),
        "input_steps": [int(k) for k in all_input_steps(fitted)],
        "model_len": len(blob),
        "model_rows": _rows(blob, 12, lambda v: f"0x{v:02x}"),
        "tflite_sha256": hashlib.sha256(blob).hexdigest(),
        "ops": [{"name": o, "method": resolver_method(o)} for o in net.ops],
        "op_count": len(net.ops),
        "arena_size": int(s["arena_size"]),
        "arena_minimum": int(arena.get("minimum", s.get("arena_minimum", 0)) or 0),
        "arena_report_total": int(arena.get("report_total") or 0),
        "arena_margin_alignment": int(arena.get("margin_parts", {}).get("alignment", 16)),
        "arena_margin_scratch": int(arena.get("margin_parts", {}).get("kernel_scratch", 0)),
        "arena_runtime": c_comment(arena.get("runtime", "unknown")),
        "n_layers": len(net.layers),
        "layers": layers,
        "scratch_a": a,
        "scratch_b": b,
    }
