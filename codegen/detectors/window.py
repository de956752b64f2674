"""The sliding window of the streaming detectors (and of the isolation forest's rolling
features): the Python twin of mcua_window.c.

Every operation is float32 and happens in the order the C performs it, so the state after
each sample (buffer, anchors, sums, counters, baseline) equals the device's bit for bit.
Why the sums are anchored and periodically replaced by freshly rebuilt ones, why a warm-up
that keeps clipping starts over, and the adaptation modes (what a clipping detector judges a
sample against: the sliding window, a baseline frozen after a calibration, or a slowly
forgetting one, folded from whole windows in Window._fold) are explained in mcua_window.h.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.detectors.base import (F32, DetectorSpec, Footprint, Kind, Scored, array_bytes,
                                    choice_param, positive_int)
from codegen.errors import UserError

MAX_DEVIATION = F32(1e15)  # MCUA_WINDOW_MAX_DEVIATION
MAX_WINDOW = 4096  # the longest window a detector keeps (uint16 counters, RAM)
RESTART = 3  # MCUA_WINDOW_RESTART: warm-up samples clipped in a row that restart the window
STATE_FLOATS = ("anchor", "sum", "sumsq", "fresh_anchor", "fresh_sum", "fresh_sumsq")
MAX_VARIANCE = F32(1e30)  # MCUA_WINDOW_MAX_VARIANCE
MAX_BLOCKS = 65535  # mcua_adaptation.blocks is a uint16_t
# The adaptation modes, in the order of their C codes (MCUA_WINDOW_SLIDING, _FROZEN, _SLOW),
# and the parameter giving each one's length in samples.
MODES = ("window", "frozen", "slow")
MODE_LENGTH = {"frozen": "calibration", "slow": "memory"}
ADAPTATION_DEFAULTS = {"mode": "window", "calibration": 1000, "memory": 1000}


@dataclass(frozen=True)
class Adaptation:
    """A frozen or slow baseline: its mode and its limit in whole windows (mcua_adaptation)."""
    mode: str
    blocks: int


def adaptation(fitted) -> Adaptation | None:
    """The adaptation of a fitted window detector; None for the sliding window (also for a
    detector without modes, the isolation forest's rolling features)."""
    mode = fitted.params.get("mode", "window")
    if mode == "window":
        return None
    return Adaptation(mode, -(-fitted.params[MODE_LENGTH[mode]] // length(fitted)))


class Window:
    def __init__(self, n_channels: int, window: int, adapt: Adaptation | None = None):
        self.window = window
        self.buffer = np.zeros((n_channels, window), dtype=F32)
        for name in STATE_FLOATS:
            setattr(self, name, np.zeros(n_channels, dtype=F32))
        self.count = self.head = self.fresh_count = self.streak = 0
        self.adapt = adapt
        self.base_mean = np.zeros(n_channels, dtype=F32)
        self.base_var = np.zeros(n_channels, dtype=F32)
        self.blocks = 0
        self.frozen = False
        self.block_clipped = False  # a sample of the current window was clipped

    def view(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(offset, mean, variance) a sample is judged against (mcua_window_view_of): the
        window's, relative to its anchor, until the baseline holds a window; count > 0."""
        if self.blocks:
            return self.base_mean, np.zeros_like(self.base_mean), self.base_var
        mean, mean_sq = self.mean()
        return self.anchor, mean, mean_sq - mean * mean

    def freeze(self) -> bool:
        """mcua_baseline_freeze: end the calibration with the windows learnt so far."""
        self.frozen = self.frozen or self.blocks > 0
        return self.frozen

    def _fold(self) -> None:
        """Fold the window just swapped in into the baseline (mcua_baseline_fold)."""
        keep_var = self.blocks == self.adapt.blocks and self.block_clipped
        if self.blocks < self.adapt.blocks:
            self.blocks += 1
        w = F32(1) / F32(self.blocks)
        m = self.sum * (F32(1) / F32(self.window))
        mean = self.anchor + m
        var = self.sumsq * (F32(1) / F32(self.window)) - m * m
        var = np.where(var > 0, var, F32(0))
        if self.blocks == 1:
            self.base_mean, self.base_var = mean, var
        else:
            delta = mean - self.base_mean
            self.base_mean = self.base_mean + w * delta
            if not keep_var:
                spread = (F32(1) - w) * (delta * delta)
                self.base_var = self.base_var + w * ((var - self.base_var) + spread)
        self.base_var = np.where(self.base_var > MAX_VARIANCE, MAX_VARIANCE, self.base_var)
        if self.adapt.mode == "frozen" and self.blocks == self.adapt.blocks:
            self.frozen = True
        self.block_clipped = False

    def mean(self) -> tuple[np.ndarray, np.ndarray]:
        """(mean relative to the anchor, mean of squares relative to it); count must be > 0."""
        inv_n = F32(1) / F32(self.count)
        return self.sum * inv_n, self.sumsq * inv_n

    def push(self, v: np.ndarray, clipped: bool = False) -> None:
        """Insert one admitted value per channel and move the ring on (push + advance in C,
        and with a baseline the fold of mcua_window_learn; clipped: a channel of v was)."""
        self.block_clipped = self.block_clipped or (clipped and self.adapt is not None)
        if self.count == 0:
            self.anchor = v.copy()
            self.fresh_anchor = v.copy()
        a = v - self.anchor
        far = ~(np.abs(a) <= MAX_DEVIATION)
        if far.any():
            v = np.where(far, self.anchor + np.where(a > 0, MAX_DEVIATION, -MAX_DEVIATION), v)
            a = v - self.anchor
        f = v - self.fresh_anchor
        if self.count == self.window:
            o = self.buffer[:, self.head]  # its deviation from its block's anchor, ours now
            step = a - o
            self.sum = self.sum + step
            self.sumsq = self.sumsq + step * (a + o)
        else:
            self.sum = self.sum + a
            self.sumsq = self.sumsq + a * a
            self.count += 1
        self.buffer[:, self.head] = f
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
            if self.adapt:
                self._fold()

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
        """The state as flat arrays: floats (per channel the six sums, then the buffer, then
        with a baseline per channel its mean and variance) and the counters (four, then
        with a baseline its blocks, frozen and clipped), in the layout the host build
        reports."""
        parts = [np.stack([getattr(self, n) for n in STATE_FLOATS], axis=1).ravel(),
                 self.buffer.ravel()]
        counters = [self.count, self.head, self.fresh_count, self.streak]
        if self.adapt:
            parts.append(np.stack([self.base_mean, self.base_var], axis=1).ravel())
            counters += [self.blocks, int(self.frozen), int(self.block_clipped)]
        return np.concatenate(parts), np.array(counters, dtype=np.uint16)


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
    Otherwise every channel's deviation d from the mean it is judged against (Window.view)
    is measured, (z, over, beyond, bound) = measure(var, d); the score is the largest z; a
    channel over the threshold (over) counts as clipped and enters the window clipped to
    mean +- bound where it is also beyond (a clipping detector: wherever it is over;
    streaming_zscore's outliers=absorb: beyond ABSORB_LIMIT deviations), so an anomaly
    never poisons the statistics, and flags once min_count samples are in.  Before that (the
    warm-up) RESTART samples clipped in a row restart the window (Window.settle): the
    window, not the samples, was out of line.  A frozen baseline only scores."""
    min_count = fitted.params["min_count"]

    def update(w: Window, x: np.ndarray):
        if not np.isfinite(x).all():
            return F32(np.inf), True
        judged = w.count >= min_count
        v = x.copy()
        score = F32(0)
        clipped = False
        if w.count:
            offset, mean, var = w.view()
            d = (v - offset) - mean
            z, over, beyond, bound = measure(var, d)
            score = max(score, z.max())
            if over.any():
                clipped = True
                v = np.where(beyond, offset + np.where(d > 0, mean + bound, mean - bound), v)
        if not w.frozen:
            w.push(v, clipped)
            w.settle(clipped and not judged)
        return score, clipped and judged

    return update


def score(step_factory, fitted, X: np.ndarray, with_state: bool = False,
          state: Window | None = None) -> Scored:
    """Run a windowed detector over X from a fresh state, or on from `state` (a Window,
    updated in place: the stream goes on where the last call left it); see run."""
    X = np.asarray(X, dtype=F32)
    state = new_state(fitted, X.shape[1]) if state is None else state
    return run(step_factory(fitted), X, state, with_state)


def new_state(fitted, n_channels: int) -> Window:
    """A fresh state of a window detector (of a clipping one: with its adaptation)."""
    return Window(n_channels, length(fitted), adaptation(fitted))


def adaptation_params(name: str, params: dict) -> None:
    """Check a clipping detector's mode and the lengths in samples of its calibration and
    memory (each at most MAX_BLOCKS whole windows)."""
    choice_param(name, params, "mode", MODES)
    for key in MODE_LENGTH.values():
        positive_int(name, params, key, MAX_BLOCKS * params["window"])


def template_context(name: str, fitted) -> dict:
    """The variables of the window detectors' templates; the integers, which the headers
    carry as text, checked (a bundle is a file anyone can edit)."""
    window = positive_int(name, fitted.params, "window", MAX_WINDOW)
    adaptation_params(name, fitted.params)
    adapt = adaptation(fitted)
    return {"threshold": fitted.scalars["threshold"], "window": window,
            "min_count": positive_int(name, fitted.params, "min_count", window),
            "mode_name": fitted.params["mode"], "adapt_blocks": adapt.blocks if adapt else 0,
            **fitted.arrays}


def check_stored(stored) -> None:
    """The stored fields every clipping window detector has: its window, min_count,
    adaptation and threshold."""
    length = stored.integer("params", "window", 1, MAX_WINDOW)
    stored.integer("params", "min_count", 1, length)
    stored.choice("params", "mode", MODES)
    for key in MODE_LENGTH.values():
        stored.integer("params", key, 1, MAX_BLOCKS * length)
    stored.number("scalars", "threshold", lo=0)


def state_bytes(n_channels: int, window: int, align: int = 1, adapted: bool = False) -> int:
    """RAM of a window's state (templates/_common.j2 window_state): per channel six float
    sums and `window` readings, and the counters (three uint16 and the uint8 streak, padded
    to the float's alignment, then a float: 11 bytes on AVR, 12 on 32-bit targets); with a
    baseline, per channel two floats and its counters (a uint16 and two uint8)."""
    window_bytes = n_channels * (6 + window) * 4 + -(-(3 * 2 + 1) // align) * align + 4
    baseline_bytes = n_channels * 2 * 4 + 4
    return window_bytes + (baseline_bytes if adapted else 0)


def spec(name: str, schema, **fields) -> DetectorSpec:
    """The spec of a detector that learns on the device in a window and clips what it
    learns at the threshold (clipping_step); schema checks its own arrays (after
    check_stored)."""

    def check(stored) -> None:
        check_stored(stored)
        schema(stored)

    def footprint(fitted, n_channels: int) -> Footprint:
        ram = state_bytes(n_channels, length(fitted), adapted=adaptation(fitted) is not None)
        return Footprint(array_bytes(fitted), ram=ram,
                         shrink="fewer channels (--columns) or a smaller --window")

    return DetectorSpec(name, units=("window", name), kind=Kind.STREAMING, schema=check,
                        window=length, quiet=lambda fitted: fitted.params["min_count"],
                        describe=lambda fitted: f"W={length(fitted)}", default=True,
                        threshold_feeds_state=True, footprint=footprint, **fields)
