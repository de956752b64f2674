# PRE extra script of every environment: compiles the generated sources
# (mcua_firmware.c, the runtime's mcua_*.c) and puts their headers on the
# include path.  The directory is $MCUA_GENERATED_DIR, by default
# firmware_targets/generated, written by
# `mcu-anomaly generate BUNDLE --firmware --out firmware_targets/generated`.
# It must run as PRE: after the platform script has constructed the program,
# PlatformIO refuses new sources.  $MCUA_INCLUDE_DIRS (os.pathsep-separated) adds
# include directories the generated sources need (the bench's peers: emlearn's).

import os

Import("env")  # noqa: F821  pylint: disable=undefined-variable

generated_dir = os.path.abspath(
    os.environ.get("MCUA_GENERATED_DIR")
    or os.path.join(env.subst("$PROJECT_DIR"), "firmware_targets", "generated")  # noqa: F821
)
if not os.path.isfile(os.path.join(generated_dir, "mcua_firmware.h")):
    raise SystemExit(
        "Error: no generated firmware sources (mcua_firmware.h) in %s: run "
        "`mcu-anomaly generate BUNDLE --firmware --out %s` first, or set "
        "MCUA_GENERATED_DIR" % (generated_dir, generated_dir)
    )

extra = [d for d in os.environ.get("MCUA_INCLUDE_DIRS", "").split(os.pathsep) if d]
env.Append(CPPPATH=[generated_dir] + extra)  # noqa: F821
env.BuildSources(os.path.join("$BUILD_DIR", "generated"), generated_dir)  # noqa: F821
