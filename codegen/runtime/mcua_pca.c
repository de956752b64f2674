#include "mcua_pca.h"

MCUA_FP_CONTRACT_OFF_BEGIN

static float finite_or_infinity(float x)
{
    return mcua_is_finite(x) ? x : mcua_infinity();
}

/* t = P' z, with P read once, row by row: t[j] still sums over f in order. */
static void project(const float *p, const float *z, float *t, uint16_t n, uint16_t k)
{
    uint16_t f, j;

    for (j = 0; j < k; ++j, ++p) {
        t[j] = mcua_read_f32(p) * z[0];
    }
    for (f = 1; f < n; ++f) {
        const float zf = z[f];
        for (j = 0; j < k; ++j, ++p) {
            t[j] = t[j] + mcua_read_f32(p) * zf;
        }
    }
}

static float hotelling(const float *inv_lambda, const float *t, uint16_t k)
{
    float sum = (t[0] * t[0]) * mcua_read_f32(inv_lambda);
    uint16_t j;

    for (j = 1; j < k; ++j) {
        sum = sum + (t[j] * t[j]) * mcua_read_f32(inv_lambda + j);
    }
    return finite_or_infinity(sum);
}

/* Q = |z - P t|^2, row f of P giving the reconstruction of z[f]. */
static float residual(const float *p, const float *z, const float *t, uint16_t n, uint16_t k)
{
    float sum = 0.0f;
    uint16_t f, j;

    for (f = 0; f < n; ++f) {
        float s = mcua_read_f32(p) * t[0];
        float r;
        ++p;
        for (j = 1; j < k; ++j, ++p) {
            s = s + mcua_read_f32(p) * t[j];
        }
        r = z[f] - s;
        sum = f ? sum + r * r : r * r;
    }
    return finite_or_infinity(sum);
}

float mcua_pca_score(const mcua_pca_model *model, const float *x, float *z, float *t,
                     uint8_t *flag, float *t2, float *q)
{
    const uint16_t n = mcua_read_u16(&model->n_features);
    const uint16_t k = mcua_read_u16(&model->n_components);
    const float *mean = (const float *)mcua_read_ptr(&model->mean);
    const float *inv_scale = (const float *)mcua_read_ptr(&model->inv_scale);
    const float *loadings = (const float *)mcua_read_ptr(&model->loadings);
    float a, b, score; /* T², Q */
    uint16_t f;

    for (f = 0; f < n && mcua_is_finite(x[f]); ++f) {
        z[f] = (x[f] - mcua_read_f32(mean + f)) * mcua_read_f32(inv_scale + f);
    }
    if (f < n) {
        a = b = mcua_infinity();
    } else {
        project(loadings, z, t, n, k);
        a = hotelling((const float *)mcua_read_ptr(&model->inv_lambda), t, k);
        b = residual(loadings, z, t, n, k);
    }
    if (t2) {
        *t2 = a;
    }
    if (q) {
        *q = b;
    }
    /* +Inf stays +Inf: the inverses are finite and > 0 */
    a = a * mcua_read_f32(&model->inv_t2_limit);
    b = b * mcua_read_f32(&model->inv_q_limit);
    score = mcua_nonneg_greater(b, a) ? b : a;
    *flag = (uint8_t)mcua_nonneg_greater(score, mcua_read_f32(&model->threshold));
    return score;
}

MCUA_FP_CONTRACT_OFF_END
