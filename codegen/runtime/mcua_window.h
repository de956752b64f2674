/*
 * mcua_window - the sliding window shared by the streaming detectors
 * (streaming_zscore, moving_average, isolation_forest on rolling features): a
 * ring buffer of the last W admitted values per channel and their running
 * sums.
 *
 * Why the sums stay exact enough for runs of any length:
 *  - sums are kept relative to an anchor near the window mean, so the
 *    variance E[a^2] - E[a]^2 does not cancel catastrophically when the
 *    signal sits far from zero;
 *  - a float running sum that adds the new value and subtracts the oldest
 *    one accumulates rounding error forever.  Beside the running sums, the
 *    window rebuilds "fresh" sums from scratch, relative to a fresh anchor;
 *    after W insertions the fresh sums cover exactly the values in the
 *    buffer and replace the running ones.  No sum is ever the result of
 *    more than 2W additions, at O(1) cost per sample and without a
 *    periodic O(W) pass.
 *  - an admitted value never lies more than MCUA_WINDOW_MAX_DEVIATION from
 *    the anchor, so no sum or square can overflow.
 *  - no division can round to a subnormal: avr-libc's __divsf3 rounds those
 *    wrongly (1 ulp low in ~1 % of cases, measured in simavr), so the fresh
 *    anchor multiplies by 1 / W instead of dividing by W.
 *
 * Why one glitch at power-up cannot blind the detector: the first sample
 * after a reset (or a restart) is the anchor and the whole window, so a
 * glitch there, say 1e20, would make every later sample look out of line
 * and, clipped to the window mean +- the clipping bound, keep the window
 * at the glitch for good.  A detector that clips (streaming_zscore,
 * moving_average) therefore clips from the second sample on, also during
 * its warm-up (before min_count, where it does not flag), and calls
 * mcua_window_settle after each sample: once MCUA_WINDOW_RESTART warm-up
 * samples in a row were clipped, the window, not the samples, is out of
 * line, and it restarts empty with the next sample.  A glitch later in
 * the warm-up is clipped like any outlier, so no single sample ever moves
 * the sums by more than one clipping bound (and none leaves a huge square
 * behind to cancel when it drops out).  A normal stream's warm-up rarely
 * clips MCUA_WINDOW_RESTART samples in a row; a restart costs it a few
 * samples of warm-up.  This needs min_count > MCUA_WINDOW_RESTART; once
 * min_count samples are in, the window never restarts.
 */
#ifndef MCUA_WINDOW_H
#define MCUA_WINDOW_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MCUA_WINDOW_MAX_DEVIATION 1e15f
#define MCUA_WINDOW_RESTART 3

typedef struct {
    float anchor, sum, sumsq;                   /* the values in the buffer */
    float fresh_anchor, fresh_sum, fresh_sumsq; /* rebuilt since the last swap */
} mcua_window_channel;

typedef struct {
    uint16_t count;       /* values in the buffer, up to the window length */
    uint16_t head;        /* slot the next value goes to */
    uint16_t fresh_count; /* insertions since the last swap */
    uint8_t streak;       /* warm-up samples clipped in a row */
    float inv_count;      /* 1.0f / count (0 while empty): no division per
                             sample once the window is full */
} mcua_window_counters;

/* Stores v (clamped to the anchor +- MCUA_WINDOW_MAX_DEVIATION) in the
 * channel's buffer slot ctr->head and updates that channel's sums.
 * Call it for every channel, then mcua_window_advance once. */
void mcua_window_push(const mcua_window_counters *ctr, mcua_window_channel *ch,
                      float *buffer, uint16_t window, float v);

/* Moves the ring forward by one sample and swaps in the fresh sums of all
 * channels when they cover the whole window. */
void mcua_window_advance(mcua_window_counters *ctr, mcua_window_channel *ch,
                         uint16_t n_channels, uint16_t window);

/* For a detector that clips: after mcua_window_advance, counts the warm-up
 * samples clipped in a row (clipped_in_warm_up: this one was) and, at
 * MCUA_WINDOW_RESTART of them, empties the window (sums and counters; the
 * buffer's slots are unused again). */
void mcua_window_settle(mcua_window_counters *ctr, mcua_window_channel *ch,
                        uint16_t n_channels, int clipped_in_warm_up);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_WINDOW_H */
