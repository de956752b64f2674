"""Host build of the generated C: one shared library per bundle, loaded with ctypes.

The library is compiled from exactly the files `mcu-anomaly generate` writes plus a small
generated glue file with batch entry points.  Its file name is a hash of every source and
flag: dlopen caches by path, so a rebuilt library under an old name would silently run the
old code.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np

from codegen import resources
from codegen.emit import render as emit
from codegen.bundle import Bundle
from codegen.detectors import get
from codegen.detectors.base import Scored
from codegen.detectors.window import adaptation
from codegen.errors import UserError

# -ffp-contract=off: no fused multiply-add, which would round differently from numpy (a
# second guard: the runtime turns contraction off itself, mcua_common.h).
# No -ffast-math, no -march=native: both change float results.
CFLAGS = ["-std=c99", "-O2", "-ffp-contract=off", "-fno-fast-math", "-fPIC", "-shared",
          "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
CACHE = resources.cache()

_F32P = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
_U8P = np.ctypeslib.ndpointer(np.uint8, flags="C_CONTIGUOUS")


def glue_source(bundle: Bundle) -> str:
    env = emit.c_environment()
    return env.get_template("host_glue.c.j2").render(
        model_name=bundle.name, MODEL=bundle.name.upper(), tool_version=emit.__version__,
        detectors=emit.detector_calls(bundle))


def compile_library(files: dict[str, str], compiler: str | None = None) -> Path:
    """Compile generated files (name -> text) into a shared library; return its path."""
    compiler = compiler or os.environ.get("CC", "gcc")
    if shutil.which(compiler) is None:
        raise UserError(f"C compiler {compiler!r} not found; install gcc (apt-get install gcc) "
                        f"or set CC")
    digest = hashlib.sha256(" ".join([compiler] + CFLAGS).encode())
    for name in sorted(files):
        digest.update(name.encode() + b"\0" + files[name].encode() + b"\0")
    target = CACHE / f"libmcua_{digest.hexdigest()[:20]}.so"
    if target.exists():
        return target
    CACHE.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        for name, text in files.items():
            Path(tmp, name).write_text(text)
        sources = sorted(str(Path(tmp, n)) for n in files if n.endswith(".c"))
        out = Path(tmp, target.name)
        result = subprocess.run([compiler, *CFLAGS, "-I", tmp, *sources, "-o", str(out), "-lm"],
                                capture_output=True, text=True)
        if result.returncode:
            raise UserError(f"the host C build failed:\n{result.stderr}")
        os.replace(out, target)
    return target


class HostModel:
    """The bundle's detectors compiled for this machine, callable on numpy arrays; an
    engine (codegen/verify/engines.py) named "host"."""

    name = "host"
    chunk = None

    def __init__(self, bundle: Bundle, compiler: str | None = None):
        files = emit.render(bundle)
        files["mcua_host_glue.c"] = glue_source(bundle)
        self.bundle = bundle
        self.path = compile_library(files, compiler)
        self.lib = ctypes.CDLL(str(self.path))
        self.n_channels = len(bundle.channels)

    def _call(self, function: str, X: np.ndarray, outputs: list[np.dtype], *extra):
        """Call glue `function(X, n, out..., extra...)` on the rows of X; the outputs, one
        value per row each."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 2 or X.shape[1] != self.n_channels:
            raise ValueError(f"X must have shape (n, {self.n_channels})")
        out = [np.zeros(len(X), dtype=dtype) for dtype in outputs]
        fn = getattr(self.lib, function)
        fn.restype = None
        fn(X.ctypes.data_as(ctypes.c_void_p), ctypes.c_uint32(len(X)),
           *(o.ctypes.data_as(ctypes.c_void_p) for o in out), *extra)
        return out

    def _batch(self, detector: str, X: np.ndarray, *extra):
        scores, flags = self._call(f"mcua_host_{detector}", X, [np.float32, np.uint8], *extra)
        return scores, flags.astype(bool)

    def _streaming(self, detector: str) -> bool:
        return get(detector).SPEC.streaming(self.bundle.detectors[detector])

    def score(self, detector: str, X: np.ndarray, resume: bool = False) -> Scored:
        """Scores and flags for every row of X; a streaming detector starts from a fresh
        state, or with resume goes on from the last call's."""
        if self._streaming(detector):
            return Scored(*self._batch(detector, X, None, None, ctypes.c_uint8(resume)))
        return Scored(*self._batch(detector, X))

    def run(self, X: np.ndarray, detectors: list[str], flag_api: bool = False,
            resume: bool = False, state: bool = True) -> dict[str, Scored]:
        """The engine's call: see codegen.verify.engines.Engine.  The state resume goes on
        from is the library's: another HostModel of the same bundle shares it."""
        out = {}
        for detector in detectors:
            if flag_api and self._streaming(detector):
                out[detector] = self.run_with_state(detector, X, resume, flag_api=True,
                                                    state=state)
            elif flag_api:
                out[detector] = Scored(np.zeros(len(X), dtype=np.float32),
                                       self.flags(detector, X))
            elif self._streaming(detector) and state:
                out[detector] = self.run_with_state(detector, X, resume)
            else:
                out[detector] = self.score(detector, X, resume)
        return out

    def freeze(self, detector: str) -> bool:
        """`<model>_<detector>_freeze` on the state run(..., resume=True) goes on from (a
        detector in frozen mode)."""
        fn = getattr(self.lib, f"mcua_host_{detector}_freeze")
        fn.restype = ctypes.c_uint8
        return bool(fn())

    def flags(self, detector: str, X: np.ndarray) -> np.ndarray:
        """The flags of `<model>_<detector>_flag(x)` (a stateless detector with a flag API)
        for every row."""
        (flags,) = self._call(f"mcua_host_{detector}_flag", X, [np.uint8])
        return flags.astype(bool)

    def run_with_state(self, detector: str, X: np.ndarray, resume: bool = False,
                       flag_api: bool = False, state: bool = True) -> Scored:
        """Scores, flags and the state (floats, counters) after every row, in the layout
        of codegen.detectors.window.Window.snapshot; resume: on from the last call's state;
        flag_api: through `<model>_<detector>_flag_update` (scores 0); state False: no
        state reported."""
        fitted = self.bundle.detectors[detector]
        adapted = adaptation(fitted) is not None
        per_row = self.n_channels * (6 + get(detector).SPEC.window(fitted) + 2 * adapted)
        rows = len(X) if state else 0
        state_f = np.zeros((rows, per_row), dtype=np.float32)
        state_i = np.zeros((rows, 4 + 3 * adapted), dtype=np.uint16)
        where = [a.ctypes.data_as(ctypes.c_void_p) if state else None
                 for a in (state_f, state_i)]
        if flag_api:
            (flags,) = self._call(f"mcua_host_{detector}_flag", X, [np.uint8], *where,
                                  ctypes.c_uint8(resume))
            scores, flags = np.zeros(len(X), dtype=np.float32), flags.astype(bool)
        else:
            scores, flags = self._batch(detector, X, *where, ctypes.c_uint8(resume))
        return Scored(scores, flags, (state_f, state_i) if state else None)
