"""What a trained autoencoder keeps as files (its blobs), read back: the int8 network
parsed from its .tflite, the TensorFlow Lite Micro interpreter that runs it, and load(),
which rebuilds a Fitted from a bundle after checking that its parts agree.

Derived state is cached by model content, never stored on the Fitted (which stays plain
data: copyable, comparable, and safe to edit in tests)."""

from __future__ import annotations

import hashlib
import json
import math

import numpy as np

from codegen.detectors.autoencoder.params import BundleMismatchError, check_params
from codegen.detectors.base import Fitted
from codegen.tflite.flatbuffer import Network, extract_network
from codegen.tflite.runners import TflmRunner

BLOB_MODEL = "autoencoder.tflite"
BLOB_ARENA = "autoencoder_arena.json"

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


def load(params, scalars, arrays, blobs) -> Fitted:
    """Rebuild a Fitted from what fit() returned and the caller stored."""
    p = check_params(params)
    if BLOB_MODEL not in (blobs or {}):
        raise BundleMismatchError(
            f"the stored autoencoder has no {BLOB_MODEL}: re-run training")
    blob = bytes(blobs[BLOB_MODEL])
    net = extract_network(blob, BLOB_MODEL)
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
