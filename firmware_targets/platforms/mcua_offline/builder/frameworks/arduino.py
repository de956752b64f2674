# Arduino framework from Debian's arduino-core-avr (Arduino AVR core 1.8.7).

import os
import sys

from SCons.Script import DefaultEnvironment  # pylint: disable=import-error

env = DefaultEnvironment()
board = env.BoardConfig()

CORE_ROOT = "/usr/share/arduino/hardware/arduino/avr"
core_dir = os.path.join(CORE_ROOT, "cores", board.get("build.core"))
variant_dir = os.path.join(CORE_ROOT, "variants", board.get("build.variant"))
if not os.path.isdir(core_dir):
    sys.stderr.write("Error: %s not found; install Debian's arduino-core-avr\n" % core_dir)
    env.Exit(1)

env.Append(
    CPPDEFINES=[
        ("ARDUINO", 10807),
        "ARDUINO_" + board.get("build.board"),
        "ARDUINO_ARCH_AVR",
        # avr-gcc 5.4 lacks DECIMAL_DIG, which WString.cpp of core 1.8.7 uses.
        ("DECIMAL_DIG", "__DECIMAL_DIG__"),
    ],
    CFLAGS=["-std=gnu11"],
    CXXFLAGS=[
        "-std=gnu++11",
        "-fpermissive",
        "-fno-exceptions",
        "-fno-threadsafe-statics",
    ],
    CPPPATH=[core_dir, variant_dir],
    # Lets the library finder resolve Debian's EEPROM, SPI, Wire, ...
    LIBSOURCE_DIRS=[os.path.join(CORE_ROOT, "libraries")],
)

env.Prepend(
    LIBS=[env.BuildLibrary(os.path.join("$BUILD_DIR", "FrameworkArduino"), core_dir)]
)
