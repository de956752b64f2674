"""The bundle schema: what bundle.load checks before any part of a bundle reaches C.

A bundle is a file users email, commit and download, so it is read as untrusted input:
every field the generated code depends on is checked for its type, range and shape, and
every name used as a path stays inside the bundle directory.  bundle.load checks the
document (check_document) and each detector's entry (check_entry, read_array); the
detector's own fields are checked by its spec's `schema(stored)`, through the typed
readers of Stored.  A failed check names the field, what it holds, what it must hold, and
the fix.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np

from codegen.errors import UserError

FIX = "the bundle was edited or is damaged: retrain it with `mcu-anomaly train`"
MAX_CHANNELS = 65535  # uint16 channel counts in every model struct
MAX_COLUMN_NAME = 1000  # a data column's name; it reaches C only as an escaped comment
_ARRAY_KEY = re.compile(r"[a-z][a-z0-9_]*\Z")
_BLOB_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*\Z")
_F32_MAX = float(np.finfo(np.float32).max)


class BundleError(UserError):
    """A bundle that does not pass the schema."""


def _kind(value) -> str:
    return type(value).__name__


def _fail(where: str, field: str, problem: str):
    raise BundleError(f"bundle {where}: {field} {problem}; {FIX}")


def _is_int(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_finite(value) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool)
            and math.isfinite(value))


def _is_float32(value) -> bool:
    """A finite number that float32 holds exactly (as every stored constant is)."""
    return _is_finite(value) and abs(value) <= _F32_MAX and float(np.float32(value)) == value


def require(where: str, doc: dict, key: str, kind: type | tuple, field: str = ""):
    """doc[key], which must be present and of this JSON type."""
    field = field or key
    if key not in doc:
        _fail(where, field, "is missing")
    value = doc[key]
    kinds = kind if isinstance(kind, tuple) else (kind,)
    if isinstance(value, bool) and bool not in kinds or not isinstance(value, kinds):
        names = " or ".join("an integer" if k is int else f"a JSON {k.__name__}" for k in kinds)
        _fail(where, field, f"is {_kind(value)} {value!r:.60}, not {names}")
    return value


def check_document(where: str, doc) -> None:
    """The top level of bundle.json, beyond format and version (checked first by
    bundle.load): its fields present, typed and consistent."""
    if not isinstance(doc, dict):
        _fail(where, "bundle.json", f"holds a JSON {_kind(doc)}, not an object")
    require(where, doc, "name", str)
    channels = require(where, doc, "channels", list)
    if not 1 <= len(channels) <= MAX_CHANNELS:
        _fail(where, "channels", f"lists {len(channels)} channels, not 1 to {MAX_CHANNELS}")
    if not all(isinstance(c, str) for c in channels):
        _fail(where, "channels", "holds a name that is not a string")
    columns = doc.get("columns", channels)  # absent in bundles from before the mapping
    if (not isinstance(columns, list) or len(columns) != len(channels)
            or not all(isinstance(c, str) and 0 < len(c) <= MAX_COLUMN_NAME for c in columns)
            or len(set(columns)) != len(columns)):
        _fail(where, "columns", f"must list {len(channels)} distinct names of 1 to "
                                f"{MAX_COLUMN_NAME} characters, one per channel")
    for key in ("channel_mean", "channel_std"):
        values = require(where, doc, key, list)
        if len(values) != len(channels) or not all(_is_finite(v) for v in values):
            _fail(where, key, f"must list {len(channels)} finite numbers, one per channel")
    require(where, doc, "training", dict)
    detectors = require(where, doc, "detectors", dict)
    if not detectors:
        _fail(where, "detectors", "is empty: the bundle holds no detector")


def check_entry(where: str, name: str, entry) -> tuple[dict, dict, dict, list, dict]:
    """One detector's entry in bundle.json: (params, scalars, arrays index, blob names,
    report), each of its JSON type, and every array key and blob name a plain file name."""
    if not isinstance(entry, dict):
        _fail(where, f"detectors.{name}", f"is {_kind(entry)}, not a JSON object")
    parts = [require(where, entry, key, dict, f"{name}.{key}")
             for key in ("params", "scalars", "arrays")]
    blobs = entry.get("blobs", [])
    report = entry.get("report", {})
    if not isinstance(blobs, list) or not all(isinstance(b, str) for b in blobs):
        _fail(where, f"{name}.blobs", "must be a list of file names")
    if not isinstance(report, dict):
        _fail(where, f"{name}.report", f"is {_kind(report)}, not a JSON object")
    for key, declared in parts[2].items():
        if not _ARRAY_KEY.match(key):
            _fail(where, f"{name}.arrays", f"names an array {key!r:.60}, which is not a plain "
                                           f"name (lower-case letters, digits, '_')")
        if not isinstance(declared, dict):
            _fail(where, f"{name}.arrays.{key}", "must be {\"dtype\": ..., \"shape\": [...]}")
    for blob in blobs:
        if not _BLOB_NAME.match(blob) or ".." in blob:
            _fail(where, f"{name}.blobs", f"names a file {blob!r:.60}, which is not a plain "
                                          f"file name inside blobs/")
    return (*parts, blobs, report)


def inside(root: Path, *parts: str) -> Path:
    """root/parts, refused when it resolves (symbolic links followed) outside root."""
    path = root.joinpath(*parts)
    resolved, top = path.resolve(), root.resolve()
    if top not in resolved.parents:
        _fail(str(root), "/".join(parts), f"leads outside the bundle (to {resolved})")
    return path


def read_array(root: Path, name: str, key: str, declared: dict) -> np.ndarray:
    """arrays/<name>.<key>.npy: a plain (not pickled) .npy of the dtype and shape
    bundle.json declares for it."""
    path = inside(root, "arrays", f"{name}.{key}.npy")
    field = f"{name}.arrays.{key}"
    try:
        array = np.load(path, allow_pickle=False)
    except FileNotFoundError:
        _fail(str(root), field, f"is missing ({path} does not exist)")
    except Exception as error:  # noqa: BLE001 - numpy's header parser raises many kinds
        _fail(str(root), field, f"is not a readable .npy file ({path}: "
                                f"{type(error).__name__}: {error})")
    if not isinstance(array, np.ndarray) or array.dtype.hasobject:
        _fail(str(root), field, f"is not a numeric array ({path})")
    if (str(array.dtype) != declared.get("dtype")
            or list(array.shape) != declared.get("shape")):
        _fail(str(root), field, f"holds {array.dtype} {list(array.shape)} but bundle.json "
                                f"declares {declared.get('dtype')} {declared.get('shape')}")
    return array


class Stored:
    """One detector's stored part, read through checks: a detector's spec.schema(stored)
    states what its params, scalars and arrays must be, with these readers."""

    def __init__(self, where: str, name: str, params: dict, scalars: dict,
                 arrays: dict[str, np.ndarray], n_channels: int):
        self.where, self.name = where, name
        self.params, self.scalars, self.arrays = params, scalars, arrays
        self.n_channels = n_channels

    def fail(self, field: str, problem: str):
        _fail(self.where, f"{self.name}.{field}", problem)

    def _value(self, section: str, key: str):
        source = getattr(self, section)
        if key not in source:
            self.fail(f"{section}.{key}", "is missing")
        return source[key]

    def integer(self, section: str, key: str, lo: int, hi: int) -> int:
        value = self._value(section, key)
        if not _is_int(value) or not lo <= value <= hi:
            self.fail(f"{section}.{key}",
                      f"is {value!r:.60}, not an integer from {lo} to {hi}")
        return value

    def number(self, section: str, key: str, lo: float = -_F32_MAX,
               hi: float = _F32_MAX) -> float:
        """A finite float32 value (every stored float constant is one) in [lo, hi]."""
        value = self._value(section, key)
        if not _is_float32(value) or not lo <= value <= hi:
            self.fail(f"{section}.{key}", f"is {value!r:.60}, not a finite float32 value "
                                          f"from {lo:g} to {hi:g}")
        return value

    def choice(self, section: str, key: str, options) -> str:
        value = self._value(section, key)
        if not isinstance(value, str) or value not in options:
            self.fail(f"{section}.{key}", f"is {value!r:.60}, not one of {', '.join(options)}")
        return value

    def only_arrays(self, *keys: str, optional: tuple[str, ...] = ()) -> None:
        """The arrays are these, and maybe the optional ones (an unknown one would reach the
        templates unchecked)."""
        if not set(keys) <= set(self.arrays) <= set(keys) | set(optional):
            self.fail("arrays", f"are {', '.join(sorted(self.arrays)) or 'none'}, not "
                                f"{', '.join(sorted(keys)) or 'none'}"
                                + (f" (and maybe {', '.join(optional)})" if optional else ""))

    def array(self, key: str, dtypes, shape: tuple) -> np.ndarray:
        """Array key, of one of these dtypes and of this shape (None: any length >= 1)."""
        if key not in self.arrays:
            self.fail(f"arrays.{key}", "is missing")
        array = self.arrays[key]
        dtypes = [np.dtype(d) for d in (dtypes if isinstance(dtypes, (list, tuple))
                                        else [dtypes])]
        expected = tuple(array.shape[i] if n is None and i < array.ndim else n
                         for i, n in enumerate(shape))
        if array.dtype not in dtypes:
            self.fail(f"arrays.{key}", f"is {array.dtype}, not {' or '.join(map(str, dtypes))}")
        if array.shape != expected or array.size == 0:
            self.fail(f"arrays.{key}", f"has shape {list(array.shape)}, not "
                                       f"{['any' if n is None else n for n in shape]} "
                                       f"(non-empty; the bundle has {self.n_channels} channels)")
        return array

    def floats(self, key: str, shape: tuple, lo: float = -np.inf) -> np.ndarray:
        """A float32 array of this shape, every value finite and >= lo."""
        array = self.array(key, np.float32, shape)
        if not np.isfinite(array).all():
            self.fail(f"arrays.{key}", "holds NaN or Inf")
        if (array < lo).any():
            self.fail(f"arrays.{key}", f"holds {array.min()!r}, below {lo:g}")
        return array

    def positive_floats(self, key: str, shape: tuple) -> np.ndarray:
        """A float32 array of this shape, every value finite and > 0 (-0 and +0 refused): an
        inverse deviation, which the C multiplies by a difference that may be infinite (a
        0 would make it NaN) and whose sign the C takes as clear."""
        array = self.floats(key, shape, lo=0)
        if not (array > 0).all():
            self.fail(f"arrays.{key}", "holds 0, not a positive value")
        return array

    def indices(self, key: str, dtypes, shape: tuple, upper: int) -> np.ndarray:
        """An integer array of this shape whose values are all below upper."""
        array = self.array(key, dtypes, shape)
        if int(array.max()) >= upper:
            self.fail(f"arrays.{key}", f"holds the index {int(array.max())}, out of range "
                                       f"(below {upper})")
        return array
