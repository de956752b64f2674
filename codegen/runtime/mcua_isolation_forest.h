/*
 * mcua_isolation_forest - scikit-learn's Isolation Forest, one sample at a time.
 *
 * Every tree is stored as flat arrays shared by the whole forest, trees one
 * after the other in scikit-learn's node order:
 *   split nodes s:  feature[s] (uint8), split[s] (float), left[s], right[s]
 *   leaves l:       leaf[l], an index into leaf_value[]
 *   root[t]:        the node every tree t starts from
 * A node code below MCUA_IFOREST_LEAF is a split node; a code c at or above
 * it is the leaf c - MCUA_IFOREST_LEAF.  A sample goes left when
 * x[feature] <= split, as float32 (scikit-learn's float64 thresholds are
 * stored as the largest float32 not above them, which decides every float32
 * input the same way).
 *
 * leaf_value = depth of the leaf + c(n) - 1, rounded to float32, where n is
 * the number of training samples that reached the leaf and c(n) the average
 * path length of an unsuccessful search in a binary search tree of n keys
 * (the depth correction of the Isolation Forest paper).
 *
 * total = sum over trees t = 0, 1, ... in order of leaf_value, in float32
 * score = total * neg_inv_trees   (= -mean path length; higher = more anomalous)
 * flag  = score > threshold
 * scikit-learn's anomaly score is 2^(score / c(max_samples)); the device never
 * evaluates it: the threshold is the equivalent bound on the path length.
 * A sample holding NaN or +-Inf scores +Inf and is flagged.
 * Every constant, the model struct included, lives in flash (MCUA_FLASH).
 */
#ifndef MCUA_ISOLATION_FOREST_H
#define MCUA_ISOLATION_FOREST_H

#include "mcua_common.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MCUA_IFOREST_LEAF 0x8000u

typedef struct {
    uint16_t n_features;
    uint16_t n_trees;
    float neg_inv_trees;          /* -1 / n_trees */
    float threshold;
    const uint16_t *root;         /* [n_trees] node codes */
    const uint8_t *feature;       /* [splits] input channel */
    const float *split;           /* [splits] go left when x <= split */
    const uint16_t *left;         /* [splits] node codes */
    const uint16_t *right;        /* [splits] node codes */
    const uint8_t *leaf;          /* [leaves] index into leaf_value, or NULL */
    const uint16_t *leaf_wide;    /* [leaves] the same when leaf is NULL */
    const float *leaf_value;      /* [distinct values] depth + c(n) - 1 */
} mcua_isolation_forest_model;

float mcua_isolation_forest_score(const mcua_isolation_forest_model *model,
                                  const float *x, uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_ISOLATION_FOREST_H */
