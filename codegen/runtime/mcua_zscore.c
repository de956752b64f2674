#include "mcua_zscore.h"

MCUA_FP_CONTRACT_OFF_BEGIN

#define MCUA_ZSCORE_INF_BITS 0x7F800000UL

static uint32_t bits_of(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

float mcua_zscore_one(const mcua_zscore_channel *channel, const float *x)
{
    const float z = mcua_abs(*x - mcua_read_f32(&channel->mean)) *
                    mcua_read_f32(&channel->inv_std);
    /* z has its sign bit clear (inv_std > 0): NaN or +Inf (a NaN or +-Inf
     * reading, or an overflow) are the patterns from +Inf's up. */
    return bits_of(z) >= MCUA_ZSCORE_INF_BITS ? mcua_infinity() : z;
}

/* The top 16 bits of a float's pattern. */
static uint16_t high_of(float x)
{
    return (uint16_t)(bits_of(x) >> 16);
}

/* When a channel's z cannot beat the best so far, its multiplication is left
 * out.  For a >= 0 let L(a) = bits(a) / 2^23 - 127 (the pattern read as an
 * integer): for a normal a = 2^e (1 + f), L(a) = e + f <= log2(a) <=
 * L(a) + D with D = max over f in [0, 1) of log2(1 + f) - f = 0.0860713...;
 * log2(a) <= L(a) + D holds for 0 and the subnormals too.  For a finite
 * d = |x - mean| and inv_std s > 0, with h(a) = bits(a) >> 16:
 *     bits(d) + bits(s) + 2 D 2^23 < (h(d) + h(s) + 2 + 23) 2^16
 * (2 D 2^23 = 1444037.3 < 23 * 2^16).  So for a normal best, whose
 * bits(best) >= h(best) 2^16,
 *     h(d) + h(s) < h(best) + (127 << 7) - 24                      (*)
 * gives L(d) + L(s) + 2 D < L(best), so log2(d s) < log2(best): the exact
 * d s is below best, and its rounding is at most best, which therefore stays
 * the maximum.  (*) never exceeds 16 bits: h(d), h(s) < 0x7F80. */
#define MCUA_ZSCORE_SKIP_OFFSET ((127U << 7) - 24U)
#define MCUA_ZSCORE_MIN_NORMAL_HIGH 0x0080U

/* The test pays where floats are software (a multiplication costs ~130 cycles
 * on AVR); with a float unit it costs more instructions than it saves.  A
 * build may set MCUA_ZSCORE_SKIP itself (the tests do, to run it on the
 * host); either way the scores are the same. */
#ifndef MCUA_ZSCORE_SKIP
#define MCUA_ZSCORE_SKIP MCUA_SOFT_FLOAT
#endif

/* The right side of (*) for a best of pattern `best`; 0 (no channel is left
 * out) when best is 0 or subnormal, where L(best) > log2(best). */
static uint16_t skip_limit(uint32_t best)
{
    const uint16_t high = (uint16_t)(best >> 16);
    return high >= MCUA_ZSCORE_MIN_NORMAL_HIGH ? (uint16_t)(high + MCUA_ZSCORE_SKIP_OFFSET)
                                               : 0U;
}

float mcua_zscore_many(const mcua_zscore_channel *channel, uint16_t n_channels,
                       const float *x)
{
    const float *const end = x + n_channels;
    /* The pattern of the largest z so far: every z has its sign bit clear
     * (inv_std > 0), and such floats order like their patterns. */
    uint32_t best = 0;
    uint16_t limit = 0;

    do {
        const float d = mcua_abs(*x - mcua_read_f32(&channel->mean));
        const float inv_std = mcua_read_f32(&channel->inv_std);
        if (high_of(d) >= (uint16_t)(MCUA_ZSCORE_INF_BITS >> 16)) {
            return mcua_infinity(); /* a NaN or +-Inf reading, or x - mean overflowed */
        }
        if (!MCUA_ZSCORE_SKIP || (uint16_t)(high_of(d) + high_of(inv_std)) >= limit) {
            const uint32_t z = bits_of(d * inv_std);
            if (z > best) {
                if (z >= MCUA_ZSCORE_INF_BITS) {
                    return mcua_infinity(); /* d * inv_std overflowed */
                }
                best = z;
                limit = skip_limit(best);
            }
        }
        ++channel;
    } while (++x != end);
    {
        float score;
        memcpy(&score, &best, sizeof score);
        return score;
    }
}

uint8_t mcua_zscore_flag(const mcua_zscore_accept *accept, uint16_t n_channels,
                         const float *x)
{
    const float *const end = x + n_channels;

    do {
        const int32_t key = mcua_order_key(*x);
        if (key < mcua_read_i32(&accept->lo) || key > mcua_read_i32(&accept->hi)) {
            return 1;
        }
        ++accept;
    } while (++x != end);
    return 0;
}

MCUA_FP_CONTRACT_OFF_END
