/* Port for bare metal under qemu: output on semihosting stdout, and main's
 * return value becomes qemu's exit status.  No line protocol here: qemu's
 * semihosting console delivers no input to a read and never reports its end
 * (measured with qemu 7.2), so the app runs its test vectors and returns. */
#include <stdio.h>

#include "mcua_app.h"

void mcua_port_write(const char *text)
{
    fputs(text, stdout);
}

long mcua_port_stack_untouched(void)
{
    return -1; /* qemu's boards have megabytes: not measured */
}

int main(void)
{
    const int status = mcua_app_run();
    fflush(stdout);
    return status;
}
