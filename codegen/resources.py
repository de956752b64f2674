"""Where the tool's own files are, in a wheel install and in the source checkout.

A wheel holds, as package data, everything train, generate, verify (host) and evaluate read:
the C runtime (codegen/runtime) and the templates, which the repository keeps at its top
level, in templates/, and pyproject.toml maps to codegen/templates in the wheel.  A checkout
(an editable install, or a run from the source tree) has no codegen/templates: its templates/
is beside the codegen package.  Both are found from the imported codegen package, not by
importing codegen.templates: setuptools' editable finder does not import that directory
without an __init__.py, and where an import did succeed it could be another checkout's
templates (this tree's codegen run through PYTHONPATH beside an editable install of another).

The firmware build (verify --target, bench) needs more of the checkout: platformio.ini and
firmware_targets/, which no wheel holds (docs/install.md).
"""

from __future__ import annotations

import os
import tempfile
from importlib.resources import files
from pathlib import Path

from codegen.errors import UserError

CHECKOUT_MARK = "pyproject.toml"  # beside codegen/ in the source tree, never in site-packages
FIRMWARE_PROJECT = ("platformio.ini", "firmware_targets")


def checkout() -> Path | None:
    """The source tree this codegen runs from, or None for a wheel install."""
    root = Path(str(files("codegen"))).parent
    return root if (root / CHECKOUT_MARK).is_file() else None


def runtime():
    """The C runtime's directory (an importlib.resources Traversable)."""
    return files("codegen") / "runtime"


def templates():
    """The Jinja templates' directory (a Traversable): the wheel's package data, else the
    checkout's templates/."""
    packaged = files("codegen") / "templates"
    if packaged.is_dir():
        return packaged
    root = checkout()
    if root is None or not (root / "templates").is_dir():
        raise UserError(f"the templates are missing: neither {packaged} (a wheel install) nor "
                        f"templates/ in a source checkout is there; reinstall mcu-anomaly")
    return root / "templates"


def cache() -> Path:
    """Where built things are kept between runs (host C libraries, arena searches):
    $MCUA_CACHE, default <tmp>/mcu-anomaly-host."""
    return Path(os.environ.get("MCUA_CACHE", Path(tempfile.gettempdir()) / "mcu-anomaly-host"))


def firmware_project(command: str = "the firmware build") -> Path:
    """The checkout's PlatformIO project directory; UserError from a wheel install."""
    root = checkout()
    if root is None or not all((root / name).exists() for name in FIRMWARE_PROJECT):
        raise UserError(f"{command} needs the source checkout (platformio.ini and "
                        f"firmware_targets/), which a wheel install does not have; clone the "
                        f"repository and run mcu-anomaly from it (pip install -e . there)")
    return root
