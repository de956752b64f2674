"""Constants in the generated C are exact (every detector's compile, flash and literal
contract: test_contract.py)."""

import subprocess

import numpy as np
import pytest

from codegen.emit import render as emit


def test_float_literals_round_trip_through_the_c_compiler(tmp_path):
    rng = np.random.default_rng(7)
    bits = rng.integers(0, 2**32, 3000, dtype=np.uint64).astype(np.uint32)
    values = bits.view(np.float32)
    values = np.concatenate([values[np.isfinite(values)],
                             np.array([0.0, -0.0, 1e-45, 3.4028235e38, 0.1, 1 / 3], np.float32)])
    literals = ", ".join(emit.c_float(v) for v in values)
    (tmp_path / "r.c").write_text(
        "#include <stdio.h>\n#include <string.h>\n#include <stdint.h>\n"
        f"static const float v[] = {{{literals}}};\n"
        "int main(void) { size_t i; for (i = 0; i < sizeof v / sizeof v[0]; ++i) {"
        " uint32_t b; memcpy(&b, &v[i], 4); printf(\"%08x\\n\", (unsigned)b); } return 0; }\n")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", str(tmp_path / "r.c"), "-o",
                    str(tmp_path / "r")], check=True)
    printed = subprocess.run([str(tmp_path / "r")], capture_output=True, text=True).stdout.split()
    assert [int(p, 16) for p in printed] == values.view(np.uint32).tolist()


def test_non_finite_constant_is_refused():
    from codegen.errors import UserError

    with pytest.raises(UserError, match="must be finite"):
        emit.c_float(np.float32(np.inf))
