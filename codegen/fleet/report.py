"""fleet report: the summary (summary.py) as JSON and as one self-contained HTML page
(templates/fleet_report.html.j2, the evaluation report's style), each written whole."""

from __future__ import annotations

import json
from pathlib import Path

from codegen.evaluate.metrics import shown
from codegen.files import write_file
from codegen.fleet.summary import summarize


def render_html(summary: dict) -> str:
    from codegen.emit.render import environment

    env = environment()
    env.autoescape = True  # device ids and reasons are the data's strings
    env.filters["shown"] = shown
    return env.get_template("fleet_report.html.j2").render(s=summary)


def write(fleet: str | Path, html_out: str | Path, json_out: str | Path) -> dict:
    summary = summarize(fleet)
    text = json.dumps(summary, indent=2, sort_keys=True) + "\n"
    page = render_html(summary)  # both rendered before either is written
    write_file(json_out, text)
    write_file(html_out, page)
    return summary
