/*
 * mcua_window - the sliding window shared by the streaming detectors
 * (streaming_zscore, moving_average, isolation_forest on rolling features): a
 * ring buffer of the last W admitted values per channel and their running
 * sums.  The buffer holds each value as its deviation from the fresh anchor
 * of the block of W samples it came in with: the anchor of the sums when it
 * drops out, so dropping it takes no subtraction.
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
 *
 * Adaptation: what a detector judges a sample against (mcua_adaptation).
 *  - MCUA_WINDOW_SLIDING: the window's own mean and variance, so it follows
 *    drift and a level shift within about a window;
 *  - MCUA_WINDOW_FROZEN: a baseline learnt from the first `blocks` whole
 *    windows after a reset (the calibration; mcua_baseline_freeze ends it
 *    early), then kept for good: the detector stops learning;
 *  - MCUA_WINDOW_SLOW: a baseline that forgets with a time constant of
 *    `blocks` windows, so a sustained deviation keeps flagging for a time
 *    proportional to it while slow drift is still followed.
 * The baseline is folded from the admitted (clipped) values of each whole
 * window, once per window, when the fresh sums are swapped in; until the
 * first window is complete the detector judges against the sliding
 * window.  Per channel it holds the mean and the variance:
 *   first window: mean = m_b, var = v_b (that window's mean and variance)
 *   later, with w = 1 / blocks:
 *     mean += w * (m_b - mean)
 *     var  += w * ((v_b - var) + (1 - w) * (m_b - mean_old)^2)
 *             except, once `blocks` had reached the limit, after a window
 *             in which a sample was clipped: there the variance stays
 * where blocks counts up to the mode's limit and then stays there.  Frozen,
 * the baseline is the mean and variance of every calibration value
 * (Chan et al.'s pairwise update, one window at a time); slow, it forgets
 * by 1 / blocks per window, an exponentially weighted mean and variance
 * around it, so the variance holds the signal's slow movement as well as
 * its noise.  Every quantity is a mean, so no sum grows with the run's
 * length and the statistics stay sound for any number of samples.
 * Why a slow baseline holds a sustained fault: a clipped value enters at
 * most `bound` from the baseline's mean, so one window moves the mean by at
 * most bound / blocks, and a clipped window leaves the variance (folded in,
 * the clipped values, a bound away from the mean, would widen it by a
 * factor of about 1 + (k^2 - 1) / blocks per window: the fault would be
 * absorbed within a few windows).  A step of D bounds therefore keeps
 * flagging for about (D - 1) * blocks windows, then is followed; slow
 * drift, never clipped, is followed with a time constant of blocks
 * windows.  Until the limit is reached every window counts, so the first
 * `blocks` windows after a reset learn the normal spread (slow drift
 * included) as a calibration does: a first estimate narrower than the
 * signal's movement cannot lock the baseline out.
 */
#ifndef MCUA_WINDOW_H
#define MCUA_WINDOW_H

#include "mcua_common.h"

MCUA_FP_CONTRACT_OFF_BEGIN

#ifdef __cplusplus
extern "C" {
#endif

#define MCUA_WINDOW_MAX_DEVIATION 1e15f
#define MCUA_WINDOW_RESTART 3
#define MCUA_WINDOW_MAX_VARIANCE 1e30f

#define MCUA_WINDOW_SLIDING 0
#define MCUA_WINDOW_FROZEN 1
#define MCUA_WINDOW_SLOW 2

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

/* In flash, part of the detector's model. */
typedef struct {
    uint8_t mode;    /* MCUA_WINDOW_SLIDING, _FROZEN or _SLOW */
    uint16_t blocks; /* frozen: windows of calibration; slow: windows of
                        memory (unused when sliding) */
} mcua_adaptation;

/* RAM of a frozen or slow detector beside its window (none when sliding). */
typedef struct {
    float mean, var;
} mcua_baseline_channel;

typedef struct {
    uint16_t blocks; /* windows folded into the baseline, up to the limit */
    uint8_t frozen;  /* frozen mode: calibration over, nothing more learnt */
    uint8_t clipped; /* a sample of the current window was clipped */
} mcua_baseline_counters;

/* What channel c of a sample is judged against: its deviation is
 * (x - offset) - mean, of variance var.  The sliding window's statistics
 * (relative to its anchor) until a baseline exists (bctr->blocks > 0),
 * then the baseline's (offset = its mean, mean = 0). */
typedef struct {
    float offset, mean, var;
} mcua_window_view;

static inline mcua_window_view mcua_window_view_of(const mcua_window_counters *ctr,
                                                   const mcua_window_channel *ch,
                                                   const mcua_baseline_counters *bctr,
                                                   const mcua_baseline_channel *bch)
{
    mcua_window_view view;
    if (bctr != NULL && bctr->blocks > 0) {
        view.offset = bch->mean;
        view.mean = 0.0f;
        view.var = bch->var;
    } else {
        view.offset = ch->anchor;
        view.mean = ch->sum * ctr->inv_count;
        view.var = ch->sumsq * ctr->inv_count - view.mean * view.mean;
    }
    return view;
}

/* Stores v (clamped to the anchor +- MCUA_WINDOW_MAX_DEVIATION) in the
 * channel's buffer slot ctr->head, as its deviation from the fresh anchor,
 * and updates that channel's sums.
 * Call it for every channel, then mcua_window_advance once. */
void mcua_window_push(const mcua_window_counters *ctr, mcua_window_channel *ch,
                      float *buffer, uint16_t window, float v);

/* Moves the ring forward by one sample and swaps in the fresh sums of all
 * channels when they cover the whole window; returns 1 when it swapped. */
int mcua_window_advance(mcua_window_counters *ctr, mcua_window_channel *ch,
                        uint16_t n_channels, uint16_t window);

/* For a detector that clips: after mcua_window_advance, counts the warm-up
 * samples clipped in a row (clipped_in_warm_up: this one was) and, at
 * MCUA_WINDOW_RESTART of them, empties the window (sums and counters; the
 * buffer's slots are unused again). */
void mcua_window_settle(mcua_window_counters *ctr, mcua_window_channel *ch,
                        uint16_t n_channels, int clipped_in_warm_up);

/* Folds the window just swapped in (every channel's anchor and sums now
 * cover exactly its last `window` values; inv_window = 1.0f / window) into
 * the baseline, by the rule above.  Called by mcua_window_learn; a function of its own, so that its
 * stack frame is not part of a sliding window's update (on an Uno running
 * many detectors every byte of stack counts). */
void mcua_baseline_fold(mcua_baseline_counters *bctr, mcua_baseline_channel *bch,
                        const mcua_window_channel *ch, uint8_t mode, uint16_t limit,
                        uint16_t n_channels, float inv_window);

/* Whether a clipping detector learns from its samples: always, but for a
 * frozen baseline (bctr: NULL when sliding). */
static inline int mcua_window_learns(const mcua_baseline_counters *bctr)
{
    return bctr == NULL || !bctr->frozen;
}

/* For a clipping detector, after it pushed every channel (when it learns):
 * advances the window, folds a completed window into the baseline (bctr,
 * bch: NULL when sliding; adaptation in flash) and settles.  clipped: a
 * channel of this sample was clipped.  Returns the sample's flag: clipped
 * once min_count samples are in.  Inline: as a call, its frame and saved
 * arguments would sit on top of the update's. */
static inline uint8_t mcua_window_learn(mcua_window_counters *ctr, mcua_window_channel *ch,
                                        mcua_baseline_counters *bctr,
                                        mcua_baseline_channel *bch,
                                        const mcua_adaptation *adaptation,
                                        uint16_t n_channels, uint16_t window,
                                        uint16_t min_count, int clipped)
{
    const int judged = ctr->count >= min_count; /* the pushes left count as it was */
    if (mcua_window_learns(bctr)) {
        if (bctr != NULL && clipped) {
            bctr->clipped = 1;
        }
        if (mcua_window_advance(ctr, ch, n_channels, window) && bctr != NULL) {
            mcua_baseline_fold(bctr, bch, ch, mcua_read_u8(&adaptation->mode),
                               mcua_read_u16(&adaptation->blocks), n_channels,
                               ctr->inv_count);
        }
        mcua_window_settle(ctr, ch, n_channels, clipped && !judged);
    }
    return (uint8_t)(clipped && judged);
}

/* Frozen mode: ends the calibration now, keeping the baseline of the
 * windows learnt so far.  Returns 1 when the baseline is frozen, 0 when
 * no whole window has been learnt yet (calibration goes on). */
uint8_t mcua_baseline_freeze(mcua_baseline_counters *bctr);

#ifdef __cplusplus
}
#endif

MCUA_FP_CONTRACT_OFF_END

#endif /* MCUA_WINDOW_H */
