"""The sliding window of the streaming detectors (and of the isolation forest's rolling
features): the Python twin of mcua_window.c.

Every operation is float32 and happens in the order the C performs it, so the state after
each sample (buffer, anchors, sums, counters) equals the device's bit for bit.  Why the sums
are anchored and periodically replaced by freshly rebuilt ones, and why a warm-up that keeps
clipping starts over, is explained in mcua_window.h.
"""

from __future__ import annotations

import numpy as np

from codegen.detectors.base import (F32, DetectorSpec, Footprint, Kind, Scored, array_bytes,
                                    positive_int)
from codegen.errors import UserError

MAX_DEVIATION = F32(1e15)  # MCUA_WINDOW_MAX_DEVIATION
MAX_WINDOW = 4096  # the longest window a detector keeps (uint16 counters, RAM)
RESTART = 3  # MCUA_WINDOW_RESTART: warm-up samples clipped in a row that restart the window
STATE_FLOATS = ("anchor", "sum", "sumsq", "fresh_anchor", "fresh_sum", "fresh_sumsq")


class Window:
    def __init__(self, n_channels: int, window: int):
        self.window = window
        self.buffer = np.zeros((n_channels, window), dtype=F32)
        for name in STATE_FLOATS:
            setattr(self, name, np.zeros(n_channels, dtype=F32))
        self.count = self.head = self.fresh_count = self.streak = 0

    def mean(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean relative to the anchor, mean of squares relative to it); count must be > 0."""
        inv_n = F32(1) / F32(self.count)
        return self.sum * inv_n, self.sumsq * inv_n

    def push(self, v: np.ndarray) -> None:
        """Insert one admitted value per channel and move the ring on (push + advance in C)."""
        if self.count == 0:
            self.anchor = v.copy()
            self.fresh_anchor = v.copy()
        a = v - self.anchor
        far = ~(np.abs(a) <= MAX_DEVIATION)
        if far.any():
            v = np.where(far, self.anchor + np.where(a > 0, MAX_DEVIATION, -MAX_DEVIATION), v)
            a = v - self.anchor
        if self.count == self.window:
            o = self.buffer[:, self.head] - self.anchor
            self.sum = (self.sum + a) - o
            self.sumsq = (self.sumsq + a * a) - o * o
        else:
            self.sum = self.sum + a
            self.sumsq = self.sumsq + a * a
            self.count += 1
        self.buffer[:, self.head] = v
        f = v - self.fresh_anchor
        self.fresh_sum = self.fresh_sum + f
        self.fresh_sumsq = self.fresh_sumsq + f * f
        self.head = (self.head + 1) % self.window
        self.fresh_count += 1
        if self.fresh_count == self.window:
            self.fresh_count = 0
            self.anchor, self.sum, self.sumsq = self.fresh_anchor, self.fresh_sum, self.fresh_sumsq
            self.fresh_anchor = self.anchor + self.sum * (F32(1) / F32(self.window))
            self.fresh_sum = np.zeros_like(self.sum)
            self.fresh_sumsq = np.zeros_like(self.sum)

    def settle(self, clipped_in_warm_up: bool) -> None:
        """After a clipping detector's push (mcua_window_settle): count the warm-up samples
        clipped in a row; after RESTART of them forget the sums and counters.  The buffer
        keeps its stale values, as in C, where count says which slots hold data."""
        self.streak = self.streak + 1 if clipped_in_warm_up else 0
        if self.streak == RESTART:
            for name in STATE_FLOATS:
                getattr(self, name)[:] = 0
            self.count = self.head = self.fresh_count = self.streak = 0

    def snapshot(self) -> tuple[np.ndarray, np.ndarray]:
        """The state as flat arrays: floats (per channel the six sums, then the buffer) and
        the four counters, in the layout the host build reports."""
        floats = np.concatenate([np.stack([getattr(self, n) for n in STATE_FLOATS], axis=1).ravel(),
                                 self.buffer.ravel()])
        return floats, np.array([self.count, self.head, self.fresh_count, self.streak],
                                dtype=np.uint16)


def replay(step, X: np.ndarray, window: Window, with_state: bool = False):
    """Feed the rows of X through step(window, x) in order; return the list of what step
    returned and, when asked, the state after every row (else None)."""
    X = np.asarray(X, dtype=F32)
    out, floats, counters = [], [], []
    with np.errstate(over="ignore", invalid="ignore"):
        for x in X:
            out.append(step(window, x))
            if with_state:
                f, c = window.snapshot()
                floats.append(f)
                counters.append(c)
    return out, ((np.array(floats), np.array(counters)) if with_state else None)


def run(step, X: np.ndarray, window: Window, with_state: bool = False) -> Scored:
    """Feed the rows of X through step(window, x) -> (score, flag); collect the results and,
    when asked, the state after every row."""
    out, states = replay(step, X, window, with_state)
    scores = np.array([s for s, _ in out], dtype=F32).reshape(len(out))
    flags = np.array([f for _, f in out], dtype=bool).reshape(len(out))
    return Scored(scores, flags, states)


def check_span(name: str, normal: np.ndarray, channels: list[str]) -> None:
    """Refuse normal data the window cannot hold: every admitted reading lies within
    MAX_DEVIATION of the window's anchor (a reading of the window, near its mean), so a
    channel whose normal readings span more would be clipped while it is normal."""
    normal = np.asarray(normal, dtype=np.float64)
    span = normal.max(axis=0) - normal.min(axis=0)
    for c in np.flatnonzero(~(span <= float(MAX_DEVIATION))):
        raise UserError(f"{name}: channel {channels[c]!r} spans {span[c]:.3g} in the normal "
                        f"training rows, more than the {float(MAX_DEVIATION):.0e} the on-device "
                        f"window keeps around its mean (MCUA_WINDOW_MAX_DEVIATION: farther "
                        f"readings are clipped, so that no square in its float32 sums "
                        f"overflows); rescale the channel (e.g. to kV) or leave it out with "
                        f"--columns")


def length(fitted) -> int:
    """The window of a detector that keeps one (DetectorSpec.window)."""
    return fitted.params["window"]


def clipping_step(fitted, measure):
    """The update of the detectors that clip what they learn (mcua_streaming_zscore.c,
    mcua_moving_average.c): a sample holding NaN/Inf scores +Inf, flags and is not learnt.
    Otherwise every channel's deviation d from the window mean is measured,
    (z, bound) = measure(mean, mean_sq, d); the score is the largest z; a channel with z
    over the threshold enters the window clipped to mean +- bound, so an anomaly never
    poisons the statistics, and flags once min_count samples are in.  Before that (the
    warm-up) RESTART samples clipped in a row restart the window (Window.settle): the
    window, not the samples, was out of line."""
    threshold = F32(fitted.scalars["threshold"])
    min_count = fitted.params["min_count"]

    def update(w: Window, x: np.ndarray):
        if not np.isfinite(x).all():
            return F32(np.inf), True
        judged = w.count >= min_count
        v = x.copy()
        score = F32(0)
        clipped = False
        if w.count:
            mean, mean_sq = w.mean()
            d = (v - w.anchor) - mean
            z, bound = measure(mean, mean_sq, d)
            score = max(score, z.max())
            over = z > threshold
            if over.any():
                clipped = True
                v = np.where(over, w.anchor + np.where(d > 0, mean + bound, mean - bound), v)
        w.push(v)
        w.settle(clipped and not judged)
        return score, clipped and judged

    return update


def score(step_factory, fitted, X: np.ndarray, with_state: bool = False,
          state: Window | None = None) -> Scored:
    """Run a windowed detector over X from a fresh state, or on from `state` (a Window,
    updated in place: the stream goes on where the last call left it); see run."""
    X = np.asarray(X, dtype=F32)
    state = Window(X.shape[1], length(fitted)) if state is None else state
    return run(step_factory(fitted), X, state, with_state)


def template_context(name: str, fitted) -> dict:
    """The variables of the window detectors' templates; the integers, which the headers
    carry as text, checked (a bundle is a file anyone can edit)."""
    window = positive_int(name, fitted.params, "window", MAX_WINDOW)
    return {"threshold": fitted.scalars["threshold"], "window": window,
            "min_count": positive_int(name, fitted.params, "min_count", window),
            **fitted.arrays}


def check_stored(stored) -> None:
    """The stored fields every clipping window detector has: its window, min_count and
    threshold."""
    length = stored.integer("params", "window", 1, MAX_WINDOW)
    stored.integer("params", "min_count", 1, length)
    stored.number("scalars", "threshold", lo=0)


def state_bytes(n_channels: int, window: int, align: int = 1) -> int:
    """RAM of a window's state (templates/_common.j2 window_state): per channel six float
    sums and `window` readings, and the counters (three uint16 and the uint8 streak, padded
    to the float's alignment, then a float: 11 bytes on AVR, 12 on 32-bit targets)."""
    return n_channels * (6 + window) * 4 + -(-(3 * 2 + 1) // align) * align + 4


def spec(name: str, schema, **fields) -> DetectorSpec:
    """The spec of a detector that learns on the device in a window and clips what it
    learns at the threshold (clipping_step); schema checks its own arrays (after
    check_stored)."""

    def check(stored) -> None:
        check_stored(stored)
        schema(stored)

    def footprint(fitted, n_channels: int) -> Footprint:
        return Footprint(array_bytes(fitted), ram=state_bytes(n_channels, length(fitted)),
                         shrink="fewer channels (--columns) or a smaller --window")

    return DetectorSpec(name, units=("window", name), kind=Kind.STREAMING, schema=check,
                        window=length, quiet=lambda fitted: fitted.params["min_count"],
                        describe=lambda fitted: f"W={length(fitted)}", default=True,
                        threshold_feeds_state=True, footprint=footprint, **fields)
