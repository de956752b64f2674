"""Code generation: render the templates/ for a bundle and write the C runtime beside them.

Everything is rendered in memory first; files are then written each through a temporary
file and a rename, so a failure leaves no half-written header behind.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
import numpy as np

from codegen import __version__
from codegen.bundle import Bundle
from codegen.emit.cnames import check_model_name
from codegen.detectors import get
from codegen.errors import UserError
from codegen.files import write_file
from codegen.emit.literals import c_float

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
RUNTIME = Path(__file__).resolve().parents[1] / "runtime"
RUNTIME_VERSION = 2  # must equal MCUA_RUNTIME_VERSION in runtime/mcua_common.h
FLOATS_PER_ROW = 6



def c_float_rows(values) -> list[str]:
    flat = [c_float(v) for v in np.asarray(values, dtype=np.float32).ravel()]
    return [", ".join(flat[i:i + FLOATS_PER_ROW]) + ","
            for i in range(0, len(flat), FLOATS_PER_ROW)]


def environment() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["c_float"] = c_float
    env.filters["c_float_rows"] = c_float_rows
    env.filters["flatten"] = lambda a: np.asarray(a).ravel()
    return env


def render(bundle: Bundle) -> dict[str, str]:
    """File name -> text of every file `generate` writes for this bundle."""
    name = check_model_name(bundle.name)
    env = environment()
    base = {"model_name": name, "MODEL": name.upper(), "channels": bundle.channels,
            "tool_version": __version__, "runtime_version": RUNTIME_VERSION}
    files = {f"{name}_channels.h": env.get_template("channels.h.j2").render(base)}
    units = ["common"]
    for detector, fitted in bundle.detectors.items():
        header = f"{name}_{detector}.h"
        context = {**base, "file": header, **get(detector).template_context(fitted)}
        files[header] = env.get_template(f"{detector}.h.j2").render(context)
        units += [u for u in get(detector).SPEC.units if u not in units]
    headers = [f"{name}_channels.h"] + [f"{name}_{d}.h" for d in bundle.detectors]
    files[f"{name}.h"] = env.get_template("model.h.j2").render({**base, "headers": headers})
    for unit in units:
        for suffix in (".h", ".c"):
            source = RUNTIME / f"mcua_{unit}{suffix}"
            if source.exists():
                files[source.name] = source.read_text()
    return files


def detector_calls(bundle: Bundle) -> list[dict]:
    """How code around the generated API calls each detector (the host glue and the
    firmware app's templates): its kind, the extra arguments of a stateless score call,
    whether it has a flag API."""
    calls = []
    for name, fitted in bundle.detectors.items():
        spec = get(name).SPEC
        calls.append({"name": name, "kind": spec.kind_of(fitted).value,
                      "score_args": spec.score_args, "flag_api": spec.flag_api})
    return calls


def write(files: dict[str, str], out: str | Path) -> list[Path]:
    """Write each file into directory out (made if needed), each one whole or not at all."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise UserError(f"{out} exists and is not a directory; choose another --out")
    return [write_file(out / filename, text) for filename, text in sorted(files.items())]
