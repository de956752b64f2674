/*
 * mcua_mahalanobis - squared Mahalanobis distance (Hotelling's T²) to the
 * normal data's centre.
 *
 * d[f]  = x[f] - centre[f]
 * score = d' P d = sum over i of (sum over f >= i of factor[i][f] * d[f])^2
 *         (mcua_quadform_upper: factor is P's upper Cholesky factor with the
 *         per-channel standardisation folded in, packed row by row)
 * flag  = score > threshold
 * The score is >= +0 or +Inf: a sample holding NaN or +-Inf, or whose
 * arithmetic overflows, scores +Inf and is flagged.
 */
#ifndef MCUA_MAHALANOBIS_H
#define MCUA_MAHALANOBIS_H

#include "mcua_common.h"
#include "mcua_quadform.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint16_t n_features;
    float threshold;      /* finite */
    const float *centre;  /* [n_features] */
    const float *factor;  /* [n_features * (n_features + 1) / 2] */
} mcua_mahalanobis_model;

/* d is caller-provided scratch of n_features floats (the generated wrapper
 * sizes it exactly). */
float mcua_mahalanobis_score(const mcua_mahalanobis_model *model, const float *x,
                             float *d, uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_MAHALANOBIS_H */
