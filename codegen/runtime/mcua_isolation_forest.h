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
 * f[feature] <= split, as float32 (scikit-learn's float64 thresholds are
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
 *
 * Features.  window == 0: the channels themselves, mcua_isolation_forest_score
 * keeps no state.  window == W > 0: rolling features, mcua_isolation_forest_update
 * puts the sample into a window of the last W readings of every channel
 * (mcua_window: anchored sums, rebuilt every W samples) and then builds
 *   f = x[0..C-1], mean[0], sd[0], mean[1], sd[1], ..., mean[C-1], sd[C-1]
 * from the n <= W readings in it, the sample included, in float32:
 *   m    = sum * (1/n)             (relative to the channel's anchor)
 *   mean = anchor + m
 *   var  = sumsq * (1/n) - m * m
 *   sd   = var > 0 ? sqrtf(var) : 0   (population deviation: no division)
 * A NaN/Inf sample never enters the window.  Until the window holds W
 * readings (the first W-1 samples after a reset) a sample is scored but never
 * flagged: the forest grew, and its threshold was set, on full windows only.
 */
#ifndef MCUA_ISOLATION_FOREST_H
#define MCUA_ISOLATION_FOREST_H

#include "mcua_window.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MCUA_IFOREST_LEAF 0x8000u

typedef struct {
    uint16_t n_channels;
    uint16_t window;              /* rolling features over this many readings; 0: raw */
    uint16_t n_trees;
    float neg_inv_trees;          /* -1 / n_trees */
    float threshold;
    const uint16_t *root;         /* [n_trees] node codes */
    const uint8_t *feature;       /* [splits] index into the features */
    const float *split;           /* [splits] go left when f <= split */
    const uint16_t *left;         /* [splits] node codes */
    const uint16_t *right;        /* [splits] node codes */
    const uint8_t *leaf;          /* [leaves] index into leaf_value, or NULL */
    const uint16_t *leaf_wide;    /* [leaves] the same when leaf is NULL */
    const float *leaf_value;      /* [distinct values] depth + c(n) - 1 */
} mcua_isolation_forest_model;

/* Raw features (window 0): scores x[n_channels]. */
float mcua_isolation_forest_score(const mcua_isolation_forest_model *model,
                                  const float *x, uint8_t *flag);

/* Rolling features (window W): puts x[n_channels] into the window (buffer:
 * n_channels * W floats) and scores its features, built in
 * features[3 * n_channels] (scratch); *flag stays 0 while the window is
 * partial. */
float mcua_isolation_forest_update(const mcua_isolation_forest_model *model,
                                   mcua_window_counters *ctr,
                                   mcua_window_channel *ch, float *buffer,
                                   const float *x, float *features,
                                   uint8_t *flag);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_ISOLATION_FOREST_H */
