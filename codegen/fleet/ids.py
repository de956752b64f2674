"""Device ids are untrusted strings (a table's cells, file names): each maps to a C
identifier, the model name of its bundle and headers and the name of its directories, and
the raw id never reaches generated C or a path.

The mapping is that of column names (cnames.c_identifier_for: 'pump-01/a' -> pump_01_a,
'42' -> c_42), an id with nothing left ('日本') device_<its hash>; the name must pass
check_model_name (not a C keyword nor a system header's name).  Two ids that give the same
name, compared without case as macOS and Windows compare file names, are both refused: a
mapping that renamed one would depend on which other devices the data holds.
"""

from __future__ import annotations

import hashlib

from codegen.emit.cnames import c_identifier_for, check_model_name
from codegen.errors import UserError

MAX_ID = 200  # characters: an id is shown in messages and the report


def c_name(device_id: str) -> str:
    """The C identifier of device_id (a UserError when there is none it may take)."""
    if not device_id.strip():
        raise UserError("the device id is empty; give every row a device id")
    if len(device_id) > MAX_ID:
        raise UserError(f"the device id is longer than {MAX_ID} characters; shorten it")
    name = c_identifier_for(device_id, 0)
    if name == "channel_0" != device_id:  # nothing of the id was left
        name = "device_" + hashlib.sha256(device_id.encode("utf-8")).hexdigest()[:10]
    return check_model_name(name, "rename the device in the data")


def mapping(device_ids: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """({id: C identifier}, {id: why it has none}) for the fleet's ids."""
    names, refused = {}, {}
    for device_id in device_ids:
        try:
            names[device_id] = c_name(device_id)
        except UserError as error:
            refused[device_id] = str(error)
    by_key: dict[str, list[str]] = {}
    for device_id, name in names.items():
        by_key.setdefault(name.lower(), []).append(device_id)
    for same in (ids for ids in by_key.values() if len(ids) > 1):
        for device_id in same:
            others = ", ".join(repr(o) for o in same if o != device_id)
            refused[device_id] = (f"it maps to the C identifier {names[device_id]!r}, as does "
                                  f"{others} (compared without case, as file names are on "
                                  f"macOS and Windows); rename one of them in the data")
            del names[device_id]
    return names, refused
