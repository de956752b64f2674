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

#ifdef __cplusplus
extern "C" {
#endif

float mcua_quadform_upper(const float *u, const float *b, const float *d, uint16_t n);
float mcua_quadform_diag(const float *u, const float *b, const float *d, uint16_t n);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_QUADFORM_H */
