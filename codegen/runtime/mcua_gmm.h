/*
 * mcua_gmm - negative log-likelihood under a Gaussian mixture.
 *
 * d[f]  = x[f] - mean[f]
 * q[k]  = mcua_quadform_upper(factor_k, offset_k, d, n_features), or
 *         mcua_quadform_diag for a diagonal mixture: sum over i of
 *         (U_k d - b_k)[i]^2, +Inf when it overflows (or d holds NaN/Inf)
 * a[k]  = constant[k] - 0.5f * q[k]
 * m     = max over k of a[k]
 * score = -(m + mcua_log(sum over k, in order, of mcua_exp(a[k] - m)))
 *         (the terms with a[k] = m are exactly 1, the sum is in [1, K])
 * flag  = score > threshold
 * A sample holding NaN or +-Inf, or whose every q[k] overflows, scores +Inf
 * and is flagged; the score is never NaN.
 *
 * Value ranges (bundle.load checks them): n_features >= 1, n_components >= 1;
 * every constant a finite float32.  factor holds n_components rows of
 * n_features*(n_features+1)/2 floats (the packed upper triangle) or, when
 * diagonal, of n_features floats; offset n_components rows of n_features.
 */
#ifndef MCUA_GMM_H
#define MCUA_GMM_H

#include "mcua_common.h"
#include "mcua_f32math.h"
#include "mcua_quadform.h"

#ifdef __cplusplus
extern "C" {
#endif

/* For the generated wrapper, whose scratch arrays would otherwise join the
 * frame of whatever function it is inlined into (on the Uno, the firmware's
 * dispatch, whose frame every detector's call chain then carries). */
#if defined(__GNUC__)
#define MCUA_GMM_NOINLINE __attribute__((noinline))
#else
#define MCUA_GMM_NOINLINE
#endif

typedef struct {
    uint16_t n_features;
    uint16_t n_components;
    uint8_t diagonal;       /* 1: factor rows are diagonals */
    float threshold;
    const float *mean;      /* [n_features] */
    const float *factor;    /* [n_components][packed upper triangle or diagonal] */
    const float *offset;    /* [n_components][n_features] */
    const float *constant;  /* [n_components] */
} mcua_gmm_model;

/* d (n_features floats) and a (n_components floats) are caller-provided
 * scratch; the generated wrapper sizes them exactly. */
float mcua_gmm_score(const mcua_gmm_model *model, const float *x, float *d, float *a,
                     uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_GMM_H */
