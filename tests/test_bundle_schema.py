"""A bundle is untrusted input (issue 18): every mutated bundle is either refused on load
with a clear error (exit 2, `error:`, the field named) or generates headers that run
memory-safe and free of undefined behaviour (ASan + UBSan) on a random and extreme
battery.  No mutation may end in a traceback, a sanitizer report or a hang."""

from __future__ import annotations

import importlib.util
import json
import os
import pickle
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.cli import main
from codegen.data import dataset as data
from codegen.detectors import DEFAULT
from codegen.training import train as training

from support import (STRICT, build_program, host_program, require_tool, rows_input,
                     run_program)

SANITIZE = ["-std=c99", "-O1", "-g", "-ffp-contract=off", "-fno-omit-frame-pointer",
            "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
            "-Wall", "-Wextra", "-Werror"]  # ASan's leak check is on: the driver frees
ROWS = 3000
HAVE_TF = all(importlib.util.find_spec(m) for m in ("tensorflow", "tflite_micro"))


# --- the bundles mutated ------------------------------------------------------------------

BUNDLES = {
    # the default detectors and a forest on rolling features
    "plain": (DEFAULT + ["isolation_forest"],
              {"isolation_forest": {"features": "rolling", "window": 20}}),
    "forest_raw": (["isolation_forest"], {"isolation_forest": {"target": "uno"}}),
    "autoencoder": (["autoencoder"], {"autoencoder": {"epochs": 2}}),
    "autoencoder_channels": (["autoencoder"], {"autoencoder": {"epochs": 2, "channels": "all"}}),
    "multivariate": (["mahalanobis"], {}),
    "pca": (["pca"], {}),
    "gmm": (["gmm"], {"gmm": {"k": 3}}),
    "gmm_diag": (["gmm"], {"gmm": {"k": 2, "covariance": "diag"}}),
}


@pytest.fixture(scope="module")
def originals(tmp_path_factory):
    root = tmp_path_factory.mktemp("originals")
    iot = data.iot_sensors()

    def make(key):
        if not (root / key).exists():
            detectors, params = BUNDLES[key]
            trained = training.train(iot, detectors, params, seed=0, name="sensors",
                                     verbose=False)
            bundle_mod.save(trained, root / key)
        return root / key

    return make


# --- how a mutation edits a bundle directory ------------------------------------------------

def _doc(path):
    return json.loads((path / "bundle.json").read_text())


def _write_doc(path, doc):
    (path / "bundle.json").write_text(json.dumps(doc))


def edit(*keys, value):
    """Set bundle.json[keys...] = value (a callable value receives the old one)."""
    def mutate(path):
        doc = _doc(path)
        node = doc
        for key in keys[:-1]:
            node = node[key]
        node[keys[-1]] = value(node[keys[-1]]) if callable(value) else value
        _write_doc(path, doc)
    return mutate


def remove(*keys):
    def mutate(path):
        doc = _doc(path)
        node = doc
        for key in keys[:-1]:
            node = node[key]
        del node[keys[-1]]
        _write_doc(path, doc)
    return mutate


def raw_json(text: bytes):
    def mutate(path):
        (path / "bundle.json").write_bytes(text)
    return mutate


def array(detector, key, change, declare=True):
    """Replace arrays/<detector>.<key>.npy by change(old); declare: bundle.json follows."""
    def mutate(path):
        file = path / "arrays" / f"{detector}.{key}.npy"
        new = np.asarray(change(np.load(file)))
        np.save(file, new)
        if declare:
            doc = _doc(path)
            doc["detectors"][detector]["arrays"][key] = {"dtype": str(new.dtype),
                                                         "shape": list(new.shape)}
            _write_doc(path, doc)
    return mutate


def at(index, value):
    def change(a):
        a = a.copy()
        a.reshape(-1)[index] = value
        return a
    return change


def file_bytes(relative, change):
    def mutate(path):
        file = path / relative
        file.write_bytes(change(file.read_bytes()))
    return mutate


def add_array(detector, key):
    """Declare one more array whose key is a path (the file it names may be outside)."""
    def mutate(path):
        doc = _doc(path)
        doc["detectors"][detector]["arrays"][key] = {"dtype": "float32", "shape": [3]}
        _write_doc(path, doc)
    return mutate


def add_blob(detector, name):
    def mutate(path):
        doc = _doc(path)
        doc["detectors"][detector]["blobs"] = [*doc["detectors"][detector].get("blobs", []), name]
        _write_doc(path, doc)
    return mutate


def symlink_array(detector, key):
    """The array's file becomes a link to a copy beside (outside) the bundle."""
    def mutate(path):
        file = path / "arrays" / f"{detector}.{key}.npy"
        target = path.parent / "outside.npy"
        np.save(target, np.load(file))
        file.unlink()
        file.symlink_to(target)
    return mutate


def both(*mutations):
    def mutate(path):
        for m in mutations:
            m(path)
    return mutate


def cycle(path):
    """The forest's first split node sends its left child back to itself."""
    array("isolation_forest", "left", at(0, 0))(path)


def swap_children(path):
    """Left and right swapped everywhere: another valid forest."""
    doc_dir = path / "arrays"
    left, right = (np.load(doc_dir / f"isolation_forest.{k}.npy") for k in ("left", "right"))
    np.save(doc_dir / "isolation_forest.left.npy", right)
    np.save(doc_dir / "isolation_forest.right.npy", left)


def big_bias(blob: bytes) -> bytes:
    """The first layer's first bias in the .tflite set near INT32_MAX."""
    from codegen.tflite.flatbuffer import extract_network

    bias = extract_network(blob, "model").layers[0].bias.astype("<i4").tobytes()
    at_ = blob.index(bias)
    return blob[:at_] + np.int32(2**31 - 16).astype("<i4").tobytes() + blob[at_ + 4:]


INJECTION = "50\n#define mcua_is_finite(x) 1"
INJECTED = re.compile(r"^\s*#\s*define (A|mcua_is_finite\(x\)) 1", re.M)
REFUSED, EITHER = "refused", "refused or safe"
Z, S, M, K, F, A, G = ("zscore", "streaming_zscore", "moving_average", "kmeans",
                       "isolation_forest", "autoencoder", "gmm")
MH = "mahalanobis"
PC = "pca"
AE_MODEL, AE_ARENA = "blobs/autoencoder.tflite", "blobs/autoencoder_arena.json"

# (id, bundle, mutation, expected outcome, words the refusal must contain)
MUTATIONS = [
    # the document
    ("json-list", "plain", raw_json(b"[]"), REFUSED, "not an mcu-anomaly bundle"),
    ("json-truncated", "plain", file_bytes("bundle.json", lambda b: b[:len(b) // 2]), REFUSED,
     "not valid JSON"),
    ("json-not-utf8", "plain", file_bytes("bundle.json", lambda b: b"\xff\xfe" + b), REFUSED,
     "not valid JSON"),
    ("format-version-string", "plain", edit("format_version", value="1"), REFUSED,
     "format version"),
    ("no-channels", "plain", remove("channels"), REFUSED, "channels is missing"),
    ("channels-string", "plain", edit("channels", value="abc"), REFUSED, "channels is str"),
    ("channels-empty", "plain", edit("channels", value=[]), REFUSED, "0 channels"),
    ("channel-injection", "plain", edit("channels", 0, value="x\n#define A 1"), REFUSED,
     "not a C identifier"),
    ("columns-absent", "plain", remove("columns"), EITHER, ""),  # bundles before the mapping
    ("columns-comment-injection", "plain",
     edit("columns", 0, value="*/ int evil; /*\n#define A 1 \\"), EITHER, ""),
    ("columns-short", "plain", edit("columns", value=["a"]), REFUSED, "columns must list"),
    ("columns-duplicate", "plain", edit("columns", value=lambda c: [c[0]] * len(c)), REFUSED,
     "distinct names"),
    ("columns-number", "plain", edit("columns", 0, value=3), REFUSED, "columns must list"),
    ("columns-huge", "plain", edit("columns", 0, value="x" * 5000), REFUSED, "1 to 1000"),
    ("channel-mean-short", "plain", edit("channel_mean", value=[1.0]), REFUSED, "channel_mean"),
    ("channel-std-text", "plain", edit("channel_std", 0, value="1"), REFUSED, "channel_std"),
    ("name-injection", "plain", edit("name", value="m;int x"), REFUSED, "not a C identifier"),
    ("name-number", "plain", edit("name", value=7), REFUSED, "name is int"),
    ("detectors-empty", "plain", edit("detectors", value={}), REFUSED, "holds no detector"),
    ("detectors-list", "plain", edit("detectors", value=[]), REFUSED, "detectors is list"),
    ("detector-unknown", "plain", edit("detectors", value=lambda d: {**d, "foo": {}}), REFUSED,
     "unknown detector"),
    ("training-list", "plain", edit("training", value=[]), REFUSED, "training is list"),
    # a detector's entry
    ("entry-number", "plain", edit("detectors", Z, value=3), REFUSED, "zscore is int"),
    ("params-missing", "plain", remove("detectors", Z, "params"), REFUSED,
     "zscore.params is missing"),
    ("scalars-list", "plain", edit("detectors", Z, "scalars", value=[]), REFUSED,
     "zscore.scalars is list"),
    ("report-string", "plain", edit("detectors", Z, "report", value="x"), REFUSED,
     "zscore.report"),
    ("array-key-traversal", "plain", add_array(Z, "x/../../../../evil"), REFUSED,
     "not a plain name"),
    ("blob-traversal", "plain", add_blob(Z, "../../../etc/passwd"), REFUSED,
     "not a plain file name"),
    ("blob-absolute", "plain", add_blob(Z, "/etc/passwd"), REFUSED, "not a plain file name"),
    ("blob-missing", "plain", add_blob(Z, "nothing.bin"), REFUSED, "cannot be read"),
    ("array-symlink-outside", "plain", symlink_array(Z, "mean"),
     REFUSED, "leads outside the bundle"),
    ("array-file-missing", "plain",
     lambda p: (p / "arrays" / "zscore.mean.npy").unlink(), REFUSED, "zscore.arrays.mean is missing"),
    ("array-truncated", "plain", file_bytes("arrays/zscore.mean.npy", lambda b: b[:-5]),
     REFUSED, "not a readable .npy"),
    ("array-pickled", "plain", file_bytes("arrays/zscore.mean.npy", lambda b: (
        b"\x93NUMPY\x01\x00v\x00{'descr': '|O', 'fortran_order': False, 'shape': (1,), }"
        + b" " * 44 + b"\n" + pickle.dumps([1]))), REFUSED, "not a readable .npy"),
    ("array-text", "plain", file_bytes("arrays/zscore.mean.npy", lambda b: b"1,2,3\n"),
     REFUSED, "not a readable .npy"),
    ("array-undeclared-dtype", "plain", array(Z, "mean", lambda a: a.astype(np.float64),
                                              declare=False), REFUSED, "declares float32"),
    ("array-extra", "plain", both(array(Z, "mean", lambda a: a), edit(
        "detectors", Z, "arrays", value=lambda d: {**d, "evil": d["mean"]}),
        lambda p: shutil.copy(p / "arrays/zscore.mean.npy", p / "arrays/zscore.evil.npy")),
     REFUSED, "zscore.arrays are"),
    # zscore
    ("zscore-mean-short", "plain", array(Z, "mean", lambda a: a[:1]), REFUSED, "shape [1]"),
    ("zscore-mean-2d", "plain", array(Z, "mean", lambda a: a[:, None]), REFUSED, "shape [3, 1]"),
    ("zscore-mean-float64", "plain", array(Z, "mean", lambda a: a.astype(np.float64)), REFUSED,
     "is float64"),
    ("zscore-inv-std-nan", "plain", array(Z, "inv_std", at(1, np.nan)), REFUSED, "NaN or Inf"),
    ("zscore-inv-std-negative", "plain", array(Z, "inv_std", at(0, -1)), REFUSED, "below 0"),
    ("zscore-inv-std-zero", "plain", array(Z, "inv_std", at(0, 0)), REFUSED, "holds 0"),
    ("zscore-inv-std-minus-zero", "plain", array(Z, "inv_std", at(2, -0.0)), REFUSED, "holds 0"),
    ("zscore-threshold-string", "plain", edit("detectors", Z, "scalars", "threshold", value="3"),
     REFUSED, "threshold is '3'"),
    ("zscore-threshold-nan", "plain", edit("detectors", Z, "scalars", "threshold",
                                           value=float("nan")), REFUSED, "threshold is nan"),
    ("zscore-threshold-1e39", "plain", edit("detectors", Z, "scalars", "threshold", value=1e39),
     REFUSED, "not a finite float32"),
    ("zscore-threshold-missing", "plain", remove("detectors", Z, "scalars", "threshold"),
     REFUSED, "threshold is missing"),
    ("zscore-mean-moved", "plain", array(Z, "mean", lambda a: a + np.float32(1000)), EITHER, ""),
    # the window detectors
    ("streaming-window-injection", "plain", edit("detectors", S, "params", "window",
                                                 value=INJECTION), REFUSED, "window is"),
    ("streaming-window-0", "plain", edit("detectors", S, "params", "window", value=0), REFUSED,
     "from 1 to 4096"),
    ("streaming-window-5000", "plain", edit("detectors", S, "params", "window", value=5000),
     REFUSED, "from 1 to 4096"),
    ("streaming-min-count-over-window", "plain", edit("detectors", S, "params", "min_count",
                                                      value=51), REFUSED, "from 1 to 50"),
    ("streaming-var-floor-short", "plain", array(S, "var_floor", lambda a: a[:2]), REFUSED,
     "shape [2]"),
    ("streaming-var-floor-zero", "plain", array(S, "var_floor", at(0, 0)), REFUSED, "below"),
    ("streaming-threshold-negative", "plain", edit("detectors", S, "scalars", "threshold",
                                                   value=-1.0), REFUSED, "threshold is -1"),
    ("streaming-window-1", "plain", both(edit("detectors", S, "params", "window", value=1),
                                         edit("detectors", S, "params", "min_count", value=1)),
     EITHER, ""),
    ("moving-window-2.5", "plain", edit("detectors", M, "params", "window", value=2.5), REFUSED,
     "window is 2.5"),
    ("moving-window-true", "plain", edit("detectors", M, "params", "window", value=True),
     REFUSED, "window is True"),
    ("moving-bound-wide", "plain", array(M, "bound", lambda a: np.concatenate([a, a])), REFUSED,
     "shape [6]"),
    ("moving-inv-scale-inf", "plain", array(M, "inv_scale", at(2, np.inf)), REFUSED,
     "NaN or Inf"),
    ("moving-window-4096", "plain", edit("detectors", M, "params", "window", value=4096), EITHER,
     ""),
    # the adaptation modes (mcua_window.h): a choice and two lengths in samples
    ("streaming-mode-injection", "plain", edit("detectors", S, "params", "mode",
                                               value=INJECTION), REFUSED, "mode is"),
    ("streaming-mode-missing", "plain", remove("detectors", S, "params", "mode"), REFUSED,
     "mode is missing"),
    ("streaming-calibration-0", "plain", edit("detectors", S, "params", "calibration",
                                              value=0), REFUSED, "from 1 to 3276750"),
    ("moving-memory-beyond-the-counters", "plain",
     edit("detectors", M, "params", "memory", value=50 * 65535 + 1), REFUSED,
     "from 1 to 3276750"),
    ("moving-memory-text", "plain", edit("detectors", M, "params", "memory", value="1000"),
     REFUSED, "memory is"),
    ("streaming-frozen-longest", "plain",
     both(edit("detectors", S, "params", "mode", value="frozen"),
          edit("detectors", S, "params", "calibration", value=50 * 65535)), EITHER, ""),
    # streaming_zscore's outliers: clip or absorb (absent in older bundles: clip)
    ("streaming-outliers-injection", "plain", edit("detectors", S, "params", "outliers",
                                                   value=INJECTION), REFUSED, "outliers is"),
    ("streaming-outliers-number", "plain", edit("detectors", S, "params", "outliers", value=0),
     REFUSED, "not one of clip, absorb"),
    ("streaming-outliers-absent", "plain", remove("detectors", S, "params", "outliers"),
     EITHER, ""),
    ("streaming-outliers-absorb", "plain", edit("detectors", S, "params", "outliers",
                                                value="absorb"), EITHER, ""),
    # kmeans
    ("kmeans-centroids-wide", "plain", array(K, "centroids", lambda a: np.hstack([a, a[:, :1]])),
     REFUSED, "centroids has shape"),
    ("kmeans-inv-scale-zero", "plain", array(K, "inv_scale", at(1, 0)), REFUSED, "holds 0"),
    ("kmeans-centroids-empty", "plain", array(K, "centroids", lambda a: a[:0]), REFUSED,
     "centroids has shape"),
    ("kmeans-k-mismatch", "plain", edit("detectors", K, "params", "k_chosen",
                                        value=lambda k: k + 1), REFUSED, "centroids has shape"),
    ("kmeans-k-bool", "plain", edit("detectors", K, "params", "k_chosen", value=True), REFUSED,
     "k_chosen is True"),
    ("kmeans-centroids-moved", "plain", array(K, "centroids", lambda a: a * np.float32(-3)),
     EITHER, ""),
    # mahalanobis
    ("mahalanobis-factor-short", "multivariate", array(MH, "factor", lambda a: a[:-1]), REFUSED,
     "factor has shape"),
    ("mahalanobis-centre-nan", "multivariate", array(MH, "centre", at(1, np.nan)), REFUSED,
     "NaN or Inf"),
    ("mahalanobis-covariance-unknown", "multivariate", edit("detectors", MH, "params",
                                                            "covariance", value="mcd"),
     REFUSED, "not one of empirical"),
    ("mahalanobis-factor-huge", "multivariate", array(MH, "factor", at(0, 3e38)), EITHER, ""),
    # pca
    ("pca-loadings-narrow", "pca", array(PC, "loadings", lambda a: a[:, :1]), REFUSED,
     "loadings has shape [3, 1], not [3, 2]"),
    ("pca-k-all-channels", "pca", edit("detectors", PC, "params", "k_chosen", value=3), REFUSED,
     "k_chosen is 3, not an integer from 1 to 2"),
    ("pca-inv-lambda-short", "pca", array(PC, "inv_lambda", lambda a: a[:1]), REFUSED,
     "inv_lambda has shape [1]"),
    ("pca-inv-lambda-zero", "pca", array(PC, "inv_lambda", at(1, 0)), REFUSED, "below"),
    ("pca-loadings-nan", "pca", array(PC, "loadings", at(3, np.nan)), REFUSED, "NaN or Inf"),
    ("pca-q-limit-negative", "pca", edit("detectors", PC, "scalars", "q_limit", value=-1.0),
     REFUSED, "q_limit is -1.0"),
    ("pca-inv-t2-limit-disagrees", "pca", edit("detectors", PC, "scalars", "inv_t2_limit",
                                               value=2.0), REFUSED, "not float32(1 / t2_limit)"),
    ("pca-inv-q-limit-missing", "pca", remove("detectors", PC, "scalars", "inv_q_limit"),
     REFUSED, "inv_q_limit is missing"),
    ("pca-loadings-huge", "pca", array(PC, "loadings", at(0, 3e38)), EITHER, ""),
    ("pca-t2-limit-tiny", "pca", both(
        edit("detectors", PC, "scalars", "t2_limit", value=float(np.float32(1e-37))),
        edit("detectors", PC, "scalars", "inv_t2_limit", value=float(np.float32(1e37)))),
     EITHER, ""),
    # the Gaussian mixture (full covariance in "gmm", diagonal in "gmm_diag")
    ("gmm-factor-short", "gmm", array(G, "factor", lambda a: a[:, :-1]), REFUSED,
     "factor has shape"),
    ("gmm-k-mismatch", "gmm", edit("detectors", G, "params", "k_chosen", value=lambda k: k + 1),
     REFUSED, "factor has shape"),
    ("gmm-k-65", "gmm", edit("detectors", G, "params", "k_chosen", value=65), REFUSED,
     "k_chosen is 65"),
    ("gmm-covariance-bogus", "gmm", edit("detectors", G, "params", "covariance",
                                         value="spherical"), REFUSED, "not one of full, diag"),
    ("gmm-diag-read-as-full", "gmm_diag", edit("detectors", G, "params", "covariance",
                                               value="full"), REFUSED, "factor has shape"),
    ("gmm-offset-wide", "gmm", array(G, "offset", lambda a: np.hstack([a, a[:, :1]])), REFUSED,
     "offset has shape"),
    ("gmm-constant-nan", "gmm", array(G, "constant", at(0, np.nan)), REFUSED, "NaN or Inf"),
    ("gmm-mean-short", "gmm_diag", array(G, "mean", lambda a: a[:2]), REFUSED, "shape [2]"),
    ("gmm-constant-lowest", "gmm", array(G, "constant", lambda a: a * 0 - np.float32(3.4e38)),
     EITHER, ""),
    ("gmm-factor-huge", "gmm_diag", array(G, "factor", lambda a: a * np.float32(1e30)), EITHER,
     ""),
    # the isolation forest (rolling features in "plain", raw ones in "forest_raw")
    ("forest-child-7fff", "forest_raw", array(F, "right", at(0, 0x7FFF)), REFUSED,
     "node code 32767"),
    ("forest-feature-200", "forest_raw", array(F, "feature", at(0, 200)), REFUSED,
     "index 200"),
    ("forest-leaf-255", "forest_raw", array(F, "leaf", at(0, 255)), REFUSED, "index 255"),
    ("forest-cycle", "forest_raw", cycle, REFUSED, "a child must come after its parent"),
    ("forest-root-beyond", "forest_raw", array(F, "root", at(0, 0xFFFF)), REFUSED,
     "node code 65535"),
    ("forest-split-int", "forest_raw", array(F, "split", lambda a: a.astype(np.int32)), REFUSED,
     "is int32"),
    ("forest-leaf-int8", "forest_raw", array(F, "leaf", lambda a: a.astype(np.int8)), REFUSED,
     "is int8"),
    ("forest-split-nan", "forest_raw", array(F, "split", at(3, np.nan)), REFUSED, "NaN or Inf"),
    ("forest-target-injection", "forest_raw", edit("detectors", F, "params", "target",
                                                   value="uno */ #define A"), REFUSED,
     "not one of"),
    ("forest-features-bogus", "plain", edit("detectors", F, "params", "features", value="x"),
     REFUSED, "not one of raw, rolling"),
    ("forest-n-channels", "forest_raw", edit("detectors", F, "params", "n_channels", value=1),
     REFUSED, "n_channels is 1"),
    ("forest-rolling-window-0", "plain", edit("detectors", F, "params", "window", value=0),
     REFUSED, "window is 0"),
    ("forest-rolling-feature-9", "plain", array(F, "feature", at(0, 9)), REFUSED, "index 9"),
    ("forest-trees-mismatch", "forest_raw", edit("detectors", F, "params", "n_trees_used",
                                                 value=lambda n: n + 1), REFUSED, "root has shape"),
    ("forest-neg-inv-trees", "forest_raw", edit("detectors", F, "scalars", "neg_inv_trees",
                                                value=5.0), REFUSED, "neg_inv_trees is 5"),
    ("forest-children-swapped", "forest_raw", swap_children, EITHER, ""),
    ("forest-leaf-values-moved", "plain", array(F, "leaf_value", lambda a: a[::-1].copy()),
     EITHER, ""),
    # the autoencoder
    ("ae-channel-7", "autoencoder", edit("detectors", A, "scalars", "channel", value=7), REFUSED,
     "channel is 7"),
    ("ae-window-21", "autoencoder", edit("detectors", A, "scalars", "window", value=21), REFUSED,
     "disagrees"),
    ("ae-std-zero", "autoencoder", edit("detectors", A, "scalars", "std", value=0.0), REFUSED,
     "std is 0"),
    ("ae-mean-string", "autoencoder", edit("detectors", A, "scalars", "mean", value="0"),
     REFUSED, "mean is '0'"),
    ("ae-pointwise-unknown", "autoencoder", edit("detectors", A, "params", "pointwise",
                                                 value="oldest"), REFUSED, "pointwise is 'oldest'"),
    ("ae-channels-negative", "autoencoder_channels", array(A, "channels", at(1, -1)), REFUSED,
     "indices >= 0"),
    ("ae-channels-out-of-range", "autoencoder_channels", array(A, "channels", at(2, 3)),
     REFUSED, "the index 3"),
    ("ae-channels-float", "autoencoder_channels",
     array(A, "channels", lambda a: a.astype(np.float32)), REFUSED, "not int32"),
    ("ae-channels-one", "autoencoder_channels", array(A, "channels", lambda a: a[:1]), REFUSED,
     "1 channel(s)"),
    ("ae-channels-mean-short", "autoencoder_channels", array(A, "mean", lambda a: a[:2]),
     REFUSED, "mean has shape [2]"),
    ("ae-channels-std-zero", "autoencoder_channels", array(A, "std", at(1, 0.0)), REFUSED,
     "below"),
    ("ae-channels-std-nan", "autoencoder_channels", array(A, "std", at(0, np.nan)), REFUSED,
     "NaN"),
    ("ae-channels-window-long", "autoencoder_channels",
     edit("detectors", A, "scalars", "window", value=400), REFUSED, "window is 400"),
    ("ae-channels-window-21", "autoencoder_channels",
     edit("detectors", A, "scalars", "window", value=21), REFUSED, "disagrees"),
    ("ae-channels-scalar-mean", "autoencoder_channels",
     edit("detectors", A, "scalars", "mean", value=0.0), EITHER, ""),
    ("ae-arena-10", "autoencoder", edit("detectors", A, "scalars", "arena_size", value=10),
     REFUSED, "arena_size is 10"),
    ("ae-model-truncated", "autoencoder", file_bytes(AE_MODEL, lambda b: b[:len(b) // 3]),
     REFUSED, "autoencoder.tflite"),
    ("ae-model-random", "autoencoder", file_bytes(AE_MODEL, lambda b: np.random.RandomState(
        1).bytes(len(b))), REFUSED, "autoencoder.tflite"),
    ("ae-bias-int32-max", "autoencoder", file_bytes(AE_MODEL, big_bias), REFUSED,
     "overflow"),
    ("ae-arena-not-json", "autoencoder", file_bytes(AE_ARENA, lambda b: b"{"), REFUSED,
     "not JSON"),
    ("ae-arena-text-count", "autoencoder", file_bytes(AE_ARENA, lambda b: json.dumps(
        {**json.loads(b), "minimum": "abc"}).encode()), REFUSED, "not an arena record"),
    ("ae-arena-runtime-injection", "autoencoder", file_bytes(AE_ARENA, lambda b: json.dumps(
        {**json.loads(b), "runtime": "x */\n#define A 1 /*"}).encode()), EITHER, ""),
    *[(f"ae-model-byte-{offset}", "autoencoder", file_bytes(AE_MODEL, lambda b, o=offset: (
        b[:o % len(b)] + bytes([b[o % len(b)] ^ 0xA5]) + b[o % len(b) + 1:])), EITHER, "")
      for offset in (4, 40, 200, 600, 1500, 3000)],
]


@pytest.fixture(scope="module")
def sanitizer():
    compiler = os.environ.get("CC", "gcc")
    require_tool(compiler)
    return compiler


def _battery(bundle, seed=0) -> np.ndarray:
    """Rows around each channel's normal level, far from it, and extremes (NaN, +-Inf,
    subnormals, the largest floats), in runs so streaming windows fill."""
    rng = np.random.RandomState(seed)
    mean, std = np.array(bundle.channel_mean), np.array(bundle.channel_std)
    normal = mean + std * rng.standard_normal((ROWS, len(mean)))
    extremes = np.array([np.nan, np.inf, -np.inf, 1e-45, -1e-45, 3.4e38, -3.4e38, 1e20, 0.0])
    wild = normal.copy()
    hit = rng.rand(*wild.shape) < 0.05
    wild[hit] = rng.choice(extremes, size=hit.sum())
    far = mean + std * 1e6 * rng.standard_normal((ROWS // 3, len(mean)))
    return np.vstack([normal, wild, far]).astype(np.float32)


def run_sanitized(bundle, compiler, directory: Path) -> None:
    """Build the generated headers, the host glue and a driver with ASan + UBSan, and run
    them over the battery; any sanitizer report fails."""
    exe = build_program(compiler, directory, host_program(bundle), SANITIZE)
    run_program(exe, rows_input(_battery(bundle)))


def outcome(path: Path, out: Path, compiler, capsys) -> str:
    """'refused' (exit 2 with an error naming the problem, nothing written) or 'safe'
    (generated headers that pass the sanitizers)."""
    code = main(["generate", str(path), "--out", str(out)])
    err = capsys.readouterr().err
    if code == 2:
        assert err.startswith("error: ") and "Traceback" not in err, err
        assert not out.exists()
        return "refused: " + err
    assert code == 0, err
    run_sanitized(bundle_mod.load(path), compiler, out)
    return "safe"


@pytest.mark.parametrize("name, which, mutate, expected, words",
                         MUTATIONS, ids=[m[0] for m in MUTATIONS])
def test_a_mutated_bundle_is_refused_or_safe(name, which, mutate, expected, words, originals,
                                             sanitizer, tmp_path, capsys):
    if which == "autoencoder" and not HAVE_TF:
        assert not STRICT, "the autoencoder mutations need tensorflow and tflite-micro"
        pytest.skip("the autoencoder needs tensorflow and tflite-micro")
    path = tmp_path / "bundle"
    shutil.copytree(originals(which), path, symlinks=True)
    mutate(path)
    result = outcome(path, tmp_path / "include", sanitizer, capsys)
    if expected == REFUSED:
        assert result.startswith("refused"), f"{name}: not refused"
        assert words in result, result
    for text in (p.read_text() for p in (tmp_path / "include").glob("*.[ch]")):
        assert not INJECTED.search(text)  # text from the bundle never becomes a directive


@pytest.mark.parametrize("which", list(BUNDLES))
def test_the_unmutated_bundles_are_safe(which, originals, sanitizer, tmp_path, capsys):
    """The baseline: the sanitizer run passes on what training writes (and a perturbed
    run of it would be noticed: see test_the_sanitizer_run_catches_an_overflow)."""
    if which == "autoencoder" and not HAVE_TF:
        assert not STRICT, "the autoencoder bundle needs tensorflow and tflite-micro"
        pytest.skip("the autoencoder needs tensorflow and tflite-micro")
    assert outcome(originals(which), tmp_path / "include", sanitizer, capsys) == "safe"


def test_the_sanitizer_run_catches_an_overflow(originals, sanitizer, tmp_path):
    """A bundle that bypasses the schema (k-means centroids of one feature for three
    channels, edited in memory: the flash array holds K floats, the runtime reads K x 3) is
    caught by the sanitizer run: the safe outcomes above are not vacuous."""
    loaded = bundle_mod.load(originals("plain"))
    loaded.detectors = {"kmeans": loaded.detectors["kmeans"]}
    arrays = loaded.detectors["kmeans"].arrays
    arrays["centroids"] = arrays["centroids"][:, :1]
    with pytest.raises(AssertionError, match="global-buffer-overflow"):
        run_sanitized(loaded, sanitizer, tmp_path)
