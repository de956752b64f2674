#include "mcua_isolation_forest.h"

#include <math.h>

MCUA_FP_CONTRACT_OFF_BEGIN

/* The forest's score of a finite feature vector f. */
static float forest_score(const mcua_isolation_forest_model *model, const float *f,
                          uint8_t *flag)
{
    const uint16_t n_trees = mcua_read_u16(&model->n_trees);
    const uint16_t *root = (const uint16_t *)mcua_read_ptr(&model->root);
    const uint8_t *feature = (const uint8_t *)mcua_read_ptr(&model->feature);
    const float *split = (const float *)mcua_read_ptr(&model->split);
    const uint16_t *left = (const uint16_t *)mcua_read_ptr(&model->left);
    const uint16_t *right = (const uint16_t *)mcua_read_ptr(&model->right);
    const uint8_t *leaf = (const uint8_t *)mcua_read_ptr(&model->leaf);
    const uint16_t *leaf_wide = (const uint16_t *)mcua_read_ptr(&model->leaf_wide);
    const float *leaf_value = (const float *)mcua_read_ptr(&model->leaf_value);
    float total = 0.0f;
    float score;
    uint16_t t;

    for (t = 0; t < n_trees; ++t) {
        uint16_t node = mcua_read_u16(root + t);
        uint16_t value;
        while (node < MCUA_IFOREST_LEAF) {
            const float v = f[mcua_read_u8(feature + node)];
            const int go_left = mcua_less_equal(v, mcua_read_f32(split + node));
            node = go_left ? mcua_read_u16(left + node) : mcua_read_u16(right + node);
        }
        node = (uint16_t)(node - MCUA_IFOREST_LEAF);
        value = leaf ? mcua_read_u8(leaf + node) : mcua_read_u16(leaf_wide + node);
        total = total + mcua_read_f32(leaf_value + value);
    }
    score = total * mcua_read_f32(&model->neg_inv_trees);
    *flag = score > mcua_read_f32(&model->threshold);
    return score;
}

/* 1 when every reading of x[n_channels] is finite; else flags the sample. */
static int all_finite(const float *x, uint16_t n_channels, uint8_t *flag)
{
    uint16_t c;

    for (c = 0; c < n_channels; ++c) {
        if (!mcua_is_finite(x[c])) {
            *flag = 1;
            return 0;
        }
    }
    return 1;
}

float mcua_isolation_forest_score(const mcua_isolation_forest_model *model,
                                  const float *x, uint8_t *flag)
{
    if (!all_finite(x, mcua_read_u16(&model->n_channels), flag)) {
        return mcua_infinity();
    }
    return forest_score(model, x, flag);
}

float mcua_isolation_forest_update(const mcua_isolation_forest_model *model,
                                   mcua_window_counters *ctr,
                                   mcua_window_channel *ch, float *buffer,
                                   const float *x, float *features,
                                   uint8_t *flag)
{
    const uint16_t n_channels = mcua_read_u16(&model->n_channels);
    const uint16_t window = mcua_read_u16(&model->window);
    float *mean_sd = features + n_channels;
    uint16_t c;

    if (!all_finite(x, n_channels, flag)) {
        return mcua_infinity();
    }
    for (c = 0; c < n_channels; ++c) {
        mcua_window_push(ctr, &ch[c], buffer + (size_t)c * window, window, x[c]);
    }
    mcua_window_advance(ctr, ch, n_channels, window);
    for (c = 0; c < n_channels; ++c, mean_sd += 2) {
        const float m = ch[c].sum * ctr->inv_count;
        const float var = ch[c].sumsq * ctr->inv_count - m * m; /* finite */
        features[c] = x[c];
        mean_sd[0] = ch[c].anchor + m;
        mean_sd[1] = mcua_positive(var) ? sqrtf(var) : 0.0f;
    }
    {
        const float score = forest_score(model, features, flag);
        if (ctr->count < window) {
            *flag = 0; /* a partial window (the forest grew on full ones only) */
        }
        return score;
    }
}

MCUA_FP_CONTRACT_OFF_END
