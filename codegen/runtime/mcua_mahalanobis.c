#include "mcua_mahalanobis.h"

float mcua_mahalanobis_score(const mcua_mahalanobis_model *model, const float *x,
                             float *d, uint8_t *flag)
{
    const uint16_t n_features = mcua_read_u16(&model->n_features);
    const float *centre = (const float *)mcua_read_ptr(&model->centre);
    float t2;
    uint16_t f;

    for (f = 0; f < n_features; ++f) {
        if (!mcua_is_finite(x[f])) {
            *flag = 1;
            return mcua_infinity();
        }
        d[f] = x[f] - mcua_read_f32(centre + f);
    }
    t2 = mcua_quadform_upper((const float *)mcua_read_ptr(&model->factor), NULL, d,
                             n_features);
    *flag = (uint8_t)mcua_nonneg_greater(t2, mcua_read_f32(&model->threshold));
    return t2;
}
