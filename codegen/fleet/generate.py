"""fleet generate: one header set per trained device (codegen/emit/render.py, as
`mcu-anomaly generate`), each in a directory named by the device's C identifier, and the
mapping of device ids to those identifiers.

    <out>/<name>/          the device's headers and runtime, replaced whole
    <out>/devices.json     [{id, name, header}] sorted by id, written last
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from codegen import bundle
from codegen.fleet.train import DEVICES, check_out, manifest, mark

MARKER = ".mcu-anomaly-fleet-include"
MARKER_TEXT = ("Written by `mcu-anomaly fleet generate`, which replaces the device directories "
               "here and devices.json.\n")
MAPPING = "devices.json"


def generate(fleet: str | Path, out: str | Path) -> list[dict]:
    """Write every trained device's headers under out; the mapping written."""
    from codegen.emit import render as emit
    from codegen.files import write_file

    fleet, out = Path(fleet), Path(out)
    doc = manifest(fleet)
    check_out(out, "fleet generate", MARKER)
    trained = [r for r in doc["devices"] if r["status"] == "ok"]
    mapping = []
    for record in trained:
        loaded = bundle.load(fleet / DEVICES / record["name"])  # the untrusted bundle, checked
        files = emit.render(loaded)
        mark(out, MARKER, MARKER_TEXT)
        emit.write(files, out / loaded.name, keep=(fleet,))
        mapping.append({"id": record["id"], "name": loaded.name,
                        "header": f"{loaded.name}/{loaded.name}.h"})
    names = {m["name"] for m in mapping}
    mark(out, MARKER, MARKER_TEXT)
    for path in out.iterdir():
        if path.is_dir() and path.name not in names and (path / emit.HEADERS.sign).is_file():
            shutil.rmtree(path)
    write_file(out / MAPPING, json.dumps(mapping, indent=2, sort_keys=True) + "\n")
    return mapping
