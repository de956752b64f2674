/*
 * mcua_autoencoder.h - plain-C int8 engine for the mcu-anomaly dense
 * autoencoder, bit-exact with TensorFlow Lite Micro's reference kernels.
 *
 * Pipeline (identical in the Python reference, see
 * codegen/detectors/autoencoder/pipeline.py), on a window x of W values: one
 * channel's last W readings, or the last R rows of C channels, row after row
 * (W = R * C; value i is channel c = i mod C, with its own mean and std):
 *
 *   z[i]  = (x[i] - mean) / std                       float32, i = 0..W-1
 *           (std is a power of two in bundles trained now: then computed as
 *           (x[i] - mean) * (1 / std), the same float, without a division)
 *   q[i]  = clamp(round_half_away(z[i] / in_scale) + in_zp, -128, 127)
 *           (TFLite's AffineQuantize: float32 division, std::round; values
 *           beyond +-256 steps saturate instead of overflowing int32, NaN
 *           counts as 0)
 *   y     = int8 network: FULLY_CONNECTED layers, each
 *             acc   = bias[c] + sum_k w[c][k] * (in[k] - in_zp)    int32
 *                     (computed as folded_bias[c] + sum_k w[c][k] * in[k])
 *             out   = MultiplyByQuantizedMultiplier(acc, mult[c], shift[c])
 *                     (double rounding: SaturatingRoundingDoublingHighMul,
 *                      then RoundingDivideByPOT, as TFLite Micro)
 *                     + out_zp, clamped to [act_min, act_max]
 *                     (fused ReLU: [out_zp, 127]; none: [-128, 127])
 *   r[i]  = (float)(y[i] - out_zp) * out_scale         float32
 *   score = (sum_{i=W-K..W-1} (z[i] - r[i])^2) / K     float32, summed left
 *           to right over the last K values: K = W (the whole window) or
 *           K = C (its newest row alone, mcua_autoencoder_rows)
 *   flag  = score > threshold
 *
 * No fused multiply-add changes the float steps: the unit turns contraction
 * off itself (MCUA_FP_CONTRACT_OFF_BEGIN, mcua_common.h).  The integer
 * network is exact under any optimisation level.
 *
 * Memory: no heap, no arena.  The only RAM is two int8 scratch buffers that
 * the generated header defines (sized exactly for its model) and a few
 * locals.  Every model constant is in flash (PROGMEM on AVR) and read
 * through the mcua_read_* accessors; the model and layer structs themselves
 * live in flash too, so always pass the address of the generated model.
 *
 * The engine is not re-entrant: two calls on the same model must not run at
 * the same time (they share the scratch buffers).
 */
#ifndef MCUA_AUTOENCODER_H
#define MCUA_AUTOENCODER_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One FULLY_CONNECTED layer with int8 input/output, int8 weights and int32
 * bias.  Weights are [out_dim][in_dim], row-major, symmetric (zero point 0),
 * with one requantisation multiplier/shift per output channel.  The bias
 * has the input zero point folded in: bias[c] is TFLite's bias minus the
 * input zero point times the sum of row c's weights, so that
 * bias[c] + sum_k w[c][k] * in[k] is TFLite's accumulator. */
typedef struct mcua_autoencoder_layer {
    const int8_t *weights;     /* out_dim * in_dim values, flash */
    const int32_t *bias;       /* out_dim values, flash (zero point folded in) */
    const uint16_t *multiplier; /* 2 * out_dim values, flash: each channel's
                                 * Q31 significand (0 to 2^31 - 1) as its
                                 * high then low 16 bits */
    const int8_t *shift;       /* out_dim values, flash (>0: left shift) */
    int32_t output_offset;     /* the output zero point */
    uint16_t in_dim;
    uint16_t out_dim;
    int8_t act_min;            /* fused activation clamp */
    int8_t act_max;
} mcua_autoencoder_layer;

typedef struct mcua_autoencoder_model {
    const mcua_autoencoder_layer *layers; /* n_layers layers, flash */
    /* 255 ascending order keys, flash: a raw reading x quantises to q[i] =
     * -128 + #{steps <= mcua_order_key(x)}, equal to the float32 pipeline
     * below; no division on the device. */
    const int32_t *input_steps;
    int8_t *scratch_a;   /* RAM: >= window and odd layers' outputs */
    int8_t *scratch_b;   /* RAM: >= even layers' outputs, and >= window when
                          * n_layers is odd (the score's network output goes
                          * to the buffer its last layer does not read) */
    uint16_t window;     /* W: network input and output width */
    uint16_t n_layers;
    float mean;          /* standardisation of the raw channel (of the first
                          * channel when mcua_autoencoder_rows gives them all) */
    float std;
    float std_reciprocal; /* 1 / std when exact (std a power of two), else 0 */
    float input_scale;   /* int8 input tensor quantisation */
    int32_t input_zero_point;
    float output_scale;  /* int8 output tensor quantisation */
    int32_t output_zero_point;
    float threshold;     /* flag = score > threshold */
} mcua_autoencoder_model;

/* How a window of rows is standardised and scored, when it is not one
 * channel's whole window (the model's own mean, std, std_reciprocal and
 * input steps): per channel c of each row its constants, and K, the newest
 * values the score averages.  In flash, like the model. */
typedef struct mcua_autoencoder_rows {
    const float *mean;           /* C values, flash */
    const float *std;            /* C values, flash */
    const float *std_reciprocal; /* C values, flash: 1 / std when exact, else 0 */
    const int32_t *input_steps;  /* 255 per channel, channel after channel, flash */
    uint16_t channels;           /* C, which divides the model's window */
    uint16_t scored;             /* K: the window (W) or its newest row (C) */
} mcua_autoencoder_rows;

/* Quantise one standardised value like TFLite's QUANTIZE (AffineQuantize):
 * round half away from zero of z / scale (float32), plus zero point,
 * clamped to int8.  Defined for every input: z / scale beyond +-256 steps
 * (+-Inf included) saturates, and NaN quantises as 0 does, to the zero
 * point (TFLite converts NaN to int32, which C and C++ leave undefined;
 * TFLite Micro on Arm gets 0 from the conversion, on x86 INT32_MIN). */
int8_t mcua_autoencoder_quantize(float z, float scale, int32_t zero_point);

/* (float)(q - zero_point) * scale, as TFLite's DEQUANTIZE (q - zero_point
 * wraps to int32 for a zero point beyond int8's range). */
float mcua_autoencoder_dequantize(int8_t q, float scale, int32_t zero_point);

/* Standardise and quantise a raw window (W floats, oldest first) into the
 * int8 input of the network, through the model's input steps (the result of
 * z[i] and q[i] above, with integer comparisons only).  Returns 1, or 0 (and
 * writes nothing) when a value is NaN or +-Inf.  Use it to feed TFLite
 * Micro's input tensor. */
int mcua_autoencoder_quantize_input(const mcua_autoencoder_model *m,
                                    const float *window, int8_t *q_out);

/* Run the int8 network: W int8 inputs -> W int8 outputs.  `in` and `out` may
 * not overlap the model's scratch buffers. */
void mcua_autoencoder_invoke_int8(const mcua_autoencoder_model *m,
                                  const int8_t *in, int8_t *out);

/* Score a network output against its raw window: the reconstruction error
 * (mean squared error of standardised values) and the flag.  Use it on
 * TFLite Micro's output tensor to get the same score as
 * mcua_autoencoder_score.  flag may be NULL. */
float mcua_autoencoder_score_output(const mcua_autoencoder_model *m,
                                    const float *window,
                                    const int8_t *out, uint8_t *flag);

/* The whole pipeline on one raw window (W floats, oldest first).  Returns
 * the score and sets *flag (if flag is not NULL) to 1 when score >
 * threshold.  A window holding NaN or +-Inf scores +Inf and is flagged, as
 * in every other mcua detector. */
float mcua_autoencoder_score(const mcua_autoencoder_model *m,
                             const float *window, uint8_t *flag);

/* The same three on a window of rows, as `rows` (in flash) describes it. */
int mcua_autoencoder_quantize_rows(const mcua_autoencoder_model *m,
                                   const mcua_autoencoder_rows *rows,
                                   const float *window, int8_t *q_out);

float mcua_autoencoder_score_rows_output(const mcua_autoencoder_model *m,
                                         const mcua_autoencoder_rows *rows,
                                         const float *window,
                                         const int8_t *out, uint8_t *flag);

float mcua_autoencoder_score_rows(const mcua_autoencoder_model *m,
                                  const mcua_autoencoder_rows *rows,
                                  const float *window, uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_AUTOENCODER_H */
