"""Tiny dense int8 autoencoder: Keras training, full-integer TFLite conversion,
TensorFlow Lite Micro reference inference, and everything the generated C
needs to reproduce it bit for bit.

This module is the detector's interface (codegen/detectors/base.py); the parts:

    params.py    its parameters, their checks, and its errors
    pipeline.py  the device pipeline in numpy (the reference the C must match) and scoring
    stored.py    its blobs read back: the parsed network, TFLite Micro on it, load()
    training.py  fit(): Keras training, int8 conversion, arena, threshold
    template.py  the variables of templates/autoencoder.h.j2

What is not specific to this detector (the .tflite parser, TFLite's quantisation
arithmetic, the TFLite Micro / LiteRT / numpy runners, the Keras conversion and the
arena search) is in codegen/tflite.  LiteRT (ai-edge-litert) is run on the same int8
inputs for information only: it rounds once instead of twice and differs from TFLite
Micro by a few LSB.
"""

from codegen.detectors.autoencoder.params import DEFAULTS, NAME
from codegen.detectors.autoencoder.pipeline import needs_rows, pointwise, score, watched
from codegen.detectors.autoencoder.stored import check_stored, load, network_of
from codegen.detectors.autoencoder.template import template_context
from codegen.detectors.autoencoder.training import fit
from codegen.detectors.base import DetectorSpec, Fitted, Footprint, Kind

__all__ = ["NAME", "DEFAULTS", "SPEC", "fit", "score", "template_context", "load"]


def describe(fitted: Fitted) -> str:
    width = network_of(fitted).window
    shape = "-".join(str(n) for n in [width, *fitted.params["hidden"], width])
    channels = len(watched(fitted)[0])
    scope = "window error" if pointwise(fitted) == "window" else "row error"
    return f"{shape}, {scope}" if channels == 1 else f"{shape}, {channels} channels, {scope}"


def footprint(fitted: Fitted, n_channels: int) -> Footprint:
    """The plain-C engine (templates/autoencoder.h.j2): per layer int8 weights, int32 bias
    and multiplier, int8 shift, and per watched channel 255 int32 input steps in flash
    (and, with an mcua_autoencoder_rows, its mean, std and 1 / std); its two int8 scratch
    buffers and the caller's window of W rows of C floats in RAM.  The .tflite array is left out (the linker
    drops it unless TFLite Micro runs it), and so is TFLite Micro's arena."""
    net = network_of(fitted)
    channels = len(watched(fitted)[0])
    flash = (255 * 4 * channels + (12 * channels if needs_rows(fitted) else 0)
             + sum(layer.in_dim * layer.out_dim + 9 * layer.out_dim for layer in net.layers))
    return Footprint(flash, ram=sum(net.scratch_sizes) + 4 * net.window,
                     shrink="smaller hidden layers (autoencoder.hidden), a smaller --window or "
                            "fewer autoencoder.channels")


SPEC = DetectorSpec(NAME, units=("autoencoder",), kind=Kind.WINDOWED, schema=check_stored,
                    window=lambda fitted: fitted.scalars["window"], mutable=("std",),
                    row_values=lambda fitted: len(watched(fitted)[0]),
                    describe=describe, load=load, footprint=footprint)
