"""Order keys of float32 values, and bisection over them.

The key of a float is +bits for a clear sign bit and -(bits without the sign) for a set one:
compared as integers, keys order floats as numbers (both zeros share 0, NaNs lie beyond the
infinities).  The runtime computes the same key (mcua_order_key in mcua_common.h), so a
comparison the device would make in float arithmetic can be replaced by comparing a
reading's key with a key found here: for a function of one reading that rounding keeps
monotone, the readings where it changes its answer are found exactly by bisection.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

F32 = np.float32


def order_key(x) -> np.ndarray:
    """int64 keys of float32 values."""
    bits = np.asarray(x, dtype=F32).view(np.uint32).astype(np.int64)
    magnitude = bits & 0x7FFFFFFF
    return np.where(bits & 0x80000000, -magnitude, magnitude)


def from_order_key(keys) -> np.ndarray:
    """The float32 values of keys (inverse of order_key, with +0 for key 0)."""
    keys = np.asarray(keys, dtype=np.int64)
    return np.where(keys < 0, 0x80000000 | -keys, keys).astype(np.uint32).view(F32)


MAX_FINITE = int(order_key(np.finfo(F32).max))  # the key of the largest finite float


def first_true(predicate: Callable[[np.ndarray], np.ndarray], below, at) -> np.ndarray:
    """Per search i, the smallest key k with below[i] < k <= at[i] where predicate turns
    true, for a predicate that is false then true on that range: predicate(below[i]) is
    taken as false and predicate(at[i]) as true without calling it on them (so they may be
    sentinels beyond the finite floats).  predicate gets an int64 array of keys, one per
    search, and returns a bool array."""
    below = np.array(below, dtype=np.int64)
    at = np.array(at, dtype=np.int64)
    while (open_ := at - below > 1).any():
        mid = below + (at - below) // 2
        true = predicate(np.where(open_, mid, at))
        below = np.where(open_ & ~true, mid, below)
        at = np.where(open_ & true, mid, at)
    return at
