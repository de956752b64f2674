/*
 * simavr_runner - run an AVR firmware ELF in libsimavr and measure it.
 *
 *   simavr_runner [-m mcu] [-f hz] [-t max_seconds] [-q quiet_ms]
 *                 [-i input_file | -p] [-P profile_file] firmware.elf
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
 * -p: USART0 is bridged to a new pseudo-terminal instead of stdout and -i,
 *     like a board on a serial port: "PTY /dev/pts/N" on stderr once it is
 *     ready, then the bytes go both ways as the firmware sends and the other
 *     side writes them.  Simulated time is held back to wall-clock time, so
 *     baud-rate timing is that of a real board and an idle firmware costs
 *     little host CPU.  The run ends when the firmware stops, or when the
 *     other side, having opened the pty, closes it (after that, status 0).
 *     No time limit unless -t is given.
 * -P: a profile of the marked calls: for every instruction address executed
 *     between a GPIOR0 = 1 and the next GPIOR0 = 2, a line "<byte address>
 *     <cycles> <executions>" in profile_file (the cycles of each instruction,
 *     an interrupt taken after it included).
 * Exit status: 0 when the firmware sleeps with interrupts off (simavr's clean
 * stop), with -q is quiet after the last input, or with -p is hung up on;
 * 1 on a crash or error; 2 when max_seconds of simulated time pass.
 *
 * Build: gcc -O2 -I/usr/include/simavr simavr_runner.c -lsimavr
 */
#define _DEFAULT_SOURCE   /* cfmakeraw */
#define _XOPEN_SOURCE 700 /* posix_openpt, grantpt, unlockpt, ptsname */

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include <avr_uart.h>
#include <sim_avr.h>
#include <sim_elf.h>
#include <sim_io.h>

/* Data-space address of GPIOR0 (I/O 0x1E) on the ATmega48/88/168/328 family. */
#define GPIOR0_ADDR 0x3E

static avr_cycle_count_t mark_cycle;
static int mark_open;

/* -P: cycles and executions per flash word, inside the marks */
#define FLASH_WORDS (1u << 15)
static uint64_t *profile_cycles;
static uint32_t *profile_count;

static int write_profile(const char *path)
{
    FILE *out = fopen(path, "w");
    uint32_t w;

    if (out == NULL) {
        fprintf(stderr, "simavr_runner: cannot write %s\n", path);
        return 1;
    }
    for (w = 0; w < FLASH_WORDS; ++w) {
        if (profile_count[w]) {
            fprintf(out, "%u %llu %u\n", (unsigned)(2u * w),
                    (unsigned long long)profile_cycles[w], (unsigned)profile_count[w]);
        }
    }
    return fclose(out) != 0;
}

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

/* -p: the pseudo-terminal and the bytes on their way through it. */
struct bridge {
    int master;
    uint8_t in[256]; /* read from the pty, not yet given to the UART */
    size_t in_length, in_sent;
    uint8_t out[256]; /* sent by the firmware, not yet written to the pty */
    size_t out_length;
    struct timespec start; /* wall-clock time of simulated cycle 0 */
};

/* Writes what the firmware sent; 0 once the other side has closed the pty.
 * Blocking: a reader that stops reading stalls the simulation, no byte is
 * lost. */
static int bridge_flush(struct bridge *b)
{
    size_t done = 0;
    while (done < b->out_length) {
        const ssize_t n = write(b->master, b->out + done, b->out_length - done);
        if (n < 0 && errno != EINTR) {
            return 0;
        }
        done += n > 0 ? (size_t)n : 0u;
    }
    b->out_length = 0;
    return 1;
}

static void uart_to_pty(struct avr_irq_t *irq, uint32_t value, void *param)
{
    struct bridge *b = param;
    (void)irq;
    b->out[b->out_length++] = (uint8_t)(value & 0xFFu);
    if (b->out_length == sizeof b->out && !bridge_flush(b)) {
        b->out_length = 0; /* hung up: the next bridge_step ends the run */
    }
}

/* A new pseudo-terminal in raw mode (set through the master, it applies to
 * the slave side); -1 on failure. */
static int bridge_open(struct bridge *b)
{
    struct termios raw;
    const char *name;

    memset(b, 0, sizeof *b);
    b->master = posix_openpt(O_RDWR | O_NOCTTY);
    if (b->master < 0 || grantpt(b->master) != 0 || unlockpt(b->master) != 0 ||
        (name = ptsname(b->master)) == NULL || tcgetattr(b->master, &raw) != 0) {
        perror("simavr_runner: pseudo-terminal");
        return -1;
    }
    cfmakeraw(&raw);
    if (tcsetattr(b->master, TCSANOW, &raw) != 0) {
        perror("simavr_runner: pseudo-terminal raw mode");
        return -1;
    }
    clock_gettime(CLOCK_MONOTONIC, &b->start);
    fprintf(stderr, "PTY %s\n", name);
    fflush(stderr);
    return 0;
}

/* Called every millisecond of simulated time: writes the firmware's bytes,
 * waits while simulated time is ahead of wall-clock time (waking up for
 * input), and reads the host's bytes once the previous ones are all in the
 * UART.  Returns 0 when the other side has hung up. */
static int bridge_step(struct bridge *b, const avr_t *avr)
{
    struct timespec now;
    struct pollfd pty;
    long long ahead_ms;
    ssize_t n;

    if (!bridge_flush(b)) {
        return 0;
    }
    clock_gettime(CLOCK_MONOTONIC, &now);
    ahead_ms = (long long)(avr->cycle * 1000u / avr->frequency) -
               ((long long)(now.tv_sec - b->start.tv_sec) * 1000 +
                (now.tv_nsec - b->start.tv_nsec) / 1000000);
    pty.fd = b->master;
    pty.events = b->in_sent < b->in_length ? 0 : POLLIN;
    pty.revents = 0;
    if (poll(&pty, 1, ahead_ms > 0 ? (int)ahead_ms : 0) < 0) {
        return errno == EINTR;
    }
    if (pty.revents & POLLIN) {
        n = read(b->master, b->in, sizeof b->in);
        if (n > 0) {
            b->in_length = (size_t)n;
            b->in_sent = 0;
            return 1;
        }
        return n < 0 && (errno == EINTR || errno == EAGAIN);
    }
    return !(pty.revents & (POLLHUP | POLLERR));
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
            "                     [-i input_file | -p] [-P profile_file] firmware.elf\n");
    exit(1);
}

/* avr-gcc moves the stack pointer by a frame in two byte writes, SPH then SPL,
 * with interrupts off between them: after the first, SP holds the new high
 * byte beside the old low byte, up to 255 B below anything the program
 * reaches.  That half-written value is no stack depth, so the deepest SP is
 * sampled only when no half of it waits for the other (at most 3
 * instructions: OUT SPH, OUT SREG, OUT SPL).  Whether the instruction at the
 * PC is an OUT to SPL or SPH: */
static int writes_sp_half(const avr_t *avr)
{
    const uint16_t op = (uint16_t)(avr->flash[avr->pc] | (avr->flash[avr->pc + 1] << 8));
    unsigned io;

    if ((op & 0xF800u) != 0xB800u) { /* OUT A, Rr: 1011 1AAr rrrr AAAA */
        return 0;
    }
    io = ((op >> 5) & 0x30u) | (op & 0x0Fu);
    return io == 0x3Du || io == 0x3Eu;
}

int main(int argc, char **argv)
{
    const char *mcu = "atmega328p";
    unsigned long frequency = 16000000UL;
    double max_seconds = -1.0; /* default: 60, none with -p */
    double quiet_ms = -1.0;
    const char *input_path = NULL;
    const char *profile_path = NULL; /* -P */
    FILE *input = NULL;
    int pty = 0;       /* -p */
    int hung_up = 0;   /* -p: the other side closed the pty */
    struct bridge bridge;
    avr_cycle_count_t next_step = 0; /* -p: cycle of the next bridge_step */
    int line_open = 0; /* in the middle of sending an input line */
    int next = EOF;    /* next input byte, EOF when all is sent */
    elf_firmware_t firmware;
    avr_cycle_count_t max_cycles, quiet_cycles = 0;
    avr_t *avr;
    avr_irq_t *uart_input;
    uint32_t uart_flags = 0;
    uint16_t sp, sp_min = 0xFFFFu;
    int sp_wait = 0; /* instructions until a half-written SP counts again */
    int opt, state;

    while ((opt = getopt(argc, argv, "m:f:t:q:i:pP:")) != -1) {
        switch (opt) {
        case 'm': mcu = optarg; break;
        case 'f': frequency = strtoul(optarg, NULL, 10); break;
        case 't': max_seconds = strtod(optarg, NULL); break;
        case 'q': quiet_ms = strtod(optarg, NULL); break;
        case 'i': input_path = optarg; break;
        case 'p': pty = 1; break;
        case 'P': profile_path = optarg; break;
        default: usage();
        }
    }
    if (optind != argc - 1 || frequency < 1000 || (input_path && quiet_ms < 0.0) ||
        (pty && (input_path || quiet_ms >= 0.0))) {
        usage();
    }
    if (max_seconds < 0.0) {
        max_seconds = pty ? 0.0 : 60.0;
    }
    if (input_path) {
        input = fopen(input_path, "rb");
        if (input == NULL) {
            fprintf(stderr, "simavr_runner: cannot read %s\n", input_path);
            return 1;
        }
        next = getc(input);
    }

    if (profile_path) {
        profile_cycles = calloc(FLASH_WORDS, sizeof *profile_cycles);
        profile_count = calloc(FLASH_WORDS, sizeof *profile_count);
        if (profile_cycles == NULL || profile_count == NULL) {
            fprintf(stderr, "simavr_runner: out of memory\n");
            return 1;
        }
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

    /* Raw UART bytes (stdout or the pty) instead of simavr's coloured stderr lines. */
    avr_ioctl(avr, AVR_IOCTL_UART_GET_FLAGS('0'), &uart_flags);
    uart_flags &= ~(uint32_t)AVR_UART_FLAG_STDIO;
    avr_ioctl(avr, AVR_IOCTL_UART_SET_FLAGS('0'), &uart_flags);
    if (pty) {
        if (bridge_open(&bridge) != 0) {
            return 1;
        }
        avr_irq_register_notify(
            avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
            uart_to_pty, &bridge);
    } else {
        avr_irq_register_notify(
            avr_io_getirq(avr, AVR_IOCTL_UART_GETIRQ('0'), UART_IRQ_OUTPUT),
            uart_output, avr);
    }
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
        const int half = writes_sp_half(avr);
        if (profile_path && mark_open) {
            const uint32_t word = (avr->pc >> 1) & (FLASH_WORDS - 1u);
            const avr_cycle_count_t before = avr->cycle;
            state = avr_run(avr);
            profile_cycles[word] += avr->cycle - before;
            ++profile_count[word];
        } else {
            state = avr_run(avr);
        }
        if (half) {
            sp_wait = sp_wait ? 0 : 3;
        } else if (sp_wait) {
            --sp_wait;
        }
        sp = (uint16_t)(avr->data[R_SPL] | (avr->data[R_SPH] << 8));
        if (!sp_wait && sp < sp_min) {
            sp_min = sp;
        }
        if (state == cpu_Done || state == cpu_Crashed ||
            (max_cycles && avr->cycle >= max_cycles)) {
            break;
        }
        if (pty) {
            if (bridge.in_sent < bridge.in_length && !uart_xoff) {
                avr_raise_irq(uart_input, bridge.in[bridge.in_sent++]);
            }
            if (avr->cycle >= next_step) {
                next_step = avr->cycle + frequency / 1000u;
                if (!bridge_step(&bridge, avr)) {
                    hung_up = 1;
                    break;
                }
            }
            continue;
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
    if (pty) {
        bridge_flush(&bridge);
        close(bridge.master);
    }
    fflush(stdout);
    fprintf(stderr, "SP_MIN %u\n", (unsigned)sp_min);
    if (profile_path && write_profile(profile_path) != 0) {
        return 1;
    }
    if (input) {
        fclose(input);
    }

    if (state == cpu_Done || hung_up ||
        (quiet_ms >= 0.0 && state != cpu_Crashed && avr->cycle < max_cycles)) {
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
