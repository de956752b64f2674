"""The device pipeline in numpy float32: the Python reference the generated C must match.

The device pipeline (identical here and in codegen/runtime/mcua_autoencoder.c)
------------------------------------------------------------------------------
For one window of W rows of C watched channels, flattened row after row (oldest row
first, in each row the channels in the order the detector lists them): x[0..W*C-1],
value i of channel c = i mod C:

1. standardise, float32:         z[i] = (x[i] - mean[c]) / std[c]
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
5. score = (sum over the K scored values, left to right, of (z[i] - r[i])^2) / K, all
   float32: the last K = W*C values (pointwise "window": the whole window) or K = C (the
   newest row alone, "newest").
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


def watched(fitted: Fitted) -> tuple:
    """The channels it reads from each row, in the window's order, and their means and
    standard deviations (float32 arrays of C values): one channel's are scalars, several
    channels' arrays."""
    s, a = fitted.scalars, fitted.arrays
    if "channels" in a:
        return (a["channels"].astype(np.int64), a["mean"].astype(np.float32),
                a["std"].astype(np.float32))
    return np.array([s["channel"]]), np.float32([s["mean"]]), np.float32([s["std"]])


def standardise(x, mean, std) -> np.ndarray:
    """(x - mean) / std, elementwise float32; with C means and stds, x's last axis holds
    rows of C values (channel i mod C)."""
    x = np.asarray(x, dtype=np.float32)
    mean = np.asarray(mean, dtype=np.float32)
    std = np.asarray(std, dtype=np.float32)
    shape = x.shape
    if mean.size > 1:
        x = x.reshape(*shape[:-1], -1, mean.size)
    with np.errstate(over="ignore", invalid="ignore"):
        return ((x - mean) / std).reshape(shape)


def std_reciprocal(std) -> np.float32:
    """1 / std when it is exact, that is when std is a power of two (then (x - mean) *
    (1 / std) is the same real number as (x - mean) / std, so both round to the same
    float32 and the C multiplies instead of dividing); else 0, and the C divides."""
    std = np.float32(std)
    mantissa, _ = np.frexp(std)
    return np.float32(1.0) / std if mantissa == np.float32(0.5) else np.float32(0.0)


def reconstruction_error(z, y, out_scale, out_zero_point, scored: int) -> np.ndarray:
    """Per window: over its last `scored` values, sum_i (z_i - r_i)^2 left to right in
    float32, then / scored."""
    z = np.asarray(z, dtype=np.float32)
    r = dequantize(y, out_scale, out_zero_point)
    with np.errstate(over="ignore", invalid="ignore"):
        d = z - r
        sq = d * d
        acc = np.zeros(z.shape[0], dtype=np.float32)
        for i in range(z.shape[1] - scored, z.shape[1]):  # fixed order, float32 adds
            acc = acc + sq[:, i]
        return acc / np.float32(scored)


def scored_values(fitted: Fitted) -> int:
    """K, the values of a window its score averages (step 5 above)."""
    rows = fitted.scalars["window"]
    width = len(watched(fitted)[0]) * rows
    return width if pointwise(fitted) == "window" else width // rows


def needs_rows(fitted: Fitted) -> bool:
    """One channel's whole window needs only the model's own constants; anything else
    (several channels, or the newest row's error) an mcua_autoencoder_rows in the header."""
    return len(watched(fitted)[0]) > 1 or pointwise(fitted) != "window"


def pointwise(fitted: Fitted) -> str:
    """A bundle stored before the parameter existed scores whole windows."""
    return fitted.params.get("pointwise", "window")


def all_input_steps(fitted: Fitted) -> np.ndarray:
    """input_steps of every watched channel, channel after channel (255 each)."""
    net = network_of(fitted)
    _, means, stds = watched(fitted)
    return np.concatenate([input_steps(m, sd, net.input_scale, net.input_zero_point)
                           for m, sd in zip(means, stds)])


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
    """The windows of `window` rows of x (rows, or rows x C), each flattened row after row:
    [n - window + 1, window * C]."""
    x = np.ascontiguousarray(x, dtype=np.float32)
    width = window * (x.shape[1] if x.ndim == 2 else 1)
    if x.shape[0] < window:
        return np.zeros((0, width), dtype=np.float32)
    views = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)
    if x.ndim == 2:                       # [n, C, W] -> [n, W, C]
        views = views.transpose(0, 2, 1)
    return np.ascontiguousarray(views).reshape(-1, width)


def network_int8(fitted: Fitted, q: np.ndarray) -> np.ndarray:
    """Reference int8 network (TensorFlow Lite Micro) on int8 windows [n, W]."""
    return tflm_of(fitted).run(q)


def score_windows(fitted: Fitted, windows: np.ndarray) -> tuple:
    """Reference score and flag of raw windows [n, W * C] (the watched channels' values,
    row after row, oldest first).  A window holding NaN/Inf scores +Inf and is flagged."""
    net = network_of(fitted)
    _, means, stds = watched(fitted)
    windows = np.asarray(windows, dtype=np.float32).reshape(-1, net.window)
    finite = np.isfinite(windows).all(axis=1)
    scores = np.full(len(windows), np.inf, dtype=np.float32)
    if finite.any():
        z = standardise(windows[finite], means, stds)
        q = quantize(z, net.input_scale, net.input_zero_point)
        y = network_int8(fitted, q)
        scores[finite] = reconstruction_error(z, y, net.output_scale, net.output_zero_point,
                                              scored_values(fitted))
    return scores, scores > np.float32(fitted.scalars["threshold"])


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False) -> Scored:
    """Per-row float32 scores and bool flags of a stream X [n_rows, n_channels];
    row i >= W-1 scores the window of rows i-W+1..i; earlier rows get 0, False."""
    X = np.asarray(X)
    if X.ndim == 1:
        X = X.reshape(-1, 1)
    channels, W = watched(fitted)[0], fitted.scalars["window"]
    if X.ndim != 2 or channels.max() >= X.shape[1]:
        raise AutoencoderConfigError(
            f"data of shape {X.shape} has no channel {int(channels.max())}, which this "
            f"autoencoder was trained on: pass the same columns as in training")
    x = X[:, channels].astype(np.float32)
    n = x.shape[0]
    scores = np.zeros(n, dtype=np.float32)
    flags = np.zeros(n, dtype=bool)
    if n >= W:
        s, f = score_windows(fitted, sliding_windows(x, W))
        scores[W - 1:] = s
        flags[W - 1:] = f
    return Scored(scores, flags)
