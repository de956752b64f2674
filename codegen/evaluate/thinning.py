"""What the report draws of a long series or curve: a few points per pixel column, chosen
so that the drawn line is the full one to within a pixel.

A plot is at most COLUMNS pixels wide.  A series keeps the lowest and the highest reading of
each bucket of consecutive rows (one bucket per column), so a one-row spike is drawn; a
curve (x monotonic: PR, ROC, a threshold sweep) keeps the first, lowest, highest and last
point of each column of its x range, so its turns and both endpoints stay where they are.
Flags become the fraction of each bucket's rows flagged (BANDS buckets across the plot, each
at least two pixels wide), drawn as a shaded band, so a single flagged row shows, a detector
flagging every other row draws one half-shaded band, not n/2 marks, and one flagging 1 % of
the rows looks lighter than one flagging all of them.
"""

from __future__ import annotations

import numpy as np

COLUMNS = 1500  # pixel columns of the widest plot (the report is at most 1280 px wide)
HALF = COLUMNS // 2  # a plot beside another (PR and ROC, the sweeps)
BANDS = 600  # buckets of a flags' band: each at least two pixels wide


def _buckets(n: int, columns: int) -> int:
    """Rows per bucket when n rows are spread over at most columns buckets."""
    return max(1, -(-n // columns))


def _extremes(groups: np.ndarray, y: np.ndarray, ends: bool) -> np.ndarray:
    """Sorted indices of each run of equal groups' lowest and highest y (with ends: also its
    first and last point)."""
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]])
    stops = np.r_[starts[1:], len(y)] - 1
    order = np.lexsort((y, np.repeat(np.arange(len(starts)), stops - starts + 1)))
    keep = [order[starts], order[stops]]  # within a run sorted by y: lowest first
    if ends:
        keep += [starts, stops]
    return np.unique(np.concatenate(keep))


def series(y: np.ndarray, columns: int = COLUMNS) -> np.ndarray:
    """Row indices to draw of a series: the rows of each bucket's lowest and highest
    reading, the first and last row, and each bucket's first missing (NaN) reading, drawn
    as a gap, beside its extremes."""
    n = len(y)
    if n <= 2 * columns:
        return np.arange(n)
    groups = np.arange(n) // _buckets(n, columns)
    present = np.flatnonzero(~np.isnan(y))
    absent = np.flatnonzero(np.isnan(y))
    kept = present[_extremes(groups[present], y[present], ends=False)] if present.size else []
    gaps = absent[np.unique(groups[absent], return_index=True)[1]]
    return np.union1d(np.union1d(kept, gaps), [0, n - 1]).astype(np.int64)


def curve(x: np.ndarray, y: np.ndarray, columns: int = HALF) -> np.ndarray:
    """Point indices to draw of a curve whose x is monotonic (either way)."""
    x = np.asarray(x, dtype=np.float64)
    n = len(x)
    if n <= 4 * columns:
        return np.arange(n)
    low, high = min(x[0], x[-1]), max(x[0], x[-1])
    scale = columns / (high - low) if high > low else 0.0
    return _extremes(np.minimum(((x - low) * scale).astype(np.int64), columns - 1),
                     np.asarray(y), ends=True)


def density(marked: np.ndarray, columns: int = BANDS) -> tuple[np.ndarray, np.ndarray]:
    """The marked rows per bucket of consecutive rows: the buckets' edges (rows, the last
    one past the end) and the fraction of each bucket's rows marked."""
    marked = np.asarray(marked, dtype=bool)
    n = len(marked)
    rows = _buckets(n, columns)
    edges = np.r_[np.arange(0, n, rows), n]
    return edges, np.add.reduceat(marked, edges[:-1]) / np.diff(edges)
