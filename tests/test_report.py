"""The HTML report: self-contained, and checked in a real headless Chromium over the
DevTools protocol (console errors, network requests, one screenshot per plot)."""

import base64
import io
import json
import re
import shutil
import subprocess
import time
import urllib.request

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.evaluate import evaluation as evaluate
from codegen.evaluate import report
from codegen.cli import main

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--no-first-run",
         "--disable-default-apps", "--mute-audio", "--window-size=1300,900",
         "--disable-dev-shm-usage"]  # a container's /dev/shm may be 64 MB
PLOTS = ["signals", "scores", "curves", "sweep", "confusion", "comparison", "bench"]
BENCH = [{"target": "uno", "detector": "zscore", "flash_bytes": 1234, "ram_bytes": 56,
          "cycles_per_sample": 3000},
         {"target": "uno", "detector": "streaming_zscore", "flash_bytes": 2345, "ram_bytes": 700,
          "cycles_per_sample": 4000},
         {"target": "cortex_m4f", "detector": "zscore", "flash_bytes": 900, "ram_bytes": 40,
          "cycles_per_sample": 120}]


class DevTools:
    """A minimal Chrome DevTools Protocol client over one page's websocket."""

    def __init__(self, url: str):
        import websocket

        self.ws = websocket.create_connection(url, timeout=60, suppress_origin=True)
        self.next_id = 0
        self.events = []

    def call(self, method: str, **params):
        self.next_id += 1
        self.ws.send(json.dumps({"id": self.next_id, "method": method, "params": params}))
        while True:
            message = json.loads(self.ws.recv())
            if message.get("id") == self.next_id:
                if "error" in message:
                    raise RuntimeError(f"{method}: {message['error']}")
                return message.get("result", {})
            self.events.append(message)

    def wait_for(self, method: str, timeout: float = 60):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if any(e.get("method") == method for e in self.events):
                return
            self.events.append(json.loads(self.ws.recv()))
        raise TimeoutError(method)

    def evaluate(self, expression: str):
        result = self.call("Runtime.evaluate", expression=expression, returnByValue=True,
                           awaitPromise=True)
        return result["result"].get("value")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """Chromium with its DevTools port. Its stderr goes to a file, never to a pipe nobody
    drains: a full pipe would block Chromium mid-render on a chatty machine."""
    if CHROMIUM is None:
        pytest.fail("chromium is not installed: apt-get install chromium (make setup does)")
    profile = tmp_path_factory.mktemp("chromium-profile")
    log = profile.parent / "chromium.log"
    with open(log, "w") as stderr:
        process = subprocess.Popen([CHROMIUM, *FLAGS, f"--user-data-dir={profile}",
                                    "--remote-debugging-port=0", "about:blank"],
                                   stdout=subprocess.DEVNULL, stderr=stderr)
    try:
        active_port = profile / "DevToolsActivePort"  # Chromium writes its port here
        end = time.monotonic() + 60
        while not active_port.exists() or not active_port.read_text().strip():
            assert time.monotonic() < end and process.poll() is None, \
                f"chromium did not start its DevTools endpoint:\n{log.read_text()[-3000:]}"
            time.sleep(0.1)
        yield int(active_port.read_text().split()[0])
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()


def open_page(port: int) -> DevTools:
    request = urllib.request.Request(f"http://127.0.0.1:{port}/json/new?about:blank",
                                     method="PUT")
    with urllib.request.urlopen(request, timeout=30) as response:
        target = json.loads(response.read())
    return DevTools(target["webSocketDebuggerUrl"])


@pytest.fixture(scope="module")
def report_file(tmp_path_factory, iot_bundle, iot):
    out = tmp_path_factory.mktemp("report") / "report.html"
    result = evaluate.evaluate(iot_bundle, iot)
    report.write(report.render(result, BENCH), out)
    return out


def test_report_is_one_self_contained_file(report_file):
    text = report_file.read_text()
    assert text.startswith("<!DOCTYPE html>")
    # no external resource: every src/href is a fragment, and no CDN is named
    assert not re.search(r"""<(script|link|img)[^>]+(src|href)=["']?(https?:)?//""", text)
    assert not re.search(r"<script[^>]*\bsrc=", text)  # plotly.js is inline, not loaded
    for key in PLOTS:
        assert f'id="plot-{key}"' in text
    assert "cortex_m4f" in text  # the bench table


def test_report_renders_in_headless_chromium(browser, report_file, tmp_path):
    from PIL import Image

    page = open_page(browser)
    for domain in ("Runtime", "Log", "Page", "Network"):
        page.call(f"{domain}.enable")
    page.call("Emulation.setDeviceMetricsOverride", width=1300, height=900,
              deviceScaleFactor=1, mobile=False)
    page.call("Page.navigate", url=report_file.as_uri())
    page.wait_for("Page.loadEventFired")
    # every plot drawn: plotly has laid it out and put its SVG into the div
    end = time.monotonic() + 60
    drawn = []
    while time.monotonic() < end:
        drawn = page.evaluate(
            "Array.from(document.querySelectorAll('.plotly-graph-div'))"
            ".filter(d => d._fullLayout && d.querySelector('svg.main-svg')).map(d => d.id)")
        if len(drawn) >= len(PLOTS):
            break
        time.sleep(0.2)
    assert sorted(drawn) == sorted(f"plot-{k}" for k in PLOTS)

    page.call("Page.bringToFront")  # a background tab may never produce a frame
    tallest = page.evaluate("Math.max(...Array.from(document.querySelectorAll("
                            "'.plotly-graph-div')).map(d => d.getBoundingClientRect().height))")
    page.call("Emulation.setDeviceMetricsOverride", width=1300, height=int(tallest) + 40,
              deviceScaleFactor=1, mobile=False)  # room for any one plot in the viewport
    for key in PLOTS:
        # scroll the plot into the viewport and capture just that rectangle: no
        # captureBeyondViewport, which re-lays the whole 6 MB page out for every shot
        box = page.evaluate(
            f"(() => {{ const d = document.getElementById('plot-{key}');"
            f" d.scrollIntoView({{block: 'start'}}); const r = d.getBoundingClientRect();"
            f" return [r.left + scrollX, r.top + scrollY, r.width, r.height]; }})()")
        assert box[2] > 300 and box[3] > 200, (key, box)
        shot = page.call("Page.captureScreenshot", format="png",
                         clip={"x": box[0], "y": box[1], "width": box[2], "height": box[3],
                               "scale": 1})
        png = base64.b64decode(shot["data"])
        (tmp_path / f"{key}.png").write_bytes(png)
        image = np.asarray(Image.open(io.BytesIO(png)).convert("RGB")).astype(int)
        ink = (np.abs(image - 255).sum(axis=2) > 60).mean()  # pixels clearly not white
        colours = len(np.unique(image.reshape(-1, 3), axis=0))
        assert ink > 0.01 and colours > 20, (key, ink, colours)

    errors = [e for e in page.events if
              (e.get("method") == "Runtime.consoleAPICalled" and e["params"]["type"] == "error")
              or e.get("method") == "Runtime.exceptionThrown"
              or (e.get("method") == "Log.entryAdded" and e["params"]["entry"]["level"] == "error")]
    assert not errors, errors
    remote = [e["params"]["request"]["url"] for e in page.events
              if e.get("method") == "Network.requestWillBeSent"
              and not e["params"]["request"]["url"].startswith(("file:", "data:", "about:"))]
    assert not remote, remote  # opens offline: nothing is fetched


def test_evaluate_cli_writes_the_report(tmp_path, iot_bundle, labelled_csv, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    out = tmp_path / "r" / "report.html"
    bench = tmp_path / "bench.json"
    bench.write_text(json.dumps({"uno": {"zscore": {"flash": 1000, "ram": 50, "cycles": 3000}}}))
    assert main(["evaluate", str(model), str(labelled_csv), "--report", str(out),
                 "--bench", str(bench)]) == 0
    printed = capsys.readouterr().out
    assert "sklearn_iforest" in printed and "report written" in printed
    assert out.stat().st_size > 1_000_000  # plotly.js is inside
    assert [p.name for p in out.parent.iterdir()] == ["report.html"]  # no temporary left


def test_a_failing_render_leaves_no_partial_report(tmp_path, monkeypatch, iot_bundle,
                                                   labelled_csv):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    out = tmp_path / "report.html"
    out.write_text("the previous report")

    def broken(*args, **kwargs):
        raise RuntimeError("render failed")

    monkeypatch.setattr(report, "comparison", broken)
    with pytest.raises(RuntimeError):
        main(["evaluate", str(model), str(labelled_csv), "--report", str(out)])
    assert out.read_text() == "the previous report"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_bad_bench_json_is_a_clear_error(tmp_path, iot_bundle, labelled_csv, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    bench = tmp_path / "bench.json"
    bench.write_text("{not json")
    assert main(["evaluate", str(model), str(labelled_csv), "--report",
                 str(tmp_path / "r.html"), "--bench", str(bench)]) == 2
    assert "not valid JSON" in capsys.readouterr().err
    assert not (tmp_path / "r.html").exists()
