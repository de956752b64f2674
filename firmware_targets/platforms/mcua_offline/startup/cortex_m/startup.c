/* Reset and fault handling for bare-metal Cortex-M under qemu with
 * semihosting (newlib's librdimon, linked with --specs=rdimon.specs and
 * -nostartfiles, so the C runtime set-up is done here). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

extern uint32_t __data_start__, __data_end__, __data_load__;
extern uint32_t __bss_start__, __bss_end__;
/* Declared as a function only so that it fits the vector table's type: it is
 * the linker script's initial stack pointer. */
extern void __stack_top__(void);

extern void initialise_monitor_handles(void);
extern void __libc_init_array(void);
extern int main(void);

/* __libc_init_array calls these; crti.o/crtn.o are left out by -nostartfiles. */
void _init(void) {}
void _fini(void) {}

void Reset_Handler(void)
{
    memcpy(&__data_start__, &__data_load__,
           (size_t)((char *)&__data_end__ - (char *)&__data_start__));
    memset(&__bss_start__, 0,
           (size_t)((char *)&__bss_end__ - (char *)&__bss_start__));
#if defined(__ARM_FP)
    /* Grant full access to coprocessors 10 and 11 (the FPU) in SCB->CPACR. */
    *(volatile uint32_t *)0xE000ED88u |= 0xFu << 20;
    __asm__ volatile("dsb\n\tisb" ::: "memory");
#endif
    initialise_monitor_handles();
    __libc_init_array();
    exit(main());
}

/* A fault ends the simulation with exit code 100 instead of hanging qemu. */
static void Fault_Handler(void)
{
    _Exit(100);
}

/* Core exceptions only: the firmware enables no peripheral interrupt. */
__attribute__((section(".isr_vector"), used))
static void (*const vector_table[16])(void) = {
    __stack_top__,
    Reset_Handler,
    Fault_Handler, /* NMI */
    Fault_Handler, /* HardFault */
    Fault_Handler, /* MemManage */
    Fault_Handler, /* BusFault */
    Fault_Handler, /* UsageFault */
    0, 0, 0, 0,
    Fault_Handler, /* SVCall */
    Fault_Handler, /* DebugMonitor */
    0,
    Fault_Handler, /* PendSV */
    Fault_Handler, /* SysTick */
};
