# PRE extra script of every environment: compiles the generated detector
# sources (mcua_*.c, <model>_<detector>.c) and puts their headers on the
# include path.  The directory is $MCUA_GENERATED_DIR, by default
# firmware_targets/generated.  It must run as PRE: after the platform script
# has constructed the program, PlatformIO refuses new sources.

import os

Import("env")  # noqa: F821  pylint: disable=undefined-variable

generated_dir = os.path.abspath(
    os.environ.get("MCUA_GENERATED_DIR")
    or os.path.join(env.subst("$PROJECT_DIR"), "firmware_targets", "generated")  # noqa: F821
)
if not os.path.isfile(os.path.join(generated_dir, "mcua_bench.h")):
    raise SystemExit("Error: no mcua_bench.h in generated dir %s" % generated_dir)

env.Append(CPPPATH=[generated_dir])  # noqa: F821
env.BuildSources(os.path.join("$BUILD_DIR", "generated"), generated_dir)  # noqa: F821
