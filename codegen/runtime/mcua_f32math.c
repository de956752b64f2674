#include "mcua_f32math.h"

MCUA_FP_CONTRACT_OFF_BEGIN

/* The constants of codegen/detectors/f32math.py (tests/test_shared_constants.py). */
#define MCUA_LOG2E 1.442695f
#define MCUA_LN2_HI 0.69314575f /* 0x3F317200: n * MCUA_LN2_HI is exact for |n| <= 255 */
#define MCUA_LN2_LO 0.0000014286068f
#define MCUA_EXP_MAX_BITS 0x42B17217L /* 88.7228317f */
#define MCUA_EXP_MIN_BITS 0x42AE0000L /* -87.0f without its sign */
#define MCUA_EXP_Q0 0.49999994f
#define MCUA_EXP_Q1 0.1666652f
#define MCUA_EXP_Q2 0.041668393f
#define MCUA_EXP_Q3 0.008368781f
#define MCUA_EXP_Q4 0.0013814465f
#define MCUA_LOG_L1 0.66666776f
#define MCUA_LOG_L2 0.39977586f
#define MCUA_LOG_L3 0.29870567f
#define MCUA_SQRT2_MANTISSA 0x3504F3UL /* the float below sqrt(2): above it, halve */
#define MCUA_NAN_BITS 0x7FC00000UL

static uint32_t bits_of(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

static float float_of(uint32_t bits)
{
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

float mcua_exp(float x)
{
    const int32_t key = mcua_order_key(x);
    float t, fn, r, p;
    int32_t n;

    if ((bits_of(x) & 0x7FFFFFFFUL) > 0x7F800000UL) {
        return x;
    }
    if (key > MCUA_EXP_MAX_BITS) {
        return mcua_infinity();
    }
    if (key < -MCUA_EXP_MIN_BITS) {
        return 0.0f;
    }
    t = x * MCUA_LOG2E;
    n = (int32_t)((bits_of(t) & 0x80000000UL) ? t - 0.5f : t + 0.5f);
    fn = (float)n;
    r = (x - fn * MCUA_LN2_HI) - fn * MCUA_LN2_LO;
    p = MCUA_EXP_Q0 + r * (MCUA_EXP_Q1 + r * (MCUA_EXP_Q2 + r * (MCUA_EXP_Q3 + r * MCUA_EXP_Q4)));
    p = 1.0f + (r + (r * r) * p);
    /* p in [0.7, 1.5]: adding n to its exponent is the exact product p * 2^n,
     * normal for every x in range (-126 <= n <= 128, and p >= 1 when n = -126). */
    return float_of(bits_of(p) + ((uint32_t)n << 23));
}

float mcua_log(float x)
{
    const uint32_t bits = bits_of(x);
    uint32_t mantissa;
    int32_t e;
    float f, s, w, t, fe;

    if (bits < 0x00800000UL || bits == 0x80000000UL) {
        return -mcua_infinity();
    }
    if (bits >= 0x7F800000UL) {
        return bits == 0x7F800000UL ? x : float_of(MCUA_NAN_BITS);
    }
    mantissa = bits & 0x007FFFFFUL;
    e = (int32_t)(bits >> 23) - 127;
    if (mantissa > MCUA_SQRT2_MANTISSA) {
        mantissa |= 0x3F000000UL; /* m / 2, in (sqrt(1/2), 1) */
        e += 1;
    } else {
        mantissa |= 0x3F800000UL; /* m in [1, sqrt(2)] */
    }
    f = float_of(mantissa) - 1.0f;
    s = f / (2.0f + f); /* 0 or |s| >= 2^-26: never subnormal */
    w = s * s;
    t = w * (MCUA_LOG_L1 + w * (MCUA_LOG_L2 + w * MCUA_LOG_L3));
    if (e == 0) {
        /* The same bits without the exponent's terms: they are +0 here, x - +0
         * is x, and f - s*(f - t) is never -0, so +0 + it is it. */
        return f - s * (f - t);
    }
    fe = (float)e;
    return fe * MCUA_LN2_HI + (f - (s * (f - t) - fe * MCUA_LN2_LO));
}

MCUA_FP_CONTRACT_OFF_END
