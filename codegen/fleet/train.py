"""fleet train: one bundle per device in a fleet directory, trained on an engine.

    <out>/.mcu-anomaly-fleet     marks the directory as a fleet's
    <out>/fleet.json             the settings and every device's record, sorted by id
    <out>/devices/<name>/        a device's bundle and its record (device.json)

A long table is split into a spool directory under the system's temporary directory
(reading.py), removed when the run ends.

Each device's directory is written whole (files.py write_tree) as its result arrives, so a
run killed at any instant leaves every device's bundle complete or as it was; fleet.json is
written last, through a rename.  A device whose record holds the content hash of its input
and the settings (device.py digest) is not trained again.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

from codegen import __version__, bundle
from codegen.emit.cnames import check_model_name
from codegen.errors import UserError
from codegen.files import Output, read_json, write_file, write_tree
from codegen.fleet import device, execution, ids, reading
from codegen.progress import Progress

FORMAT = "mcu-anomaly-fleet"
MARKER = ".mcu-anomaly-fleet"
MARKER_TEXT = "Written by `mcu-anomaly fleet train`, which keeps what is here up to date.\n"
MANIFEST = "fleet.json"
RECORD = "device.json"
DEVICES = "devices"
DEVICE = Output("device bundle", RECORD, "fleet train")


def check_out(out: Path, command: str, marker: str) -> None:
    """Refuse out unless it is missing, empty or ours (a fleet's, or its headers')."""
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory; choose another --out")
    if out.is_dir() and any(out.iterdir()) and not (out / marker).is_file():
        raise UserError(f"{out} is not empty and was not written by `{command}` (no {marker}); "
                        f"choose another --out, or empty it")


def mark(out: Path, marker: str, text: str) -> None:
    if not (out / marker).is_file():
        write_file(out / marker, text)


def manifest(out: Path) -> dict:
    """fleet.json of a fleet directory, checked to be one."""
    path = Path(out) / MANIFEST
    if not path.is_file():
        raise UserError(f"{out} is not a fleet (no {MANIFEST}); create one with "
                        f"`mcu-anomaly fleet train DATA --out {out}`")
    doc = read_json(path, "train the fleet again with `mcu-anomaly fleet train`")
    if not isinstance(doc, dict) or doc.get("format") != FORMAT or not isinstance(
            doc.get("devices"), list):
        raise UserError(f"{path} is not a fleet's {MANIFEST}; train the fleet again with "
                        f"`mcu-anomaly fleet train`")
    fix = "train the fleet again with `mcu-anomaly fleet train`"
    for record in doc["devices"]:
        if not (isinstance(record, dict) and isinstance(record.get("id"), str)
                and record.get("status") in ("ok", "failed")):
            raise UserError(f"{path} holds a device record that is not one; {fix}")
        if record["status"] == "ok":  # its name is a directory's and goes into C
            check_model_name(record.get("name"), fix)
    return doc


def _done(out: Path, job: device.Job) -> dict | None:
    """The record of the device's earlier run with the same input and settings, if any."""
    path = out / DEVICES / job.name / RECORD
    if not (path.is_file() and (path.parent / "bundle.json").is_file()):
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    same = isinstance(record, dict) and record.get("digest") == job.digest
    return record if same and record.get("id") == job.device_id else None


def _jobs(source, names: dict[str, str], settings: device.Settings, out: Path,
          records: dict[str, dict], skipped: set[str], progress: Progress):
    """The jobs of the devices still to train; the others' records go into records (and
    into skipped, the ids of those trained before)."""
    for device_id in source.device_ids:
        name = names.get(device_id)
        if name is None:
            continue
        try:
            dataset = source.dataset(device_id)
        except UserError as error:
            records[device_id] = device.failed(device_id, name, str(error))
            progress.step(f"{name} failed")
            continue
        job = device.Job(device_id, name, dataset, settings,
                         device.digest(dataset, name, settings))
        earlier = _done(out, job)
        if earlier is not None:
            records[device_id] = earlier
            skipped.add(device_id)
            progress.step(f"{name} done before")
            continue
        yield job


def _write(out: Path, outcome: device.Outcome) -> None:
    record = json.dumps(outcome.record, indent=2, sort_keys=True) + "\n"
    write_tree(out / DEVICES / outcome.record["name"], {**outcome.files, RECORD: record},
               DEVICE, dirs=bundle.DIRS)


def _prune(out: Path, keep: set[str]) -> None:
    """Remove device directories of ours whose device is no longer trained in the fleet."""
    folder = out / DEVICES
    for path in folder.iterdir() if folder.is_dir() else ():
        if path.name not in keep and (path / RECORD).is_file():
            shutil.rmtree(path)


def train(data: str | Path, out: str | Path, settings: device.Settings,
          read: reading.Reading, workers: int = 1,
          scheduler: str | None = None) -> tuple[dict, int]:
    """Train every device of data into out: (fleet.json's document, how many devices were
    trained before with the same input and settings, and skipped)."""
    out = Path(out)
    check_out(out, "fleet train", MARKER)
    spool = Path(tempfile.mkdtemp(prefix="mcua-fleet-spool-"))
    try:
        source = reading.open_fleet(data, read, spool)
        with execution.engine(workers, scheduler) as run:
            mark(out, MARKER, MARKER_TEXT)
            names, refused = ids.mapping(source.device_ids)
            records = {d: device.failed(d, None, reason) for d, reason in refused.items()}
            progress = Progress(len(source.device_ids), "fleet train")
            for d in refused:
                progress.step("refused id")
            skipped: set[str] = set()
            jobs = _jobs(source, names, settings, out, records, skipped, progress)
            for outcome in run(device.run, jobs):
                if outcome.files is not None:
                    _write(out, outcome)
                records[outcome.record["id"]] = outcome.record
                progress.step(f"{outcome.record['name']} {outcome.record['status']}")
    finally:
        shutil.rmtree(spool, ignore_errors=True)
    _prune(out, {r["name"] for r in records.values() if r["status"] == "ok"})
    doc = {"format": FORMAT, "tool_version": __version__, "data": str(data),
           "settings": asdict(settings), "devices": [records[d] for d in sorted(records)]}
    write_file(out / MANIFEST, json.dumps(doc, indent=2, sort_keys=True) + "\n")
    return doc, len(skipped)


def summary_line(doc: dict, skipped: int) -> str:
    devices = doc["devices"]
    ok = [r for r in devices if r["status"] == "ok"]
    failed = len(devices) - len(ok)
    return (f"{len(ok)} of {len(devices)} devices trained ({skipped} unchanged since the last "
            f"run, not trained again), {failed} failed")
