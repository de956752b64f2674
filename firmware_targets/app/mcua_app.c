#include "mcua_app.h"

#include <stdint.h>
#include <string.h>

#include "mcua_bench.h" /* generated: test vectors and MCUA_BENCH_SCORE */

#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#endif

/* Results of the measured call.  Volatile stores keep the work inside the
 * timed region: GCC has moved a detector out of it when they were not. */
static volatile float result_score;
static volatile uint8_t result_flag;

/* noinline/noclone: the timed region is exactly one call of this function. */
static __attribute__((noinline, noclone)) void measured_call(const float *x)
{
    uint8_t flag = 0;
    const float score = MCUA_BENCH_SCORE(x, &flag);
    result_score = score;
    result_flag = flag;
}

#if defined(__AVR__)
/* simavr's runner (host_sim/simavr_runner.c) counts the cycles between the
 * writes of 1 and 2 to GPIOR0.  Interrupts are off in between so that no
 * Timer0 or UART interrupt lands in the count. */
static void measure(const float *x)
{
    const uint8_t sreg = SREG;
    cli();
    GPIOR0 = 1;
    measured_call(x);
    GPIOR0 = 2;
    SREG = sreg;
}
#else
/* Marker functions for instruction counting in qemu's exec trace
 * (host_sim/targets.py instruction_count): every instruction executed from
 * the return of mcua_mark_begin to the call of mcua_mark_end.  The distinct
 * stores stop the compiler merging the two functions. */
volatile uint8_t mcua_mark;

__attribute__((noinline, noclone)) void mcua_mark_begin(void)
{
    mcua_mark = 1;
}

__attribute__((noinline, noclone)) void mcua_mark_end(void)
{
    mcua_mark = 2;
}

static void measure(const float *x)
{
    mcua_mark_begin();
    measured_call(x);
    mcua_mark_end();
}
#endif

/* Line building: each helper writes at p, NUL-terminates, returns the end. */
static char *put_str(char *p, const char *text)
{
    while ((*p = *text++) != '\0') {
        ++p;
    }
    return p;
}

static char *put_uint(char *p, unsigned long value)
{
    char digits[11];
    char *d = digits + sizeof digits - 1;
    *d = '\0';
    do {
        *--d = (char)('0' + value % 10u);
        value /= 10u;
    } while (value != 0u);
    return put_str(p, d);
}

static char *put_hex32(char *p, uint32_t value)
{
    int shift;
    for (shift = 28; shift >= 0; shift -= 4) {
        *p++ = "0123456789abcdef"[(value >> shift) & 0xFu];
    }
    *p = '\0';
    return p;
}

int mcua_app_run(void)
{
    char line[40];
    float x[MCUA_BENCH_DIM];
    unsigned i;

    for (i = 0; i < MCUA_BENCH_COUNT; ++i) {
        float score;
        uint32_t bits;
        char *p;

#if defined(__AVR__)
        memcpy_P(x, mcua_bench_inputs[i], sizeof x);
#else
        memcpy(x, mcua_bench_inputs[i], sizeof x);
#endif
        measure(x);
        score = result_score;
        memcpy(&bits, &score, sizeof bits);

        p = put_str(line, "R ");
        p = put_uint(p, i);
        p = put_str(p, " ");
        p = put_hex32(p, bits);
        p = put_str(p, " ");
        p = put_uint(p, result_flag);
        put_str(p, "\n");
        mcua_port_write(line);
    }

    put_str(put_uint(put_str(line, "DONE "), MCUA_BENCH_COUNT), "\n");
    mcua_port_write(line);
    return 0;
}
