/* Placeholder for the generated test-vector header (contract in
 * firmware_targets/README.md): the real generator replaces this directory. */
#ifndef MCUA_BENCH_H
#define MCUA_BENCH_H

#include "placeholder_dot.h"

#if defined(__AVR__)
#include <avr/pgmspace.h>
#define MCUA_BENCH_ROM PROGMEM
#else
#define MCUA_BENCH_ROM
#endif

#define MCUA_BENCH_COUNT 5
#define MCUA_BENCH_DIM PLACEHOLDER_DOT_DIM

static const float mcua_bench_inputs[MCUA_BENCH_COUNT][MCUA_BENCH_DIM] MCUA_BENCH_ROM = {
    {1.0f, 2.0f, 3.0f, 4.0f},
    {0.333333343f, -0.1f, 1234.5678f, 7.0e-4f},
    {0.1f, 0.1f, 0.9f, 5.5f}, /* a fused multiply-add would round differently */
    {-2.5f, -3.75f, 0.0f, 1.0e-3f},
    {3.14159274f, 2.71828175f, -1.41421354f, 1.0e10f},
};

#define MCUA_BENCH_SCORE(x, flag) placeholder_dot_score((x), (flag))

#endif /* MCUA_BENCH_H */
