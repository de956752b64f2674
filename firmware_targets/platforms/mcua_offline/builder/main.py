# SCons build script of the mcua_offline platform.
#
# The board's build.toolchain is a GNU cross-compiler prefix that must be on
# PATH (Debian packages, see host_sim/targets.py APT_PACKAGES); nothing is
# downloaded.  build.cpu_flags go to compiler and linker, build.link_flags to
# the linker only; build.startup / build.ldscript name startup code and a
# linker script kept in this platform.

import os

from SCons.Script import (  # pylint: disable=import-error
    AlwaysBuild,
    Builder,
    Default,
    DefaultEnvironment,
)

env = DefaultEnvironment()
platform = env.PioPlatform()
board = env.BoardConfig()
prefix = board.get("build.toolchain")
cpu_flags = board.get("build.cpu_flags").split()

env.Replace(
    AR=prefix + "-ar",
    AS=prefix + "-gcc",
    CC=prefix + "-gcc",
    CXX=prefix + "-g++",
    OBJCOPY=prefix + "-objcopy",
    RANLIB=prefix + "-ranlib",
    SIZETOOL=prefix + "-size",
    PROGNAME="firmware",
    PROGSUFFIX=".elf",
    # What `pio run` prints as Flash / RAM use (sysv output of size -A).
    SIZEPROGREGEXP=r"^(?:\.text|\.init|\.rodata|\.data|\.isr_vector|\.ARM\.exidx)\s+(\d+).*",
    SIZEDATAREGEXP=r"^(?:\.data|\.bss|\.noinit|\.tdata|\.tbss)\s+(\d+).*",
    SIZECHECKCMD="$SIZETOOL -A -d $SOURCES",
    SIZEPRINTCMD="$SIZETOOL -B -d $SOURCES",
)

env.Append(
    ASFLAGS=cpu_flags + ["-x", "assembler-with-cpp"],
    CCFLAGS=cpu_flags + ["-Os", "-Wall", "-ffunction-sections", "-fdata-sections"],
    LINKFLAGS=cpu_flags + ["-Os", "-Wl,--gc-sections"]
    + board.get("build.link_flags", "").split(),
    LIBS=["m"],
)
if "build.f_cpu" in board:
    env.Append(CPPDEFINES=[("F_CPU", "$BOARD_F_CPU")])

if "build.startup" in board:
    env.BuildSources(
        os.path.join("$BUILD_DIR", "startup"),
        os.path.join(platform.get_dir(), "startup", board.get("build.startup")),
    )
if "build.ldscript" in board:
    env.Replace(
        LDSCRIPT_PATH=os.path.join(
            platform.get_dir(), "ldscripts", board.get("build.ldscript")
        )
    )

env.Append(
    BUILDERS=dict(
        ElfToHex=Builder(
            action=env.VerboseAction(
                "$OBJCOPY -O ihex -R .eeprom $SOURCES $TARGET", "Building $TARGET"
            ),
            suffix=".hex",
        )
    )
)

program = env.BuildProgram()
targets = [program]
if prefix == "avr":
    targets.append(env.ElfToHex(os.path.join("$BUILD_DIR", "${PROGNAME}"), program))

    # Upload to a real board with Debian's avrdude and the Optiboot loader.
    def _before_upload(source, target, env):  # pylint: disable=unused-argument
        if not env.get("UPLOAD_PORT"):
            env.AutodetectUploadPort()

    env.Replace(
        UPLOADER="avrdude",
        UPLOADERFLAGS=[
            "-p", "$BOARD_MCU",
            "-c", "$UPLOAD_PROTOCOL",
            "-b", "$UPLOAD_SPEED",
            "-P", "$UPLOAD_PORT",
            "-D",
        ],
        UPLOADCMD="$UPLOADER $UPLOADERFLAGS -U flash:w:$SOURCES:i",
    )
    AlwaysBuild(
        env.Alias(
            "upload",
            targets[1],
            [
                env.VerboseAction(_before_upload, "Looking for upload port..."),
                env.VerboseAction("$UPLOADCMD", "Uploading $SOURCE"),
            ],
        )
    )

size = env.Alias("size", program, env.VerboseAction("$SIZEPRINTCMD", "Size"))
AlwaysBuild(size)
Default(targets + [size])
