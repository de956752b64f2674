/*
 * mcua_streaming_zscore - Z-score against the statistics of the last W
 * admitted samples, learnt on the device.
 *
 * Per channel, with n samples in the window (mean m, variance v of the
 * window, v never below the trained floor var_floor[c]), d = x[c] - m:
 *   z[c]  = |d| * (1 / sqrt(v))      (a reciprocal, see the .c)
 *   over  = d * d > threshold_sq * v (threshold_sq = threshold^2 in float32)
 *   score = max over channels of z[c]; 0 while the window is empty
 *   flag  = n >= min_count and a channel is over
 * The flag compares squares, so mcua_streaming_zscore_flag_update, the
 * same update without the score, needs no square root (but for a clipped
 * channel's bound) and no division: its flag and the state it leaves are
 * the score API's, sample for sample.
 * Never-poison rule without lock-out: a channel over the threshold enters
 * the window clipped to m +- threshold * sqrt(v), so a
 * spike moves the statistics by at most one threshold-wide step while a
 * slow drift is still followed.  This holds from the second sample on,
 * also before min_count (nothing flags then), and a warm-up that keeps
 * clipping starts over (mcua_window_settle), so a glitch at power-up
 * cannot hold the window.  A sample holding NaN or +-Inf scores +Inf, is
 * flagged and leaves the state as it was.
 * clip = 0 (outliers=absorb): a channel over the threshold enters the
 * window as it is, so the window's variance widens while it stays there
 * and a repeat scores lower; the sample still counts as clipped for the
 * flag, the warm-up restart and a baseline's variance (mcua_window.h).
 * Beyond MCUA_STREAMING_ZSCORE_ABSORB_LIMIT deviations (and the threshold)
 * it is clipped, at m +- that many: a value of A deviations leaves a
 * square of A^2 times the variance in the running sums, and when it drops
 * out of the window the sums keep about A^2 * 2^-24 of the variance as
 * rounding until the next swap of fresh sums (up to W samples);
 * 64^2 * 2^-24 < 3e-4, where an unclipped spike of 1e6 deviations left
 * the variance 100-fold wrong and raised 45 false alarms (W 100).
 * With a frozen or slow adaptation (mcua_window.h) m and v are the
 * baseline's once its first window is learnt; bctr and bch are its state
 * (NULL when sliding); once frozen, samples are scored and nothing is
 * learnt.
 */
#ifndef MCUA_STREAMING_ZSCORE_H
#define MCUA_STREAMING_ZSCORE_H

#include "mcua_window.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MCUA_STREAMING_ZSCORE_ABSORB_LIMIT 64.0f
/* its square: beyond the limit when d * d > this * v, as the threshold */
#define MCUA_STREAMING_ZSCORE_ABSORB_LIMIT_SQ 4096.0f

typedef struct {
    uint16_t n_channels;
    uint16_t window;
    uint16_t min_count;
    mcua_adaptation adaptation;
    uint8_t clip; /* 1: clip a flagged channel at the threshold; 0: absorb it */
    float threshold;
    float threshold_sq;     /* threshold * threshold, finite */
    const float *var_floor; /* [n_channels] */
} mcua_streaming_zscore_model;

float mcua_streaming_zscore_update(const mcua_streaming_zscore_model *model,
                                   mcua_window_counters *ctr,
                                   mcua_window_channel *ch, float *buffer,
                                   mcua_baseline_counters *bctr,
                                   mcua_baseline_channel *bch,
                                   const float *x, uint8_t *flag);

/* The same update, returning the flag alone. */
uint8_t mcua_streaming_zscore_flag_update(const mcua_streaming_zscore_model *model,
                                          mcua_window_counters *ctr,
                                          mcua_window_channel *ch, float *buffer,
                                          mcua_baseline_counters *bctr,
                                          mcua_baseline_channel *bch, const float *x);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_STREAMING_ZSCORE_H */
