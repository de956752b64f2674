"""The report's x axis: the data's time column when it has one that parses (ISO 8601 date
and time, or a number) and never goes back, else the row number; and detection delays in
its units (a duration for dates and times, the column's own unit for numbers, rows)."""

from __future__ import annotations

import re
import warnings
from dataclasses import dataclass

import numpy as np

ZONE = re.compile(r"(Z|[+-]\d\d(:?\d\d)?)$")  # an ISO 8601 UTC offset at the end


@dataclass
class TimeAxis:
    kind: str  # "datetime", "number" or "row"
    values: np.ndarray  # per row: datetime64[ms], float64 or int64 row numbers
    title: str
    note: str | None = None  # why the row number, when a time column was not used

    def edges(self, rows: np.ndarray) -> np.ndarray:
        """x at these rows, where row n (one past the last) is the last step past the end
        (one second or 1 for a single row)."""
        if len(self.values) > 1:
            step = self.values[-1] - self.values[-2]
        else:
            step = np.timedelta64(1, "s") if self.kind == "datetime" else 1
        return np.r_[self.values, [self.values[-1] + step]][rows]

    def delay(self, event: dict) -> float:
        """A caught event's delay: seconds, the time column's unit, or rows."""
        start, first_flag = event["start"], event["start"] + event["delay"]
        if self.kind == "row":
            return float(event["delay"])
        span = self.values[first_flag] - self.values[start]
        if self.kind == "datetime":
            return span / np.timedelta64(1, "ms") / 1000.0
        return float(span)

    def shown(self, value: float) -> str:
        """A delay as text: 12 s, 1.5 min, 3 h, 2 d; 1.5 in the column's unit; 12 rows."""
        if self.kind == "row":
            return f"{value:.1f}"
        if self.kind == "number":
            return f"{value:.4g}"
        for size, unit in ((86400, "d"), (3600, "h"), (60, "min")):
            if value >= size:
                return f"{value / size:.3g} {unit}"
        return f"{value:.3g} s"

    @property
    def delay_unit(self) -> str:
        """What the delay column's heading adds: its unit where the figures do not say it."""
        return {"row": " (rows)", "number": " (the time column's unit)", "datetime": ""}[self.kind]


def rows_axis(n: int, note: str | None = None) -> TimeAxis:
    return TimeAxis("row", np.arange(n), "row", note)


def _parsed(times: list[str]) -> tuple[str, np.ndarray, str] | None:
    try:
        numbers = np.asarray(times, dtype=np.float64)
    except ValueError:
        pass
    else:
        return ("number", numbers, "time") if np.isfinite(numbers).all() else None
    try:
        with warnings.catch_warnings():  # numpy converts a UTC offset to UTC, and says so
            warnings.simplefilter("ignore", UserWarning)
            stamps = np.asarray(times, dtype="datetime64[ms]")
    except ValueError:
        return None
    if np.isnat(stamps).any():
        return None
    return "datetime", stamps, "time (UTC)" if ZONE.search(times[0]) else "time"


def time_axis(times: list[str] | None, n: int) -> TimeAxis:
    """The time column as the x axis, or the row number (with the reason when the data has
    a time column that cannot be one)."""
    if not times:
        return rows_axis(n)
    parsed = _parsed(times)
    if parsed is None:
        return rows_axis(n, "the time column is neither ISO 8601 dates and times nor numbers "
                            "in every row, so the x axis is the row number")
    kind, values, title = parsed
    back = np.flatnonzero(values[1:] < values[:-1])
    if back.size:
        row = back[0] + 1
        return rows_axis(n, f"the time column goes back at data row {row + 1} ({times[row - 1]} "
                            f"then {times[row]}), so the x axis is the row number")
    return TimeAxis(kind, values, title)
