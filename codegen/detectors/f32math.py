"""exp and log in float32, computed exactly as codegen/runtime/mcua_f32math.c computes them.

expf/logf differ between C libraries (and from numpy), so the detectors that need them
(gmm) call these: float32 + - * /, float<->int conversions and bit operations only, in the
order of the C, so the reference and every device get the same bits.

exp(x): n = round(x * log2(e)) (t + 0.5 or t - 0.5 truncated), r = (x - n*LN2_HI) - n*LN2_LO,
        p = 1 + (r + r*r*q(r)) with q a degree-4 Horner polynomial, the result p * 2^n made by
        adding n to p's exponent bits.  NaN -> NaN, x > EXP_MAX -> +Inf, x < EXP_MIN -> +0
        (EXP_MIN = -87: every result at or above it is a normal float, never subnormal).
log(x): x = m * 2^e with m in [sqrt(1/2), sqrt(2)], f = m - 1, s = f / (2 + f), w = s*s,
        t = w*(L1 + w*(L2 + w*L3)), log(x) = e*LN2_HI + (f - (s*(f - t) - e*LN2_LO)).
        NaN or x < 0 -> NaN, +Inf -> +Inf, +-0 and positive subnormals -> -Inf.
Accuracy against float64 (tests/test_f32math.py): exp <= 1 ulp, log <= 1 ulp.

The coefficients are float32 minimax fits (Lawson's iteration on relative error) of
(exp(r) - 1 - r) / r^2 on |r| <= ln(2)/2 and of the atanh series' tail on |s| <= 3 - 2*sqrt(2).
"""

from __future__ import annotations

import numpy as np

F32, U32, I32 = np.float32, np.uint32, np.int32

LOG2E = F32(1.44269502)
LN2_HI = F32(0.693145752)  # 0x3F317200: 15 significant bits, so n * LN2_HI is exact for |n| <= 255
LN2_LO = F32(1.42860677e-06)  # ln 2 - LN2_HI, rounded
EXP_MAX = F32(88.7228317)  # 0x42B17217, the largest x whose exp is finite
EXP_MIN = F32(-87.0)
EXP_Q = (F32(0.49999994), F32(0.166665196), F32(0.0416683927), F32(0.00836878084),
         F32(0.00138144649))
LOG_L = (F32(0.666667759), F32(0.399775863), F32(0.298705667))
SQRT2_BITS = 0x3FB504F3  # the float just below sqrt(2): a mantissa above it is halved
NAN_BITS = 0x7FC00000


def _floats(bits: np.ndarray) -> np.ndarray:
    return bits.astype(U32).view(F32)


def _horner(coefficients, r: np.ndarray) -> np.ndarray:
    """c0 + r*(c1 + r*(c2 + ...)), innermost first."""
    p = coefficients[-1] * np.ones_like(r)
    for c in coefficients[-2::-1]:
        p = c + r * p
    return p


@np.errstate(all="ignore")
def exp(x) -> np.ndarray:
    x = np.asarray(x, dtype=F32)
    nan = np.isnan(x)
    inside = ~nan & (x >= EXP_MIN) & (x <= EXP_MAX)
    xs = np.where(inside, x, F32(0.0))
    t = xs * LOG2E
    n = np.where(np.signbit(t), t - F32(0.5), t + F32(0.5)).astype(I32)
    fn = n.astype(F32)
    r = (xs - fn * LN2_HI) - fn * LN2_LO
    p = F32(1.0) + (r + (r * r) * _horner(EXP_Q, r))
    y = _floats(p.view(U32) + (n.view(U32) << U32(23)))
    y = np.where(x > EXP_MAX, F32(np.inf), np.where(x < EXP_MIN, F32(0.0), y))
    return np.where(nan, x, y).astype(F32)


@np.errstate(all="ignore")
def log(x) -> np.ndarray:
    x = np.asarray(x, dtype=F32)
    bits = x.view(U32)
    tiny = (bits < U32(0x00800000)) | (bits == U32(0x80000000))  # +-0, positive subnormals
    normal = ~tiny & (bits < U32(0x7F800000))
    halve = (bits & U32(0x007FFFFF)) > U32(SQRT2_BITS & 0x007FFFFF)
    e = (bits >> U32(23)).astype(I32) - I32(127) + halve.astype(I32)
    m = _floats(np.where(normal, (bits & U32(0x007FFFFF)) | np.where(halve, U32(0x3F000000),
                                                                      U32(0x3F800000)),
                         U32(0x3F800000)))
    f = m - F32(1.0)
    s = f / (F32(2.0) + f)
    w = s * s
    t = w * _horner(LOG_L, w)
    fe = e.astype(F32)
    y = fe * LN2_HI + (f - (s * (f - t) - fe * LN2_LO))
    y = np.where(normal, y, np.where(tiny, F32(-np.inf), _floats(np.full(x.shape, NAN_BITS))))
    return np.where(bits == U32(0x7F800000), F32(np.inf), y).astype(F32)
