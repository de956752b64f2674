"""One file of the Numenta Anomaly Benchmark's data/ folder: a timestamp,value CSV."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from codegen.errors import UserError


def read_series(path: Path) -> tuple[list[str], np.ndarray]:
    """(timestamps, float64 values) of one NAB data file."""
    with path.open(newline="") as handle:
        rows = [r for r in csv.reader(handle) if r]
    if not rows or [c.strip() for c in rows[0][:2]] != ["timestamp", "value"]:
        raise UserError(f"{path} is not a NAB data file (header timestamp,value)")
    try:
        values = np.array([float(r[1]) for r in rows[1:]])
    except (ValueError, IndexError):
        raise UserError(f"{path} holds a row that is not timestamp,number") from None
    return [r[0] for r in rows[1:]], values
