#include "mcua_app.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "mcua_firmware.h" /* generated: the bundle's detectors */
#include "mcua_vectors.h"  /* generated: test vectors in flash */

#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#endif

/* Longest accepted protocol line: an S command of N_CHANNELS values of up to
 * 23 characters each plus separators. */
#define LINE_MAX (MCUA_FW_N_CHANNELS * 24 + 8)

/* Message texts stay in flash on AVR, where string literals would take RAM;
 * write them with write_text. */
#if defined(__AVR__)
#define TEXT(s) PSTR(s)
#else
#define TEXT(s) (s)
#endif
#define STRINGIFY_(x) #x
#define STRINGIFY(x) STRINGIFY_(x)

#if !defined(__AVR__)
/* The markers of the generated dispatch (mcua_firmware.h) for instruction
 * counting in qemu's exec trace (host_sim/targets.py instruction_count):
 * every instruction from the return of mcua_mark_begin to the call of
 * mcua_mark_end.  The distinct stores stop the compiler merging the two. */
volatile uint8_t mcua_mark;

__attribute__((noinline)) void mcua_mark_begin(void)
{
    mcua_mark = 1;
}

__attribute__((noinline)) void mcua_mark_end(void)
{
    mcua_mark = 2;
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

/* "R <detector> <sample> <score bits> <flag>" */
static void write_result(uint8_t detector, unsigned long sample, float score,
                         uint8_t flag)
{
    char line[40];
    uint32_t bits;
    char *p;

    memcpy(&bits, &score, sizeof bits);
    p = put_str(line, "R ");
    p = put_uint(p, detector);
    p = put_str(p, " ");
    p = put_uint(p, sample);
    p = put_str(p, " ");
    p = put_hex32(p, bits);
    p = put_str(p, " ");
    p = put_uint(p, flag);
    put_str(p, "\n");
    mcua_port_write(line);
}

/* Every detector on x.  Measured (the test vectors): on AVR with interrupts
 * off, so that no Timer0 or UART interrupt lands in a cycle count.  Live
 * samples keep interrupts on: a real UART keeps receiving. */
static void detect_all(const float *x, unsigned long sample, int measured)
{
    int d;
    for (d = 0; d < MCUA_FW_N_DETECTORS; ++d) {
        uint8_t flag;
        float score;
#if defined(__AVR__)
        const uint8_t sreg = SREG;
        if (measured) {
            cli();
        }
        score = mcua_fw_detect((uint8_t)d, x, &flag);
        SREG = sreg;
#else
        (void)measured;
        score = mcua_fw_detect((uint8_t)d, x, &flag);
#endif
        write_result((uint8_t)d, sample, score, flag);
    }
}

/* Writes a string from flash (TEXT, or generated constants) in chunks. */
static void write_text(const char *text)
{
    char chunk[17];
    size_t n = 0;

    while ((chunk[n] = (char)mcua_read_u8(text++)) != '\0') {
        if (++n == sizeof chunk - 1) {
            chunk[n] = '\0';
            mcua_port_write(chunk);
            n = 0;
        }
    }
    mcua_port_write(chunk);
}

/* "I <model> <channels> <detector,...>" */
static void write_info(void)
{
    write_text(TEXT("I "));
    write_text(mcua_fw_info);
    write_text(TEXT("\n"));
}

static unsigned long live_samples; /* S samples since the last reset */

#if MCUA_FW_VECTOR_COUNT > 0
static void run_vectors(void)
{
    float x[MCUA_FW_N_CHANNELS];
    unsigned long i;

    for (i = 0; i < MCUA_FW_VECTOR_COUNT; ++i) {
#if defined(__AVR__)
        memcpy_P(x, mcua_fw_vectors[i], sizeof x);
#else
        memcpy(x, mcua_fw_vectors[i], sizeof x);
#endif
        detect_all(x, i, 1);
    }
}
#endif

int mcua_app_run(void)
{
    char line[24];

    mcua_fw_reset();
    write_info();
#if MCUA_FW_VECTOR_COUNT > 0
    run_vectors();
#endif
    put_str(put_uint(put_str(line, "DONE "), MCUA_FW_VECTOR_COUNT), "\n");
    mcua_port_write(line);
    /* Live samples learn from a fresh state, not from the test vectors. */
    mcua_fw_reset();
    return 0;
}

/* ---- serial line protocol (docs/firmware.md) ---------------------------- */

static const char *skip_blanks(const char *p)
{
    while (*p == ' ' || *p == '\t') {
        ++p;
    }
    return p;
}

static int hex_digit(char c)
{
    if (c >= '0' && c <= '9') {
        return c - '0';
    }
    if (c >= 'a' && c <= 'f') {
        return c - 'a' + 10;
    }
    if (c >= 'A' && c <= 'F') {
        return c - 'A' + 10;
    }
    return -1;
}

/* One value: "x" + 8 hex digits (the exact IEEE-754 bits) or a decimal
 * number as the C library parses it.  Returns the end, or NULL. */
static const char *parse_value(const char *p, float *value)
{
    if (*p == 'x' || *p == 'X') {
        uint32_t bits = 0;
        int i;
        for (i = 1; i <= 8; ++i) {
            const int digit = hex_digit(p[i]);
            if (digit < 0) {
                return NULL;
            }
            bits = (bits << 4) | (uint32_t)digit;
        }
        memcpy(value, &bits, sizeof bits);
        return p + 9;
    } else {
        char *end;
#if defined(__AVR__)
        *value = (float)strtod(p, &end); /* avr-libc: double is float */
#else
        *value = strtof(p, &end);
#endif
        return end == p ? NULL : end;
    }
}

static const char wrong_count[] MCUA_FLASH =
    "expected " STRINGIFY(MCUA_FW_N_CHANNELS) " values separated by commas";

/* "S v1,v2,...": exactly MCUA_FW_N_CHANNELS values separated by commas.
 * Returns NULL, or the error message (in flash). */
static const char *parse_sample(const char *p, float *x)
{
    int c;
    for (c = 0; c < MCUA_FW_N_CHANNELS; ++c) {
        p = skip_blanks(p);
        if (*p == '\0' || (c > 0 && *p != ',')) {
            return wrong_count;
        }
        if (c > 0) {
            p = skip_blanks(p + 1);
        }
        p = parse_value(p, &x[c]);
        if (p == NULL) {
            return TEXT("bad value: a decimal number or x and 8 hex digits");
        }
    }
    return *skip_blanks(p) == '\0' ? NULL : wrong_count;
}

static void write_error(const char *message)
{
    write_text(TEXT("E "));
    write_text(message);
    write_text(TEXT("\n"));
}

static void write_uint(unsigned long value)
{
    char digits[11];
    put_uint(digits, value);
    mcua_port_write(digits);
}

/* "C <detector> <frozen|slow> <blocks> <limit> <0|1>" for every detector
 * that keeps a baseline (stop: end frozen calibrations first), then OK. */
static void write_calibration(uint8_t stop)
{
    int d;
    for (d = 0; d < MCUA_FW_N_DETECTORS; ++d) {
        uint16_t blocks, limit;
        uint8_t frozen;
        const uint8_t mode = mcua_fw_baseline((uint8_t)d, stop, &blocks, &limit, &frozen);
        if (mode == 0) {
            continue;
        }
        write_text(TEXT("C "));
        write_uint((unsigned long)d);
        write_text(mode == 1 ? TEXT(" frozen ") : TEXT(" slow "));
        write_uint(blocks);
        write_text(TEXT(" "));
        write_uint(limit);
        write_text(frozen ? TEXT(" 1\n") : TEXT(" 0\n"));
    }
    write_text(TEXT("OK\n"));
}

/* M: the stack's headroom, "M <bytes never reached>" or "M -" (not measured). */
static void write_stack(void)
{
    const long untouched = mcua_port_stack_untouched();
    if (untouched < 0) {
        write_text(TEXT("M -\n"));
        return;
    }
    write_text(TEXT("M "));
    write_uint((unsigned long)untouched);
    write_text(TEXT("\n"));
}

/* line == command, the command's text in flash (TEXT): no RAM for it on AVR. */
static int is_command(const char *line, const char *command)
{
    char c;
    while ((c = (char)mcua_read_u8(command++)) != '\0') {
        if (*line++ != c) {
            return 0;
        }
    }
    return *line == '\0';
}

/* Answers one line.  Nothing reaches a detector unless the whole line is
 * valid, so a malformed line never changes detector state. */
static void handle_line(const char *line)
{
    float x[MCUA_FW_N_CHANNELS];

    if (line[0] == '\0') {
        return;
    }
    if (line[0] == 'S' && (line[1] == '\0' || line[1] == ' ' || line[1] == '\t')) {
        const char *error = parse_sample(line + 1, x);
        if (error) {
            write_error(error);
        } else {
            detect_all(x, live_samples++, 0);
        }
    } else if (is_command(line, TEXT("Z")) || is_command(line, TEXT("C START"))) {
        mcua_fw_reset(); /* a calibration starts with the next sample */
        live_samples = 0;
        write_text(TEXT("OK\n"));
    } else if (is_command(line, TEXT("C")) || is_command(line, TEXT("C STOP"))) {
        write_calibration(line[1] != '\0');
    } else if (is_command(line, TEXT("I"))) {
        write_info();
    } else if (is_command(line, TEXT("M"))) {
        write_stack();
    } else {
        write_error(TEXT("unknown command: S v1,v2,... | Z | I | M | C | C START | C STOP"));
    }
}

static char rx_line[LINE_MAX + 1];
static uint16_t rx_length;
static uint8_t rx_overflow; /* the current line is too long: drop it */

void mcua_app_feed(char c)
{
    if (c == '\n') {
        rx_line[rx_length] = '\0';
        if (rx_overflow) {
            write_error(TEXT("line too long"));
        } else {
            handle_line(rx_line);
        }
        rx_length = 0;
        rx_overflow = 0;
    } else if (c != '\r') {
        if (rx_length < LINE_MAX) {
            rx_line[rx_length++] = c;
        } else {
            rx_overflow = 1;
        }
    }
}
