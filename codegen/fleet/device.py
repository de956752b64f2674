"""One device's work: its content hash, its training (codegen/training/train.py, as
`mcu-anomaly train`), and its record in the fleet.

run() is what a worker executes: it takes the device's rows and the settings, writes
nothing, and returns the bundle's files with the record, or the record of its failure, so
that a bad device fails alone and the driver writes every output.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
from dataclasses import asdict, dataclass, field

import numpy as np

from codegen import __version__
from codegen import bundle as bundle_mod
from codegen.data import missing
from codegen.data.dataset import Dataset
from codegen.errors import UserError
from codegen.training import thresholds

MIN_ROWS = 100


@dataclass(frozen=True)
class Settings:
    """What training does with each device's rows, the same for every device."""

    detectors: tuple[str, ...]
    params: dict = field(default_factory=dict)
    seed: int = 0
    threshold: str | None = None
    max_alarm_share: float = thresholds.MAX_ALARM_SHARE
    missing: str = missing.DEFAULT
    min_rows: int = MIN_ROWS


@dataclass
class Job:
    device_id: str
    name: str  # the device's C identifier (ids.py)
    dataset: Dataset
    settings: Settings
    digest: str


@dataclass
class Outcome:
    record: dict  # the device's entry in fleet.json
    files: dict[str, str | bytes] | None  # its bundle's files; None when it failed


def digest(dataset: Dataset, name: str, settings: Settings) -> str:
    """The content hash of a device's input and settings: what resuming compares."""
    h = hashlib.sha256()
    head = {"tool_version": __version__, "name": name, "settings": asdict(settings),
            "channels": dataset.channels, "columns": dataset.columns,
            "shape": list(dataset.values.shape), "labelled": dataset.labels is not None}
    h.update(json.dumps(head, sort_keys=True).encode("utf-8"))
    h.update(np.ascontiguousarray(dataset.values, dtype=np.float32).tobytes())
    if dataset.labels is not None:
        h.update(np.asarray(dataset.labels, dtype=np.uint8).tobytes())
    return h.hexdigest()


def failed(device_id: str, name: str | None, reason: str, digest_: str | None = None) -> dict:
    return {"id": device_id, "name": name, "status": "failed", "reason": reason,
            "digest": digest_}


def _check_rows(dataset: Dataset, settings: Settings) -> None:
    normal = len(dataset.normal)
    if normal < settings.min_rows:
        raise UserError(f"{normal} normal row(s) with every reading present, fewer than "
                        f"--min-rows {settings.min_rows}; give the device a longer history, "
                        f"or lower --min-rows")


def run(job: Job) -> Outcome:
    """Train one device; its failure (bad data, a refused threshold) is its outcome."""
    from codegen.training import train

    s = job.settings
    log = io.StringIO()
    try:
        with contextlib.redirect_stderr(log), contextlib.redirect_stdout(log):
            _check_rows(job.dataset, s)
            trained = train.train(job.dataset, list(s.detectors), s.params, s.seed, job.name,
                                  verbose=False, threshold=s.threshold, policy=s.missing,
                                  max_alarm_share=s.max_alarm_share)
    except UserError as error:
        return Outcome(failed(job.device_id, job.name, str(error), job.digest), None)
    except Exception as error:  # noqa: BLE001 - one device's crash must not stop the fleet
        return Outcome(failed(job.device_id, job.name,
                              f"unexpected {type(error).__name__}: {error}", job.digest), None)
    record = {"id": job.device_id, "name": job.name, "status": "ok", "digest": job.digest,
              "rows": trained.training["rows"], "normal_rows": trained.training["normal_rows"],
              "labelled": trained.training["labelled"],
              "warnings": [line.removeprefix("warning: ") for line in log.getvalue().splitlines()
                           if line.startswith("warning: ")],
              "thresholds": {d: f.scalars["threshold"] for d, f in trained.detectors.items()},
              "evaluation": {d: f.report["evaluation"] for d, f in trained.detectors.items()
                             if "evaluation" in f.report},
              "channel_mean": dict(zip(trained.channels, trained.channel_mean)),
              "channel_std": dict(zip(trained.channels, trained.channel_std))}
    return Outcome(record, bundle_mod.contents(trained))
