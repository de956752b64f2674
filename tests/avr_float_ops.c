/*
 * avr-libc's float32 operations on operand pairs, for tests/test_firmware_parity.py.
 *
 * avr_float_ops.h (written by the test) defines N_OPS and
 *   static const uint32_t ops[N_OPS][2] PROGMEM   -- IEEE-754 bits of a and b.
 * For each pair the program prints on USART0 one line:
 *   <a+b> <a-b> <a*b> <a/b> <sqrtf(a)> <a<b><a>b><a<=b><a>=b><a==b>
 * the first five as 8 hex digits of the result's bits, the comparisons as
 * 0/1 digits; then it sleeps with interrupts off, which ends simavr.
 * Built with the firmware's flags (-Os -ffp-contract=off) and -lm.
 */
#include <avr/interrupt.h>
#include <avr/io.h>
#include <avr/pgmspace.h>
#include <avr/sleep.h>
#include <math.h>
#include <stdint.h>
#include <string.h>

#include "avr_float_ops.h"

static void put(char c)
{
    while (!(UCSR0A & (1 << UDRE0))) {
    }
    UDR0 = (uint8_t)c;
}

static void put_bits(float x)
{
    uint32_t bits;
    int shift;
    memcpy(&bits, &x, sizeof bits);
    for (shift = 28; shift >= 0; shift -= 4) {
        put("0123456789abcdef"[(bits >> shift) & 0xFu]);
    }
    put(' ');
}

static float load(const uint32_t *p)
{
    const uint32_t bits = pgm_read_dword(p);
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

int main(void)
{
    uint16_t i;

    UBRR0 = 0; /* 1 Mbaud with U2X0 at 16 MHz: the run is short */
    UCSR0A = 1 << U2X0;
    UCSR0B = 1 << TXEN0;
    UCSR0C = 3 << UCSZ00;
    for (i = 0; i < N_OPS; ++i) {
        /* volatile: the compiler must not fold or reorder the library calls */
        volatile float a = load(&ops[i][0]);
        volatile float b = load(&ops[i][1]);
        put_bits(a + b);
        put_bits(a - b);
        put_bits(a * b);
        put_bits(a / b);
        put_bits(sqrtf(a));
        put((char)('0' + (a < b)));
        put((char)('0' + (a > b)));
        put((char)('0' + (a <= b)));
        put((char)('0' + (a >= b)));
        put((char)('0' + (a == b)));
        put('\n');
    }
    cli();
    sleep_enable();
    sleep_cpu();
    return 0;
}
