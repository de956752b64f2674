// Port for the Arduino framework (Uno, ESP32, ESP32-C3, Nano 33 BLE):
// Serial at 115200 baud, 8N1, for the results and the line protocol.
#include <Arduino.h>

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
}

void loop()
{
    while (Serial.available() > 0) {
        mcua_app_feed((char)Serial.read());
    }
}
