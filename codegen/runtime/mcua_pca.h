/*
 * mcua_pca - PCA monitoring: Hotelling's T² in the principal subspace and Q
 * (the squared prediction error) in the residual, each against its limit.
 *
 * z[f]  = (x[f] - mean[f]) * inv_scale[f]                  (standardise)
 * t[j]  = sum over f, in order, of P[f][j] * z[f]           (P: C x k loadings)
 * T²    = sum over j, in order, of (t[j] * t[j]) * inv_lambda[j]
 * r[f]  = z[f] - (sum over j, in order, of P[f][j] * t[j])
 * Q     = sum over f, in order, of r[f] * r[f]
 * score = max(T² * inv_t2_limit, Q * inv_q_limit)          flag = score > threshold
 * Every sum starts from its first term.  T² and Q are >= +0 or +Inf: a sample
 * holding NaN or +-Inf, or whose arithmetic overflows (also to NaN through
 * Inf - Inf), has T² = Q = +Inf, scores +Inf and is flagged.
 */
#ifndef MCUA_PCA_H
#define MCUA_PCA_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint16_t n_features;      /* C >= 2 */
    uint16_t n_components;    /* k, 1 <= k < C */
    float inv_t2_limit;       /* finite, > 0 */
    float inv_q_limit;        /* finite, > 0 */
    float threshold;          /* finite, >= 0 */
    const float *mean;        /* [n_features] */
    const float *inv_scale;   /* [n_features] */
    const float *loadings;    /* [n_features][n_components], row-major */
    const float *inv_lambda;  /* [n_components], > 0 */
} mcua_pca_model;

/* z and t are caller-provided scratch of n_features and n_components floats
 * (the generated wrapper sizes them exactly).  *t2 and *q receive T² and Q
 * when not NULL. */
float mcua_pca_score(const mcua_pca_model *model, const float *x, float *z, float *t,
                     uint8_t *flag, float *t2, float *q);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_PCA_H */
