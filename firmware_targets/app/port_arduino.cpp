// Port for the Arduino framework (Uno, ESP32, ESP32-C3, Nano 33 BLE):
// Serial at 115200 baud, 8N1, for the results and the line protocol.
#include <Arduino.h>

#include "mcua_app.h"

void mcua_port_write(const char *text)
{
    Serial.print(text);
}

#if defined(__AVR__)
// The stack's high-water mark: at start-up every free byte between the end of
// the static data (__heap_start: the app uses no heap) and the stack pointer
// is painted; the bytes above the static data still painted were never
// reached by the stack.  An interrupt pushing below the stack pointer while
// the paint runs only touches the top of the region, never its bottom.
extern char __heap_start;
static const uint8_t STACK_PAINT = 0xA5;

static void paint_stack(void)
{
    uint8_t *p = (uint8_t *)&__heap_start;
    const uint8_t *top = (const uint8_t *)(uintptr_t)SP;
    while (p < top) {
        *p++ = STACK_PAINT;
    }
}

long mcua_port_stack_untouched(void)
{
    const uint8_t *p = (const uint8_t *)&__heap_start;
    const uint8_t *top = (const uint8_t *)(uintptr_t)SP;
    long n = 0;
    while (p + n < top && p[n] == STACK_PAINT) {
        ++n;
    }
    return n;
}
#else
long mcua_port_stack_untouched(void)
{
    return -1;
}
#endif

void setup()
{
#if defined(__AVR__)
    paint_stack();
#endif
    Serial.begin(115200);
    while (!Serial) {
        // boards with native USB: wait for the host to open the port
    }
    mcua_app_run();
}

void loop()
{
    while (Serial.available() > 0) {
        mcua_app_feed((char)Serial.read());
    }
}
