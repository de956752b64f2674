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
} mcua_zscore_model;

float mcua_zscore_score(const mcua_zscore_model *model, const float *x,
                        uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_ZSCORE_H */
