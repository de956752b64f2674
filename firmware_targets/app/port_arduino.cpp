// Port for the Arduino framework (Uno, ESP32, ESP32-C3, Nano 33 BLE):
// output on Serial at 115200 baud.
#include <Arduino.h>

#if defined(__AVR__)
#include <avr/interrupt.h>
#include <avr/sleep.h>
#endif

#include "mcua_app.h"

void mcua_port_write(const char *text)
{
    Serial.print(text);
}

void setup()
{
    Serial.begin(115200);
    while (!Serial) {
        // boards with native USB: wait for the host to open the port
    }
    mcua_app_run();
    Serial.flush();
#if defined(__AVR__)
    // Sleeping with interrupts off ends a simavr run with exit status 0.
    cli();
    sleep_enable();
    sleep_cpu();
#endif
}

void loop()
{
}
