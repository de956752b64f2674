"""What a trained autoencoder keeps as files (its blobs), read back: the int8 network
parsed from its .tflite, the TensorFlow Lite Micro interpreter that runs it, and load(),
which rebuilds a Fitted from a bundle after checking that its parts agree.

Derived state is cached by model content, never stored on the Fitted (which stays plain
data: copyable, comparable, and safe to edit in tests)."""

from __future__ import annotations

import hashlib
import json

import numpy as np

from codegen.detectors.autoencoder.params import (MAX_ARENA, MAX_HIDDEN_LAYERS, MAX_WIDTH,
                                                  MAX_WINDOW, POINTWISE, BundleMismatchError,
                                                  check_params)
from codegen.detectors.base import Fitted
from codegen.tflite.flatbuffer import Network, extract_network
from codegen.tflite.runners import TflmRunner

BLOB_MODEL = "autoencoder.tflite"
BLOB_ARENA = "autoencoder_arena.json"
TRAINING_RECORDS = ("validation_scores", "history_loss", "history_val_loss")

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
        _NETWORKS[key] = extract_network(blob, BLOB_MODEL)
    return _NETWORKS[key]


def tflm_of(fitted: Fitted) -> TflmRunner:
    """TensorFlow Lite Micro running fitted's .tflite in its arena (cached)."""
    blob = fitted.blobs[BLOB_MODEL]
    key = (_blob_key(blob), int(fitted.scalars["arena_size"]))
    if key not in _RUNNERS:
        if len(_RUNNERS) > 8:
            _RUNNERS.clear()
        _RUNNERS[key] = TflmRunner(blob, key[1])
    return _RUNNERS[key]


def check_stored(stored) -> None:
    """The scalars and arrays the header carries (the network itself is checked as load
    parses it): one channel's standardisation as scalars, several channels' as arrays."""
    tiny = float(np.finfo(np.float32).tiny)
    if "pointwise" in stored.params:
        stored.choice("params", "pointwise", POINTWISE)
    if "channels" in stored.arrays:
        stored.only_arrays("channels", "mean", "std", optional=TRAINING_RECORDS)
        channels = stored.indices("channels", (np.int32, np.int64), (None,), stored.n_channels)
        if channels.min() < 0 or not 2 <= channels.size <= MAX_WINDOW // 2:
            stored.fail("arrays.channels", f"holds {channels.size} channel(s), from "
                                           f"{int(channels.min())}: not 2 to "
                                           f"{MAX_WINDOW // 2} indices >= 0")
        stored.floats("mean", (channels.size,))
        stored.floats("std", (channels.size,), lo=tiny)
        stored.integer("scalars", "window", 2, MAX_WINDOW // channels.size)
    else:
        stored.only_arrays(optional=TRAINING_RECORDS)  # never read by the templates
        stored.integer("scalars", "channel", 0, stored.n_channels - 1)
        stored.integer("scalars", "window", 2, MAX_WINDOW)
        stored.number("scalars", "mean")
        stored.number("scalars", "std", lo=tiny)
    stored.integer("scalars", "arena_size", 64, MAX_ARENA)
    stored.number("scalars", "threshold", lo=0)


def _arena_record(blob: bytes) -> dict:
    """The arena search's record (a JSON object of numbers and text, for the header's
    comments and the bench)."""
    try:
        arena = json.loads(blob.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise BundleMismatchError(f"the stored {BLOB_ARENA} is not JSON ({error}): re-run "
                                  f"training") from None
    numbers = ("minimum", "emitted", "report_total")
    parts = arena.get("margin_parts", {}) if isinstance(arena, dict) else None
    if (not isinstance(arena, dict) or not isinstance(parts, dict)
            or not all(_count(arena.get(k, 0)) for k in numbers)
            or not all(_count(v) for v in parts.values())):
        raise BundleMismatchError(f"the stored {BLOB_ARENA} is not an arena record (an object "
                                  f"of byte counts): re-run training")
    return arena


def _count(value) -> bool:
    return value is None or (isinstance(value, int) and not isinstance(value, bool)
                             and 0 <= value <= MAX_ARENA)


def _check_engine_range(net: Network) -> None:
    """What the C engine's integer arithmetic assumes, for any input (signed overflow is
    undefined behaviour): weights in [-127, 127] (TFLite's symmetric int8 range), so that
    two int8 products sum within int16; Q31 multipliers in [0, 2^31 - 1] (what
    QuantizeMultiplier makes); and every int32 in range: the engine starts from the folded
    bias and adds int8 * int8 products, so every partial sum is within |folded bias| +
    in_dim * 128 * 128; after requantisation (times multiplier * 2^(shift - 31), plus one
    for rounding) the output offset is still added.  Trained models are far inside; an
    edited one may not be."""
    for k, layer in enumerate(net.layers):
        if (layer.weights < -127).any():
            raise BundleMismatchError(
                f"{BLOB_MODEL} layer {k} has a weight of -128, outside TFLite's symmetric "
                f"int8 range [-127, 127] that the C engine relies on; the model was edited "
                f"or converted another way: re-run training")
        if ((layer.multiplier < 0) | (layer.multiplier > 2**31 - 1)).any():
            raise BundleMismatchError(
                f"{BLOB_MODEL} layer {k}: a requantisation multiplier is not a Q31 "
                f"significand in [0, 2^31 - 1]: re-run training")
        acc = layer.in_dim * 128 * 128 + np.abs(layer.folded_bias)
        scale = layer.multiplier.astype(np.float64) * np.exp2(layer.shift.astype(np.float64) - 31)
        if (acc >= 2**31).any() or (acc * scale + 1 + 128 >= 2**31).any():
            raise BundleMismatchError(
                f"{BLOB_MODEL} layer {k}: its biases and requantisation scales let the int32 "
                f"arithmetic of the C engine overflow; the model was edited or is damaged: "
                f"re-run training")


def load(params, scalars, arrays, blobs) -> Fitted:
    """Rebuild a Fitted from what fit() returned and the caller stored.  A bundle stored
    before `pointwise` existed scores whole windows, whatever the default."""
    p = check_params({"pointwise": "window", **(params or {})})
    if BLOB_MODEL not in (blobs or {}):
        raise BundleMismatchError(
            f"the stored autoencoder has no {BLOB_MODEL}: re-run training")
    blob = bytes(blobs[BLOB_MODEL])
    net = extract_network(blob, BLOB_MODEL)
    _check_engine_range(net)
    widths = [layer.out_dim for layer in net.layers]
    if len(widths) > MAX_HIDDEN_LAYERS + 1 or max(widths) > MAX_WIDTH:
        raise BundleMismatchError(
            f"{BLOB_MODEL} has layers of {widths} units; the autoencoder has at most "
            f"{MAX_HIDDEN_LAYERS + 1} layers of at most {MAX_WIDTH}: re-run training")
    s = dict(scalars)
    arrays = dict(arrays or {})
    rows = len(arrays["channels"]) if "channels" in arrays else 1
    checks = {"window times channels": (s["window"] * rows, net.window),
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
    if BLOB_ARENA in blobs:
        arena = _arena_record(bytes(blobs[BLOB_ARENA]))
    else:
        arena = {"minimum": s.get("arena_minimum"), "emitted": s["arena_size"],
                 "runtime": "unknown (arena record missing)"}
    report = {"tflite_bytes": len(blob), "tflite_sha256": hashlib.sha256(blob).hexdigest(),
              "ops": list(net.ops), "arena": arena}
    return Fitted(params=p, scalars=s, arrays=arrays,
                  blobs={k: bytes(v) for k, v in blobs.items()}, report=report)
