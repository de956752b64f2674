"""Header names a generated file must not take.

`generate` writes `<model>.h`, `<model>_channels.h` and `<model>_<detector>.h` into a
directory that a build puts on its include path (-I), which is searched before the system
directories: a generated `math.h` would replace the C library's for every file of the
build, and the build would fail far from the cause.  So no generated file may have the
name of a header that the toolchains the project builds with include by its bare name:
their top-level headers.  Names compare in lower case, as file names do on macOS and
Windows.  Headers in subdirectories (<avr/io.h>, <sys/types.h>) are included with the
directory and cannot be shadowed by a flat file.  tests/test_cnames.py checks that every
top-level header of the installed toolchains is listed.
"""

from __future__ import annotations

_GROUPS = {
    "the C standard library (C89 to C23)": """
        assert complex ctype errno fenv float inttypes iso646 limits locale math setjmp signal
        stdalign stdarg stdatomic stdbit stdbool stdckdint stddef stdint stdio stdlib
        stdnoreturn string tgmath threads time uchar wchar wctype""",
    "POSIX": """
        aio cpio dirent dlfcn fcntl fmtmsg fnmatch ftw glob grp iconv langinfo libgen monetary
        mqueue ndbm netdb nl_types poll pthread pwd regex sched search semaphore spawn strings
        stropts syslog tar termios trace ulimit unistd utime utmpx wordexp""",
    "the GNU C library": """
        aliases alloca ar argp argz byteswap elf endian envz err error execinfo features
        fpu_control fstab fts gconv getopt gshadow ifaddrs lastlog libintl link malloc mcheck
        memory mntent nss obstack paths printf proc_service pty re_comp regexp resolv sgtty
        shadow stab stdio_ext syscall sysexits termio thread_db ttyent ucontext utmp values
        wait""",
    "newlib / picolibc": """
        devctl envlock fastmath ieeefp newlib picolibc picotls reent regdef semihost unctrl""",
    "AVR libc": """
        stdfix""",
    "the compilers (gcc, clang)": """
        acc_prof altivec arm64intr arm_acle arm_bf16 arm_cde arm_cmse arm_fp16 arm_mve
        arm_mve_types arm_neon arm_sve armintr backtrace builtins cet cpuid gcov
        hexagon_circ_brev_intrinsics hexagon_protos hexagon_types hvx_hexagon_protos ieee754
        mm3dnow mm_malloc msa omp openacc quadmath quadmath_weak riscv_vector syslimits unwind
        vadefs varargs wasm_simd128""",
    "the Arduino core": """
        arduino binary client hardwareserial hardwareserial_private ipaddress new
        pins_arduino pluggableusb print printable server stream udp usbapi usbcore usbdesc
        wcharacter wiring_private wstring""",
    "an Arduino library": """
        bridge eeprom esp8266wifi ethernet firmata gsm hid keyboard liquidcrystal mouse sd
        servo softwareserial spi stepper tft wifi wire""",
    "Windows (MSVC, MinGW)": """
        conio corecrt crtdefs direct intrin io process sal tchar vcruntime windows winsock
        winsock2""",
}

# lower-case header name without .h -> where it comes from
TAKEN: dict[str, str] = {name: origin for origin, names in _GROUPS.items()
                         for name in names.split()}


def origin(header: str) -> str | None:
    """Where a header file name (e.g. "Math.h") is already taken, or None.  x86's many
    intrinsics headers (immintrin.h, avx2intrin.h, ...) all end in "intrin"."""
    stem = header.lower().removesuffix(".h")
    if stem.endswith("intrin"):
        return "the compilers (gcc, clang)"
    return TAKEN.get(stem)
