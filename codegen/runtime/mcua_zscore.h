/*
 * mcua_zscore - static per-channel Z-score detector.
 *
 * score = max over channels c of |x[c] - mean[c]| * inv_std[c]
 * flag  = score > threshold (the generated header's _score compares)
 * A sample holding NaN or +-Inf scores +Inf (and so is flagged).
 * The generated header hands the runtime its flash arrays and the channel
 * count directly (MCUA_FLASH, read through mcua_read_*).
 */
#ifndef MCUA_ZSCORE_H
#define MCUA_ZSCORE_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One channel's constants, side by side so that one pointer walks them. */
typedef struct {
    float mean;
    float inv_std; /* 1 / standard deviation, > 0 (the bundle's schema) */
} mcua_zscore_channel;

/* The readings a channel accepts, as mcua_order_key values: the smallest and
 * the largest reading whose z is finite and <= threshold (lo > hi: none is). */
typedef struct {
    int32_t lo;
    int32_t hi;
} mcua_zscore_accept;

/* The score of x: mcua_zscore_one for a model of one channel (nothing to keep
 * across its two float operations, so almost no register saves),
 * mcua_zscore_many for n_channels >= 1 (the generated header calls it for two
 * or more). */
float mcua_zscore_one(const mcua_zscore_channel *channel, const float *x);
float mcua_zscore_many(const mcua_zscore_channel *channel, uint16_t n_channels,
                       const float *x);

/* The flag of the score alone, with integer comparisons only: 1 when a
 * reading lies outside its channel's accepted interval (NaN and +-Inf always
 * do). */
uint8_t mcua_zscore_flag(const mcua_zscore_accept *accept, uint16_t n_channels,
                         const float *x);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_ZSCORE_H */
