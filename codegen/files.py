"""Writing output directories so that a failure never leaves half of one behind."""

import shutil
from pathlib import Path


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
