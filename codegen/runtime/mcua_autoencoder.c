/*
 * mcua_autoencoder.c - plain-C int8 engine for the mcu-anomaly dense
 * autoencoder.  See mcua_autoencoder.h for the pipeline and the contract.
 *
 * Integer arithmetic follows TensorFlow Lite Micro's reference
 * FULLY_CONNECTED kernel (per-channel int8) with gemmlowp's double rounding.
 * Everything is written for 16-bit `int` (AVR) as well as 32-bit `int`:
 * every intermediate that can exceed 16 bits is int32_t or int64_t, and no
 * <stdint.h> limit/constant macro is used (avr-libc hides them from C++
 * unless __STDC_LIMIT_MACROS is defined).
 */
#include "mcua_autoencoder.h"

MCUA_FP_CONTRACT_OFF_BEGIN

/* avr-gcc multiplies 16-bit halves of a 32-bit value 32 x 32 bits (__mulsi3)
 * unless they come from memory, then 16 x 16 -> 32 (__umulhisi3, half the
 * cycles): on AVR the requantisation's halves go through volatile locals. */
#if defined(__AVR__)
#define MCUA_AE_HALF volatile
#else
#define MCUA_AE_HALF
#endif

/* mcua_ae_requantize for |x| < 2^16 and a right shift e = k + 2 of 2 to 17
 * (trained accumulators and multipliers): a1 = 0 below, so mag = u >> 15
 * and the result's magnitude ((mag >> (e - 1)) + 1) >> 1 is
 * ((u >> (14 + e)) + 1) >> 1, shifted in 16 bits after u's byte move. */
static int32_t mcua_ae_requantize_small(int32_t x, uint16_t m1, uint16_t m0, uint8_t k)
{
    MCUA_AE_HALF uint16_t half = (uint16_t)(x < 0 ? -x : x);
    const uint16_t a0 = half;
    const uint32_t lo = (uint32_t)a0 * m0;
    uint32_t u = (uint32_t)a0 * m1 + (lo >> 16) + 0x4000UL;
    uint16_t t;
    if (x < 0 && (uint16_t)lo == 0) {
        u -= 1UL;
    }
    t = (uint16_t)((uint16_t)(u >> 16) >> k);
    t = (uint16_t)((t >> 1) + (t & 1u)); /* (t + 1) >> 1 without overflow */
    return x < 0 ? -(int32_t)t : (int32_t)t;
}

/* TFLite MultiplyByQuantizedMultiplier (double-rounding build, the default
 * of TFLite Micro) of x by the Q31 multiplier m = m1 * 2^16 + m0
 * (0 <= m < 2^31, as QuantizeMultiplier makes it), with no 64-bit
 * arithmetic (on AVR, libgcc's 64-bit routines cost hundreds of cycles):
 *  - x shifted left by max(shift, 0), wrapping like TFLite's int multiply;
 *  - gemmlowp SaturatingRoundingDoublingHighMul(a, m): (a*m + nudge) / 2^31,
 *    the quotient truncated toward zero, nudge 2^30 for a*m >= 0 and
 *    1 - 2^30 below.  On the magnitude |a|*m (below 2^62, so it never
 *    saturates) that is mag = (|a|*m + n) >> 31 with n = 2^30 for a >= 0 and
 *    2^30 - 1 below, then the sign.  With |a| = a1 * 2^16 + a0,
 *    mid = a0*m1 + a1*m0 and lo = a0*m0 (16 x 16 -> 32-bit products):
 *    |a|*m + n = a1*m1 * 2^32 + u * 2^16 + (the low 16 bits), where
 *    u = mid + (lo >> 16) + (n >> 16) + (the carry of lo's low 16 bits plus
 *    n's), which is 0x4000 for a >= 0 and 0x4000 - (lo's low 16 bits == 0)
 *    below; so mag = 2*a1*m1 + (u >> 15) (at most 2^31 - 1), and u < 2^32;
 *  - gemmlowp RoundingDivideByPOT by e = max(-shift, 0): x / 2^e rounded half
 *    away from zero, which on the magnitude is ((mag >> (e - 1)) + 1) >> 1.
 * tests/test_autoencoder_arithmetic.py compares it with the 64-bit formula
 * (codegen/tflite/quantize.py) on the edges and on random operands over the
 * whole int32 range. */
static int32_t mcua_ae_requantize_wide(int32_t x, uint16_t m1, uint16_t m0, int shift)
{
    const int32_t a = (int32_t)((uint32_t)x << (shift > 0 ? shift : 0));
    const int right = shift > 0 ? 0 : -shift;
    const uint32_t ua = a < 0 ? 0UL - (uint32_t)a : (uint32_t)a;
    MCUA_AE_HALF uint16_t half1 = (uint16_t)(ua >> 16), half0 = (uint16_t)ua;
    const uint16_t a1 = half1, a0 = half0;
    /* a1 <= 2^15 and m1 < 2^15: each cross product is below 2^31 */
    const uint32_t lo = (uint32_t)a0 * m0;
    uint32_t u = (uint32_t)a0 * m1 + (uint32_t)a1 * m0 + (lo >> 16) + 0x4000UL;
    uint32_t mag;
    if (a < 0 && (uint16_t)lo == 0) {
        u -= 1UL;
    }
    /* (u >> 15) as 2 * (u >> 16) + bit 15: byte moves, no shift loop on AVR */
    mag = 2UL * ((uint32_t)a1 * m1 + (u >> 16)) + (uint16_t)((uint16_t)u >> 15);
    if (right > 0) {
        mag = ((mag >> (right - 1)) + 1UL) >> 1;
    }
    return a < 0 ? -(int32_t)mag : (int32_t)mag;
}

/* The requantisation: mcua_ae_requantize_small where it applies, else the
 * whole int32 range's pieces. */
static int32_t mcua_ae_requantize(int32_t x, uint16_t m1, uint16_t m0, int shift)
{
    if (shift <= -2 && shift >= -17 && x > -65536L && x < 65536L) {
        return mcua_ae_requantize_small(x, m1, m0, (uint8_t)(-shift - 2));
    }
    return mcua_ae_requantize_wide(x, m1, m0, shift);
}

/* Copy a layer descriptor out of flash, field by field. */
static void mcua_ae_load_layer(mcua_autoencoder_layer *dst,
                               const mcua_autoencoder_layer *src)
{
    dst->weights = (const int8_t *)mcua_read_ptr(&src->weights);
    dst->bias = (const int32_t *)mcua_read_ptr(&src->bias);
    dst->multiplier = (const uint16_t *)mcua_read_ptr(&src->multiplier);
    dst->shift = (const int8_t *)mcua_read_ptr(&src->shift);
    dst->output_offset = mcua_read_i32(&src->output_offset);
    dst->in_dim = mcua_read_u16(&src->in_dim);
    dst->out_dim = mcua_read_u16(&src->out_dim);
    dst->act_min = mcua_read_i8(&src->act_min);
    dst->act_max = mcua_read_i8(&src->act_max);
}

/* sum_k w[k] * x[k] over n int8 pairs, w in flash.  The products are
 * int8 * int8, and two of them fit in 16 bits (weights are in [-127, 127],
 * checked on load): on AVR two MULS instructions and one 32-bit addition
 * per pair. */
static int32_t mcua_ae_dot(const int8_t *w, const int8_t *x, uint16_t n)
{
    int32_t acc = 0;
    uint16_t k;
    for (k = n / 2; k != 0; --k) {
        const int8_t w0 = mcua_read_i8(w++);
        const int8_t w1 = mcua_read_i8(w++);
        const int8_t x0 = *x++;
        const int8_t x1 = *x++;
        acc += (int16_t)(w0 * x0 + w1 * x1); /* |sum| <= 2 * 127 * 128 */
    }
    if (n % 2 != 0) {
        acc += (int16_t)(mcua_read_i8(w) * *x);
    }
    return acc;
}

/* One output channel: the requantised accumulator plus the output zero
 * point, clamped to the fused activation's range. */
static int8_t mcua_ae_output(int32_t acc, const uint16_t *multiplier,
                                             const int8_t *shift,
                                             const mcua_autoencoder_layer *l)
{
    int32_t v = mcua_ae_requantize(acc, mcua_read_u16(multiplier),
                                   mcua_read_u16(multiplier + 1),
                                   (int)mcua_read_i8(shift));
    v += l->output_offset;
    if (v < (int32_t)l->act_min) {
        v = l->act_min;
    }
    if (v > (int32_t)l->act_max) {
        v = l->act_max;
    }
    return (int8_t)v;
}

/* A FULLY_CONNECTED layer (TFLite Micro's FullyConnectedPerChannel, filter
 * offset 0), its descriptor in flash.  TFLite sums w * (in - input zero
 * point); the bias here already holds -input zero point * sum(w), so the
 * int32 sum of mcua_ae_dot plus the bias is TFLite's accumulator.  The
 * weights are read in order, row after row. */
static void mcua_ae_layer(const mcua_autoencoder_layer *layer,
                          const int8_t *in, int8_t *out)
{
    mcua_autoencoder_layer l;
    uint16_t c;
    mcua_ae_load_layer(&l, layer);
    for (c = 0; c < l.out_dim; ++c) {
        const int32_t acc = mcua_read_i32(l.bias + c)
                          + mcua_ae_dot(l.weights + (uint32_t)c * l.in_dim, in, l.in_dim);
        out[c] = mcua_ae_output(acc, l.multiplier + 2 * c, l.shift + c, &l);
    }
}

/* The whole network from `in` to `out`.  Layer k < n_layers - 1 writes to
 * scratch_b when k is even and to scratch_a when k is odd; the last layer
 * writes to `out`. */
static void mcua_ae_network(const mcua_autoencoder_model *m,
                            const int8_t *in, int8_t *out)
{
    const uint16_t n_layers = mcua_read_u16(&m->n_layers);
    int8_t *a = (int8_t *)mcua_read_ptr(&m->scratch_a);
    int8_t *b = (int8_t *)mcua_read_ptr(&m->scratch_b);
    const mcua_autoencoder_layer *layers =
        (const mcua_autoencoder_layer *)mcua_read_ptr(&m->layers);
    const int8_t *src = in;
    uint16_t k;
    for (k = 0; k < n_layers; ++k) {
        int8_t *dst = (k + 1 == n_layers) ? out : (k % 2 == 0) ? b : a;
        mcua_ae_layer(&layers[k], src, dst);
        src = dst;
    }
}

int8_t mcua_autoencoder_quantize(float z, float scale, int32_t zero_point)
{
    float v = z / scale;
    float frac;
    int32_t t;
    /* Beyond +-256 quantisation steps every zero point in int8 saturates;
     * clamping first keeps the conversion to int32 defined (and maps +-Inf
     * to the rails).  NaN, the one value left that is not finite, counts
     * as 0: the conversion is only defined for the finite values. */
    if (v > 256.0f) {
        v = 256.0f;
    } else if (v < -256.0f) {
        v = -256.0f;
    } else if (!mcua_is_finite(v)) {
        v = 0.0f;
    }
    /* |t| <= 257 below: a zero point beyond +-384 saturates as +-384 does,
     * and t + zero_point cannot overflow. */
    if (zero_point > 384) {
        zero_point = 384;
    } else if (zero_point < -384) {
        zero_point = -384;
    }
    t = (int32_t)v;              /* truncates toward zero; |v| <= 256 */
    frac = v - (float)t;         /* exact for |v| <= 256 */
    if (frac >= 0.5f) {
        t += 1;
    } else if (frac <= -0.5f) {
        t -= 1;
    }
    t += zero_point;
    if (t < -128) {
        t = -128;
    }
    if (t > 127) {
        t = 127;
    }
    return (int8_t)t;
}

float mcua_autoencoder_dequantize(int8_t q, float scale, int32_t zero_point)
{
    /* q - zero_point wraps to int32 (as numpy's int32 does) instead of
     * overflowing for a zero point near INT32_MIN; exact for int8 ones. */
    const int32_t d = (int32_t)((uint32_t)(int32_t)q - (uint32_t)zero_point);
    return (float)d * scale;
}

/* The rows' description in RAM (its arrays stay in flash): loaded from a
 * generated mcua_autoencoder_rows, or made from the model's own fields for one
 * channel's whole window. */
typedef struct mcua_ae_rows {
    const float *mean;
    const float *std;
    const float *std_reciprocal;
    const int32_t *input_steps;
    uint16_t channels;
    uint16_t scored;
} mcua_ae_rows;

static void mcua_ae_rows_of_model(const mcua_autoencoder_model *m, mcua_ae_rows *r)
{
    r->mean = &m->mean;
    r->std = &m->std;
    r->std_reciprocal = &m->std_reciprocal;
    r->input_steps = (const int32_t *)mcua_read_ptr(&m->input_steps);
    r->channels = 1;
    r->scored = mcua_read_u16(&m->window);
}

static void mcua_ae_load_rows(mcua_ae_rows *dst, const mcua_autoencoder_rows *src)
{
    dst->mean = (const float *)mcua_read_ptr(&src->mean);
    dst->std = (const float *)mcua_read_ptr(&src->std);
    dst->std_reciprocal = (const float *)mcua_read_ptr(&src->std_reciprocal);
    dst->input_steps = (const int32_t *)mcua_read_ptr(&src->input_steps);
    dst->channels = mcua_read_u16(&src->channels);
    dst->scored = mcua_read_u16(&src->scored);
}

static int mcua_ae_finite(const float *window, uint16_t w)
{
    uint16_t i;
    for (i = 0; i < w; ++i) {
        if (!mcua_is_finite(window[i])) {
            return 0;
        }
    }
    return 1;
}

/* Value i is channel c = i mod C, quantised through channel c's 255 steps. */
static int mcua_ae_quantize(const mcua_autoencoder_model *m, const mcua_ae_rows *r,
                            const float *window, int8_t *q_out)
{
    const uint16_t w = mcua_read_u16(&m->window);
    const int32_t *steps = r->input_steps;
    uint16_t i, c = 0;
    if (!mcua_ae_finite(window, w)) {
        return 0;
    }
    for (i = 0; i < w; ++i) {
        /* binary search: level = #{steps <= key}; the strides add up to 255 */
        const int32_t key = mcua_order_key(window[i]);
        uint8_t level = 0;
        uint8_t stride;
        for (stride = 128; stride != 0; stride >>= 1) {
            if (key >= mcua_read_i32(steps + level + stride - 1)) {
                level = (uint8_t)(level + stride);
            }
        }
        q_out[i] = (int8_t)((int16_t)level - 128);
        if (++c == r->channels) {
            c = 0;
            steps = r->input_steps;
        } else {
            steps += 255;
        }
    }
    return 1;
}

int mcua_autoencoder_quantize_input(const mcua_autoencoder_model *m,
                                    const float *window, int8_t *q_out)
{
    mcua_ae_rows r;
    mcua_ae_rows_of_model(m, &r);
    return mcua_ae_quantize(m, &r, window, q_out);
}

int mcua_autoencoder_quantize_rows(const mcua_autoencoder_model *m,
                                   const mcua_autoencoder_rows *rows,
                                   const float *window, int8_t *q_out)
{
    mcua_ae_rows r;
    mcua_ae_load_rows(&r, rows);
    return mcua_ae_quantize(m, &r, window, q_out);
}

void mcua_autoencoder_invoke_int8(const mcua_autoencoder_model *m,
                                  const int8_t *in, int8_t *out)
{
    mcua_ae_network(m, in, out);
}

/* Multiplication by p = 2^e as the C does it where that is exact: when x is
 * a normal float and so is x * p, only x's exponent field moves (by e, in
 * the high 16 bits: e * 128), which is exactly the float product; otherwise
 * (0, subnormals, +-Inf, results beyond the normal range) the float
 * multiplication.  Where floats are software, a few integer instructions
 * instead of a multiplication. */
typedef struct mcua_ae_pow2 {
    float p;
    int16_t step;            /* e * 128 */
    uint16_t lowest, highest; /* the exponent fields (times 128) that stay normal */
} mcua_ae_pow2;

static void mcua_ae_pow2_init(mcua_ae_pow2 *s, float p)
{
    uint32_t bits;
    int16_t e;
    memcpy(&bits, &p, sizeof bits);
    e = (int16_t)((int16_t)((bits >> 23) & 0xFFu) - 127); /* also 2^-127 */
    s->p = p;
    s->step = (int16_t)(e * 128);
    s->lowest = (uint16_t)((e < 0 ? 1 - e : 1) * 128);
    s->highest = (uint16_t)((e > 0 ? 254 - e : 254) * 128);
}

static float mcua_ae_pow2_times(const mcua_ae_pow2 *s, float x)
{
    uint32_t bits;
    uint16_t high;
    memcpy(&bits, &x, sizeof bits);
    high = (uint16_t)(bits >> 16);
    if ((high & 0x7F80u) < s->lowest || (high & 0x7F80u) > s->highest) {
        return x * s->p;
    }
    high = (uint16_t)(high + (uint16_t)s->step);
    bits = ((uint32_t)high << 16) | (bits & 0xFFFFUL);
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* The reconstruction error of a network output against its raw window, one
 * fixed order: sum over the last K values i = W-K..W-1 of (z - r)^2, then / K.
 * z = (x - mean) / std, with value i's channel's mean and std, is computed as
 * (x - mean) * (1 / std) when the model holds that reciprocal (std a power of
 * two, so 1 / std is exact and the product is the same real number as the
 * quotient, rounded the same), else divided.  K is a multiple of C, so the
 * first value scored is channel 0's. */
typedef struct mcua_ae_channel {
    float mean;
    float sd;
    int by_reciprocal;
    mcua_ae_pow2 inv;
} mcua_ae_channel;

static void mcua_ae_channel_load(const mcua_ae_rows *r, uint16_t c, mcua_ae_channel *k)
{
    const float inv_sd = mcua_read_f32(r->std_reciprocal + c);
    k->mean = mcua_read_f32(r->mean + c);
    k->sd = mcua_read_f32(r->std + c);
    k->by_reciprocal = mcua_positive(inv_sd);
    mcua_ae_pow2_init(&k->inv, inv_sd);
}

static float mcua_ae_error(const mcua_autoencoder_model *m, const mcua_ae_rows *r,
                           const float *window, const int8_t *out, uint8_t *flag)
{
    const uint16_t w = mcua_read_u16(&m->window);
    const float out_scale = mcua_read_f32(&m->output_scale);
    const int32_t out_zp = mcua_read_i32(&m->output_zero_point);
    mcua_ae_channel k;
    float sum = 0.0f;
    float score;
    uint16_t i, c = 0;
    mcua_ae_channel_load(r, 0, &k);
    for (i = (uint16_t)(w - r->scored); i < w; ++i) {
        const float centred = window[i] - k.mean;
        const float z = k.by_reciprocal ? mcua_ae_pow2_times(&k.inv, centred) : centred / k.sd;
        const float d = z - mcua_autoencoder_dequantize(out[i], out_scale, out_zp);
        const float sq = d * d;
        sum = sum + sq;
        if (r->channels > 1) { /* one channel's constants are loaded once */
            if (++c == r->channels) {
                c = 0;
            }
            mcua_ae_channel_load(r, c, &k);
        }
    }
    score = sum / (float)r->scored;
    if (flag != NULL) {
        *flag = (uint8_t)(score > mcua_read_f32(&m->threshold) ? 1 : 0);
    }
    return score;
}

/* A window holding NaN or +-Inf scores +Inf and is flagged. */
static float mcua_ae_not_finite(uint8_t *flag)
{
    if (flag != NULL) {
        *flag = 1;
    }
    return mcua_infinity();
}

static float mcua_ae_score_output(const mcua_autoencoder_model *m, const mcua_ae_rows *r,
                                  const float *window, const int8_t *out, uint8_t *flag)
{
    if (!mcua_ae_finite(window, mcua_read_u16(&m->window))) {
        return mcua_ae_not_finite(flag);
    }
    return mcua_ae_error(m, r, window, out, flag);
}

static float mcua_ae_score(const mcua_autoencoder_model *m, const mcua_ae_rows *r,
                           const float *window, uint8_t *flag)
{
    const uint16_t n_layers = mcua_read_u16(&m->n_layers);
    int8_t *q = (int8_t *)mcua_read_ptr(&m->scratch_a);
    /* the scratch buffer the last layer does not read (both hold >= W) */
    int8_t *out = (int8_t *)(n_layers % 2 == 0 ? mcua_read_ptr(&m->scratch_a)
                                               : mcua_read_ptr(&m->scratch_b));
    if (n_layers == 0 || !mcua_ae_quantize(m, r, window, q)) {
        return mcua_ae_not_finite(flag);
    }
    mcua_ae_network(m, q, out);
    return mcua_ae_error(m, r, window, out, flag);
}

float mcua_autoencoder_score_output(const mcua_autoencoder_model *m,
                                    const float *window,
                                    const int8_t *out, uint8_t *flag)
{
    mcua_ae_rows r;
    mcua_ae_rows_of_model(m, &r);
    return mcua_ae_score_output(m, &r, window, out, flag);
}

float mcua_autoencoder_score(const mcua_autoencoder_model *m,
                             const float *window, uint8_t *flag)
{
    mcua_ae_rows r;
    mcua_ae_rows_of_model(m, &r);
    return mcua_ae_score(m, &r, window, flag);
}

float mcua_autoencoder_score_rows_output(const mcua_autoencoder_model *m,
                                         const mcua_autoencoder_rows *rows,
                                         const float *window,
                                         const int8_t *out, uint8_t *flag)
{
    mcua_ae_rows r;
    mcua_ae_load_rows(&r, rows);
    return mcua_ae_score_output(m, &r, window, out, flag);
}

float mcua_autoencoder_score_rows(const mcua_autoencoder_model *m,
                                  const mcua_autoencoder_rows *rows,
                                  const float *window, uint8_t *flag)
{
    mcua_ae_rows r;
    mcua_ae_load_rows(&r, rows);
    return mcua_ae_score(m, &r, window, flag);
}

MCUA_FP_CONTRACT_OFF_END
