/*
 * mcua_zscore - static per-channel Z-score detector.
 *
 * score = max over channels c of |x[c] - mean[c]| * inv_std[c]
 * flag  = score > threshold
 * A sample holding NaN or +-Inf scores +Inf and is flagged.
 * mean, inv_std and the model struct itself live in flash (MCUA_FLASH).
 */
#ifndef MCUA_ZSCORE_H
#define MCUA_ZSCORE_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint16_t n_channels;
    float threshold;
    const float *mean;    /* [n_channels] */
    const float *inv_std; /* [n_channels], 1 / standard deviation */
    /* [n_channels], mcua_order_key of the smallest and the largest reading
     * whose z is finite and <= threshold (lo > hi: none is). */
    const int32_t *flag_lo;
    const int32_t *flag_hi;
} mcua_zscore_model;

float mcua_zscore_score(const mcua_zscore_model *model, const float *x,
                        uint8_t *flag);

/* The flag of mcua_zscore_score alone, with integer comparisons only: 1 when
 * a reading lies outside its channel's [flag_lo, flag_hi] (NaN and +-Inf
 * always do). */
uint8_t mcua_zscore_flag(const mcua_zscore_model *model, const float *x);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_ZSCORE_H */
