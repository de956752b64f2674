/*
 * mcua_kmeans - distance to the nearest K-means centroid.
 *
 * z[f]  = (x[f] - mean[f]) * inv_scale[f]              (standardise)
 * d2[k] = sum over f, in order, of (z[f] - centroid[k][f])^2
 * score = sqrt(min over k of d2[k]); the first minimum wins ties
 * flag  = score > threshold
 * A sample holding NaN or +-Inf scores +Inf and is flagged.
 */
#ifndef MCUA_KMEANS_H
#define MCUA_KMEANS_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    uint16_t n_features;
    uint16_t n_clusters;
    float threshold;
    const float *mean;      /* [n_features] */
    const float *inv_scale; /* [n_features] */
    const float *centroids; /* [n_clusters][n_features], row-major */
} mcua_kmeans_model;

/* z is caller-provided scratch of n_features floats (the generated wrapper
 * sizes it exactly).  *cluster receives the nearest centroid when not NULL. */
float mcua_kmeans_score(const mcua_kmeans_model *model, const float *x,
                        float *z, uint8_t *flag, uint16_t *cluster);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_KMEANS_H */
