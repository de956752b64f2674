"""What the evaluation report costs on long inputs (`python -m codegen.bench.report`): per
row count, the seconds to evaluate and render it, the bytes of the HTML file and the
seconds headless Chromium takes to load it and draw every plot.

The data is the built-in sensors' generator (codegen/data/dataset.py iot_sensors) run for
the given number of rows, with a time column (ISO 8601, one row a second), evaluated with
the default detectors trained on the built-in 5,000 rows, plus the IsolationForest baseline.
Chromium's time is that of `chromium --headless --dump-dom` on the file, start-up
included; the dumped page must hold every plot drawn (an SVG in each plot's div), or the
figure is reported as not drawn.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from codegen.data.dataset import Dataset, iot_sensors
from codegen.detectors import DEFAULT
from codegen.errors import UserError
from codegen.evaluate import evaluation, report
from codegen.training import train

ROWS = (258_000, 1_000_000)
START = np.datetime64("2024-01-01T00:00:00", "s")
BROWSER_TIMEOUT = 600  # seconds; the 258k-row report took 84 s
CHROMIUM_FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-background-networking", "--disable-component-update",
                  "--no-first-run", "--window-size=1300,900"]


def long_sensors(rows: int) -> Dataset:
    """The built-in sensors for this many rows, timed one row a second from START."""
    base = iot_sensors(rows)
    times = (START + np.arange(rows)).astype(str).tolist()
    return Dataset(f"iot{rows}", base.channels, base.values, base.labels, times)


def chromium() -> str:
    found = shutil.which("chromium") or shutil.which("chromium-browser")
    if found is None:
        raise UserError("the render time needs chromium: apt-get install chromium "
                        "(make setup does)")
    return found


def browser_seconds(page: Path) -> tuple[float | None, str]:
    """Seconds for headless Chromium to load the page and draw it, and what it drew."""
    plots = page.read_text().count('<div id="plot-')
    with tempfile.TemporaryDirectory() as profile:
        dom = Path(profile) / "dom.html"
        start = time.perf_counter()
        try:
            with dom.open("w") as out:
                subprocess.run([chromium(), *CHROMIUM_FLAGS, f"--user-data-dir={profile}/p",
                                "--dump-dom", page.resolve().as_uri()], stdout=out,
                               stderr=subprocess.DEVNULL, timeout=BROWSER_TIMEOUT, check=True)
        except subprocess.TimeoutExpired:
            return None, f"not drawn within {BROWSER_TIMEOUT} s"
        seconds = time.perf_counter() - start
        divs = dom.read_text().split('<div id="plot-')[1:]
    drawn = sum('class="main-svg"' in d for d in divs)
    return seconds, f"{drawn} of {plots} plots drawn"


def measure(rows: int, bundle, out: Path) -> dict:
    data = long_sensors(rows)
    start = time.perf_counter()
    result = evaluation.evaluate(bundle, data)
    evaluated = time.perf_counter()
    page = report.write(report.render(result), out)
    rendered = time.perf_counter()
    seconds, drawn = browser_seconds(page)
    return {"rows": rows, "evaluate_s": evaluated - start, "render_s": rendered - evaluated,
            "bytes": page.stat().st_size, "chromium_s": seconds, "drawn": drawn}


def line(m: dict) -> str:
    browser = "-" if m["chromium_s"] is None else f"{m['chromium_s']:.1f}"
    return (f"{m['rows']:>9,} {m['evaluate_s']:>10.1f} {m['render_s']:>9.1f} "
            f"{m['bytes'] / 1e6:>8.2f} {browser:>11}  {m['drawn']}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, nargs="+", default=list(ROWS))
    parser.add_argument("--out", default="build/bench-report",
                        help="directory for the reports (report-ROWS.html)")
    args = parser.parse_args()
    bundle = train.train(iot_sensors(), DEFAULT, {}, seed=0, name="sensors", verbose=False)
    print(f"{'rows':>9} {'evaluate s':>10} {'render s':>9} {'MB':>8} {'chromium s':>11}  drawn",
          flush=True)
    for rows in args.rows:
        print(line(measure(rows, bundle, Path(args.out) / f"report-{rows}.html")), flush=True)


if __name__ == "__main__":
    main()
