#include "placeholder_dot.h"

static const float weights[PLACEHOLDER_DOT_DIM] = {0.5f, -1.25f, 0.003f, 0.1f};
static const float bias = 0.3f;
static const float threshold = 1.0f;

float placeholder_dot_score(const float *x, uint8_t *flag)
{
    float score = bias;
    int i;
    for (i = 0; i < PLACEHOLDER_DOT_DIM; ++i) {
        score += weights[i] * x[i];
    }
    *flag = score > threshold;
    return score;
}
