"""Compare: an engine against the Python reference, every score bit, flag and state.

Inputs come as kinds (codegen/verify/battery.py: random, extreme, real); each kind is one
stream.  An engine whose runs hold a limited number of rows (a firmware's flash) gets the
stream in chunks, and the reference then starts each chunk from a fresh state too.  The
detectors whose spec offers a flag API are compared a second time through it, as
"<name> flag".  On an engine without a chunk limit, the streaming detectors run a long
stream in several runs that go on from each other (resume), so the states reported for
every row never take more than STATE_BYTES, whatever the channel count.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from codegen.bundle import Bundle
from codegen.detectors import get
from codegen.detectors.base import Scored
from codegen.progress import Progress
from codegen.verify.engines import Engine, PythonEngine

F32 = np.float32
SHOWN_MISMATCHES = 5
# The states one run of an engine reports at most: 64 MiB, e.g. 1,000 rows of 300 channels
# with a window of 50 (the reference holds them twice while it builds the array).
STATE_BYTES = 64 << 20


@dataclass
class Result:
    detector: str  # "<name>", or "<name> flag" for its flag API
    kind: str
    inputs: int
    score_mismatches: int
    flag_mismatches: int
    state_mismatches: int | None  # rows whose state differs; None where no state is compared

    @property
    def ok(self) -> bool:
        return not (self.score_mismatches or self.flag_mismatches or self.state_mismatches)


@dataclass
class Mismatch:
    engine: str
    detector: str
    kind: str
    index: int  # within the kind's inputs
    inputs: np.ndarray
    expected: tuple[int, bool]  # (score bits, flag)
    got: tuple[int, bool]

    def describe(self) -> str:
        def show(bits_flag):
            bits, flag = bits_flag
            value = np.array([bits], dtype=np.uint32).view(F32)[0]
            return f"{bits:08x} ({value!r}) flag {int(flag)}"

        return (f"{self.detector} {self.kind}[{self.index}] x={self.inputs.tolist()}: "
                f"reference {show(self.expected)}, {self.engine} {show(self.got)}")


@dataclass
class Comparison:
    engine: str
    results: list[Result]
    mismatches: list[Mismatch] = field(default_factory=list)  # the first few

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)

    def table(self) -> str:
        return table(self.results)


def _bits(a: np.ndarray) -> np.ndarray:
    return np.ascontiguousarray(a, dtype=F32).view(np.uint32)


def _state_mismatches(want, got) -> int:
    (want_f, want_i), (got_f, got_i) = want, got
    return int(((_bits(want_f) != _bits(got_f)).any(axis=1) | (want_i != got_i).any(axis=1)).sum())


def _count(c: list, shown: list[Mismatch], w: Scored, g: Scored, rows: np.ndarray,
           first: int, label: tuple[str, str, str]) -> None:
    """Add what differs between the reference's w and the engine's g on rows (the kind's
    inputs from index first on) to the counts c (inputs, scores, flags, states), and the
    first mismatches to shown; label: (engine, detector, kind)."""
    if len(g.scores) != len(rows):
        raise ValueError(f"{label[0]} reported {len(g.scores)} rows of {label[1]}, "
                         f"not {len(rows)}")
    bad_s = _bits(w.scores) != _bits(g.scores)
    bad_f = np.asarray(w.flags, bool) != np.asarray(g.flags, bool)
    c[0] += len(rows)
    c[1] += int(bad_s.sum())
    c[2] += int(bad_f.sum())
    if w.state is not None and g.state is not None:
        c[3] = (c[3] or 0) + _state_mismatches(w.state, g.state)
    for i in np.flatnonzero(bad_s | bad_f)[:SHOWN_MISMATCHES - len(shown)]:
        shown.append(Mismatch(*label, first + int(i), rows[i],
                              (int(_bits(w.scores)[i]), bool(w.flags[i])),
                              (int(_bits(g.scores)[i]), bool(g.flags[i]))))


def _state_rows(bundle: Bundle, streaming: list[str]) -> int:
    """Rows per run of these streaming detectors whose states (one per row: per channel six
    float sums and the window, and three counters) take at most STATE_BYTES."""
    n = len(bundle.channels)
    per_row = sum(4 * n * (6 + get(d).SPEC.window(bundle.detectors[d])) + 6 for d in streaming)
    return max(1, STATE_BYTES // max(per_row, 1))


def _runs(bundle: Bundle, engine: Engine, which: list[str], rows: int):
    """(detectors, rows per run) covering `rows` rows: every detector in one run, except the
    streaming ones on an engine without a chunk limit, which go on from run to run (resume)
    in as many as keep their reported states within STATE_BYTES."""
    streaming = [] if engine.chunk else [d for d in which
                                          if get(d).SPEC.streaming(bundle.detectors[d])]
    rest = [d for d in which if d not in streaming]
    return [(group, step) for group, step in ((rest, rows),
                                              (streaming, _state_rows(bundle, streaming)))
            if group]


def compare(bundle: Bundle, engine: Engine, inputs: dict[str, np.ndarray],
            detectors: list[str] | None = None, flag_api: bool = True,
            progress: bool = False, reference: Engine | None = None) -> Comparison:
    """Run `detectors` (default: all of the bundle's) on `engine` and on the reference
    (default: PythonEngine(bundle)) over every kind of input and count what differs;
    flag_api: also compare the flag APIs; progress: a step per chunk on stderr.  Memory stays
    bounded for any channel count: the states of the streaming detectors are compared run by
    run (_runs), with the same counts and mismatches as in one run."""
    names = list(bundle.detectors) if detectors is None else list(detectors)
    flagging = [d for d in names if get(d).SPEC.flag_api] if flag_api else []
    reference = reference or PythonEngine(bundle)
    counts: dict[tuple[str, str], list] = {}
    for name in names:  # the table's order: detector, kind, then its flag API
        for kind in inputs:
            counts[(name, kind)] = [0, 0, 0, None]
            if name in flagging:
                counts[(f"{name} flag", kind)] = [0, 0, 0, None]
    mismatches: list[Mismatch] = []
    chunks = {kind: engine.chunk or max(len(X), 1) for kind, X in inputs.items()}
    bar = (Progress(sum(math.ceil(len(X) / chunks[kind]) for kind, X in inputs.items()),
                    f"verify {engine.name}") if progress else None)
    for kind, X in inputs.items():
        X = np.asarray(X, dtype=F32)
        chunk = chunks[kind]
        for start in range(0, len(X), chunk):
            part = X[start:start + chunk]
            runs = [("", names, False)] + ([(" flag", flagging, True)] if flagging else [])
            for suffix, which, api in runs:
                found: dict[str, list[Mismatch]] = {name: [] for name in which}
                for group, step in _runs(bundle, engine, which, len(part)):
                    for at in range(0, len(part), step):
                        rows = part[at:at + step]
                        want = reference.run(rows, group, flag_api=api, resume=at > 0)
                        got = engine.run(rows, group, flag_api=api, resume=at > 0)
                        for name in group:
                            _count(counts[(name + suffix, kind)], found[name], want[name],
                                   got[name], rows, start + at,
                                   (engine.name, name + suffix, kind))
                for name in which:  # in the detectors' order, as one run reports them
                    mismatches += found[name][:SHOWN_MISMATCHES - len(mismatches)]
            if bar:
                bar.step(f"{kind} samples {start}..{start + len(part) - 1}")
    results = [Result(d, k, n, s, f, st) for (d, k), (n, s, f, st) in counts.items()]
    return Comparison(engine.name, results, mismatches)


def table(results: list[Result]) -> str:
    lines = [f"{'detector':<22} {'input':<8} {'inputs':>8} {'score≠':>7} {'flag≠':>6} {'state≠':>7}"]
    for r in results:
        state = "-" if r.state_mismatches is None else str(r.state_mismatches)
        lines.append(f"{r.detector:<22} {r.kind:<8} {r.inputs:>8} {r.score_mismatches:>7} "
                     f"{r.flag_mismatches:>6} {state:>7}")
    total = sum(r.inputs for r in results)
    bad = sum(not r.ok for r in results)
    lines.append(f"{'all':<22} {'':<8} {total:>8}  {'0 mismatches' if not bad else f'{bad} FAILED'}")
    return "\n".join(lines)
