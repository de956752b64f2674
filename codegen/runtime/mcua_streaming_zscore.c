#include "mcua_streaming_zscore.h"

#include <math.h>

MCUA_FP_CONTRACT_OFF_BEGIN

float mcua_streaming_zscore_update(const mcua_streaming_zscore_model *model,
                                   mcua_window_counters *ctr,
                                   mcua_window_channel *ch, float *buffer,
                                   mcua_baseline_counters *bctr,
                                   mcua_baseline_channel *bch,
                                   const float *x, uint8_t *flag)
{
    const uint16_t n_channels = mcua_read_u16(&model->n_channels);
    const uint16_t window = mcua_read_u16(&model->window);
    const float *var_floor = (const float *)mcua_read_ptr(&model->var_floor);
    /* The threshold is read from flash where it is used, and min_count
     * after the loop: fewer values held across it, a smaller stack frame (an
     * Uno running every detector has little stack to spare). */
    float score = 0.0f;
    int clipped = 0;
    uint16_t c;

    *flag = 0;
    for (c = 0; c < n_channels; ++c) {
        if (!mcua_is_finite(x[c])) {
            *flag = 1;
            return mcua_infinity();
        }
    }
    for (c = 0; c < n_channels; ++c, buffer += window) {
        float v = x[c];
        if (ctr->count) {
            const mcua_window_view view =
                mcua_window_view_of(ctr, &ch[c], bctr, bch == NULL ? NULL : &bch[c]);
            const float floor = mcua_read_f32(var_floor + c);
            float var = view.var; /* finite */
            float sd, d, z;
            if (mcua_nonneg_greater(floor, var)) {
                var = floor;
            }
            sd = sqrtf(var);
            d = (v - view.offset) - view.mean;
            /* times 1/sd, not divided by sd: 1/sd is a normal float, while
             * |d|/sd can be subnormal, which avr-libc's __divsf3 may round
             * 1 ulp low. */
            z = mcua_abs(d) * (1.0f / sd);
            if (mcua_nonneg_greater(z, score)) {
                score = z;
            }
            if (mcua_nonneg_greater(z, mcua_read_f32(&model->threshold))) {
                /* clipping, at the threshold; absorbing, beyond the limit only */
                const float limit = mcua_read_u8(&model->clip) ? mcua_read_f32(&model->threshold)
                                                               : MCUA_STREAMING_ZSCORE_ABSORB_LIMIT;
                clipped = 1;
                if (mcua_nonneg_greater(z, limit)) {
                    const float bound = limit * sd;
                    v = view.offset + (mcua_positive(d) ? view.mean + bound : view.mean - bound);
                }
            }
        }
        if (mcua_window_learns(bctr)) {
            mcua_window_push(ctr, &ch[c], buffer, window, v);
        }
    }
    *flag = mcua_window_learn(ctr, ch, bctr, bch, &model->adaptation, n_channels, window,
                              mcua_read_u16(&model->min_count), clipped);
    return score;
}

MCUA_FP_CONTRACT_OFF_END
