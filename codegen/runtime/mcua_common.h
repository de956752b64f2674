/*
 * mcua_common.h - shared definitions of the mcu-anomaly C runtime.
 *
 * Contract with generated headers:
 *  - every generated header checks MCUA_RUNTIME_VERSION and stops compilation
 *    with #error when it was generated for another runtime version;
 *  - model constants live in flash: MCUA_FLASH puts them in PROGMEM on AVR
 *    and is empty elsewhere; the runtime reads them only through the
 *    mcua_read_* accessors below, never by plain dereference.
 *
 * The runtime is C99, compiles as C++11, never allocates, and keeps float
 * arithmetic in single precision with every literal f-suffixed.  It turns
 * floating-point contraction off itself (MCUA_FP_CONTRACT_OFF_BEGIN below),
 * so results match the Python reference bit for bit without build flags.
 */
#ifndef MCUA_COMMON_H
#define MCUA_COMMON_H

#include <stdint.h>
#include <string.h>

#define MCUA_RUNTIME_VERSION 5

#if defined(__AVR__)
#include <avr/pgmspace.h>
#define MCUA_FLASH PROGMEM
#define mcua_read_f32(p) pgm_read_float(p)
#define mcua_read_u8(p) pgm_read_byte(p)
#define mcua_read_i8(p) ((int8_t)pgm_read_byte(p))
#define mcua_read_u16(p) pgm_read_word(p)
#define mcua_read_i32(p) ((int32_t)pgm_read_dword(p))
#define mcua_read_ptr(p) pgm_read_ptr(p)
#else
#define MCUA_FLASH
#define mcua_read_f32(p) (*(p))
#define mcua_read_u8(p) (*(p))
#define mcua_read_i8(p) (*(p))
#define mcua_read_u16(p) (*(p))
#define mcua_read_i32(p) (*(p))
#define mcua_read_ptr(p) (*(p))
#endif

/* Generated headers define their constants `static`; this keeps a
 * translation unit that includes a header without using every constant free
 * of -Wunused warnings. */
#if defined(__GNUC__)
#define MCUA_UNUSED __attribute__((unused))
#else
#define MCUA_UNUSED
#endif

/* No fused multiply-add: a * b + c rounded once differs from the reference's
 * product and sum, each rounded.  Every unit with float arithmetic puts its
 * functions, inline ones in headers too, between MCUA_FP_CONTRACT_OFF_BEGIN
 * and MCUA_FP_CONTRACT_OFF_END (at file scope, after its #includes):
 *  - GCC (gcc, g++, arm-none-eabi-gcc/g++, riscv64-unknown-elf-gcc): an optimize
 *    pragma, pushed and popped; it overrides -ffp-contract=fast.  GCC does
 *    not inline a function of the region into code outside one, so the
 *    caller's contraction never reaches it.  Only where the target has a
 *    fused multiply-add (__FP_FAST_FMAF, __FP_FAST_FMA): elsewhere (AVR,
 *    Cortex-M3, rv32imc) there is nothing to fuse, and the pragma would
 *    still change some -Os code (measured: avr-gcc 5.4, mcua_autoencoder.c
 *    28 bytes larger).
 *  - clang: STDC FP_CONTRACT OFF, and DEFAULT at the end (the command line's
 *    mode: a pragma of the includer's from before is not restored).  clang's
 *    -ffp-contract=fast, also implied by -ffast-math, fuses regardless of
 *    any pragma: do not build the runtime with either.
 *  - any other compiler: #error, unless the build turns contraction off
 *    itself (e.g. -ffp-contract=off) and says so by defining
 *    MCUA_FP_CONTRACT_OFF_BY_FLAG, which drops the pragmas everywhere. */
#if defined(MCUA_FP_CONTRACT_OFF_BY_FLAG)
#define MCUA_FP_CONTRACT_OFF_BEGIN
#define MCUA_FP_CONTRACT_OFF_END
#elif defined(__clang__)
#define MCUA_FP_CONTRACT_OFF_BEGIN _Pragma("STDC FP_CONTRACT OFF")
#define MCUA_FP_CONTRACT_OFF_END _Pragma("STDC FP_CONTRACT DEFAULT")
#elif defined(__GNUC__) && !defined(__FP_FAST_FMAF) && !defined(__FP_FAST_FMA)
#define MCUA_FP_CONTRACT_OFF_BEGIN
#define MCUA_FP_CONTRACT_OFF_END
#elif defined(__GNUC__)
#define MCUA_FP_CONTRACT_OFF_BEGIN \
    _Pragma("GCC push_options") _Pragma("GCC optimize (\"fp-contract=off\")")
#define MCUA_FP_CONTRACT_OFF_END _Pragma("GCC pop_options")
#else
#error "mcu-anomaly: this compiler is not known to turn floating-point contraction off from the source; build with contraction off (no fused multiply-add, e.g. -ffp-contract=off) and define MCUA_FP_CONTRACT_OFF_BY_FLAG"
#endif

/* -ffast-math (gcc, clang) reorders sums, drops NaN and Inf tests and lets
 * clang fuse whatever the pragmas say: the reference's answers are lost. */
#if defined(__FAST_MATH__)
#error "mcu-anomaly: built with -ffast-math, which changes float results (reordered sums, NaN and Inf tests dropped); build the runtime without it (e.g. -fno-fast-math)"
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* True for every finite float, false for NaN and +-Inf.  Tests the exponent
 * bits so that no libm call or float comparison is needed. */
static inline int mcua_is_finite(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return (bits & 0x7F800000UL) != 0x7F800000UL;
}

/* +Inf, the score of a sample that holds NaN or +-Inf. */
static inline float mcua_infinity(void)
{
    const uint32_t bits = 0x7F800000UL;
    float x;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* |x| by clearing the sign bit: fabsf's (and numpy's) result, also for -0
 * and NaN, without a float comparison. */
static inline float mcua_abs(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    bits &= 0x7FFFFFFFUL;
    memcpy(&x, &bits, sizeof x);
    return x;
}

/* Whether floats are software here (AVR, soft-float ARM, RISC-V without F):
 * where a float operation is a library call, integer work that avoids one
 * pays. */
#if defined(__AVR__) || defined(__SOFTFP__) || (defined(__riscv) && !defined(__riscv_flen))
#define MCUA_SOFT_FLOAT 1
#else
#define MCUA_SOFT_FLOAT 0
#endif

/* a > b, for a with its sign bit clear (+0 up to +Inf, not NaN) and b not
 * NaN.  Non-negative floats order like their bit patterns, so with software
 * floats this needs integer comparisons only (on AVR ~10 cycles instead of
 * ~50 for a float comparison); a float unit compares in one instruction,
 * with the same result on that domain. */
static inline int mcua_nonneg_greater(float a, float b)
{
#if MCUA_SOFT_FLOAT
    uint32_t ia, ib;
    memcpy(&ia, &a, sizeof ia);
    memcpy(&ib, &b, sizeof ib);
    if (ib & 0x80000000UL) {
        return (ia | (ib & 0x7FFFFFFFUL)) != 0; /* b <= -0: false only for +0 > -0 */
    }
    return ia > ib;
#else
    return a > b;
#endif
}

/* A key that orders floats as numbers when compared as integers: +bits for
 * a clear sign bit, -(bits without the sign) for a set one.  Both zeros get
 * 0, -Inf and +Inf the extreme keys of the numbers, and NaNs keys beyond
 * them.  Where floats are software (AVR, rv32imc) a key comparison is far
 * cheaper than a float comparison; on a Cortex-M4F a few instructions more
 * than vcmp. */
static inline int32_t mcua_order_key(float x)
{
    uint32_t bits;
    int32_t magnitude;
    memcpy(&bits, &x, sizeof bits);
    magnitude = (int32_t)(bits & 0x7FFFFFFFUL);
    return (bits & 0x80000000UL) ? -magnitude : magnitude;
}

/* a <= b, for a and b not NaN (so -0 <= +0 and +0 <= -0, as IEEE says). */
static inline int mcua_less_equal(float a, float b)
{
    return mcua_order_key(a) <= mcua_order_key(b);
}

/* x > 0 for x not NaN, from the bits. */
static inline int mcua_positive(float x)
{
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    return bits != 0 && !(bits & 0x80000000UL);
}

#ifdef __cplusplus
}
#endif

#endif /* MCUA_COMMON_H */
