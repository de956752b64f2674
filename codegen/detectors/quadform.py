"""The reference of codegen/runtime/mcua_quadform.h: the sum of squares of a triangular or
diagonal factor times a vector, per row of D, in float32 and in the C's order.

    upper: y[i] = sum over j = i..n-1 of U[i][j] * d[j] (in order), minus b[i]
    diag:  y[i] = u[i] * d[i], minus b[i]
    result = sum over i of y[i]^2 (in order); +Inf where it is not finite (never NaN)
"""

from __future__ import annotations

import numpy as np

F32 = np.float32


def pack_upper(matrix: np.ndarray) -> np.ndarray:
    """The upper triangle of a square matrix, row by row (the C's packed layout)."""
    n = len(matrix)
    return np.concatenate([matrix[i, i:] for i in range(n)]).astype(F32)


def unpack_upper(packed: np.ndarray, n: int) -> list[np.ndarray]:
    """The rows of a packed upper triangle: row i holds U[i][i..n-1]."""
    rows, start = [], 0
    for i in range(n):
        rows.append(packed[start:start + n - i])
        start += n - i
    return rows


def packed_length(n: int) -> int:
    return n * (n + 1) // 2


@np.errstate(over="ignore", invalid="ignore")
def _sum_squares(terms) -> np.ndarray:
    total = None
    for y in terms:
        total = y * y if total is None else total + y * y
    return np.where(np.isfinite(total), total, F32(np.inf)).astype(F32)


def upper(packed: np.ndarray, b: np.ndarray | None, D: np.ndarray) -> np.ndarray:
    D = np.asarray(D, dtype=F32)
    n = D.shape[1]

    @np.errstate(over="ignore", invalid="ignore")
    def row(i, u):
        y = u[0] * D[:, i]
        for j in range(1, n - i):
            y = y + u[j] * D[:, i + j]
        return y if b is None else y - b[i]

    return _sum_squares(row(i, u) for i, u in enumerate(unpack_upper(packed, n)))


def diag(u: np.ndarray, b: np.ndarray | None, D: np.ndarray) -> np.ndarray:
    D = np.asarray(D, dtype=F32)

    @np.errstate(over="ignore", invalid="ignore")
    def row(i):
        y = u[i] * D[:, i]
        return y if b is None else y - b[i]

    return _sum_squares(row(i) for i in range(D.shape[1]))
