#include "mcua_isolation_forest.h"

float mcua_isolation_forest_score(const mcua_isolation_forest_model *model,
                                  const float *x, uint8_t *flag)
{
    const uint16_t n_features = mcua_read_u16(&model->n_features);
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
    uint16_t f, t;

    for (f = 0; f < n_features; ++f) {
        if (!mcua_is_finite(x[f])) {
            *flag = 1;
            return mcua_infinity();
        }
    }
    for (t = 0; t < n_trees; ++t) {
        uint16_t node = mcua_read_u16(root + t);
        uint16_t value;
        while (node < MCUA_IFOREST_LEAF) {
            const float v = x[mcua_read_u8(feature + node)];
            node = v <= mcua_read_f32(split + node) ? mcua_read_u16(left + node)
                                                    : mcua_read_u16(right + node);
        }
        node = (uint16_t)(node - MCUA_IFOREST_LEAF);
        value = leaf ? mcua_read_u8(leaf + node) : mcua_read_u16(leaf_wide + node);
        total = total + mcua_read_f32(leaf_value + value);
    }
    score = total * mcua_read_f32(&model->neg_inv_trees);
    *flag = score > mcua_read_f32(&model->threshold);
    return score;
}
