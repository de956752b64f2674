#include "mcua_moving_average.h"

MCUA_FP_CONTRACT_OFF_BEGIN

float mcua_moving_average_update(const mcua_moving_average_model *model,
                                 mcua_window_counters *ctr,
                                 mcua_window_channel *ch, float *buffer,
                                 mcua_baseline_counters *bctr,
                                 mcua_baseline_channel *bch,
                                 const float *x, uint8_t *flag)
{
    const uint16_t n_channels = mcua_read_u16(&model->n_channels);
    const uint16_t window = mcua_read_u16(&model->window);
    const float *inv_scale = (const float *)mcua_read_ptr(&model->inv_scale);
    const float *bound = (const float *)mcua_read_ptr(&model->bound);
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
            const float d = (v - view.offset) - view.mean;
            const float dev = mcua_abs(d) * mcua_read_f32(inv_scale + c);
            if (mcua_nonneg_greater(dev, score)) {
                score = dev;
            }
            if (mcua_nonneg_greater(dev, mcua_read_f32(&model->threshold))) {
                const float b = mcua_read_f32(bound + c);
                clipped = 1;
                v = view.offset + (mcua_positive(d) ? view.mean + b : view.mean - b);
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
