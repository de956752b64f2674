/*
 * libFuzzer harness over every detector of a bundle, through the host glue's batch entry
 * points (templates/host_glue.c.j2).  tests/test_fuzz.py writes fuzz_bundle.h: the
 * channel count and one table row per detector.
 *
 * An input is one byte that says where to cut the stream in two, then rows of N_CHANNELS
 * float32 bit patterns, any bits at all.  Every detector runs the rows; a streaming one also runs
 * them as two calls, the second going on from the state the first left (resume).  Any
 * broken invariant traps, which libFuzzer reports as a crash:
 *   - every flag is 0 or 1;
 *   - a row holding NaN or +-Inf scores +Inf and is flagged (stateless and streaming);
 *     a window holding one is flagged (windowed);
 *   - a flag API says what the score API's flag says (a streaming one also leaves
 *     the same state after every row);
 *   - a streaming detector's state after every row is finite, its counters in range
 *     (count and fresh_count <= W, head < W, a baseline's blocks <= its limit, frozen and
 *     clipped 0 or 1), and the stream cut in two gives the same bits as one call.
 * ASan and UBSan (-fno-sanitize-recover) turn memory errors and undefined behaviour into
 * crashes too.
 */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define MAX_ROWS 512
#define CHECK(condition) ((condition) ? (void)0 : __builtin_trap())

typedef void (*stream_fn)(const float *, uint32_t, float *, uint8_t *, float *, uint16_t *,
                          uint8_t);
typedef void (*stream_flag_fn)(const float *, uint32_t, uint8_t *, float *, uint16_t *,
                               uint8_t);
typedef void (*batch_fn)(const float *, uint32_t, float *, uint8_t *);
typedef void (*flag_fn)(const float *, uint32_t, uint8_t *);

struct fuzz_stream {
    stream_fn run;
    stream_flag_fn flag; /* its flag API, or NULL */
    uint16_t window;     /* W */
    size_t state_floats; /* per row, in the glue's layout */
    uint16_t limit;      /* a baseline's blocks at most (0: no baseline) */
};

struct fuzz_batch {
    batch_fn run;
    flag_fn flag;    /* its flag API, or NULL */
    uint16_t window; /* windowed: W; stateless: 0 */
    uint16_t channel;
};

#include "fuzz_bundle.h" /* N_CHANNELS, MAX_STATE_FLOATS, streams[N_STREAMS], batches[N_BATCHES] */

static float rows[MAX_ROWS * N_CHANNELS];
static uint8_t finite[MAX_ROWS];
static float scores[MAX_ROWS], again_scores[MAX_ROWS];
static uint8_t flags[MAX_ROWS], again_flags[MAX_ROWS], flag_api[MAX_ROWS];
static float state_f[MAX_ROWS * MAX_STATE_FLOATS], flag_state_f[MAX_ROWS * MAX_STATE_FLOATS];
static uint16_t state_i[MAX_ROWS * 7], flag_state_i[MAX_ROWS * 7];

static int is_inf_score(float s)
{
    return isinf(s) && s > 0.0f;
}

static void check_flags(uint32_t n)
{
    uint32_t i;

    for (i = 0; i < n; ++i) {
        CHECK(flags[i] <= 1);
    }
}

static void check_stream(const struct fuzz_stream *d, uint32_t n, uint32_t cut)
{
    const size_t per_row = d->state_floats;
    const size_t counters = d->limit ? 7 : 4;
    uint32_t i;
    size_t k;

    d->run(rows, n, scores, flags, state_f, state_i, 0);
    check_flags(n);
    for (i = 0; i < n; ++i) {
        const uint16_t *c = state_i + i * counters;
        if (!finite[i]) {
            CHECK(flags[i] == 1 && is_inf_score(scores[i]));
        }
        for (k = 0; k < per_row; ++k) {
            CHECK(isfinite(state_f[i * per_row + k]));
        }
        CHECK(c[0] <= d->window && c[1] < d->window && c[2] <= d->window);
        if (d->limit) {
            CHECK(c[4] <= d->limit && c[5] <= 1 && c[6] <= 1);
        }
    }
    d->run(rows, cut, again_scores, again_flags, NULL, NULL, 0);
    d->run(rows + (size_t)cut * N_CHANNELS, n - cut, again_scores + cut, again_flags + cut,
           NULL, NULL, 1);
    CHECK(memcmp(scores, again_scores, n * sizeof *scores) == 0);
    CHECK(memcmp(flags, again_flags, n) == 0);
    if (d->flag) {
        d->flag(rows, n, flag_api, flag_state_f, flag_state_i, 0);
        CHECK(memcmp(flags, flag_api, n) == 0);
        CHECK(memcmp(state_f, flag_state_f, n * per_row * sizeof *state_f) == 0);
        CHECK(memcmp(state_i, flag_state_i, n * counters * sizeof *state_i) == 0);
    }
}

static void check_batch(const struct fuzz_batch *d, uint32_t n)
{
    uint32_t i, j;

    d->run(rows, n, scores, flags);
    check_flags(n);
    for (i = 0; i < n; ++i) {
        if (d->window == 0) {
            if (!finite[i]) {
                CHECK(flags[i] == 1 && is_inf_score(scores[i]));
            }
            continue;
        }
        for (j = 0; i + 1 >= d->window && j < d->window; ++j) {
            const float x = rows[(size_t)(i + 1 - d->window + j) * N_CHANNELS + d->channel];
            if (!isfinite(x)) {
                CHECK(flags[i] == 1);
            }
        }
    }
    if (d->flag) {
        d->flag(rows, n, flag_api);
        CHECK(memcmp(flags, flag_api, n) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const size_t row_bytes = N_CHANNELS * sizeof(float);
    uint32_t n, cut, i, c;
    size_t d;

    if (size < 1 + row_bytes) {
        return 0;
    }
    n = (uint32_t)((size - 1) / row_bytes);
    if (n > MAX_ROWS) {
        n = MAX_ROWS;
    }
    cut = (uint32_t)((uint64_t)data[0] * n / 256u);
    memcpy(rows, data + 1, (size_t)n * row_bytes);
    for (i = 0; i < n; ++i) {
        finite[i] = 1;
        for (c = 0; c < N_CHANNELS; ++c) {
            finite[i] &= (uint8_t)(isfinite(rows[i * N_CHANNELS + c]) != 0);
        }
    }
    for (d = 0; d < N_STREAMS; ++d) {
        check_stream(&streams[d], n, cut);
    }
    for (d = 0; d < N_BATCHES; ++d) {
        check_batch(&batches[d], n);
    }
    return 0;
}
