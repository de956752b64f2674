#include "mcua_kmeans.h"

#include <math.h>

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
    for (k = 0; k < n_clusters; ++k) {
        float d2 = 0.0f;
        for (f = 0; f < n_features; ++f) {
            const float t = z[f] - mcua_read_f32(centroid++);
            d2 = d2 + t * t;
        }
        if (k == 0 || d2 < best) {
            best = d2;
            best_k = k;
        }
    }
    if (cluster) {
        *cluster = best_k;
    }
    best = sqrtf(best);
    *flag = best > mcua_read_f32(&model->threshold);
    return best;
}
