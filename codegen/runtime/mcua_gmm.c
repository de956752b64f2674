#include "mcua_gmm.h"

MCUA_FP_CONTRACT_OFF_BEGIN

/* mcua_exp of anything below -16.7f is under 2^-24 (exp(-16.7) = 5.6e-8, and
 * mcua_exp is within 1 ulp), so adding it to a total >= 1 changes nothing
 * (codegen/detectors/gmm.py NEGLIGIBLE, tests/test_shared_constants.py). */
#define MCUA_GMM_NEGLIGIBLE 16.7f

/* 0.5f * q for q >= +0, exactly: one less in the exponent when the result is
 * normal (a few integer instructions instead of a software multiply on AVR),
 * the multiply itself for +Inf and the smallest q. */
static float half(float q)
{
    uint32_t bits;
    memcpy(&bits, &q, sizeof bits);
    if (bits >= 0x01000000UL && bits < 0x7F800000UL) {
        bits -= 0x00800000UL;
        memcpy(&q, &bits, sizeof q);
        return q;
    }
    return 0.5f * q;
}

float mcua_gmm_score(const mcua_gmm_model *model, const float *x, float *d, float *a,
                     uint8_t *flag)
{
    const uint16_t n_features = mcua_read_u16(&model->n_features);
    const uint16_t n_components = mcua_read_u16(&model->n_components);
    const uint8_t diagonal = mcua_read_u8(&model->diagonal);
    const float *mean = (const float *)mcua_read_ptr(&model->mean);
    const float *factor = (const float *)mcua_read_ptr(&model->factor);
    const float *offset = (const float *)mcua_read_ptr(&model->offset);
    const float *constant = (const float *)mcua_read_ptr(&model->constant);
    /* a full row holds C(C+1)/2 floats: beyond uint16_t from 362 channels on */
    const uint32_t row = diagonal ? n_features
                                  : (uint32_t)n_features * (n_features + 1UL) / 2u;
    float m = 0.0f, total = 0.0f, nll;
    uint16_t f, k;
    uint8_t past_max = 0;

    /* NaN/Inf readings need no test: they make d non-finite, so every q[k] is
     * +Inf (row 0 of the triangle, or the diagonal, reads every d[f]), every
     * a[k] -Inf, and m is not finite. */
    for (f = 0; f < n_features; ++f) {
        d[f] = x[f] - mcua_read_f32(mean + f);
    }
    for (k = 0; k < n_components; ++k, factor += row, offset += n_features) {
        const float q = diagonal ? mcua_quadform_diag(factor, offset, d, n_features)
                                 : mcua_quadform_upper(factor, offset, d, n_features);
        a[k] = mcua_read_f32(constant + k) - half(q);
        if (k == 0 || mcua_order_key(a[k]) > mcua_order_key(m)) {
            m = a[k];
        }
    }
    if (!mcua_is_finite(m)) {
        *flag = 1;
        return mcua_infinity();
    }
    /* Calls saved without changing a bit: exp(0) is exactly 1 (the maximum's
     * term); once the total holds that 1, a term below 2^-24 leaves it as it
     * is (round to nearest); log(1) is exactly +0. */
    for (k = 0; k < n_components; ++k) {
        float term = 1.0f;
        if (mcua_order_key(a[k]) != mcua_order_key(m)) {
            const float diff = a[k] - m;
            if (past_max && mcua_order_key(diff) < mcua_order_key(-MCUA_GMM_NEGLIGIBLE)) {
                continue;
            }
            term = mcua_exp(diff);
        } else {
            past_max = 1;
        }
        total = k ? total + term : term;
    }
    nll = -(m + (total == 1.0f ? 0.0f : mcua_log(total)));
    *flag = (uint8_t)(mcua_order_key(nll) > mcua_order_key(mcua_read_f32(&model->threshold)));
    return nll;
}

MCUA_FP_CONTRACT_OFF_END
