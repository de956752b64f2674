"""What every detector module provides, and the trained state they share.

A detector is a module of this package that defines

    SPEC                                  a DetectorSpec: what every stage needs to know
    DEFAULTS                              its parameters and their default values
    fit(normal, params, seed, verbose, channels) -> Fitted
    score(fitted, X, with_state=False) -> Scored
    template_context(fitted) -> dict      the variables of templates/<name>.h.j2
    check_stored(stored) -> None          its part of a bundle checked (SPEC.schema)
    load(params, scalars, arrays, blobs) -> Fitted   (optional: checks a stored bundle)

and is listed once in detectors/__init__.py.  No other stage names a detector: they read
its SPEC (docs/architecture.md).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable, NamedTuple

import numpy as np

from codegen.errors import UserError
from codegen.training import thresholds

if TYPE_CHECKING:
    from codegen.schema import Stored

F32 = np.float32


@dataclass
class Fitted:
    """A trained detector: everything generate and verify need, and nothing else.

    scalars hold JSON-able numbers (float32 values as the Python floats that equal them
    exactly); arrays hold float32/int arrays; blobs hold opaque files such as a .tflite model.
    """

    params: dict
    scalars: dict
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    blobs: dict[str, bytes] = field(default_factory=dict)
    report: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Footprint:
    """What a trained detector takes on any device at least, in bytes, from its shapes (the
    arrays its header holds, its state, its buffers; no code, no padding): codegen/firmware/
    memory.py checks these against a board."""

    flash: int  # constants
    ram: int = 0  # kept between calls: state, static scratch buffers, the caller's window
    stack: int = 0  # buffers one call puts on the stack
    shrink: str = "fewer channels (--columns)"  # how to make it smaller, for the refusal


def array_bytes(fitted: Fitted) -> int:
    """Bytes of all the arrays of fitted: the flash of a detector whose header holds exactly
    its arrays."""
    return sum(int(array.nbytes) for array in fitted.arrays.values())


class Kind(enum.Enum):
    """How the device calls a detector, and so how the host glue, the firmware app and the
    Python reference feed it; and its flag API (DetectorSpec.flag_api), when it has one."""

    STATELESS = "stateless"  # <model>_<name>_score(x, &flag SCORE_ARGS);
    #                          flag API: flag = <model>_<name>_flag(x)
    STREAMING = "streaming"  # <model>_<name>_reset(&state); _update(&state, x, &flag): the
    #                          state is mcua_window's (sums, buffer, counters);
    #                          flag API: flag = <model>_<name>_flag_update(&state, x), the
    #                          same update (the same flag, the same state after it)
    WINDOWED = "windowed"    # <model>_<name>_score(last W rows of its channels, &flag)

    @property
    def flag_function(self) -> str:
        """The flag API's function after <model>_<name>_, for the kinds that can have one."""
        return {Kind.STATELESS: "flag", Kind.STREAMING: "flag_update"}[self]


class Scored(NamedTuple):
    """What score() returns, for every detector: one score and one flag per row of X, and
    (with_state, streaming detectors only) the state after every row as (floats, counters)
    in the layout of window.Window.snapshot."""

    scores: np.ndarray  # float32
    flags: np.ndarray  # bool
    state: tuple[np.ndarray, np.ndarray] | None = None


@dataclass(frozen=True)
class DetectorSpec:
    """What a detector is, for every stage that is not the detector itself."""

    name: str  # one name across the module, template, runtime unit and tests
    units: tuple[str, ...]  # runtime units (codegen/runtime/mcua_<unit>.{h,c}) it needs
    kind: Kind | Callable[[Fitted], Kind]  # a callable when the trained detector decides
    # Checks its stored params, scalars and arrays (a bundle is untrusted input): raises
    # through the readers of codegen.schema.Stored unless they are what its C can run.
    schema: Callable[["Stored"], None]
    window: Callable[[Fitted], int] | None = None  # readings it keeps (streaming / windowed)
    # Values of each row a windowed one keeps: 1, x[<P>_CHANNEL] (the default), or
    # <P>_CHANNELS, which its header's <p>_take_row(x, dst) copies.
    row_values: Callable[[Fitted], int] | None = None
    score_args: str = ""  # C arguments after &flag in a stateless score call
    flag_api: bool = False  # the header also offers the flag alone (Kind.flag_function)
    mutable: tuple[str, ...] = ()  # constants (arrays or scalars) a one-ulp move must change
    describe: Callable[[Fitted], str] | None = None  # its shape beyond the channel count
    default: bool = False  # trained when `train --detectors` is not given
    # The threshold is also where a flagged sample is clipped before it is learnt, so the
    # scores depend on it (training/thresholds.py iterates a labelled choice).
    threshold_feeds_state: bool = False
    # Rows after a reset that never flag, whatever the threshold (a window detector's
    # min_count): a labelled threshold is chosen on the other rows (training/train.py).
    quiet: Callable[[Fitted], int] | None = None
    # fitted with another threshold and what derives from it (default: the scalar alone).
    with_threshold: Callable[[Fitted, float], Fitted] | None = None
    # Rebuilds a stored detector, checking that its stored parts agree (bundle.load;
    # default: Fitted as stored).
    load: Callable[[dict, dict, dict, dict], Fitted] | None = None
    # Fits it to one NAB series from its probation rows x (float64) with the window
    # settings `common` and the variance floor `floor` (the streaming detectors only).
    fit_series: Callable[[np.ndarray, dict, float], Fitted] | None = None
    # What it takes on a device, given the channel count (default: its arrays in flash).
    footprint: Callable[[Fitted, int], Footprint] | None = None

    def footprint_of(self, fitted: Fitted, n_channels: int) -> Footprint:
        if self.footprint is None:
            return Footprint(array_bytes(fitted))
        return self.footprint(fitted, n_channels)

    def row_values_of(self, fitted: Fitted) -> int:
        return 1 if self.row_values is None else self.row_values(fitted)

    def kind_of(self, fitted: Fitted) -> Kind:
        return self.kind(fitted) if callable(self.kind) else self.kind

    def streaming(self, fitted: Fitted) -> bool:
        return self.kind_of(fitted) is Kind.STREAMING

    def warm_up(self, fitted: Fitted) -> int:
        """Samples before it runs as it does for good: a streaming detector's window fills,
        a windowed one scores its first window."""
        kind = self.kind_of(fitted)
        if kind is Kind.STREAMING:
            return self.window(fitted)
        if kind is Kind.WINDOWED:
            return self.window(fitted) - 1
        return 0


def merge_params(name: str, defaults: dict, given: dict) -> dict:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"{name} has no parameter {', '.join(unknown)}; its parameters are "
                        f"{', '.join(sorted(defaults))}")
    return {**defaults, **given}


def _fix(name: str, key: str) -> str:
    return f"give another with --set {name}.{key}=..., or leave it out for the default"


def int_param(name: str, params: dict, key: str, lower: int, upper: int, auto=None):
    """params[key], an integer from lower to upper; with auto given, "auto" gives auto."""
    value = params[key]
    if auto is not None and isinstance(value, str) and value == "auto":
        return auto
    if (isinstance(value, bool) or not isinstance(value, (int, np.integer))
            or not lower <= value <= upper):
        accepted = ("'auto' or " if auto is not None else "") + f"an integer from {lower} to {upper}"
        raise UserError(f"{name}.{key} must be {accepted}, not {value!r}; {_fix(name, key)}")
    return int(value)


def positive_int(name: str, params: dict, key: str, upper: int = 65535) -> int:
    return int_param(name, params, key, 1, upper)


def number_param(name: str, params: dict, key: str, lower: float, upper: float,
                 open_lower: bool = False) -> float:
    """params[key], a number in [lower, upper], or (lower, upper] when open_lower."""
    value = params[key]
    number = not isinstance(value, bool) and isinstance(value, (int, float, np.floating))
    if not (number and (lower < value if open_lower else lower <= value) and value <= upper):
        interval = f"{'(' if open_lower else '['}{lower:g}, {upper:g}]"
        raise UserError(f"{name}.{key} must be a number in {interval}, not {value!r}; "
                        f"{_fix(name, key)}")
    return float(value)


def choice_param(name: str, params: dict, key: str, options) -> str:
    """params[key], one of options."""
    value = params[key]
    if not isinstance(value, str) or value not in options:
        raise UserError(f"{name}.{key} must be one of {', '.join(options)}, not {value!r}; "
                        f"{_fix(name, key)}")
    return value


def threshold_param(name: str, params: dict) -> tuple[str, float | None]:
    """The detector's threshold spec, parsed (training/thresholds.py)."""
    return thresholds.parse(params["threshold"], f"{name}.threshold")


def channel_std(name: str, normal: np.ndarray, channels: list[str]) -> np.ndarray:
    """Per-channel standard deviation of normal data; a constant channel is an error."""
    std = normal.astype(np.float64).std(axis=0)
    for c, value in enumerate(std):
        if not value > 0:
            raise UserError(f"{name}: channel {channels[c]!r} is constant in the normal training "
                            f"rows (standard deviation 0); leave it out with --columns")
    return std


FLOAT32_MAX = float(np.finfo(F32).max)
FLOAT32_TINY = float(np.finfo(F32).tiny)  # the smallest normal float32


def inverse_f32(name: str, values: np.ndarray, channels: list[str],
                what: str = "standard deviation") -> np.ndarray:
    """float32(1 / v) per channel, computed in double so only one rounding happens; a v so
    small that its inverse is beyond float32 (v below 1/FLOAT32_MAX, 2.9e-39) is an error."""
    values = np.asarray(values, dtype=np.float64)
    with np.errstate(over="ignore", divide="ignore"):
        inverse = (1.0 / values).astype(F32)
    for c in np.flatnonzero(~np.isfinite(inverse)):
        raise UserError(f"{name}: channel {channels[c]!r}: {what} {values[c]:.3g} is below "
                        f"float32's range (its inverse {1.0 / values[c]:.3g} overflows "
                        f"float32's {FLOAT32_MAX:.3g}); rescale the channel (e.g. to mV or "
                        f"µV) or leave it out with --columns")
    return inverse


def scalar(value) -> float:
    """A float32 value as the Python float that equals it exactly (JSON-safe, round-trips)."""
    return float(F32(value))


def check_deviation(name: str, normal: np.ndarray, mean: np.ndarray, channels: list[str]) -> None:
    """Refuse normal readings whose float32 deviation x - mean, the first step on the
    device, overflows (readings of both signs near float32's limits)."""
    with np.errstate(over="ignore"):
        deviation = np.asarray(normal, F32) - np.asarray(mean, F32)
    for c in np.flatnonzero(~np.isfinite(deviation).all(axis=0)):
        raise UserError(f"{name}: channel {channels[c]!r}: normal readings lie so far from "
                        f"their mean ({float(mean[c]):.3g}) that their difference overflows "
                        f"float32 ({FLOAT32_MAX:.3g}); rescale the channel (e.g. to kV) or "
                        f"leave it out with --columns")
