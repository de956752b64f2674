#include "mcua_streaming_zscore.h"

#include <math.h>

MCUA_FP_CONTRACT_OFF_BEGIN

/* Inlined into each API, so that each is compiled for its own case: the
 * flag API without the score's square root and reciprocal. */
#if defined(__GNUC__)
#define MCUA_INLINED __attribute__((always_inline)) inline
#else
#define MCUA_INLINED inline
#endif

/* The update of both APIs; scored: also the score (a square root and a
 * reciprocal per channel), else 0 is returned. */
static MCUA_INLINED float update(const mcua_streaming_zscore_model *model, mcua_window_counters *ctr,
                    mcua_window_channel *ch, float *buffer, mcua_baseline_counters *bctr,
                    mcua_baseline_channel *bch, const float *x, uint8_t *flag, int scored)
{
    const uint16_t n_channels = mcua_read_u16(&model->n_channels);
    const uint16_t window = mcua_read_u16(&model->window);
    const float *var_floor = (const float *)mcua_read_ptr(&model->var_floor);
    /* The thresholds are read from flash where they are used, and min_count
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
            float sd = 0.0f;
            float d, dd;
            if (mcua_nonneg_greater(floor, var)) {
                var = floor;
            }
            d = (v - view.offset) - view.mean;
            if (scored) {
                /* times 1/sd, not divided by sd: 1/sd is a normal float, while
                 * |d|/sd can be subnormal, which avr-libc's __divsf3 may round
                 * 1 ulp low. */
                float z;
                sd = sqrtf(var);
                z = mcua_abs(d) * (1.0f / sd);
                if (mcua_nonneg_greater(z, score)) {
                    score = z;
                }
            }
            dd = d * d;
            if (mcua_nonneg_greater(dd, mcua_read_f32(&model->threshold_sq) * var)) {
                /* clipping, at the threshold; absorbing, beyond the limit only */
                const int clip = mcua_read_u8(&model->clip);
                clipped = 1;
                if (clip || mcua_nonneg_greater(dd, MCUA_STREAMING_ZSCORE_ABSORB_LIMIT_SQ * var)) {
                    const float bound = (clip ? mcua_read_f32(&model->threshold)
                                              : MCUA_STREAMING_ZSCORE_ABSORB_LIMIT) *
                                        (scored ? sd : sqrtf(var));
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

float mcua_streaming_zscore_update(const mcua_streaming_zscore_model *model,
                                   mcua_window_counters *ctr,
                                   mcua_window_channel *ch, float *buffer,
                                   mcua_baseline_counters *bctr,
                                   mcua_baseline_channel *bch,
                                   const float *x, uint8_t *flag)
{
    return update(model, ctr, ch, buffer, bctr, bch, x, flag, 1);
}

uint8_t mcua_streaming_zscore_flag_update(const mcua_streaming_zscore_model *model,
                                          mcua_window_counters *ctr,
                                          mcua_window_channel *ch, float *buffer,
                                          mcua_baseline_counters *bctr,
                                          mcua_baseline_channel *bch, const float *x)
{
    uint8_t flag;
    (void)update(model, ctr, ch, buffer, bctr, bch, x, &flag, 0);
    return flag;
}

MCUA_FP_CONTRACT_OFF_END
