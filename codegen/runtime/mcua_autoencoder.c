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

#define MCUA_AE_I32_MAX ((int32_t)2147483647L)
#define MCUA_AE_I32_MIN ((int32_t)(-2147483647L - 1L))

/* gemmlowp SaturatingRoundingDoublingHighMul: high 32 bits of 2*a*b with
 * round-half-away-from-zero: (a*b + nudge) / 2^31, the quotient truncated
 * toward zero as C's `/`.  The division is done as a shift of the magnitude
 * (same result; |a*b + nudge| < 2^62) so that AVR needs no 64-bit divide. */
static int32_t mcua_ae_srdhm(int32_t a, int32_t b)
{
    int64_t ab;
    int64_t num;
    if (a == b && a == MCUA_AE_I32_MIN) {
        return MCUA_AE_I32_MAX;
    }
    ab = (int64_t)a * (int64_t)b;
    num = ab + ((ab >= 0) ? ((int64_t)1 << 30) : ((int64_t)1 - ((int64_t)1 << 30)));
    if (num >= 0) {
        return (int32_t)(num >> 31);
    }
    return (int32_t)(-((-num) >> 31));
}

/* gemmlowp RoundingDivideByPOT: x / 2^exponent, rounding half away from
 * zero.  Relies on >> of a negative value being arithmetic (true for gcc,
 * clang, avr-gcc and arm-none-eabi-gcc, as TFLite itself assumes). */
static int32_t mcua_ae_rdbpot(int32_t x, int exponent)
{
    const int32_t mask = (int32_t)((1UL << exponent) - 1UL); /* exponent <= 31 */
    const int32_t remainder = x & mask;
    const int32_t threshold = (int32_t)((mask >> 1) + ((x < 0) ? 1 : 0));
    return (int32_t)((x >> exponent) + ((remainder > threshold) ? 1 : 0));
}

/* TFLite MultiplyByQuantizedMultiplier (double-rounding build, the default
 * of TFLite Micro).  The left shift wraps like TFLite's int multiply. */
static int32_t mcua_ae_requantize(int32_t x, int32_t multiplier, int shift)
{
    const int left = shift > 0 ? shift : 0;
    const int right = shift > 0 ? 0 : -shift;
    const int32_t shifted = (int32_t)((uint32_t)x << left);
    return mcua_ae_rdbpot(mcua_ae_srdhm(shifted, multiplier), right);
}

/* Copy a layer descriptor out of flash, field by field. */
static void mcua_ae_load_layer(mcua_autoencoder_layer *dst,
                               const mcua_autoencoder_layer *src)
{
    dst->weights = (const int8_t *)mcua_read_ptr(&src->weights);
    dst->bias = (const int32_t *)mcua_read_ptr(&src->bias);
    dst->multiplier = (const int32_t *)mcua_read_ptr(&src->multiplier);
    dst->shift = (const int8_t *)mcua_read_ptr(&src->shift);
    dst->input_offset = mcua_read_i32(&src->input_offset);
    dst->output_offset = mcua_read_i32(&src->output_offset);
    dst->in_dim = mcua_read_u16(&src->in_dim);
    dst->out_dim = mcua_read_u16(&src->out_dim);
    dst->act_min = mcua_read_i8(&src->act_min);
    dst->act_max = mcua_read_i8(&src->act_max);
}

/* One output channel of a FULLY_CONNECTED layer (TFLite Micro's
 * FullyConnectedPerChannel, filter offset 0). */
static int8_t mcua_ae_neuron(const mcua_autoencoder_layer *l,
                             const int8_t *in, uint16_t c)
{
    const int8_t *w = l->weights + (uint32_t)c * l->in_dim;
    /* in + offset lies in [-255, 255] and a weight in [-128, 127], so each
     * product fits in 16 bits: on AVR a few MUL instructions instead of a
     * 32-bit multiply call. */
    const int16_t offset = (int16_t)l->input_offset;
    int32_t acc = 0;
    int32_t v;
    uint16_t k;
    for (k = 0; k < l->in_dim; ++k) {
        const int16_t x = (int16_t)(in[k] + offset);
        acc += (int16_t)(mcua_read_i8(w + k) * x);
    }
    acc += mcua_read_i32(l->bias + c);
    v = mcua_ae_requantize(acc, mcua_read_i32(l->multiplier + c),
                           (int)mcua_read_i8(l->shift + c));
    v += l->output_offset;
    if (v < (int32_t)l->act_min) {
        v = l->act_min;
    }
    if (v > (int32_t)l->act_max) {
        v = l->act_max;
    }
    return (int8_t)v;
}

static void mcua_ae_layer(const mcua_autoencoder_layer *l, const int8_t *in,
                          int8_t *out)
{
    uint16_t c;
    for (c = 0; c < l->out_dim; ++c) {
        out[c] = mcua_ae_neuron(l, in, c);
    }
}

/* Runs layers 0 .. n_layers-2 (all but the last) and returns where the last
 * layer's input is.  Layer k writes to scratch_b when k is even and to
 * scratch_a when k is odd; layer 0 reads `in`. */
static const int8_t *mcua_ae_hidden(const mcua_autoencoder_model *m,
                                    const int8_t *in, uint16_t n_layers)
{
    int8_t *a = (int8_t *)mcua_read_ptr(&m->scratch_a);
    int8_t *b = (int8_t *)mcua_read_ptr(&m->scratch_b);
    const mcua_autoencoder_layer *layers =
        (const mcua_autoencoder_layer *)mcua_read_ptr(&m->layers);
    const int8_t *src = in;
    mcua_autoencoder_layer l;
    uint16_t k;
    for (k = 0; k + 1 < n_layers; ++k) {
        int8_t *dst = (k % 2 == 0) ? b : a;
        mcua_ae_load_layer(&l, &layers[k]);
        mcua_ae_layer(&l, src, dst);
        src = dst;
    }
    return src;
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

int mcua_autoencoder_quantize_input(const mcua_autoencoder_model *m,
                                    const float *window, int8_t *q_out)
{
    const uint16_t w = mcua_read_u16(&m->window);
    const int32_t *steps = (const int32_t *)mcua_read_ptr(&m->input_steps);
    uint16_t i;
    for (i = 0; i < w; ++i) {
        if (!mcua_is_finite(window[i])) {
            return 0;
        }
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
    }
    return 1;
}

void mcua_autoencoder_invoke_int8(const mcua_autoencoder_model *m,
                                  const int8_t *in, int8_t *out)
{
    const uint16_t n_layers = mcua_read_u16(&m->n_layers);
    const mcua_autoencoder_layer *layers =
        (const mcua_autoencoder_layer *)mcua_read_ptr(&m->layers);
    mcua_autoencoder_layer l;
    const int8_t *src;
    if (n_layers == 0) {
        return;
    }
    src = mcua_ae_hidden(m, in, n_layers);
    mcua_ae_load_layer(&l, &layers[n_layers - 1]);
    mcua_ae_layer(&l, src, out);
}

/* The reconstruction error accumulates in one fixed order, shared by both
 * scoring entry points: sum over i = 0..W-1 of (z - r)^2, then / W. */
typedef struct mcua_ae_err {
    float mean, sd, out_scale, sum;
    int32_t out_zp;
} mcua_ae_err;

static void mcua_ae_err_init(mcua_ae_err *e, const mcua_autoencoder_model *m)
{
    e->mean = mcua_read_f32(&m->mean);
    e->sd = mcua_read_f32(&m->std);
    e->out_scale = mcua_read_f32(&m->output_scale);
    e->out_zp = mcua_read_i32(&m->output_zero_point);
    e->sum = 0.0f;
}

static void mcua_ae_err_add(mcua_ae_err *e, float x, int8_t y)
{
    const float z = (x - e->mean) / e->sd;
    const float r = mcua_autoencoder_dequantize(y, e->out_scale, e->out_zp);
    const float d = z - r;
    const float sq = d * d;
    e->sum = e->sum + sq;
}

static float mcua_ae_err_finish(const mcua_ae_err *e,
                                const mcua_autoencoder_model *m,
                                uint16_t w, uint8_t *flag)
{
    const float score = e->sum / (float)w;
    if (flag != NULL) {
        *flag = (uint8_t)(score > mcua_read_f32(&m->threshold) ? 1 : 0);
    }
    return score;
}

float mcua_autoencoder_score_output(const mcua_autoencoder_model *m,
                                    const float *window,
                                    const int8_t *out, uint8_t *flag)
{
    const uint16_t w = mcua_read_u16(&m->window);
    mcua_ae_err e;
    uint16_t i;
    for (i = 0; i < w; ++i) {
        if (!mcua_is_finite(window[i])) {
            if (flag != NULL) {
                *flag = 1;
            }
            return mcua_infinity();
        }
    }
    mcua_ae_err_init(&e, m);
    for (i = 0; i < w; ++i) {
        mcua_ae_err_add(&e, window[i], out[i]);
    }
    return mcua_ae_err_finish(&e, m, w, flag);
}

float mcua_autoencoder_score(const mcua_autoencoder_model *m,
                             const float *window, uint8_t *flag)
{
    const uint16_t w = mcua_read_u16(&m->window);
    const uint16_t n_layers = mcua_read_u16(&m->n_layers);
    int8_t *q = (int8_t *)mcua_read_ptr(&m->scratch_a);
    const mcua_autoencoder_layer *layers =
        (const mcua_autoencoder_layer *)mcua_read_ptr(&m->layers);
    mcua_autoencoder_layer last;
    const int8_t *src;
    mcua_ae_err e;
    uint16_t i;
    if (n_layers == 0 || !mcua_autoencoder_quantize_input(m, window, q)) {
        if (flag != NULL) {
            *flag = 1;
        }
        return mcua_infinity();
    }
    src = mcua_ae_hidden(m, q, n_layers);
    /* The last layer is computed one output at a time and scored at once, so
     * the W-wide output needs no buffer. */
    mcua_ae_load_layer(&last, &layers[n_layers - 1]);
    mcua_ae_err_init(&e, m);
    for (i = 0; i < w; ++i) {
        mcua_ae_err_add(&e, window[i], mcua_ae_neuron(&last, src, i));
    }
    return mcua_ae_err_finish(&e, m, w, flag);
}

MCUA_FP_CONTRACT_OFF_END
