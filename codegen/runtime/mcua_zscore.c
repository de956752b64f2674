#include "mcua_zscore.h"

MCUA_FP_CONTRACT_OFF_BEGIN

float mcua_zscore_score(const mcua_zscore_model *model, const float *x,
                        uint8_t *flag)
{
    const uint16_t n = mcua_read_u16(&model->n_channels);
    const float *mean = (const float *)mcua_read_ptr(&model->mean);
    const float *inv_std = (const float *)mcua_read_ptr(&model->inv_std);
    float score = 0.0f;
    uint16_t c;

    for (c = 0; c < n; ++c) {
        const float z = mcua_abs(x[c] - mcua_read_f32(mean + c)) *
                        mcua_read_f32(inv_std + c);
        /* A NaN or +-Inf reading makes z NaN or +Inf; a finite one can only
         * overflow to +Inf, which would be the maximum.  Either way: +Inf. */
        if (!mcua_is_finite(z)) {
            *flag = 1;
            return mcua_infinity();
        }
        if (mcua_nonneg_greater(z, score)) {
            score = z;
        }
    }
    *flag = (uint8_t)mcua_nonneg_greater(score, mcua_read_f32(&model->threshold));
    return score;
}

uint8_t mcua_zscore_flag(const mcua_zscore_model *model, const float *x)
{
    const uint16_t n = mcua_read_u16(&model->n_channels);
    const int32_t *lo = (const int32_t *)mcua_read_ptr(&model->flag_lo);
    const int32_t *hi = (const int32_t *)mcua_read_ptr(&model->flag_hi);
    uint16_t c;

    for (c = 0; c < n; ++c) {
        const int32_t key = mcua_order_key(x[c]);
        if (key < mcua_read_i32(lo + c) || key > mcua_read_i32(hi + c)) {
            return 1;
        }
    }
    return 0;
}

MCUA_FP_CONTRACT_OFF_END
