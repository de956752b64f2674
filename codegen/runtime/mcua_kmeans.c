#include "mcua_kmeans.h"

#include <math.h>

MCUA_FP_CONTRACT_OFF_BEGIN

#define MCUA_KMEANS_INF_BITS 0x7F800000UL

static uint32_t bits_of(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits;
}

float mcua_kmeans_score(const mcua_kmeans_feature *feature, uint16_t n_features,
                        const float *centroids, uint16_t n_clusters,
                        const float *x, float *z, uint16_t *cluster)
{
    float *const z_end = z + n_features;
    const float *const centroids_end = centroids + (uint32_t)n_clusters * n_features;
    const float *row = centroids;
    const float *best_row = centroids;
    /* The pattern of the smallest d2 so far.  Every d2 is in [+0, +Inf]
     * (inv_scale > 0 and finite readings: no NaN), where floats order like
     * their patterns.  Starting from +Inf's keeps the first centroid when
     * every d2 is +Inf, as the first minimum wins. */
    uint32_t best = MCUA_KMEANS_INF_BITS;
    float *zf;

    for (zf = z; zf != z_end; ++zf, ++x, ++feature) {
        /* NaN or +-Inf: the exponent bits, all in the top half, all set. */
        if (((uint16_t)(bits_of(*x) >> 16) & 0x7F80U) == 0x7F80U) {
            if (cluster) {
                *cluster = 0;
            }
            return mcua_infinity();
        }
        *zf = (*x - mcua_read_f32(&feature->mean)) * mcua_read_f32(&feature->inv_scale);
    }
    for (; row != centroids_end; row += n_features) {
        const float *c = row;
        /* 0.0f + t*t is t*t exactly (t*t >= +0), so start from the first term. */
        float t = *z - mcua_read_f32(c);
        float d2 = t * t;
        /* Partial distance search: rounding is monotone, so adding the
         * remaining (non-negative) terms cannot bring d2 below best again;
         * stop as soon as d2 >= best.  Same result as the full sum. */
        for (zf = z + 1; zf != z_end && bits_of(d2) < best; ++zf) {
            t = *zf - mcua_read_f32(++c);
            d2 = d2 + t * t;
        }
        if (bits_of(d2) < best) {
            best = bits_of(d2);
            best_row = row;
        }
    }
    if (cluster) {
        uint16_t k = 0;
        for (row = centroids; row != best_row; row += n_features) {
            ++k;
        }
        *cluster = k;
    }
    {
        float d2;
        memcpy(&d2, &best, sizeof d2);
        return sqrtf(d2);
    }
}

MCUA_FP_CONTRACT_OFF_END
