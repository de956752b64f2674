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
from codegen.evaluate import report, thinning
from codegen.evaluate.timeaxis import time_axis
from codegen.cli import main
from codegen.data.dataset import Dataset

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


# --- long inputs: what is drawn of them, and the file's size --------------------------------

MILLION = 1_000_000
START = np.datetime64("2024-01-01T00:00:00", "s")


def _iso(n: int, step_s: int = 1) -> list[str]:
    return (START + step_s * np.arange(n)).astype(str).tolist()


def _evaluation(values, labels, flags_by_name: dict, times=None, seed=0):
    rng = np.random.default_rng(seed)
    channels = [f"s{c}" for c in range(values.shape[1])]
    data = Dataset("long", channels, values, labels, times)
    results = [evaluate.measure(name, rng.random(len(labels)) + labels, flags, 1.0, labels)
               for name, flags in flags_by_name.items()]
    return evaluate.Evaluation("b", data, results)


@pytest.fixture(scope="module")
def million():
    """10^6 rows timed one a second: noise with one spike up (s0) and one down (s1), 20
    labelled spans, and detectors that flag a few rows, every other row and most rows."""
    rng = np.random.default_rng(1)
    values = rng.standard_normal((MILLION, 3)).astype(np.float32)
    values[123_457, 0], values[876_543, 1] = 50.0, -50.0
    labels = np.zeros(MILLION, dtype=bool)
    for start in rng.choice(MILLION - 100, 20, replace=False):
        labels[start:start + 60] = True
    flags = {"few": labels & (rng.random(MILLION) < 0.5), "alternate": np.arange(MILLION) % 2 == 0,
             "most": rng.random(MILLION) < 0.95}
    return _evaluation(values, labels, flags, _iso(MILLION))


def _column_extremes(x, y, columns):
    """Per pixel column of x's range (x monotonic), the lowest and highest y in it."""
    low, high = min(x[0], x[-1]), max(x[0], x[-1])
    col = np.minimum(((x - low) * columns / (high - low)).astype(int), columns - 1)
    order = np.argsort(col, kind="stable")
    starts = np.flatnonzero(np.r_[True, np.diff(col[order]) != 0])
    return (col[order][starts], np.minimum.reduceat(y[order], starts),
            np.maximum.reduceat(y[order], starts))


def test_a_thinned_curve_keeps_its_endpoints_and_every_column_s_extremes():
    rng = np.random.default_rng(2)
    recall = np.r_[1.0, np.sort(rng.random(MILLION - 2))[::-1], 0.0]  # PR order: recall falls
    precision = np.clip(np.cumsum(rng.standard_normal(MILLION)) / 3000 + 0.5, 0, 1)
    keep = thinning.curve(recall, precision)
    assert len(keep) <= 4 * thinning.HALF
    assert keep[0] == 0 and keep[-1] == MILLION - 1  # both endpoints
    assert np.all(np.diff(keep) > 0)  # in the curve's order
    full = _column_extremes(recall, precision, thinning.HALF)
    drawn = _column_extremes(recall[keep], precision[keep], thinning.HALF)
    for a, b in zip(full, drawn):
        assert np.array_equal(a, b)  # the same columns, each spanning the same heights


def test_the_curves_are_thinned_for_drawing_only(million):
    from sklearn.metrics import average_precision_score

    fig = report.curves(million)
    for r in million.results:
        recall, _ = r.pr_curve
        drawn = next(t for t in fig.data if (t.name or "").startswith(f"{r.name} (PR-AUC"))
        assert len(drawn.x) <= 4 * thinning.HALF < len(recall)  # the result keeps it whole
        full = average_precision_score(million.data.labels, r.scores)
        assert r.metrics["pr_auc"] == full and f"PR-AUC {full:.3f}" in drawn.name


def test_a_short_curve_is_drawn_whole():
    x = np.linspace(0, 1, 100)
    assert np.array_equal(thinning.curve(x, x ** 2), np.arange(100))


def test_a_one_sample_spike_in_a_million_rows_is_drawn(million):
    axis = time_axis(million.data.time, MILLION)
    fig = report.signals(million, axis)
    traces = {t.name: t for t in fig.data if t.name in million.data.channels}
    for channel, row, value in (("s0", 123_457, 50.0), ("s1", 876_543, -50.0)):
        trace = traces[channel]
        assert len(trace.y) <= 2 * thinning.COLUMNS + 2
        drawn = np.flatnonzero(np.asarray(trace.y) == value)
        assert len(drawn) == 1
        assert np.asarray(trace.x)[drawn[0]] == np.datetime64(million.data.time[row])
    scores = report.scores(million, axis)
    for r in million.results:
        trace = next(t for t in scores.data if t.name == r.name)
        assert np.asarray(trace.y).max() == np.float32(r.scores.max())  # the top score too


def test_flags_are_drawn_as_shaded_bands_in_a_rug_under_the_signals(million):
    fig = report.signals(million, time_axis(million.data.time, MILLION))
    rug = {t.name: t for t in fig.data if t.type == "heatmap"}
    assert set(rug) == {"labelled anomaly", "few flags", "alternate flags", "most flags"}
    rug_axis = fig.data[-1].yaxis
    assert all(t.yaxis == rug_axis for t in rug.values())  # their own row, not over a signal
    assert all(t.yaxis != rug_axis for t in fig.data if t.name in million.data.channels)
    for trace in rug.values():
        assert len(trace.z[0]) <= thinning.BANDS and len(trace.x) == len(trace.z[0]) + 1
    assert np.allclose(rug["alternate flags"].z[0], 0.5, atol=1e-3)  # one half-shaded band
    most = np.asarray(rug["most flags"].z[0])
    assert 0.9 < most.min() and most.max() < 1  # darker, and not all
    labelled = np.asarray(rug["labelled anomaly"].z[0])
    assert 1 <= np.isfinite(labelled).sum() <= 2 * 20  # 20 spans, blank between them


def test_one_flagged_row_shades_one_bucket():
    for n in (10, 5000, MILLION):
        flags = np.zeros(n, dtype=bool)
        flags[n // 3] = True
        edges, share = thinning.density(flags)
        assert len(share) <= thinning.BANDS and edges[0] == 0 and edges[-1] == n
        hit = np.flatnonzero(share)
        assert len(hit) == 1 and edges[hit[0]] <= n // 3 < edges[hit[0] + 1]
        assert share[hit[0]] == 1 / (edges[hit[0] + 1] - edges[hit[0]])
    edges, share = thinning.density(np.ones(MILLION, dtype=bool))
    assert np.array_equal(share, np.ones(len(share)))


def test_the_time_column_is_the_x_axis_when_it_parses():
    n = 5000
    values = np.random.default_rng(3).standard_normal((n, 1)).astype(np.float32)
    labels = np.zeros(n, dtype=bool)
    labels[100:120] = True
    iso = _evaluation(values, labels, {"d": labels}, _iso(n, 30))
    axis = time_axis(iso.data.time, n)
    assert axis.kind == "datetime"
    fig = report.signals(iso, axis)
    assert np.asarray(fig.data[0].x)[0] == np.datetime64("2024-01-01T00:00:00")
    assert fig.layout.xaxis2.title.text == "time"  # under the rug, the last row
    assert time_axis([str(0.5 * i) for i in range(n)], n).kind == "number"
    assert time_axis(["2024-01-01T00:00:00Z", "2024-01-01T01:00:00+01:00"], 2).title == \
        "time (UTC)"
    for times, why in ((["2024-01-01", "soon", "2024-01-03"], "neither ISO 8601"),
                       (["3", "2", "4"], "goes back at data row 2 (3 then 2)"),
                       (["1", "nan", "2"], "neither ISO 8601")):
        axis = time_axis(times, 3)
        assert axis.kind == "row" and why in axis.note
    assert time_axis(None, 3).note is None
    rows = _evaluation(values[:3], labels[:3], {"d": labels[:3]}, ["3", "2", "4"])
    assert "goes back at data row 2" in report.render(rows)


def test_delays_are_in_time_units_when_there_is_a_time_column():
    n = 600
    values = np.zeros((n, 1), dtype=np.float32)
    labels = np.zeros(n, dtype=bool)
    labels[100:120] = labels[300:320] = True
    flags = np.zeros(n, dtype=bool)
    flags[[104, 301]] = True  # delays 4 and 1 rows
    cases = [(_iso(n, 30), "1.25 min / 2 min"),  # 120 s and 30 s, timed every 30 s
             ([str(0.5 * i) for i in range(n)], "1.25 / 2"),  # the time column's unit
             (None, "2.5 / 4.0")]  # rows
    for times, delays in cases:
        ev = _evaluation(values, labels, {"d": flags}, times)
        table = report.metrics_table(ev, time_axis(times, n))
        assert f"<td>{delays}</td>" in table, table
    assert "delay (rows)" in table


def test_a_million_row_report_stays_under_10_mb(million, tmp_path):
    out = report.write(report.render(million), tmp_path / "report.html")
    assert out.stat().st_size <= 10_000_000


def test_a_missing_reading_is_a_gap_beside_its_buckets_extremes():
    """A dropout (NaN) in the bucket of a spike: the spike is still drawn, and the dropout
    too, as a gap (NaN sorts above every reading, so a plain lowest/highest would draw the
    gap instead of the spike)."""
    y = np.random.default_rng(0).standard_normal(1_000_000).astype(np.float32)
    y[500_000], y[500_001], y[10] = 50, np.nan, np.nan
    drawn = thinning.series(y)
    assert {10, 500_000, 500_001} <= set(drawn.tolist())
    assert len(drawn) <= 2 * thinning.COLUMNS + 2 + 2
