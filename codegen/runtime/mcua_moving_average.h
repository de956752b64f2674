/*
 * mcua_moving_average - deviation from the moving average of the last W
 * admitted samples.
 *
 * Per channel, with n samples in the window of mean m:
 *   dev[c] = |x[c] - m| * inv_scale[c]     (inv_scale: 1 / the deviation's
 *                                           standard deviation on normal data)
 *   score  = max over channels of dev[c]; 0 while the window is empty
 *   flag   = n >= min_count and score > threshold
 * A channel whose dev exceeds the threshold enters the window clipped to
 * m +- bound[c] (bound = threshold / inv_scale), so spikes barely move the
 * average and a level shift is still followed.  This holds from the second
 * sample on, also before min_count (nothing flags then), and a warm-up that
 * keeps clipping starts over (mcua_window_settle), so a glitch at power-up
 * cannot hold the window.  A sample holding NaN or +-Inf scores +Inf, is
 * flagged and leaves the state as it was.
 * With a frozen or slow adaptation (mcua_window.h) m is the baseline's mean
 * once its first window is learnt; bctr and bch are its state (NULL when
 * sliding); once frozen, samples are scored and nothing is learnt.
 */
#ifndef MCUA_MOVING_AVERAGE_H
#define MCUA_MOVING_AVERAGE_H

#include "mcua_window.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint16_t n_channels;
    uint16_t window;
    uint16_t min_count;
    mcua_adaptation adaptation;
    float threshold;
    const float *inv_scale; /* [n_channels] */
    const float *bound;     /* [n_channels] */
} mcua_moving_average_model;

float mcua_moving_average_update(const mcua_moving_average_model *model,
                                 mcua_window_counters *ctr,
                                 mcua_window_channel *ch, float *buffer,
                                 mcua_baseline_counters *bctr,
                                 mcua_baseline_channel *bch,
                                 const float *x, uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_MOVING_AVERAGE_H */
