"""The firmware app's generated sources (built and run by host_sim/firmware_target.py).

The generated directory holds everything `generate` writes plus (templates/firmware*.j2):
  mcua_firmware.h/.c  the bundle's detectors behind one dispatch function, with the state
                      of the streaming detectors;
  mcua_vectors.h      test vectors in flash (their IEEE-754 bits), run at start-up.
The app (firmware_targets/app) prints one `R <detector> <sample> <hex> <flag>` line per
sample and detector; host_sim builds it with PlatformIO and runs it in simavr or qemu.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codegen.emit import render as emit
from codegen.bundle import Bundle
from codegen.files import Output, write_tree

F32 = np.float32
FIRMWARE_HEADER = "mcua_firmware.h"  # marks a directory as generated firmware sources
FIRMWARE = Output("generated firmware sources", FIRMWARE_HEADER, "generate --firmware")
STUB = {"name": "stub", "kind": "stub", "score_args": "", "flag_api": False, "adapted": None}


def _detector_calls(bundle: Bundle, flag_only: bool = False) -> list[dict]:
    """How templates/firmware.c.j2 calls each detector (emit.detector_calls); flag_only:
    one with a flag API goes through it (its score is then 0)."""
    return [{**call, "flag_api": flag_only and call["flag_api"]}
            for call in emit.detector_calls(bundle)]


def vector_rows(vectors: np.ndarray) -> list[str]:
    bits = np.ascontiguousarray(vectors, dtype=F32).view(np.uint32)
    return [", ".join(f"0x{b:08x}UL" for b in row) for row in bits]


def render(bundle: Bundle, vectors: np.ndarray | None = None,
           stub: bool = False, flag_only: bool = False,
           peer: dict | None = None) -> dict[str, str]:
    """File name -> text of the firmware's generated directory with these test vectors
    (None: none, the app then only serves the line protocol).

    stub: one more detector, "stub", that returns 0 and does nothing else; the app
    around it is the baseline the bench measures a detector's flash and RAM against.
    flag_only: the detectors with a flag API run it and report a score of 0.
    peer: one more detector that is another tool's C (the bench's peers): "name", "header"
    (file name) and "code" (its text, included by mcua_firmware.c only, so built as C),
    "call" (lines of C that set `score` and `*flag` from `x`, measured as one call).
    """
    vectors = np.asarray([] if vectors is None else vectors, dtype=F32)
    vectors = vectors.reshape(-1, len(bundle.channels))
    files = emit.render(bundle)
    env = emit.environment()
    calls = _detector_calls(bundle, flag_only) + ([STUB] if stub else [])
    if peer:
        calls.append({"name": peer["name"], "kind": "peer", "header": peer["header"],
                      "call": peer["call"], "score_args": "", "flag_api": False,
                      "adapted": None})
        files[peer["header"]] = peer["code"]
    context = {"model_name": bundle.name, "MODEL": bundle.name.upper(),
               "channels": bundle.channels,
               "tool_version": emit.__version__, "detectors": calls,
               "rows": vector_rows(vectors)}
    files[FIRMWARE_HEADER] = env.get_template("firmware.h.j2").render(context)
    files["mcua_firmware.c"] = env.get_template("firmware.c.j2").render(context)
    files["mcua_vectors.h"] = env.get_template("firmware_vectors.h.j2").render(context)
    return files


def write(files: dict[str, str], out: str | Path, force: bool = False,
          keep: tuple = ()) -> Path:
    """Replace directory `out` by exactly these files, all at once (files.py write_tree), so
    stale sources of another bundle are never compiled in."""
    return write_tree(out, files, FIRMWARE, force=force, keep=keep)
