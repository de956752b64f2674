/*
 * mcua_kmeans - distance to the nearest K-means centroid.
 *
 * z[f]  = (x[f] - mean[f]) * inv_scale[f]              (standardise)
 * d2[k] = sum over f, in order, of (z[f] - centroid[k][f])^2
 * score = sqrt(min over k of d2[k]); the first minimum wins ties
 * flag  = score > threshold (the generated header's _score compares)
 * A sample holding NaN or +-Inf scores +Inf (and so is flagged).
 * The generated header hands the runtime its flash arrays and counts
 * directly (MCUA_FLASH, read through mcua_read_*).
 */
#ifndef MCUA_KMEANS_H
#define MCUA_KMEANS_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

/* One feature's standardisation, side by side so that one pointer walks them. */
typedef struct {
    float mean;
    float inv_scale; /* 1 / standard deviation, > 0 (the bundle's schema) */
} mcua_kmeans_feature;

/* centroids: [n_clusters][n_features], row-major; n_features, n_clusters >= 1.
 * z is caller-provided scratch of n_features floats (the generated wrapper
 * sizes it exactly).  *cluster receives the nearest centroid when not NULL. */
float mcua_kmeans_score(const mcua_kmeans_feature *feature, uint16_t n_features,
                        const float *centroids, uint16_t n_clusters,
                        const float *x, float *z, uint16_t *cluster);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_KMEANS_H */
