"""The device pipeline in numpy float32: the Python reference the generated C must match.

The device pipeline (identical here and in codegen/runtime/mcua_autoencoder.c)
------------------------------------------------------------------------------
For one window of W raw values x[0..W-1] of one channel (oldest first):

1. standardise, float32:         z[i] = (x[i] - mean) / std
2. quantise like TFLite's QUANTIZE (reference AffineQuantize):
                                  q[i] = clamp(round_half_away(z[i] / s_in) + zp_in,
                                               -128, 127)
   with z / s_in a float32 division and round = std::round (half away from
   zero).  Values more than 256 steps out are clamped before rounding, so
   +-Inf and huge values saturate, and NaN counts as 0 (TFLite's int32 cast
   is undefined there).
3. int8 network = the .tflite model run by TensorFlow Lite Micro's reference
   kernels (FULLY_CONNECTED, per-channel int8, double rounding).
4. dequantise like TFLite's DEQUANTIZE: r[i] = float32(y[i] - zp_out) * s_out
5. score = (sum over i = 0..W-1, left to right, of (z[i] - r[i])^2) / W, all
   float32.
6. flag  = score > threshold (float32).

The threshold is taken from the scores of the normal *validation* windows
computed by exactly this pipeline ("percentile:P" or "sigma:K" = mean + K*std).

The Python reference for parity is steps 1, 2, 4, 5, 6 in numpy float32 with
explicit ordering (2 and 4 in codegen/tflite/quantize.py), and step 3 = the
`tflite-micro` package.
"""

from __future__ import annotations

import numpy as np

from codegen.detectors.autoencoder.params import AutoencoderConfigError
from codegen.detectors.autoencoder.stored import network_of, tflm_of
from codegen.detectors.base import Fitted, Scored
from codegen.emit import floatkeys
from codegen.tflite.quantize import dequantize, quantize


def standardise(x, mean, std) -> np.ndarray:
    """(x - mean) / std, elementwise float32."""
    x = np.asarray(x, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore"):
        return (x - np.float32(mean)) / np.float32(std)


def std_reciprocal(std) -> np.float32:
    """1 / std when it is exact, that is when std is a power of two (then (x - mean) *
    (1 / std) is the same real number as (x - mean) / std, so both round to the same
    float32 and the C multiplies instead of dividing); else 0, and the C divides."""
    std = np.float32(std)
    mantissa, _ = np.frexp(std)
    return np.float32(1.0) / std if mantissa == np.float32(0.5) else np.float32(0.0)


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


def network_int8(fitted: Fitted, q: np.ndarray) -> np.ndarray:
    """Reference int8 network (TensorFlow Lite Micro) on int8 windows [n, W]."""
    return tflm_of(fitted).run(q)


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
