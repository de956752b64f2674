#include "mcua_streaming_zscore.h"

#include <math.h>

float mcua_streaming_zscore_update(const mcua_streaming_zscore_model *model,
                                   mcua_window_counters *ctr,
                                   mcua_window_channel *ch, float *buffer,
                                   const float *x, uint8_t *flag)
{
    const uint16_t n_channels = mcua_read_u16(&model->n_channels);
    const uint16_t window = mcua_read_u16(&model->window);
    const int judged = ctr->count >= mcua_read_u16(&model->min_count);
    const float k = mcua_read_f32(&model->threshold);
    const float *var_floor = (const float *)mcua_read_ptr(&model->var_floor);
    const float inv_n = ctr->inv_count;
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
            const float mean = ch[c].sum * inv_n;
            const float floor = mcua_read_f32(var_floor + c);
            float var = ch[c].sumsq * inv_n - mean * mean; /* finite */
            float sd, d, z;
            if (mcua_nonneg_greater(floor, var)) {
                var = floor;
            }
            sd = sqrtf(var);
            d = (v - ch[c].anchor) - mean;
            /* times 1/sd, not divided by sd: 1/sd is a normal float, while
             * |d|/sd can be subnormal, which avr-libc's __divsf3 may round
             * 1 ulp low. */
            z = mcua_abs(d) * (1.0f / sd);
            if (mcua_nonneg_greater(z, score)) {
                score = z;
            }
            if (mcua_nonneg_greater(z, k)) {
                const float bound = k * sd;
                clipped = 1;
                v = ch[c].anchor + (mcua_positive(d) ? mean + bound : mean - bound);
            }
        }
        mcua_window_push(ctr, &ch[c], buffer, window, v);
    }
    mcua_window_advance(ctr, ch, n_channels, window);
    mcua_window_settle(ctr, ch, n_channels, clipped && !judged);
    *flag = (uint8_t)(clipped && judged);
    return score;
}
