"""Keras -> int8 .tflite: TensorFlow imported quietly, a seeded deterministic session (the
same data and seed give byte-identical model bytes), and full-integer conversion."""

from __future__ import annotations

import os

import numpy as np

from codegen.tflite.errors import NotInt8ModelError
from codegen.tflite.quiet import quiet


def import_tf():
    """(tensorflow, keras), imported without TensorFlow's start-up logs."""
    # TensorFlow's C++ INFO/WARNING logs are noise even in verbose mode
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with quiet():
        import tensorflow as tf
        import keras
    return tf, keras


def seeded_session(seed: int):
    """(tensorflow, keras) after clearing the Keras session, seeding every random generator
    and making TensorFlow's ops deterministic."""
    tf, keras = import_tf()
    keras.backend.clear_session()
    keras.utils.set_random_seed(int(seed))
    tf.config.experimental.enable_op_determinism()
    return tf, keras


def to_int8(model, inputs: np.ndarray, samples: int, advice: str) -> bytes:
    """The .tflite bytes of a Keras model converted with full-integer quantisation: int8
    builtins only, int8 input and output, calibrated on up to `samples` of the training
    `inputs`, evenly spaced, one at a time.  A failed conversion raises NotInt8ModelError
    with the converter's output and `advice` (what to change in the model)."""
    tf, _ = import_tf()
    n_rep = min(samples, inputs.shape[0])
    idx = np.unique(np.linspace(0, inputs.shape[0] - 1, n_rep).round().astype(np.int64))
    rep = inputs[idx]

    def representative():
        for i in range(rep.shape[0]):
            yield [rep[i:i + 1]]

    with quiet() as captured:   # converter chatter; shown only if it fails
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
            f"{advice}") from None
    return blob
