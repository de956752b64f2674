#include "mcua_quadform.h"

/* The running sum of squares, with y[0] * y[0] as its start (+0 + t is t for
 * every t >= +0, so this is the plain sum). */
static float add_square(float sum, float y, uint16_t i)
{
    return i ? sum + y * y : y * y;
}

static float finite_or_infinity(float sum)
{
    return mcua_is_finite(sum) ? sum : mcua_infinity();
}

float mcua_quadform_upper(const float *u, const float *b, const float *d, uint16_t n)
{
    float sum = 0.0f;
    uint16_t i, j;

    for (i = 0; i < n; ++i) {
        float y = mcua_read_f32(u) * d[i];
        ++u;
        for (j = (uint16_t)(i + 1); j < n; ++j, ++u) {
            y = y + mcua_read_f32(u) * d[j];
        }
        if (b) {
            y = y - mcua_read_f32(b + i);
        }
        sum = add_square(sum, y, i);
    }
    return finite_or_infinity(sum);
}

float mcua_quadform_diag(const float *u, const float *b, const float *d, uint16_t n)
{
    float sum = 0.0f;
    uint16_t i;

    for (i = 0; i < n; ++i) {
        float y = mcua_read_f32(u + i) * d[i];
        if (b) {
            y = y - mcua_read_f32(b + i);
        }
        sum = add_square(sum, y, i);
    }
    return finite_or_infinity(sum);
}
