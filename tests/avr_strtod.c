/*
 * avr-libc's strtod on decimal text, for tests/test_library.py: what the
 * library's example sketch makes of the values it reads.
 *
 * Reads lines on USART0 (115200 baud, as the sketch); for each one prints the
 * 8 hex digits of the bits of (float)strtod(line) on a line of its own.
 * Started with simavr_runner -q ... -i <lines>, which ends the run.
 */
#include <avr/io.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

static void put(char c)
{
    while (!(UCSR0A & (1 << UDRE0))) {
    }
    UDR0 = (uint8_t)c;
}

static char get(void)
{
    while (!(UCSR0A & (1 << RXC0))) {
    }
    return (char)UDR0;
}

int main(void)
{
    char line[40];
    uint8_t n = 0;

    UBRR0 = 8; /* 115200 baud at 16 MHz */
    UCSR0B = (1 << RXEN0) | (1 << TXEN0);
    UCSR0C = 3 << UCSZ00;
    for (;;) {
        const char c = get();
        if (c != '\n') {
            if (n < sizeof line - 1) {
                line[n++] = c;
            }
        } else {
            float value;
            uint32_t bits;
            int shift;
            line[n] = '\0';
            n = 0;
            value = (float)strtod(line, NULL); /* avr-libc: double is float */
            memcpy(&bits, &value, sizeof bits);
            for (shift = 28; shift >= 0; shift -= 4) {
                put("0123456789abcdef"[(bits >> shift) & 0xFu]);
            }
            put('\n');
        }
    }
}
