"""What every detector module provides, and the trained state they share."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from codegen.errors import UserError

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


def merge_params(name: str, defaults: dict, given: dict) -> dict:
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UserError(f"{name} has no parameter {', '.join(unknown)}; its parameters are "
                        f"{', '.join(sorted(defaults))}")
    return {**defaults, **given}


def positive_int(name: str, params: dict, key: str, upper: int = 65535) -> int:
    value = params[key]
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= upper:
        raise UserError(f"{name}.{key} must be an integer from 1 to {upper}, not {value!r}")
    return value


def channel_std(name: str, normal: np.ndarray, channels: list[str]) -> np.ndarray:
    """Per-channel standard deviation of normal data; a constant channel is an error."""
    std = normal.astype(np.float64).std(axis=0)
    for c, value in enumerate(std):
        if not value > 0:
            raise UserError(f"{name}: channel {channels[c]!r} is constant in the normal training "
                            f"rows (standard deviation 0); leave it out with --columns")
    return std


def inverse_f32(values: np.ndarray) -> np.ndarray:
    """float32(1 / v), computed in double so only one rounding happens."""
    return (1.0 / np.asarray(values, dtype=np.float64)).astype(F32)


def scalar(value) -> float:
    """A float32 value as the Python float that equals it exactly (JSON-safe, round-trips)."""
    return float(F32(value))
