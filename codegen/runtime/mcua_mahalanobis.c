#include "mcua_mahalanobis.h"

MCUA_FP_CONTRACT_OFF_BEGIN

float mcua_mahalanobis_score(const mcua_mahalanobis_model *model, const float *x,
                             float *d, uint8_t *flag)
{
    const uint16_t n_features = mcua_read_u16(&model->n_features);
    const float *centre = (const float *)mcua_read_ptr(&model->centre);
    float t2;
    uint16_t f;

    /* No test for NaN/Inf readings: they make a d[f] NaN or +-Inf, and with it
     * a y[f] (the factor's diagonal is > 0, and 0 * Inf is NaN), so the sum
     * is not finite and mcua_quadform_upper returns +Inf. */
    for (f = 0; f < n_features; ++f) {
        d[f] = x[f] - mcua_read_f32(centre + f);
    }
    t2 = mcua_quadform_upper((const float *)mcua_read_ptr(&model->factor), NULL, d,
                             n_features);
    *flag = (uint8_t)mcua_nonneg_greater(t2, mcua_read_f32(&model->threshold));
    return t2;
}

MCUA_FP_CONTRACT_OFF_END
