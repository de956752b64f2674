/* Placeholder for a generated <model>_<detector>.h: the real generator
 * replaces this directory.  score = bias + sum_i w[i] * x[i], summed in
 * float32 in index order; flag = score > threshold. */
#ifndef PLACEHOLDER_DOT_H
#define PLACEHOLDER_DOT_H

#include <stdint.h>

#define PLACEHOLDER_DOT_DIM 4

#ifdef __cplusplus
extern "C" {
#endif

float placeholder_dot_score(const float *x, uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* PLACEHOLDER_DOT_H */
