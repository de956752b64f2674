"""The trained-model bundle: one directory of human-readable JSON plus .npy arrays.

    <bundle>/bundle.json                 format, version, channels, per-detector params/scalars
    <bundle>/arrays/<detector>.<name>.npy    float32 / integer arrays, exact
    <bundle>/blobs/<file>                opaque files a detector needs (e.g. a .tflite model)

Same inputs and seed give byte-identical files (sorted keys, no timestamps, .npy not .npz).
A bundle is written to a temporary sibling directory that then takes the place of --out in
one step (files.py write_tree), so a failure or a kill never leaves half a bundle behind.
"""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen import __version__, schema
from codegen.emit.cnames import check_channel_names, check_model_name
from codegen.detectors import get
from codegen.detectors.base import Fitted
from codegen.errors import UserError
from codegen.files import Output, read_json, write_tree

FORMAT = "mcu-anomaly-bundle"
FORMAT_VERSION = 2
BUNDLE = Output("bundle", "bundle.json", "train")
DIRS = ("arrays",)  # always there, even empty


@dataclass
class Bundle:
    name: str
    channels: list[str]
    channel_mean: list[float]
    channel_std: list[float]
    detectors: dict[str, Fitted]
    training: dict
    columns: list[str] | None = None  # the data's name of each channel (default: the same)

    def __post_init__(self):
        self.columns = list(self.columns or self.channels)


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


def contents(bundle: Bundle) -> dict[str, str | bytes]:
    """The bundle's files (relative path -> contents), as save writes them."""
    files: dict[str, str | bytes] = {}
    detectors = {}
    for name, fitted in bundle.detectors.items():
        for key, array in fitted.arrays.items():
            files[f"arrays/{name}.{key}.npy"] = _npy(array)
        for filename, data in fitted.blobs.items():
            files[f"blobs/{filename}"] = data
        detectors[name] = {
            "params": fitted.params,
            "scalars": fitted.scalars,
            "arrays": {k: {"dtype": str(v.dtype), "shape": list(v.shape)}
                       for k, v in fitted.arrays.items()},
            "blobs": sorted(fitted.blobs),
            "report": fitted.report,
        }
    doc = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "tool_version": __version__,
        "name": bundle.name,
        "channels": bundle.channels,
        "columns": bundle.columns,
        "channel_mean": bundle.channel_mean,
        "channel_std": bundle.channel_std,
        "training": bundle.training,
        "detectors": detectors,
    }
    files["bundle.json"] = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
    return files


def save(bundle: Bundle, out: str | Path, force: bool = False) -> Path:
    """Write the bundle to directory out, replacing an earlier bundle there whole (files.py
    write_tree: a foreign non-empty directory only with force)."""
    return write_tree(out, contents(bundle), BUNDLE, dirs=DIRS, force=force)


def load(path: str | Path) -> Bundle:
    """The bundle in directory path, checked against the schema (codegen/schema.py) before
    any of it is used."""
    path = Path(path)
    meta = path / "bundle.json"
    if not meta.is_file():
        raise UserError(f"{path} is not a bundle (no bundle.json); create one with "
                        f"`mcu-anomaly train ... --out {path}`")
    doc = read_json(meta, "retrain the bundle")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT:
        raise UserError(f"{meta} is not an mcu-anomaly bundle; retrain with `mcu-anomaly train`")
    version = doc.get("format_version")
    if type(version) is not int or version != FORMAT_VERSION:  # "1", 1.0 and True too
        raise UserError(
            f"bundle {path} has format version {version!r:.40} (written by "
            f"mcu-anomaly {doc.get('tool_version')!r:.40}); this mcu-anomaly {__version__} reads "
            f"version {FORMAT_VERSION}: retrain it with `mcu-anomaly train`"
        )
    where = str(path)
    schema.check_document(where, doc)
    check_model_name(doc["name"])
    check_channel_names(doc["channels"])
    detectors = {}
    for name, entry in doc["detectors"].items():
        spec = get(name).SPEC
        params, scalars, index, blob_names, report = schema.check_entry(where, name, entry)
        arrays = {key: schema.read_array(path, name, key, declared)
                  for key, declared in index.items()}
        spec.schema(schema.Stored(where, name, params, scalars, arrays, len(doc["channels"])))
        blobs = {f: _read_blob(path, name, f) for f in blob_names}
        if spec.load is not None:  # a detector that checks its stored parts agree
            fitted = spec.load(params, scalars, arrays, blobs)
            fitted.report = {**fitted.report, **report}
        else:
            fitted = Fitted(params, scalars, arrays, blobs, report)
        detectors[name] = fitted
    return Bundle(doc["name"], doc["channels"], doc["channel_mean"], doc["channel_std"],
                  detectors, doc["training"], doc.get("columns"))


def _read_blob(path: Path, name: str, filename: str) -> bytes:
    blob = schema.inside(path, "blobs", filename)
    try:
        return blob.read_bytes()
    except OSError as error:
        raise schema.BundleError(f"bundle {path}: {name}.blobs names {filename}, which cannot "
                                 f"be read ({error.strerror}); {schema.FIX}") from None
