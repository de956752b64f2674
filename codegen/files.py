"""Writing outputs: all of a file or a directory, or nothing, with the modes a plain write
gives (0644 files, 0755 directories under umask 022; tempfile's 0600 / 0700 would break a
build run as another user).  Reading the JSON files the tool wrote."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

from codegen.errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_file(out: str | Path, data: str | bytes) -> Path:
    """Write out through a temporary file beside it and a rename."""
    out = Path(out)
    if out.is_dir():
        raise UserError(f"{out} is a directory; give a file name")
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data.encode("utf-8") if isinstance(data, str) else data)
        os.chmod(tmp, 0o666 & ~_umask())
        os.replace(tmp, out)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return out


def write_tree(out: str | Path, files: dict[str, str | bytes], dirs: tuple[str, ...] = ()) -> Path:
    """Replace directory out by exactly these files (relative paths -> contents) and
    directories, all at once: they are written to a sibling staging directory first
    (swap_in)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        mask = _umask()
        for name in dirs:
            (staging / name).mkdir(parents=True, exist_ok=True)
        for name, data in files.items():
            path = staging / name
            path.parent.mkdir(parents=True, exist_ok=True)
            (path.write_text if isinstance(data, str) else path.write_bytes)(data)
            os.chmod(path, 0o666 & ~mask)
        for path in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            os.chmod(path, 0o777 & ~mask)
        swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def swap_in(staging: Path, out: Path) -> None:
    """Move the finished directory staging to out, replacing what out held.  The old tree is
    renamed aside first and deleted last, so out is always either the old or the new one."""
    if out.exists():
        old = out.with_name(f".{out.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        out.rename(old)
        staging.rename(out)
        shutil.rmtree(old)
    else:
        staging.rename(out)


def read_json(path: Path, fix: str):
    """The JSON document in path; a UserError naming the problem and `fix` otherwise."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not valid JSON text ({error}); {fix}") from None
