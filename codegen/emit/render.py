"""Code generation: render the templates/ for a bundle and write the C runtime beside them.

Everything is rendered in memory first; the directory is then replaced whole, with a marker
file that lets the next `generate` recognise it as ours (files.py write_tree), so it never
mixes two bundles' files and a failure leaves the old directory as it was.
"""

from __future__ import annotations

import functools
import json
from pathlib import Path

import jinja2
import numpy as np

from codegen import __version__, resources
from codegen.bundle import Bundle
from codegen.emit.cnames import check_model_name
from codegen.detectors import get, window
from codegen.files import Output, write_tree
from codegen.emit.literals import c_comment, c_float

RUNTIME = resources.runtime()
RUNTIME_VERSION = 5  # must equal MCUA_RUNTIME_VERSION in runtime/mcua_common.h
FLOATS_PER_ROW = 6
HEADERS = Output("generated headers", ".mcu-anomaly-generated", "generate")
MARKER_TEXT = ("Written by `mcu-anomaly generate` with the files beside it; the next generate "
               "replaces this directory whole.\n")



def c_float_rows(values) -> list[str]:
    flat = [c_float(v) for v in np.asarray(values, dtype=np.float32).ravel()]
    return [", ".join(flat[i:i + FLOATS_PER_ROW]) + ","
            for i in range(0, len(flat), FLOATS_PER_ROW)]


def _loader() -> jinja2.FunctionLoader:
    """The templates as package data (codegen/resources.py), which need not be files."""
    directory = resources.templates()

    def source(name: str) -> tuple[str, str, None] | None:
        template = directory / name
        if not template.is_file():
            return None
        return template.read_text(encoding="utf-8"), str(template), None
    return jinja2.FunctionLoader(source)


def environment() -> jinja2.Environment:
    """A fresh environment, which the caller may change (the HTML report turns on
    autoescape)."""
    env = jinja2.Environment(loader=_loader(),
                             undefined=jinja2.StrictUndefined, keep_trailing_newline=True,
                             autoescape=False)
    env.filters["c_float"] = c_float
    env.filters["c_float_rows"] = c_float_rows
    env.filters["flatten"] = lambda a: np.asarray(a).ravel()
    return env


def column_comments(bundle: Bundle) -> list[str]:
    """Per channel, the data's name for it where that is not the channel's name, as
    comment text (JSON-quoted, escaped: the name is the user's, any characters)."""
    return [c_comment(json.dumps(column)) if column != channel else ""
            for column, channel in zip(bundle.columns, bundle.channels)]


@functools.cache
def c_environment() -> jinja2.Environment:
    """The environment the C renders share and never change.  Jinja parses and compiles a
    template once per environment, and the host build renders one bundle per NAB file and
    setting (2,204 for `nab --cross-validate`), which spent most of its time compiling the
    same templates again in a fresh environment each time."""
    return environment()


def render(bundle: Bundle) -> dict[str, str]:
    """File name -> text of every file `generate` writes for this bundle."""
    name = check_model_name(bundle.name)
    env = c_environment()
    base = {"model_name": name, "MODEL": name.upper(), "channels": bundle.channels,
            "tool_version": __version__, "runtime_version": RUNTIME_VERSION}
    files = {f"{name}_channels.h": env.get_template("channels.h.j2").render(
        {**base, "columns": column_comments(bundle)})}
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
            if source.is_file():
                files[source.name] = source.read_text()
    return files


def detector_calls(bundle: Bundle) -> list[dict]:
    """How code around the generated API calls each detector (the host glue and the
    firmware app's templates): its kind, the extra arguments of a stateless score call,
    whether it has a flag API and its function (Kind.flag_function), the adaptation mode
    of a baseline it keeps (else None), the values of each row a windowed one keeps."""
    calls = []
    for name, fitted in bundle.detectors.items():
        spec = get(name).SPEC
        kind = spec.kind_of(fitted)
        adapt = window.adaptation(fitted)
        calls.append({"name": name, "kind": kind.value,
                      "score_args": spec.score_args, "flag_api": spec.flag_api,
                      "flag_function": kind.flag_function if spec.flag_api else None,
                      "adapted": adapt.mode if adapt else None,
                      "row_values": spec.row_values_of(fitted)})
    return calls


def write(files: dict[str, str], out: str | Path, force: bool = False,
          keep: tuple = ()) -> list[Path]:
    """Replace directory out by exactly these files and the marker, all at once (files.py
    write_tree); the files' paths."""
    tree = write_tree(out, {**files, HEADERS.sign: MARKER_TEXT}, HEADERS, force=force, keep=keep)
    return [tree / name for name in sorted(files)]
