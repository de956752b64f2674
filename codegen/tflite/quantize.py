"""TFLite's int8 quantisation arithmetic, in numpy, exactly as the generated C does it:
QUANTIZE and DEQUANTIZE of activations, QuantizeMultiplier for a requantisation scale,
and MultiplyByQuantizedMultiplier (the reference kernels' double rounding)."""

from __future__ import annotations

import math

import numpy as np

from codegen.tflite.errors import NotInt8ModelError


def quantize(z, scale, zero_point) -> np.ndarray:
    """TFLite QUANTIZE to int8: round half away from zero of z / scale
    (float32 division), plus zero point, clamped; saturating beyond +-256 steps.
    NaN counts as 0 (TFLite's int32 conversion of it is undefined: TFLite Micro on Arm
    gets 0), and a zero point beyond +-384 as +-384, so no conversion or sum overflows:
    the C (mcua_autoencoder_quantize) does the same."""
    z = np.asarray(z, dtype=np.float32)
    with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
        v = z / np.float32(scale)
    v = np.clip(v, np.float32(-256.0), np.float32(256.0))
    v = np.where(np.isnan(v), np.float32(0.0), v)
    t = np.trunc(v)
    frac = v - t                           # exact: |v| <= 256
    r = t.astype(np.int32) + (frac >= np.float32(0.5)) - (frac <= np.float32(-0.5))
    return np.clip(r + np.int32(np.clip(zero_point, -384, 384)), -128, 127).astype(np.int8)


def dequantize(q, scale, zero_point) -> np.ndarray:
    """TFLite DEQUANTIZE: float32(q - zero_point) * scale (q - zero_point wraps to int32, as
    in mcua_autoencoder_dequantize)."""
    q = np.asarray(q)
    return (q.astype(np.int32) - np.int32(zero_point)).astype(np.float32) * np.float32(scale)


def quantize_multiplier(real: float) -> tuple:
    """TFLite's QuantizeMultiplier: real = q * 2^shift with q in Q31, rounded
    half away from zero (frexp; 2^31 carried into the shift; tiny -> 0)."""
    if real == 0.0:
        return 0, 0
    if not math.isfinite(real) or real < 0.0:
        raise NotInt8ModelError(
            f"requantisation scale {real!r} is not a finite positive number: the model's "
            f"quantisation parameters are broken; re-convert it")
    q, shift = math.frexp(real)
    x = q * float(1 << 31)                   # exact in double
    q_fixed = int(math.floor(x + 0.5))        # x > 0: half away from zero
    if q_fixed == (1 << 31):
        q_fixed //= 2
        shift += 1
    if shift < -31:
        shift, q_fixed = 0, 0
    if shift > 30:
        raise NotInt8ModelError(
            f"requantisation scale {real!r} needs a left shift of {shift} > 30, which "
            f"TFLite's kernels do not support: retrain (the layer's output range is "
            f"degenerate)")
    return q_fixed, shift


def multiply_by_quantized_multiplier(acc: np.ndarray, multiplier: np.ndarray,
                                     shift: np.ndarray) -> np.ndarray:
    """TFLite's reference MultiplyByQuantizedMultiplier on int64 arrays (exact): acc shifted
    left by max(shift, 0) with int32 wrap, SaturatingRoundingDoublingHighMul by the Q31
    multiplier, then RoundingDivideByPOT by max(-shift, 0)."""
    m = multiplier.astype(np.int64)
    s = shift.astype(np.int64)
    left = np.where(s > 0, s, 0)
    right = np.where(s > 0, 0, -s)
    a = ((acc << left) + 2**31) % 2**32 - 2**31          # int32 wrap
    ab = a * m
    nudge = np.where(ab >= 0, 1 << 30, 1 - (1 << 30))
    num = ab + nudge
    high = np.where(num >= 0, num // 2**31, -((-num) // 2**31))   # truncating
    sat = (a == m) & (a == -2**31)
    high = np.where(sat, 2**31 - 1, high)
    mask = (np.int64(1) << right) - 1
    rem = high & mask
    thr = (mask >> 1) + (high < 0)
    return (high >> right) + (rem > thr)
