"""The fleet at a glance, from fleet.json: per device its thresholds and, where its data is
labelled, its metrics (train's, codegen/evaluate/metrics.py); the failures with their
reasons; and the devices that stand out among the others.

A device stands out on a quantity (a detector's threshold, a channel's mean or deviation)
when its modified z-score, 0.6745 (x - median) / MAD over the trained devices, exceeds
OUTLIER_Z (Iglewicz and Hoaglin's rule): a robust measure, which the outliers themselves
do not move.  Where more than half the devices agree exactly (MAD 0), the scale is the mean
absolute deviation times 1.253314 instead (theirs, for the same rule).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codegen.fleet.train import manifest

OUTLIER_Z = 3.5
MIN_DEVICES = 3  # fewer: no one stands out


def _quantities(devices: list[dict]) -> dict[str, list[float | None]]:
    """Quantity -> its value per device (None where the device lacks it)."""
    keys = {f"{part} {k}" for d in devices
            for part, field in (("threshold", "thresholds"), ("mean", "channel_mean"),
                                ("std", "channel_std"))
            for k in d.get(field, {})}
    out = {}
    for key in sorted(keys):
        part, k = key.split(" ", 1)
        field = {"threshold": "thresholds", "mean": "channel_mean", "std": "channel_std"}[part]
        out[key] = [d.get(field, {}).get(k) for d in devices]
    return out


def outliers(devices: list[dict]) -> list[dict]:
    """The devices that stand out, per quantity, largest |z| first."""
    found = []
    for key, values in _quantities(devices).items():
        have = [(d, float(v)) for d, v in zip(devices, values) if isinstance(v, (int, float))]
        if len(have) < MIN_DEVICES:
            continue
        x = np.array([v for _, v in have])
        median = float(np.median(x))
        scale = float(np.median(np.abs(x - median))) / 0.6745
        if scale == 0:
            scale = float(np.mean(np.abs(x - median))) * 1.253314
        if not scale > 0:
            continue
        for (d, v), z in zip(have, (x - median) / scale):
            if abs(z) > OUTLIER_Z:
                found.append({"id": d["id"], "name": d["name"], "quantity": key, "value": v,
                              "median": median, "z": round(float(z), 3)})
    return sorted(found, key=lambda o: (-abs(o["z"]), o["quantity"], o["id"]))


def summarize(fleet: str | Path) -> dict:
    """The summary fleet report writes as JSON and shows as HTML."""
    doc = manifest(fleet)
    devices = [d for d in doc["devices"] if d.get("status") == "ok"]
    failures = [{"id": d["id"], "name": d.get("name"), "reason": d.get("reason")}
                for d in doc["devices"] if d.get("status") != "ok"]
    detectors = list(doc.get("settings", {}).get("detectors", []))
    return {"fleet": str(fleet), "data": doc.get("data"), "settings": doc.get("settings"),
            "counts": {"devices": len(doc["devices"]), "trained": len(devices),
                       "failed": len(failures),
                       "labelled": sum(bool(d.get("labelled")) for d in devices)},
            "detectors": detectors,
            "devices": [{k: d.get(k) for k in ("id", "name", "rows", "normal_rows", "labelled",
                                               "thresholds", "evaluation", "warnings")}
                        for d in devices],
            "failures": failures, "outliers": outliers(devices), "outlier_z": OUTLIER_Z}
