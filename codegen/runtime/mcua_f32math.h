/*
 * mcua_f32math - exp and log in float32, the same bits on every target.
 *
 * expf/logf differ between C libraries; these use only float32 + - * /,
 * float<->int conversions and bit operations (through memcpy), and
 * codegen/detectors/f32math.py repeats them operation for operation, so the
 * Python reference and every device agree bit for bit.  Accuracy against
 * float64: <= 1 ulp for both over their finite domains (tests/test_f32math.py).
 *
 * mcua_exp(x):
 *   NaN                        -> x (the same NaN)
 *   x > 88.7228317f (0x42B17217, the largest float with a finite exp) -> +Inf
 *   x < -87.0f                 -> +0 (so no result is ever subnormal: exp is
 *                                 normal from -87 up, flushed to 0 below)
 *   otherwise                  -> a normal float, exp(x) within 1 ulp
 * mcua_log(x):
 *   NaN, or x < 0 (-Inf and negative subnormals included) -> NaN (0x7FC00000)
 *   +0, -0 and positive subnormals                        -> -Inf
 *   +Inf                                                  -> +Inf
 *   a positive normal x                                   -> log(x) within 1 ulp
 * Neither divides where the quotient could be subnormal (avr-libc's division
 * is not correctly rounded there).
 */
#ifndef MCUA_F32MATH_H
#define MCUA_F32MATH_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

float mcua_exp(float x);
float mcua_log(float x);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_F32MATH_H */
