"""The evaluation report: one self-contained HTML file (Plotly, its JavaScript inlined).

Figures: the signals and each score over time against its threshold, each over a rug of the
labelled and flagged rows, PR and ROC curves, metrics against the threshold (the sweep),
confusion matrices, a comparison chart across detectors and, given a firmware bench JSON,
flash / RAM / cycles per detector per target.  The x axis is the data's time column when it
can be (timeaxis.py); long series and curves are drawn thinned to the screen (thinning.py),
the metrics come from all of them.  The file is rendered in memory and written through a temporary file
and a rename, so a failure never leaves a partial report.
"""

from __future__ import annotations

import html
import json
from pathlib import Path

import numpy as np

from codegen.errors import UserError
from codegen.files import read_json, write_file
from codegen.evaluate import thinning
from codegen.evaluate.evaluation import DetectorResult, Evaluation
from codegen.evaluate.metrics import shown
from codegen.evaluate.timeaxis import TimeAxis, time_axis

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2",
           "#7f7f7f", "#bcbd22", "#17becf"]
CONFIG = {"displaylogo": False, "responsive": True}
LANE_PX = 22  # one lane of the flags' rug
GAP_PX = 40  # between stacked plots


def _go():
    try:
        import plotly.graph_objects as go
        from plotly.subplots import make_subplots
    except ImportError:  # pragma: no cover - plotly is a dependency
        raise UserError("the report needs plotly: pip install plotly") from None
    return go, make_subplots


def _lanes(ev: Evaluation) -> list[tuple[str, str, np.ndarray, str]]:
    """The rug's lanes, top to bottom: (lane, legend name, rows marked, colour)."""
    lanes = [("labels", "labelled anomaly", ev.data.labels, "#000000")]
    return lanes + [(r.name, f"{r.name} flags", r.flags, PALETTE[k % len(PALETTE)])
                    for k, r in enumerate(ev.results)]


def _stacked(titles: list[str], plot_px: int, lanes: int, title: str):
    """Plots of plot_px pixels, one per title, sharing their x axis with a rug of lanes under
    them; the rug is the last row."""
    _, make_subplots = _go()
    rug_px = LANE_PX * lanes + 10
    inner = plot_px * len(titles) + rug_px + GAP_PX * len(titles)
    fig = make_subplots(rows=len(titles) + 1, cols=1, shared_xaxes=True,
                        subplot_titles=[*titles, "labelled and flagged rows"],
                        row_heights=[plot_px] * len(titles) + [rug_px],
                        vertical_spacing=GAP_PX / inner)
    fig.update_layout(title=title, height=inner + 130)
    return fig


def _tint(color: str, share: float) -> str:
    """color (#rrggbb) mixed with white: share of the colour, the rest white."""
    rgb = [int(color[i:i + 2], 16) for i in (1, 3, 5)]
    return "#" + "".join(f"{round(255 - share * (255 - c)):02x}" for c in rgb)


def _rug(fig, row: int, axis: TimeAxis, lanes: list[tuple[str, str, np.ndarray, str]]) -> None:
    """One band per lane in the rug's row, shaded by the fraction of each bucket's rows
    marked (blank where none is): the signals above stay visible however many rows a
    detector flags, and a single flagged row still shows."""
    go, _ = _go()
    top = len(lanes) - 1
    for k, (lane, name, marked, color) in enumerate(lanes):
        edges, share = thinning.density(marked)
        # a number per lane, not a category: plotly.js fails on several one-row heatmaps
        # on one categorical axis
        fig.add_trace(go.Heatmap(
            x=axis.edges(edges), y=[top - k], z=[np.where(share > 0, share, np.nan)], zmin=0,
            zmax=1, colorscale=[[0, _tint(color, 0.35)], [1, color]], showscale=False,
            name=name, legendgroup=name, showlegend=True, ygap=4,
            hovertemplate=f"{html.escape(name)}: %{{z:.1%}} of the rows<extra></extra>"),
            row=row, col=1)
    fig.update_yaxes(tickvals=list(range(top, -1, -1)), ticktext=[lane for lane, *_ in lanes],
                     range=[-0.5, top + 0.5], fixedrange=True, showgrid=False, zeroline=False,
                     row=row, col=1)
    fig.update_xaxes(title_text=axis.title, row=row, col=1)


def signals(ev: Evaluation, axis: TimeAxis):
    go, _ = _go()
    channels = ev.data.channels
    lanes = _lanes(ev)
    fig = _stacked(channels, 220, len(lanes), "Signals, labels and each detector's flags "
                   "(click the legend to show or hide a detector)")
    for c, channel in enumerate(channels):
        y = ev.data.values[:, c]
        idx = thinning.series(y)
        fig.add_trace(go.Scatter(x=axis.values[idx], y=y[idx], mode="lines", name=channel,
                                 line={"width": 1, "color": "#52606d"}, showlegend=False),
                      row=c + 1, col=1)
    _rug(fig, len(channels) + 1, axis, lanes)
    return fig


def scores(ev: Evaluation, axis: TimeAxis):
    go, _ = _go()
    lanes = _lanes(ev)
    fig = _stacked([f"{r.name}: score and threshold {r.threshold:.4g}" for r in ev.results],
                   160, len(lanes), "Scores over time against each threshold (dashed); "
                   "capped at 3x the 99.9th percentile")
    ends = axis.values[[0, -1]]
    for k, r in enumerate(ev.results):
        s = r.scores.copy()
        finite = s[np.isfinite(s)]
        cap = max(float(np.percentile(finite, 99.9)) if finite.size else 1.0,
                  r.threshold) * 3 + 1e-12
        s = np.where(np.isfinite(s), np.minimum(s, cap), cap)
        idx = thinning.series(s)
        color = PALETTE[k % len(PALETTE)]
        fig.add_trace(go.Scatter(x=axis.values[idx], y=s[idx].astype(np.float32), mode="lines",
                                 name=r.name, line={"width": 1, "color": color}),
                      row=k + 1, col=1)
        fig.add_trace(go.Scatter(x=ends, y=[r.threshold, r.threshold], mode="lines",
                                 name=f"{r.name} threshold", showlegend=False,
                                 line={"dash": "dash", "color": "#d62728"}), row=k + 1, col=1)
    _rug(fig, len(ev.results) + 1, axis, lanes)
    return fig


def _curve(x: np.ndarray, y: np.ndarray) -> dict:
    """A curve's x and y as drawn: thinned to the screen (the metrics use the whole one)."""
    keep = thinning.curve(x, y)
    return {"x": x[keep], "y": y[keep]}


def curves(ev: Evaluation):
    go, make_subplots = _go()
    fig = make_subplots(rows=1, cols=2, subplot_titles=["Precision-recall", "ROC"])
    for k, r in enumerate(ev.results):
        color = PALETTE[k % len(PALETTE)]
        recall, precision = r.pr_curve
        fpr, tpr = r.roc_curve
        m = r.metrics
        fig.add_trace(go.Scatter(**_curve(recall, precision), mode="lines", legendgroup=r.name,
                                 name=f"{r.name} (PR-AUC {shown(m['pr_auc'], '.3f')})",
                                 line={"color": color, "shape": "hv"}), row=1, col=1)
        fig.add_trace(go.Scatter(**_curve(fpr, tpr), mode="lines", legendgroup=r.name,
                                 name=f"{r.name} (ROC-AUC {shown(m['roc_auc'], '.3f')})",
                                 line={"color": color}), row=1, col=2)
        fig.add_trace(go.Scatter(x=[m["recall"]], y=[m["precision"]], mode="markers",
                                 legendgroup=r.name, showlegend=False,
                                 marker={"color": color, "size": 10, "symbol": "x"}),
                      row=1, col=1)
    fig.add_trace(go.Scatter(x=[0, 1], y=[0, 1], mode="lines", name="chance",
                             line={"dash": "dot", "color": "#999"}), row=1, col=2)
    fig.update_xaxes(title_text="recall", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="precision", range=[0, 1.02], row=1, col=1)
    fig.update_xaxes(title_text="false-positive rate", row=1, col=2)
    fig.update_yaxes(title_text="true-positive rate", row=1, col=2)
    fig.update_layout(title="PR and ROC curves from the continuous scores (x: the operating "
                            "point at the stored threshold)", height=480)
    return fig


def sweep(ev: Evaluation):
    go, make_subplots = _go()
    n = len(ev.results)
    cols = 2
    rows = (n + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[r.name for r in ev.results],
                        vertical_spacing=0.12 if rows > 1 else 0.2)
    colors = {"precision": "#1f77b4", "recall": "#2ca02c", "f1": "#ff7f0e"}
    for k, r in enumerate(ev.results):
        row, col = k // cols + 1, k % cols + 1
        t = r.sweep["threshold"]
        for key, color in colors.items():
            fig.add_trace(go.Scatter(**_curve(t, r.sweep[key]), mode="lines", name=key,
                                     legendgroup=key, showlegend=k == 0,
                                     line={"color": color, "shape": "hv"}), row=row, col=col)
        fig.add_vline(x=r.threshold, line={"dash": "dash", "color": "#d62728"}, row=row, col=col)
        fig.update_xaxes(title_text="threshold", row=row, col=col)
    fig.update_layout(title="Precision, recall and F1 against the threshold (dashed: stored "
                            "threshold); for the streaming detectors the score stream is the "
                            "one at the stored threshold", height=300 * rows + 140)
    return fig


def confusion(ev: Evaluation):
    go, make_subplots = _go()
    n = len(ev.results)
    fig = make_subplots(rows=1, cols=n, subplot_titles=[r.name for r in ev.results],
                        horizontal_spacing=0.04)
    for k, r in enumerate(ev.results):
        z = np.array(r.confusion)
        text = [[f"TN {z[0, 0]}", f"FP {z[0, 1]}"], [f"FN {z[1, 0]}", f"TP {z[1, 1]}"]]
        fig.add_trace(go.Heatmap(z=np.log10(z + 1), x=["flag 0", "flag 1"],
                                 y=["label 0", "label 1"], text=text, texttemplate="%{text}",
                                 colorscale="Blues", showscale=False,
                                 hovertemplate="%{text}<extra></extra>"), row=1, col=k + 1)
        fig.update_yaxes(autorange="reversed", row=1, col=k + 1)
    fig.update_layout(title="Confusion matrices (colour: log count)", height=330)
    return fig


def comparison(ev: Evaluation):
    go, _ = _go()
    keys = [("precision", "precision"), ("recall", "recall"), ("f1", "F1"),
            ("pr_auc", "PR-AUC"), ("roc_auc", "ROC-AUC"), ("event_recall", "event recall")]
    fig = go.Figure()
    names = [r.name + (" (host only)" if r.host_only else "") for r in ev.results]
    for i, (key, label) in enumerate(keys):
        fig.add_trace(go.Bar(x=names, y=[r.metrics[key] for r in ev.results], name=label,
                             marker_color=PALETTE[i]))
    fig.update_layout(barmode="group", title="Detectors compared", yaxis={"range": [0, 1.05]},
                      height=450)
    return fig


def bench_rows(doc) -> list[dict]:
    """Rows (dicts) from a bench JSON: a list of rows, {"rows"/"results": [...]}, or nested
    {target: {detector: {metric: value}}}."""
    if isinstance(doc, dict):
        for key in ("rows", "results", "bench"):
            if isinstance(doc.get(key), list):
                return bench_rows(doc[key])
        rows = []
        for target, per in doc.items():
            if isinstance(per, dict) and all(isinstance(v, dict) for v in per.values()):
                for detector, metrics in per.items():
                    rows.append({"target": target, "detector": detector, **metrics})
        if rows:
            return rows
        raise UserError("the bench JSON is not understood: expected a list of rows, "
                        "{\"rows\": [...]} or {target: {detector: {metric: value}}}")
    if isinstance(doc, list) and all(isinstance(r, dict) for r in doc):
        return doc
    raise UserError("the bench JSON is not understood: expected a list of row objects")


def load_bench(path: str | Path) -> list[dict]:
    path = Path(path)
    if not path.is_file():
        raise UserError(f"bench file {path} does not exist; run `mcu-anomaly bench` first or "
                        f"leave out --bench")
    return bench_rows(read_json(path, "run `mcu-anomaly bench` again"))


def _find(row: dict, *words) -> str | None:
    for key in row:
        low = key.lower()
        if any(w in low for w in words):
            return key
    return None


def bench_figure(rows: list[dict]):
    """Grouped bars of flash, RAM and cycles per detector, one group per target."""
    go, make_subplots = _go()
    if not rows:
        return None
    sample = rows[0]
    target_key = _find(sample, "target", "board", "platform")
    detector_key = _find(sample, "detector", "model")
    metrics = [(k, label) for k, label in ((_find(sample, "flash", "rom"), "flash (bytes)"),
                                           (_find(sample, "ram"), "RAM (bytes)"),
                                           (_find(sample, "cycle"), "cycles per sample"))
               if k is not None]
    if not (target_key and detector_key and metrics):
        return None
    fig = make_subplots(rows=1, cols=len(metrics), subplot_titles=[m[1] for m in metrics])
    targets = sorted({str(r.get(target_key)) for r in rows})
    for t_i, target in enumerate(targets):
        subset = [r for r in rows if str(r.get(target_key)) == target]
        for m_i, (key, _) in enumerate(metrics):
            fig.add_trace(go.Bar(x=[" ".join(str(r.get(k)) for k in (detector_key, "api")
                                             if r.get(k) not in (None, "score"))
                                    for r in subset],
                                 y=[r.get(key) if isinstance(r.get(key), (int, float)) else None
                                    for r in subset],
                                 name=target, legendgroup=target, showlegend=m_i == 0,
                                 marker_color=PALETTE[t_i % len(PALETTE)]), row=1, col=m_i + 1)
    fig.update_layout(barmode="group", title="Firmware cost per detector and target", height=420)
    return fig


def bench_table(rows: list[dict]) -> str:
    columns = []
    for r in rows:
        columns += [k for k in r if k not in columns]
    head = "".join(f"<th>{html.escape(str(c))}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(_cell(r.get(c)))}</td>" for c in columns)
                   + "</tr>" for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _cell(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)
    return str(value)


def _delays(r: DetectorResult, axis: TimeAxis) -> str:
    """Mean / max delay of the caught events, in the axis' units."""
    delays = [axis.delay(e) for e in r.events if e["caught"]]
    if not delays:
        return "-"
    return f"{axis.shown(float(np.mean(delays)))} / {axis.shown(max(delays))}"


def metrics_table(ev: Evaluation, axis: TimeAxis) -> str:
    head = ("<tr><th>detector</th><th>threshold</th><th>precision</th><th>recall</th><th>F1</th>"
            "<th>false-alarm rate</th><th>missed-alarm rate</th><th>PR-AUC</th><th>ROC-AUC</th>"
            f"<th>events caught</th><th>mean / max delay{axis.delay_unit}</th>"
            "<th>TN / FP / FN / TP</th></tr>")
    rows = []
    for r in ev.results:
        m = r.metrics
        (tn, fp), (fn, tp) = r.confusion
        name = html.escape(r.name) + (" <em>(host-only baseline)</em>" if r.host_only else "")
        rows.append(f"<tr><td>{name}</td><td>{r.threshold:.6g}</td>"
                    f"<td>{shown(m['precision'], '.3f')}</td><td>{shown(m['recall'], '.3f')}</td>"
                    f"<td>{shown(m['f1'], '.3f')}</td>"
                    f"<td>{shown(m['false_alarm_rate'], '.4f')}</td>"
                    f"<td>{shown(m['missed_alarm_rate'], '.3f')}</td>"
                    f"<td>{shown(m['pr_auc'], '.3f')}</td><td>{shown(m['roc_auc'], '.3f')}</td>"
                    f"<td>{m['events_caught']} / {m['events']}</td><td>{_delays(r, axis)}</td>"
                    f"<td>{tn} / {fp} / {fn} / {tp}</td></tr>")
    return f"<table><thead>{head}</thead><tbody>{''.join(rows)}</tbody></table>"


def render(ev: Evaluation, bench: list[dict] | None = None, title: str | None = None) -> str:
    """The whole report as one HTML string."""
    import plotly.io as pio
    from plotly.offline import get_plotlyjs

    from codegen.emit.render import environment

    axis = time_axis(ev.data.time, len(ev.data.values))
    figures = [("signals", "Signals and flags", signals(ev, axis)),
               ("scores", "Scores against thresholds", scores(ev, axis)),
               ("curves", "PR and ROC curves", curves(ev)),
               ("sweep", "Metrics against threshold", sweep(ev)),
               ("confusion", "Confusion matrices", confusion(ev)),
               ("comparison", "Comparison", comparison(ev))]
    if bench is not None:
        fig = bench_figure(bench)
        if fig is not None:
            figures.append(("bench", "Firmware cost", fig))
    sections = []
    for key, heading, fig in figures:
        fig.update_layout(template="plotly_white", margin={"t": 80, "l": 60, "r": 30, "b": 50})
        div = pio.to_html(fig, include_plotlyjs=False, full_html=False, config=CONFIG,
                          div_id=f"plot-{key}", validate=True)
        sections.append({"key": key, "heading": heading, "html": div})
    env = environment()
    env.autoescape = True
    template = env.get_template("report.html.j2")
    from markupsafe import Markup
    return template.render(
        title=title or f"mcu-anomaly evaluation: {ev.bundle} on {ev.data.name}",
        bundle=ev.bundle, data=ev.data.name, rows=len(ev.data.values),
        anomalies=int(ev.data.labels.sum()), channels=ev.data.channels,
        delay="time" if axis.kind != "row" else "rows", axis_note=axis.note,
        plotly_js=Markup(get_plotlyjs()), metrics_table=Markup(metrics_table(ev, axis)),
        bench_table=Markup(bench_table(bench)) if bench else None,
        sections=[{**s, "html": Markup(s["html"])} for s in sections])


def write(text: str, out: str | Path) -> Path:
    """Write atomically: a temporary file beside the target, then a rename."""
    if Path(out).is_dir():
        raise UserError(f"{out} is a directory; give a file name such as build/report.html")
    return write_file(out, text)
