"""The trained-model bundle: one directory of human-readable JSON plus .npy arrays.

    <bundle>/bundle.json                 format, version, channels, per-detector params/scalars
    <bundle>/arrays/<detector>.<name>.npy    float32 / integer arrays, exact
    <bundle>/blobs/<file>                opaque files a detector needs (e.g. a .tflite model)

Same inputs and seed give byte-identical files (sorted keys, no timestamps, .npy not .npz).
A bundle is written to a temporary sibling directory and renamed into place, so a failure
never leaves half a bundle behind.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen import __version__
from codegen.emit.cnames import check_channel_names, check_model_name
from codegen.detectors import get
from codegen.detectors.base import Fitted
from codegen.errors import UserError
from codegen.files import swap_in

FORMAT = "mcu-anomaly-bundle"
FORMAT_VERSION = 1


@dataclass
class Bundle:
    name: str
    channels: list[str]
    channel_mean: list[float]
    channel_std: list[float]
    detectors: dict[str, Fitted]
    training: dict


def save(bundle: Bundle, out: str | Path) -> Path:
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        (tmp / "arrays").mkdir()
        detectors = {}
        for name, fitted in bundle.detectors.items():
            for key, array in fitted.arrays.items():
                np.save(tmp / "arrays" / f"{name}.{key}.npy", array, allow_pickle=False)
            for filename, data in fitted.blobs.items():
                (tmp / "blobs").mkdir(exist_ok=True)
                (tmp / "blobs" / filename).write_bytes(data)
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
            "channel_mean": bundle.channel_mean,
            "channel_std": bundle.channel_std,
            "training": bundle.training,
            "detectors": detectors,
        }
        text = json.dumps(doc, indent=2, sort_keys=True, allow_nan=False) + "\n"
        (tmp / "bundle.json").write_text(text)
        if out.exists() and not (out / "bundle.json").is_file():
            raise UserError(f"{out} exists and is not a bundle; choose another --out")
        swap_in(tmp, out)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return out


def load(path: str | Path) -> Bundle:
    path = Path(path)
    meta = path / "bundle.json"
    if not meta.is_file():
        raise UserError(f"{path} is not a bundle (no bundle.json); create one with "
                        f"`mcu-anomaly train ... --out {path}`")
    try:
        doc = json.loads(meta.read_text())
    except json.JSONDecodeError as error:
        raise UserError(f"{meta} is not valid JSON ({error}); retrain the bundle") from None
    if doc.get("format") != FORMAT:
        raise UserError(f"{meta} is not an mcu-anomaly bundle; retrain with `mcu-anomaly train`")
    if doc.get("format_version") != FORMAT_VERSION:
        raise UserError(
            f"bundle {path} has format version {doc.get('format_version')} (written by "
            f"mcu-anomaly {doc.get('tool_version')}); this mcu-anomaly {__version__} reads version "
            f"{FORMAT_VERSION}: retrain it with `mcu-anomaly train`"
        )
    check_model_name(doc["name"])
    check_channel_names(doc["channels"])
    detectors = {}
    for name, entry in doc["detectors"].items():
        module = get(name)
        arrays = {key: np.load(path / "arrays" / f"{name}.{key}.npy", allow_pickle=False)
                  for key in entry["arrays"]}
        blobs = {f: (path / "blobs" / f).read_bytes() for f in entry.get("blobs", [])}
        if module.SPEC.load is not None:  # a detector that checks its stored parts agree
            fitted = module.SPEC.load(entry["params"], entry["scalars"], arrays, blobs)
            fitted.report = {**fitted.report, **entry.get("report", {})}
        else:
            fitted = Fitted(entry["params"], entry["scalars"], arrays, blobs,
                            entry.get("report", {}))
        detectors[name] = fitted
    return Bundle(doc["name"], doc["channels"], doc["channel_mean"], doc["channel_std"],
                  detectors, doc["training"])
