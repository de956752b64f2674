/*
 * simavr_runner - run an AVR firmware ELF in libsimavr and measure it.
 *
 *   simavr_runner [-m mcu] [-f hz] [-t max_seconds] [-q quiet_ms]
 *                 [-i input_file] firmware.elf
 *
 * stdout: the bytes the firmware sends on USART0, unchanged.
 * stderr: "CYCLES <n>" for every GPIOR0 = 1 ... GPIOR0 = 2 pair the firmware
 *         writes: the exact number of CPU cycles from the first store to the
 *         second (written when it happens, so it never splits a UART line);
 *         at the end "SP_MIN <address>", the lowest the stack pointer went
 *         (the stack grows down from RAMEND towards the static data).
 * -q: the firmware is "quiet" once it has sent nothing on USART0 for
 *     quiet_ms of simulated time.  With -i, the lines of input_file are sent
 *     to USART0 one at a time, each when the firmware is quiet (like a host
 *     that waits for the answer before sending the next line).  When every
 *     line is sent and the firmware is quiet again, the run ends with status 0.
 * Exit status: 0 when the firmware sleeps with interrupts off (simavr's clean
 * stop) or, with -q, is quiet after the last input; 1 on a crash or error;
 * 2 when max_seconds of simulated time pass.
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

/* Cycle of the last byte sent by the firmware or to it (for -q). */
static avr_cycle_count_t last_traffic;
/* Set while simavr's input FIFO is full: bytes sent then would be dropped. */
static int uart_xoff;

static void uart_output(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    putchar((int)(value & 0xFFu));
    last_traffic = ((avr_t *)param)->cycle;
}

static void uart_xon(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    uart_xoff = 0;
}

static void uart_xoff_notify(struct avr_irq_t *irq, uint32_t value, void *param)
{
    (void)irq;
    (void)value;
    (void)param;
    uart_xoff = 1;
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
            "usage: simavr_runner [-m mcu] [-f hz] [-t max_seconds] [-q quiet_ms]\n"
            "                     [-i input_file] firmware.elf\n");
    exit(1);
}

int main(int argc, char **argv)
{
    const char *mcu = "atmega328p";
    unsigned long frequency = 16000000UL;
    double max_seconds = 60.0;
    double quiet_ms = -1.0;
    const char *input_path = NULL;
    FILE *input = NULL;
    int line_open = 0; /* in the middle of sending an input line */
    int next = EOF;    /* next input byte, EOF when all is sent */
    elf_firmware_t firmware;
    avr_cycle_count_t max_cycles, quiet_cycles = 0;
    avr_t *avr;
    avr_irq_t *uart_input;
    uint32_t uart_flags = 0;
    uint16_t sp, sp_min = 0xFFFFu;
    int opt, state;

    while ((opt = getopt(argc, argv, "m:f:t:q:i:")) != -1) {
        switch (opt) {
        case 'm': mcu = optarg; break;
        case 'f': frequency = strtoul(optarg, NULL, 10); break;
        case 't': max_seconds = strtod(optarg, NULL); break;
        case 'q': quiet_ms = strtod(optarg, NULL); break;
        case 'i': input_path = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || frequency == 0 || (input_path && quiet_ms < 0.0)) {
        usage();
    }
    if (input_path) {
        input = fopen(input_path, "rb");
        if (input == NULL) {
            fprintf(stderr, "simavr_runner: cannot read %s\n", input_path);
            return 1;
        }
        next = getc(input);
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
        uart_output, avr);
    avr_irq_register_notify(
        avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XON),
        uart_xon, NULL);
    avr_irq_register_notify(
        avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUT_XOFF),
        uart_xoff_notify, NULL);
    uart_input = avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_INPUT);
    avr_register_io_write(avr, GPIOR0_ADDR, gpior0_write, NULL);

    max_cycles = (avr_cycle_count_t)(max_seconds * (double)frequency);
    if (quiet_ms >= 0.0) {
        quiet_cycles = (avr_cycle_count_t)(quiet_ms * 1e-3 * (double)frequency);
    }
    for (;;) {
        state = avr_run(avr);
        sp = (uint16_t)(avr->data[R_SPL] | (avr->data[R_SPH] << 8));
        if (sp < sp_min) {
            sp_min = sp;
        }
        if (state == cpu_Done || state == cpu_Crashed || avr->cycle >= max_cycles) {
            break;
        }
        if (quiet_ms < 0.0) {
            continue;
        }
        if (line_open && !uart_xoff) {
            /* one byte per instruction step: simavr's FIFO paces the rest */
            avr_raise_irq(uart_input, (uint32_t)next);
            line_open = next != '\n';
            next = getc(input);
            line_open = line_open && next != EOF;
            last_traffic = avr->cycle;
        } else if (!line_open && avr->cycle - last_traffic >= quiet_cycles) {
            if (next == EOF) {
                break;
            }
            line_open = 1;
        }
    }
    fflush(stdout);
    fprintf(stderr, "SP_MIN %u\n", (unsigned)sp_min);
    if (input) {
        fclose(input);
    }

    if (state == cpu_Done || (quiet_ms >= 0.0 && state != cpu_Crashed &&
                              avr->cycle < max_cycles)) {
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
