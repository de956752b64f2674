/*
 * libFuzzer harness over the firmware app's serial line protocol (firmware_targets/app),
 * built for this machine with a bundle's generated firmware sources.  The app runs once,
 * as at power-up; then every input is bytes received on the serial line, a newline after
 * them.  Like a device, the app keeps its detectors' state from one input to the next.
 * Every byte the app writes must be printable ASCII or a newline, and every line it
 * answers with must start with one of its line kinds (I, DONE, R, C, OK, E, M); ASan and
 * UBSan catch the rest.
 */
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "mcua_app.h"

#define CHECK(condition) ((condition) ? (void)0 : __builtin_trap())

static char line[4096];
static size_t length;

static int known_line(void)
{
    static const char *const kinds[] = {"I ", "DONE ", "R ", "C ", "OK", "E ", "M "};
    size_t k;

    for (k = 0; k < sizeof kinds / sizeof kinds[0]; ++k) {
        if (strncmp(line, kinds[k], strlen(kinds[k])) == 0) {
            return 1;
        }
    }
    return 0;
}

/* The port measures no stack here: the app answers M with "M -". */
long mcua_port_stack_untouched(void)
{
    return -1;
}

/* The port's output: checked a line at a time. */
void mcua_port_write(const char *text)
{
    const char *p;

    for (p = text; *p; ++p) {
        CHECK((*p >= ' ' && *p <= '~') || *p == '\n');
        if (*p == '\n') {
            line[length] = '\0';
            CHECK(known_line());
            length = 0;
        } else {
            CHECK(length < sizeof line - 1);
            line[length++] = *p;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int started;
    size_t i;

    if (!started) {
        CHECK(mcua_app_run() == 0);
        started = 1;
    }
    for (i = 0; i < size; ++i) {
        mcua_app_feed((char)data[i]);
    }
    mcua_app_feed('\n');
    return 0;
}
