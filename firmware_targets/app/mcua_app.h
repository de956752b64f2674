/* Benchmark application shared by every firmware environment.
 *
 * mcua_app.c runs the generated detector over the generated test vectors and
 * prints one line per vector (format in firmware_targets/README.md).  A port
 * file supplies the entry point and the output:
 *   port_arduino.cpp  - Arduino framework (Uno, ESP32, Nano 33 BLE): Serial;
 *   port_semihost.c   - bare metal under qemu: semihosting stdout.
 */
#ifndef MCUA_APP_H
#define MCUA_APP_H

#ifdef __cplusplus
extern "C" {
#endif

/* Runs the benchmark, printing through mcua_port_write; returns 0. */
int mcua_app_run(void);

/* Implemented by the port: writes a NUL-terminated string. */
void mcua_port_write(const char *text);

#ifdef __cplusplus
}
#endif

#endif /* MCUA_APP_H */
