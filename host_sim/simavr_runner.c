/*
 * simavr_runner - run an AVR firmware ELF in libsimavr and measure it.
 *
 *   simavr_runner [-m mcu] [-f hz] [-t max_seconds] firmware.elf
 *
 * stdout: the bytes the firmware sends on USART0, unchanged.
 * stderr: "CYCLES <n>" for every GPIOR0 = 1 ... GPIOR0 = 2 pair the firmware
 *         writes: the exact number of CPU cycles from the first store to the
 *         second (written when it happens, so it never splits a UART line).
 * Exit status: 0 when the firmware sleeps with interrupts off (simavr's clean
 * stop), 1 on a crash or error, 2 when max_seconds of simulated time pass.
 *
 * Build: gcc -O2 -I/usr/include/simavr simavr_runner.c -lsimavr
 */
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_io.h>

/* Data-space address of GPIOR0 (I/O 0x1E) on the ATmega48/88/168/328 family. */
#define GPIOR0_ADDR 0x3E

static avr_cycle_count_t mark_cycle;
static int mark_open;

static void gpior0_write(avr_t *avr, avr_io_addr_t addr, uint8_t value,
                         void *param)
{
    (void)param;
    avr->data[addr] = value; /* an io write hook must store the value itself */
    if (value == 1) {
        mark_cycle = avr->cycle;
        mark_open = 1;
    } else if (value == 2 && mark_open) {
        fprintf(stderr, "CYCLES %llu\n",
                (unsigned long long)(avr->cycle - mark_cycle));
        mark_open = 0;
    }
}

static void uart_output(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)param;
    putchar((int)(value & 0xFFu));
}

/* simavr logs some messages to stdout; keep stdout for the UART alone. */
static void log_to_stderr(avr_t *avr, const int level, const char *format,
                          va_list args)
{
    if (avr == NULL || level <= avr->log) {
        vfprintf(stderr, format, args);
    }
}

static void usage(void)
{
    fprintf(stderr,
            "usage: simavr_runner [-m mcu] [-f hz] [-t max_seconds] firmware.elf\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *mcu = "atmega328p";
    unsigned long frequency = 16000000UL;
    double max_seconds = 60.0;
    elf_firmware_t firmware;
    avr_cycle_count_t max_cycles;
    avr_t *avr;
    uint32_t uart_flags = 0;
    int opt, state;

    while ((opt = getopt(argc, argv, "m:f:t:")) != -1) {
        switch (opt) {
        case 'm': mcu = optarg; break;
        case 'f': frequency = strtoul(optarg, NULL, 10); break;
        case 't': max_seconds = strtod(optarg, NULL); break;
        default: usage();
        }
    }
    if (optind != argc - 1 || frequency == 0) {
        usage();
    }

    avr_global_logger_set(log_to_stderr);
    memset(&firmware, 0, sizeof firmware);
    if (elf_read_firmware(argv[optind], &firmware) != 0) {
        fprintf(stderr, "simavr_runner: cannot read %s\n", argv[optind]);
        return 1;
    }
    snprintf(firmware.mmcu, sizeof firmware.mmcu, "%s", mcu);
    firmware.frequency = (uint32_t)frequency;

    avr = avr_make_mcu_by_name(mcu);
    if (avr == NULL) {
        fprintf(stderr, "simavr_runner: unknown mcu %s\n", mcu);
        return 1;
    }
    avr_init(avr);
    avr->log = LOG_WARNING;
    avr_load_firmware(avr, &firmware);
    avr->frequency = (uint32_t)frequency;

    /* Raw UART bytes to stdout instead of simavr's coloured stderr lines. */
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &uart_flags);
    uart_flags &= ~(uint32_t)AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &uart_flags);
    avr_irq_register_notify(
        avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
        uart_output, NULL);
    avr_register_io_write(avr, GPIOR0_ADDR, gpior0_write, NULL);

    max_cycles = (avr_cycle_count_t)(max_seconds * (double)frequency);
    do {
        state = avr_run(avr);
    } while (state != cpu_Done && state != cpu_Crashed &&
             avr->cycle < max_cycles);
    fflush(stdout);

    if (state == cpu_Done) {
        return 0;
    }
    if (state == cpu_Crashed) {
        fprintf(stderr, "simavr_runner: firmware crashed at cycle %llu\n",
                (unsigned long long)avr->cycle);
        return 1;
    }
    fprintf(stderr, "simavr_runner: still running after %g s simulated\n",
            max_seconds);
    return 2;
}
