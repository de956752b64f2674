#include "mcua_window.h"

MCUA_FP_CONTRACT_OFF_BEGIN

void mcua_window_push(const mcua_window_counters *ctr, mcua_window_channel *ch,
                      float *buffer, uint16_t window, float v)
{
    float a, f;

    if (ctr->count == 0) {
        ch->anchor = v;
        ch->fresh_anchor = v;
    }
    a = v - ch->anchor; /* never NaN: v and the anchor are finite */
    if (mcua_nonneg_greater(mcua_abs(a), MCUA_WINDOW_MAX_DEVIATION)) {
        v = ch->anchor + (mcua_positive(a) ? MCUA_WINDOW_MAX_DEVIATION
                                           : -MCUA_WINDOW_MAX_DEVIATION);
        a = v - ch->anchor;
    }
    f = v - ch->fresh_anchor;
    if (ctr->count == window) {
        /* The value dropped, o, was stored W samples ago as its deviation from
         * the fresh anchor of its block, which is the anchor now.  a^2 - o^2
         * as (a - o) * (a + o): one multiplication fewer. */
        const float o = buffer[ctr->head];
        const float step = a - o;
        ch->sum = ch->sum + step;
        ch->sumsq = ch->sumsq + step * (a + o);
    } else {
        ch->sum = ch->sum + a;
        ch->sumsq = ch->sumsq + a * a;
    }
    buffer[ctr->head] = f;
    ch->fresh_sum = ch->fresh_sum + f;
    ch->fresh_sumsq = ch->fresh_sumsq + f * f;
}

int mcua_window_advance(mcua_window_counters *ctr, mcua_window_channel *ch,
                        uint16_t n_channels, uint16_t window)
{
    uint16_t c;

    if (ctr->count < window) {
        ++ctr->count;
        ctr->inv_count = 1.0f / (float)ctr->count;
    }
    if (++ctr->head == window) {
        ctr->head = 0;
    }
    if (++ctr->fresh_count < window) {
        return 0;
    }
    ctr->fresh_count = 0;
    /* count == window here (both counters restart together), so inv_count is
     * 1.0f / window: the swap divides nothing */
    for (c = 0; c < n_channels; ++c, ++ch) {
        ch->anchor = ch->fresh_anchor;
        ch->sum = ch->fresh_sum;
        ch->sumsq = ch->fresh_sumsq;
        ch->fresh_anchor = ch->anchor + ch->sum * ctr->inv_count;
        ch->fresh_sum = 0.0f;
        ch->fresh_sumsq = 0.0f;
    }
    return 1;
}

void mcua_window_settle(mcua_window_counters *ctr, mcua_window_channel *ch,
                        uint16_t n_channels, int clipped_in_warm_up)
{
    ctr->streak = clipped_in_warm_up ? (uint8_t)(ctr->streak + 1) : 0;
    if (ctr->streak == MCUA_WINDOW_RESTART) {
        memset(ch, 0, n_channels * sizeof *ch);
        memset(ctr, 0, sizeof *ctr);
    }
}

void mcua_baseline_fold(mcua_baseline_counters *bctr, mcua_baseline_channel *bch,
                        const mcua_window_channel *ch, uint8_t mode, uint16_t limit,
                        uint16_t n_channels, float inv_window)
{
    /* Once `limit` windows are in, a window with a clipped reading leaves the
     * variance (mcua_window.h); before that every window counts. */
    const int keep_var = bctr->blocks == limit && bctr->clipped;
    float w;
    uint16_t c;

    if (bctr->blocks < limit) {
        ++bctr->blocks;
    }
    w = 1.0f / (float)bctr->blocks;
    for (c = 0; c < n_channels; ++c, ++ch, ++bch) {
        const float m = ch->sum * inv_window;
        const float mean = ch->anchor + m;
        float var = ch->sumsq * inv_window - m * m;
        if (!mcua_positive(var)) {
            var = 0.0f; /* rounding below zero */
        }
        if (bctr->blocks == 1) {
            bch->mean = mean;
            bch->var = var;
        } else {
            const float delta = mean - bch->mean;
            bch->mean = bch->mean + w * delta;
            if (!keep_var) {
                bch->var = bch->var + w * ((var - bch->var) + (1.0f - w) * (delta * delta));
            }
        }
        if (mcua_nonneg_greater(bch->var, MCUA_WINDOW_MAX_VARIANCE)) {
            bch->var = MCUA_WINDOW_MAX_VARIANCE;
        }
    }
    if (mode == MCUA_WINDOW_FROZEN && bctr->blocks == limit) {
        bctr->frozen = 1;
    }
    bctr->clipped = 0;
}

uint8_t mcua_baseline_freeze(mcua_baseline_counters *bctr)
{
    if (bctr->blocks > 0) {
        bctr->frozen = 1;
    }
    return bctr->frozen;
}

MCUA_FP_CONTRACT_OFF_END
