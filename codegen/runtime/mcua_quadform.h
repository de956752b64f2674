/*
 * mcua_quadform - the sum of squares of a triangular (or diagonal) factor
 * times a vector: the quadratic form d' P d of a precision matrix P = U'U,
 * without a matrix inverse on the device.
 *
 * upper: y[i] = sum over j = i..n-1, in order, of u[i][j] * d[j], minus b[i]
 *        (when b is not NULL); u is the upper triangle packed row by row
 *        (n*(n+1)/2 floats: u[0][0..n-1], u[1][1..n-1], ...).
 * diag:  y[i] = u[i] * d[i], minus b[i] (when b is not NULL).
 * Both return the sum over i, in order, of y[i] * y[i], or +Inf when that
 * sum is not finite (an overflow, or NaN from Inf - Inf): never NaN.
 * u and b are model constants (read through mcua_read_f32: flash on AVR);
 * d is in RAM.  n >= 1.
 */
#ifndef MCUA_QUADFORM_H
#define MCUA_QUADFORM_H

#include "mcua_common.h"

MCUA_FP_CONTRACT_OFF_BEGIN

#ifdef __cplusplus
extern "C" {
#endif

/* The running sum's end: +Inf for an overflow or a NaN. */
static inline float mcua_quadform_finite(float sum)
{
    return mcua_is_finite(sum) ? sum : mcua_infinity();
}

/* Inline: a detector calls it once per sample or per component, and a call
 * with its register saves costs ~10 % of a 3-channel form on AVR. */
static inline float mcua_quadform_upper(const float *u, const float *b, const float *d,
                                        uint16_t n)
{
    const float *end = d + n;
    const float *row;
    float sum = 0.0f;

    for (row = d; row != end; ++row) {
        const float *dj = row;
        float y = mcua_read_f32(u) * *dj;
        for (++u, ++dj; dj != end; ++dj, ++u) {
            y = y + mcua_read_f32(u) * *dj;
        }
        if (b) {
            y = y - mcua_read_f32(b);
            ++b;
        }
        /* +0 + t is t for every t >= +0: starting from the first square is the plain sum */
        sum = row == d ? y * y : sum + y * y;
    }
    return mcua_quadform_finite(sum);
}

static inline float mcua_quadform_diag(const float *u, const float *b, const float *d,
                                       uint16_t n)
{
    float sum = 0.0f;
    uint16_t i;

    for (i = 0; i < n; ++i) {
        float y = mcua_read_f32(u + i) * d[i];
        if (b) {
            y = y - mcua_read_f32(b + i);
        }
        sum = i ? sum + y * y : y * y;
    }
    return mcua_quadform_finite(sum);
}

#ifdef __cplusplus
}
#endif

MCUA_FP_CONTRACT_OFF_END

#endif /* MCUA_QUADFORM_H */
