/* Application shared by every firmware environment.
 *
 * mcua_app.c runs every detector of the generated bundle (mcua_firmware.h)
 * on the test vectors in flash (mcua_vectors.h), then serves the serial line
 * protocol; line formats in firmware_targets/README.md.  A port file supplies
 * the entry point, the input bytes and the output:
 *   port_arduino.cpp  - Arduino framework (Uno, ESP32, Nano 33 BLE): Serial;
 *   port_semihost.c   - bare metal under qemu: semihosting stdin/stdout.
 */
#ifndef MCUA_APP_H
#define MCUA_APP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Prints the I line, runs the test vectors (each detector call measured),
 * prints DONE and resets the detectors for live samples; returns 0. */
int mcua_app_run(void);

/* One received byte of the line protocol; a full line is answered at once. */
void mcua_app_feed(char c);

/* Implemented by the port: writes a NUL-terminated string. */
void mcua_port_write(const char *text);

/* Implemented by the port: the bytes of free RAM (between the static data and
 * the stack) that the stack has never reached since start-up, or -1 where the
 * port does not measure it.  0 means the stack reached the static data. */
long mcua_port_stack_untouched(void);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_APP_H */
