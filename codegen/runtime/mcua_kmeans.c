#include "mcua_kmeans.h"

#include <math.h>

MCUA_FP_CONTRACT_OFF_BEGIN

float mcua_kmeans_score(const mcua_kmeans_model *model, const float *x,
                        float *z, uint8_t *flag, uint16_t *cluster)
{
    const uint16_t n_features = mcua_read_u16(&model->n_features);
    const uint16_t n_clusters = mcua_read_u16(&model->n_clusters);
    const float *mean = (const float *)mcua_read_ptr(&model->mean);
    const float *inv_scale = (const float *)mcua_read_ptr(&model->inv_scale);
    const float *centroid = (const float *)mcua_read_ptr(&model->centroids);
    float best = 0.0f;
    uint16_t best_k = 0;
    uint16_t f, k;

    for (f = 0; f < n_features; ++f) {
        if (!mcua_is_finite(x[f])) {
            *flag = 1;
            if (cluster) {
                *cluster = 0;
            }
            return mcua_infinity();
        }
        z[f] = (x[f] - mcua_read_f32(mean + f)) * mcua_read_f32(inv_scale + f);
    }
    for (k = 0; k < n_clusters; ++k, centroid += n_features) {
        /* 0.0f + t*t is t*t exactly (t*t >= +0), so start from the first term. */
        float t = z[0] - mcua_read_f32(centroid);
        float d2 = t * t;
        /* Partial distance search: rounding is monotone, so adding the
         * remaining (non-negative) terms cannot bring d2 below best again;
         * stop as soon as d2 >= best.  Same result as the full sum. */
        for (f = 1; f < n_features && (k == 0 || mcua_nonneg_greater(best, d2)); ++f) {
            t = z[f] - mcua_read_f32(centroid + f);
            d2 = d2 + t * t;
        }
        if (k == 0 || mcua_nonneg_greater(best, d2)) {
            best = d2;
            best_k = k;
        }
    }
    if (cluster) {
        *cluster = best_k;
    }
    best = sqrtf(best);
    *flag = (uint8_t)mcua_nonneg_greater(best, mcua_read_f32(&model->threshold));
    return best;
}

MCUA_FP_CONTRACT_OFF_END
