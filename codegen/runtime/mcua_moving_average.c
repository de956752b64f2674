#include "mcua_moving_average.h"

float mcua_moving_average_update(const mcua_moving_average_model *model,
                                 mcua_window_counters *ctr,
                                 mcua_window_channel *ch, float *buffer,
                                 const float *x, uint8_t *flag)
{
    const uint16_t n_channels = mcua_read_u16(&model->n_channels);
    const uint16_t window = mcua_read_u16(&model->window);
    const int judged = ctr->count >= mcua_read_u16(&model->min_count);
    const float threshold = mcua_read_f32(&model->threshold);
    const float *inv_scale = (const float *)mcua_read_ptr(&model->inv_scale);
    const float *bound = (const float *)mcua_read_ptr(&model->bound);
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
            const float d = (v - ch[c].anchor) - mean;
            const float dev = mcua_abs(d) * mcua_read_f32(inv_scale + c);
            if (mcua_nonneg_greater(dev, score)) {
                score = dev;
            }
            if (mcua_nonneg_greater(dev, threshold)) {
                const float b = mcua_read_f32(bound + c);
                clipped = 1;
                v = ch[c].anchor + (mcua_positive(d) ? mean + b : mean - b);
            }
        }
        mcua_window_push(ctr, &ch[c], buffer, window, v);
    }
    mcua_window_advance(ctr, ch, n_channels, window);
    mcua_window_settle(ctr, ch, n_channels, clipped && !judged);
    *flag = (uint8_t)(clipped && judged);
    return score;
}
