"""Tensor-arena sizing for TensorFlow Lite Micro, measured rather than guessed.

How the figure is found
-----------------------
1. One probe at ``cap`` loads the model, allocates tensors, invokes once and asks
   the runtime for its allocation report (``print_allocations()``, which the
   C++ runtime writes straight to file descriptor 2; :func:`capture_fd2` catches
   it with ``os.dup2``).  If even ``cap`` does not work, the search stops with
   :class:`ArenaSearchError`.
2. The smallest ``arena_size`` that works is then found by bisection.  Every
   try runs in its own subprocess because a too-small arena does not always
   fail cleanly: ``arena_size=64`` segfaults the whole Python process.  A try
   "works" when the interpreter is built, tensors are allocated and one
   ``invoke()`` returns; a RuntimeError, a signal or a timeout is a failure.
   The search assumes that a larger arena never fails where a smaller one
   worked; it checks that the found minimum works and that minimum-1 fails.
3. Cross-check: the report's "Arena allocation total" counts what is still
   allocated after initialisation.  It is at most the minimum found (the
   difference is what ``AllocateTensors`` needs only temporarily, plus
   alignment), so a report total above the minimum is flagged as inconsistent.

What the emitted figure means
-----------------------------
The minimum is measured with the 64-bit host build of TensorFlow Lite Micro
shipped in the ``tflite-micro`` wheel, with its reference kernels.  The
emitted arena size is::

    emitted = round_up_16(minimum + 16 + kernel_scratch_bytes)

* ``+16``: TFLite Micro aligns the arena start to 16 bytes.  The host buffer
  is already 16-byte aligned; a firmware arena declared without
  ``alignas(16)`` can lose up to 15 bytes to that alignment.
* ``kernel_scratch_bytes``: optimised kernels may request scratch buffers the
  reference kernels do not (CMSIS-NN's int8 fully-connected kernel asks for
  ``output_channels * 4`` bytes on MVE cores); the caller passes an upper bound
  for its model (for dense layers: 4 x the widest layer).
* Not subtracted: on a 32-bit MCU the runtime's bookkeeping structs
  (TfLiteEvalTensor, TfLiteTensor, NodeAndRegistration) hold 4-byte instead of
  8-byte pointers, so the same TFLite Micro version needs less than the
  64-bit host figure; the host figure is an upper bound for it.  Another
  TFLite Micro version can differ: check on the target with
  ``RecordingMicroInterpreter`` / ``arena_used_bytes()``.

This file imports only the standard library at module level and is also run
as a script (``python arena.py --probe MODEL SIZE [--report]``) for the
subprocess tries; ``python arena.py MODEL.tflite`` prints a full search.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

ARENA_ALIGNMENT = 16
DEFAULT_CAP = 1 << 20
PROBE_TIMEOUT_S = 60.0


try:  # imported as codegen.tflite.arena: errors the CLI reports cleanly
    from codegen.errors import UserError as _ErrorBase
except ImportError:  # run as a script (the probe child)
    _ErrorBase = ValueError


class ArenaSearchError(_ErrorBase):
    """No working arena was found (or the runtime could not be run at all)."""


def capture_fd2(fn):
    """Run ``fn()`` with file descriptor 2 redirected to a temporary file.

    Returns ``(result, text)``.  C/C++ code writing to fd 2 (as TFLite
    Micro's ``PrintAllocations`` does) bypasses ``sys.stderr``, so Python-level
    redirection cannot catch it; ``os.dup2`` can.
    """
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile(mode="w+b") as tmp:
        try:
            os.dup2(tmp.fileno(), 2)
            result = fn()
        finally:
            try:
                sys.stderr.flush()
            except Exception:  # pragma: no cover - defensive
                pass
            os.dup2(saved, 2)
            os.close(saved)
        tmp.seek(0)
        text = tmp.read().decode("utf-8", errors="replace")
    return result, text


_TOTAL_RE = re.compile(r"Arena allocation total (\d+) bytes")
_HEAD_RE = re.compile(r"Arena allocation head (\d+) bytes")
_TAIL_RE = re.compile(r"Arena allocation tail (\d+) bytes")
_LINE_RE = re.compile(
    r"'([^']+)' used (\d+) bytes with alignment overhead \(requested (\d+) bytes for (\d+) ")


def parse_allocation_report(text: str) -> dict:
    """Parse the text of ``print_allocations()`` into numbers."""
    out: dict = {"total": None, "head": None, "tail": None, "items": {}}
    for key, rx in (("total", _TOTAL_RE), ("head", _HEAD_RE), ("tail", _TAIL_RE)):
        m = rx.search(text)
        if m:
            out[key] = int(m.group(1))
    for m in _LINE_RE.finditer(text):
        out["items"][m.group(1)] = {
            "used": int(m.group(2)),
            "requested": int(m.group(3)),
            "count": int(m.group(4)),
        }
    return out


def runtime_version() -> str:
    """Version of the tflite-micro wheel, without importing its runtime."""
    try:
        from importlib.metadata import version
        return version("tflite-micro")
    except Exception:
        return "unknown"


def runtime_description() -> str:
    bits = 64 if sys.maxsize > 2**32 else 32
    return (f"tflite-micro {runtime_version()} Python wheel, {bits}-bit host "
            f"({os.uname().machine}), reference kernels")


# --------------------------------------------------------------------------
# one try, in a subprocess

@dataclass
class Probe:
    size: int
    ok: bool
    outcome: str          # "ok", "alloc-failed", "signal N", "timeout", "error"
    detail: str = ""
    report_text: str = ""


def _probe_main(argv) -> int:
    """Child side: exit 0 if the model runs with this arena size."""
    path, size = argv[0], int(argv[1])
    want_report = "--report" in argv[2:]
    import numpy as np
    from tflite_micro.python.tflite_micro import runtime

    with open(path, "rb") as f:
        model = f.read()
    try:
        interp = runtime.Interpreter.from_bytes(model, arena_size=size)
        det = interp.get_input_details(0)
        interp.set_input(np.zeros(det["shape"], dtype=det["dtype"]), 0)
        interp.invoke()
    except RuntimeError as exc:
        sys.stdout.write(json.dumps({"ok": False, "error": str(exc)}) + "\n")
        return 3
    text = ""
    if want_report:
        _, text = capture_fd2(interp.print_allocations)
    sys.stdout.write(json.dumps({"ok": True, "report": text}) + "\n")
    return 0


def probe(model_path: str, size: int, report: bool = False,
          timeout: float = PROBE_TIMEOUT_S) -> Probe:
    """Try one arena size in a fresh Python process."""
    # Run this file as __main__ without putting its directory (codegen/, whose
    # module names could shadow others) or the cwd on the child's sys.path.
    boot = ("import runpy, sys; sys.path.pop(0); sys.argv = sys.argv[1:]; "
            "runpy.run_path(sys.argv[0], run_name='__main__')")
    cmd = [sys.executable, "-c", boot, os.path.abspath(__file__), "--probe", model_path,
           str(size)]
    if report:
        cmd.append("--report")
    env = dict(os.environ)
    env.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    try:
        cp = subprocess.run(cmd, capture_output=True, timeout=timeout, env=env)
    except subprocess.TimeoutExpired:
        return Probe(size, False, "timeout", f"no answer within {timeout:.0f} s")
    out = cp.stdout.decode("utf-8", "replace").strip().splitlines()
    msg = {}
    if out:
        try:
            msg = json.loads(out[-1])
        except ValueError:
            msg = {}
    err = cp.stderr.decode("utf-8", "replace").strip()
    if cp.returncode == 0 and msg.get("ok"):
        return Probe(size, True, "ok", "", msg.get("report", ""))
    if cp.returncode < 0:
        return Probe(size, False, f"signal {-cp.returncode}", err[-500:])
    if cp.returncode == 3:
        return Probe(size, False, "alloc-failed", (msg.get("error", "") + "\n" + err)[-500:])
    return Probe(size, False, "error", (err or " ".join(out))[-1000:])


# --------------------------------------------------------------------------
# the search

@dataclass
class ArenaResult:
    minimum: int                  # smallest arena_size that worked (64-bit host)
    emitted: int                  # figure to put in firmware
    margin: int                   # emitted - minimum
    margin_parts: dict            # what the margin is made of
    report: dict                  # parsed allocation report (at the cap)
    report_text: str
    runtime: str                  # which runtime build measured it
    cap: int
    probes: list = field(default_factory=list)   # [(size, outcome)]
    consistent: bool = True       # report total <= minimum
    note: str = ""

    def as_dict(self) -> dict:
        return {
            "minimum": self.minimum,
            "emitted": self.emitted,
            "margin": self.margin,
            "margin_parts": dict(self.margin_parts),
            "report_total": self.report.get("total"),
            "report_head": self.report.get("head"),
            "report_tail": self.report.get("tail"),
            "report_items": self.report.get("items", {}),
            "report_text": self.report_text,
            "runtime": self.runtime,
            "runtime_version": runtime_version(),
            "cap": self.cap,
            "probes": [list(p) for p in self.probes],
            "consistent": self.consistent,
            "note": self.note,
        }


def _round_up(n: int, a: int) -> int:
    return (n + a - 1) // a * a


def find_arena(model: bytes, cap: int = DEFAULT_CAP, kernel_scratch_bytes: int = 0,
               timeout: float = PROBE_TIMEOUT_S) -> ArenaResult:
    """Find the smallest working arena for ``model`` and the figure to emit.

    Raises :class:`ArenaSearchError` when no size up to ``cap`` works.
    """
    if not isinstance(cap, int) or cap < 1:
        raise ArenaSearchError(
            f"arena cap must be a positive number of bytes, got {cap!r}: pass e.g. cap=65536")
    probes: list = []
    with tempfile.TemporaryDirectory(prefix="mcua-arena-") as tmp:
        path = os.path.join(tmp, "model.tflite")
        with open(path, "wb") as f:
            f.write(model)

        first = probe(path, cap, report=True, timeout=timeout)
        probes.append((cap, first.outcome))
        if not first.ok:
            detail = " ".join(first.detail.split())[:300].rstrip(". ")
            raise ArenaSearchError(
                f"TensorFlow Lite Micro could not run the model with an arena of {cap} bytes "
                f"(the search cap): {first.outcome}: {detail or 'no message'}. "
                f"Raise the cap (autoencoder param 'arena_cap') if the model is larger, "
                f"or make the model smaller (fewer or narrower hidden layers).")
        report = parse_allocation_report(first.report_text)
        total = report.get("total")

        cache = {cap: True}

        def works(n: int) -> bool:
            if n in cache:
                return cache[n]
            p = probe(path, n, timeout=timeout)
            probes.append((n, p.outcome))
            cache[n] = p.ok
            return p.ok

        # bracket: lo fails (0 is taken as failing without a try), hi works
        lo, hi = 0, cap
        if total and 0 < total < cap:
            if works(total):
                hi = total
            else:
                lo = total
                n = total * 2
                while n < cap:
                    if works(n):
                        hi = n
                        break
                    lo = n
                    n *= 2
        while hi - lo > 1:
            mid = (lo + hi) // 2
            if works(mid):
                hi = mid
            else:
                lo = mid
        minimum = hi
        # confirm the edge: minimum works (known) and minimum-1 fails
        if minimum > 1 and (minimum - 1) not in cache:
            works(minimum - 1)
        if minimum > 1 and cache.get(minimum - 1):
            raise ArenaSearchError(
                f"arena search is not monotonic: {minimum - 1} bytes worked after a failure "
                f"at a larger size; re-run, and report this runtime version ({runtime_version()})")

        margin_parts = {"alignment": ARENA_ALIGNMENT, "kernel_scratch": int(kernel_scratch_bytes)}
        emitted = _round_up(minimum + sum(margin_parts.values()), ARENA_ALIGNMENT)
        if emitted > cap:
            emitted = max(minimum, cap)
        if not works(emitted):
            raise ArenaSearchError(
                f"the emitted arena size {emitted} failed although {minimum} worked; "
                f"re-run, and report this runtime version ({runtime_version()})")

    consistent = total is None or total <= minimum
    note = ""
    if total is None:
        note = "the runtime's allocation report gave no total"
    elif consistent:
        note = (f"allocation report total {total} B <= measured minimum {minimum} B; "
                f"the {minimum - total} B difference is needed only during initialisation "
                f"(temporary allocations the report does not count) and for alignment")
    else:
        note = (f"inconsistent: allocation report total {total} B exceeds the measured "
                f"minimum {minimum} B")
    return ArenaResult(minimum=minimum, emitted=emitted, margin=emitted - minimum,
                       margin_parts=margin_parts, report=report,
                       report_text=first.report_text, runtime=runtime_description(),
                       cap=cap, probes=probes, consistent=consistent, note=note)


if __name__ == "__main__":
    if len(sys.argv) >= 4 and sys.argv[1] == "--probe":
        sys.exit(_probe_main(sys.argv[2:]))
    if len(sys.argv) == 2:
        with open(sys.argv[1], "rb") as fh:
            res = find_arena(fh.read())
        print(json.dumps(res.as_dict(), indent=2))
        sys.exit(0)
    sys.stderr.write("usage: arena.py MODEL.tflite | --probe MODEL SIZE [--report]\n")
    sys.exit(2)


# --------------------------------------------------------------------------
# the cache: the arena depends on the graph, not on the numbers in it

CACHE_FORMAT = 1


def structure(model: bytes) -> dict:
    """What TensorFlow Lite Micro's allocation can depend on: per tensor its shape, type,
    constant bytes and number of quantisation parameters; per operator its op, options and
    tensors; the graph's inputs and outputs.  Not the weights, scales or zero points, nor
    the names: two trainings of one architecture have the same structure (and were measured
    to get the same arena, tests/test_autoencoder.py)."""
    from codegen.tflite.flatbuffer import builtin_op, read_model

    m = read_model(model, "the model")
    sizes = [0 if b.data is None else len(b.data) for b in m.buffers]

    def tensor(t) -> list:
        q = t.quantization
        return [[int(d) for d in t.shape], int(t.type), sizes[t.buffer],
                0 if q is None or q.scale is None else len(q.scale),
                0 if q is None else int(q.quantizedDimension)]

    def operator(op) -> list:
        options = vars(op.builtinOptions) if op.builtinOptions is not None else {}
        return [builtin_op(m, op)[0], int(op.builtinOptionsType),
                sorted((k, repr(v)) for k, v in options.items()),
                [int(i) for i in op.inputs], [int(o) for o in op.outputs]]

    return {"subgraphs": [{"tensors": [tensor(t) for t in g.tensors],
                           "operators": [operator(op) for op in g.operators],
                           "inputs": [int(i) for i in g.inputs],
                           "outputs": [int(o) for o in g.outputs]} for g in m.subgraphs]}


def _cache_path(model: bytes, cap: int, kernel_scratch_bytes: int) -> Path:
    from codegen import resources

    key = json.dumps({"format": CACHE_FORMAT, "runtime": runtime_version(), "cap": cap,
                      "kernel_scratch_bytes": kernel_scratch_bytes,
                      "structure": structure(model)}, sort_keys=True)
    return resources.cache() / "arena" / f"{hashlib.sha256(key.encode()).hexdigest()}.json"


def _cached(path: Path) -> dict | None:
    """A search the cache holds for this key, if it reads back as one."""
    try:
        found = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not (isinstance(found, dict) and found.get("runtime_version") == runtime_version()
            and all(type(found.get(k)) is int and found[k] > 0 for k in ("minimum", "emitted"))):
        return None
    return found


def search(model: bytes, cap: int = DEFAULT_CAP,
           kernel_scratch_bytes: int = 0) -> tuple[dict, bool]:
    """(find_arena's result as_dict, whether it came from the cache): an architecture
    trained before is not searched again (15 subprocesses, about 26 s)."""
    from codegen.files import write_file  # not at the top: this file also runs as the probe

    path = _cache_path(model, cap, kernel_scratch_bytes)
    found = _cached(path)
    if found is not None:
        return found, True
    result = find_arena(model, cap=cap, kernel_scratch_bytes=kernel_scratch_bytes).as_dict()
    try:
        write_file(path, json.dumps(result, indent=1, sort_keys=True))
    except OSError:
        pass  # no cache where it cannot be written: the next run searches again
    return result, False
