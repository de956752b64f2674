"""The autoencoder's parameters and the errors it raises.  Every layer choice is checked
here, before any training, so that nothing fails at conversion or on the device."""

from __future__ import annotations

import numpy as np

from codegen.errors import UserError
from codegen.training import thresholds

NAME = "autoencoder"

DEFAULTS: dict = {
    "channel": 0,                   # which column of the data the detector watches
    "channels": None,               # several: "all", names ("a,b") or indices (then not channel)
    "pointwise": "newest",          # a row's score: its own error, or its whole window's
    "window": 20,                   # W: network input/output width
    "hidden": [8, 4, 8],            # hidden Dense layer widths (ReLU)
    "activation": "relu",           # hidden activation; only ReLU fuses into int8 FC
    "epochs": 50,
    "batch_size": 32,
    "learning_rate": 0.001,         # Adam
    "validation_split": 0.1,        # last fraction of the rows, chronologically
    "threshold": "percentile:99",   # or "sigma:K"
    "representative_samples": 500,  # training windows used to calibrate int8
    "arena_cap": 262144,            # largest TFLite Micro arena the search tries
}

MAX_WINDOW = 1024        # keeps every int32 accumulator far from overflow
MAX_WIDTH = 1024
MAX_HIDDEN_LAYERS = 8
MAX_ARENA = 1 << 24      # 16 MiB: far above any board's RAM, below size_t overflow
# What a row's score is: "window", the mean squared error over the whole window (every value
# of its W rows), or "newest", over the newest row's values alone (the row being scored).
POINTWISE = ("window", "newest")


# ---------------------------------------------------------------------------
# errors: all ValueError subclasses whose message names the problem and the fix

class AutoencoderError(UserError):
    """Base class of every error this detector raises."""


class AutoencoderConfigError(AutoencoderError):
    """A parameter is missing, malformed or out of range."""


class UnsupportedLayerError(AutoencoderConfigError):
    """A layer choice the int8 TFLite Micro path or the plain-C engine cannot run."""


class InsufficientDataError(AutoencoderError):
    """Not enough rows for the window, or too few normal windows."""


class NonFiniteInputError(AutoencoderError):
    """NaN or +-Inf where a finite sensor value is required."""


class ConstantChannelError(AutoencoderError):
    """The watched channel does not vary, so it cannot be standardised."""


class BundleMismatchError(AutoencoderError):
    """Stored scalars/blobs disagree with each other or are missing."""


# ---------------------------------------------------------------------------

def _is_int(v) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, bool)


def check_params(params: dict | None) -> dict:
    """Merge with DEFAULTS and validate."""
    params = dict(params or {})
    unknown = sorted(set(params) - set(DEFAULTS))
    if unknown:
        raise AutoencoderConfigError(
            f"unknown autoencoder parameter(s) {unknown}: the known ones are "
            f"{sorted(DEFAULTS)}; check the spelling")
    p = {**DEFAULTS, **params}
    p["hidden"] = list(p["hidden"]) if isinstance(p["hidden"], (list, tuple)) else p["hidden"]

    if not _is_int(p["channel"]) or p["channel"] < 0:
        raise AutoencoderConfigError(
            f"{NAME}.channel must be a channel's name or its index >= 0 (e.g. 0), not "
            f"{p['channel']!r}")
    channels = p["channels"]
    if isinstance(channels, str) and channels != "all":  # --set ...channels=vib_de,current
        channels = p["channels"] = [int(c) if c.strip().isdigit() else c.strip()
                                    for c in channels.split(",")]
    if channels is not None and channels != "all" and (
            not isinstance(channels, list) or not channels
            or not all(isinstance(c, str) or (_is_int(c) and c >= 0) for c in channels)):
        raise AutoencoderConfigError(
            f"{NAME}.channels must be 'all' or a non-empty list of channel names or indices "
            f"(e.g. vib_de,current or [0,2]), not {channels!r}; leave it out to watch "
            f"{NAME}.channel alone")
    if p["pointwise"] not in POINTWISE:
        raise AutoencoderConfigError(
            f"{NAME}.pointwise must be one of {', '.join(POINTWISE)}, not {p['pointwise']!r}: "
            f"'window' scores a row by its whole window's error, 'newest' by the error of "
            f"the row itself (the newest of its window)")
    if not _is_int(p["window"]) or not 2 <= p["window"] <= MAX_WINDOW:
        raise AutoencoderConfigError(
            f"{NAME}.window must be an integer from 2 to {MAX_WINDOW} (the default is 20), "
            f"not {p['window']!r}")
    act = p["activation"]
    if not isinstance(act, str) or act.lower() != "relu":
        raise UnsupportedLayerError(
            f"{NAME}.activation {act!r} is not supported: TensorFlow Lite Micro's int8 "
            f"FULLY_CONNECTED fuses only ReLU, and the plain-C engine implements only "
            f"fused ReLU; use activation 'relu'")
    hidden = p["hidden"]
    if (not isinstance(hidden, list) or not 1 <= len(hidden) <= MAX_HIDDEN_LAYERS
            or not all(_is_int(h) for h in hidden)):
        raise UnsupportedLayerError(
            f"{NAME}.hidden must be a list of 1 to {MAX_HIDDEN_LAYERS} layer widths "
            f"(integers), e.g. [8, 4, 8], not {hidden!r}; only Dense layers are supported")
    bad = [h for h in hidden if not 1 <= h <= MAX_WIDTH]
    if bad:
        raise UnsupportedLayerError(
            f"{NAME}.hidden: layer width(s) {bad} out of range: each Dense layer needs 1 to "
            f"{MAX_WIDTH} units, e.g. [8, 4, 8]")
    p["hidden"] = [int(h) for h in hidden]
    p["window"] = int(p["window"])
    p["channel"] = int(p["channel"])
    for key, lo in (("epochs", 1), ("batch_size", 1), ("representative_samples", 1),
                    ("arena_cap", 64)):
        if not _is_int(p[key]) or p[key] < lo:
            raise AutoencoderConfigError(
                f"{NAME}.{key} must be an integer >= {lo} (default {DEFAULTS[key]}), "
                f"not {p[key]!r}")
        p[key] = int(p[key])
    vs = p["validation_split"]
    if isinstance(vs, bool) or not isinstance(vs, (int, float)) or not 0.0 < vs <= 0.5:
        raise AutoencoderConfigError(
            f"{NAME}.validation_split must be a fraction in (0, 0.5], e.g. 0.1, not {vs!r}: "
            f"the threshold is set on that last part of the normal rows")
    p["validation_split"] = float(vs)
    lr = p["learning_rate"]
    if isinstance(lr, bool) or not isinstance(lr, (int, float)) or not (0.0 < lr < 1.0):
        raise AutoencoderConfigError(
            f"{NAME}.learning_rate must be a number in (0, 1), e.g. 0.001, not {lr!r}")
    p["learning_rate"] = float(lr)
    thresholds.parse(p["threshold"], f"{NAME}.threshold")
    return p
