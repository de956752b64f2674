/*
 * mcua_exp and mcua_log on a table of inputs, on a firmware target, for
 * tests/test_f32math.py.
 *
 * f32math_ops.h (written by the test) defines N_INPUTS and
 *   static const uint32_t inputs[N_INPUTS] MCUA_FLASH  -- IEEE-754 bits.
 * For each input the program prints one line "<exp bits> <log bits>", 8 hex
 * digits each, then ends: on the Uno it sleeps with interrupts off (which ends
 * simavr), elsewhere main returns (qemu exits).  On the Uno every call sits
 * between GPIOR0 = 1 and GPIOR0 = 2, so simavr_runner reports its cycles:
 * exp, log, exp, log, ...
 */
#include <stdint.h>
#include <string.h>

#include "mcua_f32math.h"
#include "f32math_ops.h"

#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/sleep.h>

static void put(char c)
{
    while (!(UCSR0A & (1 << UDRE0))) {
    }
    UDR0 = (uint8_t)c;
}
#define MARK(v) (GPIOR0 = (v))
#else
#include <stdio.h>
#define put(c) putchar(c)
#define MARK(v) ((void)0)
#endif

static void put_bits(float x)
{
    uint32_t bits;
    int shift;
    memcpy(&bits, &x, sizeof bits);
    for (shift = 28; shift >= 0; shift -= 4) {
        put("0123456789abcdef"[(bits >> shift) & 0xFu]);
    }
}

int main(void)
{
    uint16_t i;

#if defined(__AVR__)
    UBRR0 = 0; /* 1 Mbaud with U2X0 at 16 MHz: the run is short */
    UCSR0A = 1 << U2X0;
    UCSR0B = 1 << TXEN0;
    UCSR0C = 3 << UCSZ00;
#endif
    for (i = 0; i < N_INPUTS; ++i) {
        const uint32_t bits = (uint32_t)mcua_read_i32((const int32_t *)&inputs[i]);
        /* volatile: the calls stay between their marks */
        volatile float x, y, z;
        memcpy((void *)&x, &bits, sizeof bits);
        MARK(1);
        y = mcua_exp(x);
        MARK(2);
        MARK(1);
        z = mcua_log(x);
        MARK(2);
        put_bits(y);
        put(' ');
        put_bits(z);
        put('\n');
    }
#if defined(__AVR__)
    cli();
    sleep_enable();
    sleep_cpu();
#endif
    return 0;
}
