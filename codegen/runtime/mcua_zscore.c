#include "mcua_zscore.h"

float mcua_zscore_score(const mcua_zscore_model *model, const float *x,
                        uint8_t *flag)
{
    const uint16_t n = mcua_read_u16(&model->n_channels);
    const float *mean = (const float *)mcua_read_ptr(&model->mean);
    const float *inv_std = (const float *)mcua_read_ptr(&model->inv_std);
    float score = 0.0f;
    uint16_t c;

    for (c = 0; c < n; ++c) {
        if (!mcua_is_finite(x[c])) {
            *flag = 1;
            return mcua_infinity();
        }
    }
    for (c = 0; c < n; ++c) {
        const float z = mcua_abs(x[c] - mcua_read_f32(mean + c)) *
                        mcua_read_f32(inv_std + c);
        if (z > score) {
            score = z;
        }
    }
    *flag = score > mcua_read_f32(&model->threshold);
    return score;
}
