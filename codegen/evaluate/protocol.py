"""The benchmark protocol on a built-in benchmark's runs (e.g. `--builtin pump`).

For each detector and each run: fit on the run's normal head (its first train_rows rows,
with the detector's default threshold strategy), score the whole run in order with the
Python reference (a streaming detector goes on learning through the head, as on a device
switched on at the start), and keep the flags of the rest.  The runs' test rows are pooled:
point-wise precision, recall, F1, FAR and MAR over every test row, event recall and the
median delay over every fault, and event recall per fault type.

A detector that cannot be trained on the data is reported as not applicable, with the
reason.  A detector trained by epochs gets at most EPOCHS of them unless --set says
otherwise, and one that watches a single channel (a `channel` parameter) is noted as such.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from codegen.detectors import get
from codegen.errors import UserError
from codegen.evaluate import metrics
from codegen.training.train import check_constants

EPOCHS = 10  # the time budget: the whole protocol within a few minutes on two cores


@dataclass
class Outcome:
    """One detector's pooled result, or the reason it could not run."""

    name: str
    notes: list[str] = field(default_factory=list)
    reason: str | None = None  # not applicable
    metrics: dict = field(default_factory=dict)
    by_fault: dict[str, dict] = field(default_factory=dict)
    runs: list[dict] = field(default_factory=list)  # per run: its point and event metrics

    def to_json(self) -> dict:
        return {"notes": self.notes, "not_applicable": self.reason, "metrics": self.metrics,
                "by_fault": self.by_fault, "runs": self.runs}


def protocol_params(module, given: dict, channels: list[str]) -> tuple[dict, list[str]]:
    """The parameters the protocol trains a detector with, and what to say about them."""
    params, notes = dict(given), []
    default_epochs = module.DEFAULTS.get("epochs")
    if isinstance(default_epochs, int) and "epochs" not in given and default_epochs > EPOCHS:
        params["epochs"] = EPOCHS
        notes.append(f"{EPOCHS} epochs instead of its default {default_epochs} (time budget)")
    if "channel" in module.DEFAULTS:
        channel = params.get("channel", module.DEFAULTS["channel"])
        many = params.get("channels")
        if many is not None:
            notes.append(f"watches channels {'all' if many == 'all' else many}")
        elif isinstance(channel, int) and 0 <= channel < len(channels):
            more = (f", --set {module.NAME}.channels=all for every one"
                    if "channels" in module.DEFAULTS else "")
            notes.append(f"watches one channel, {channels[channel]} "
                         f"(--set {module.NAME}.channel=N for another{more})")
    return params, notes


def _flags(module, params: dict, run, channels: list[str], seed: int) -> np.ndarray:
    """The test rows' flags of the detector trained on the run's normal head."""
    fitted = module.fit(run.values[:run.train_rows], params, seed, False, channels)
    check_constants(module.NAME, fitted, channels)
    return module.score(fitted, run.values).flags[run.train_rows:]


def measure(runs: list, flags: list[np.ndarray]) -> tuple[dict, dict, list]:
    """Pooled metrics, event recall per fault type and per-run metrics of the test flags of
    each run."""
    spans, kinds, per_run = [], [], []
    for run, run_flags in zip(runs, flags):
        labels, ids = run.labels[run.train_rows:], run.event_ids()[run.train_rows:]
        run_spans = metrics.events(labels, run_flags, ids)
        spans += run_spans
        kinds += [run.faults[ids[e["start"]] - 1].kind for e in run_spans]
        point = metrics.point_metrics(run_flags, labels)
        per_run.append({"seed": run.seed, **point, **metrics.alarm_rates(point),
                        **metrics.event_metrics(run_spans)})
    point = metrics.point_metrics(np.concatenate(flags),
                                  np.concatenate([r.labels[r.train_rows:] for r in runs]))
    pooled = {**point, **metrics.alarm_rates(point), **metrics.event_metrics(spans)}
    return pooled, metrics.recall_by_kind(spans, kinds), per_run


def evaluate(runs: list, channels: list[str], detectors: list[str], params: dict[str, dict],
             seed: int = 0, progress=None) -> list[Outcome]:
    unknown = sorted(set(params) - set(detectors))
    if unknown:
        raise UserError(f"parameters given for {', '.join(unknown)}, which is not among the "
                        f"detectors evaluated ({', '.join(detectors)})")
    outcomes = []
    for name in detectors:
        module = get(name)
        chosen, notes = protocol_params(module, params.get(name, {}), channels)
        outcome = Outcome(name, notes)
        flags, start = [], time.perf_counter()
        for i, run in enumerate(runs):
            if progress:
                progress(f"{name}: run {i + 1}/{len(runs)}")
            try:
                flags.append(_flags(module, chosen, run, channels, seed))
            except UserError as error:
                outcome.reason = str(error)
                break
            except ImportError as error:
                outcome.reason = f"needs the Python module {error.name}, not installed"
                break
        if progress:
            progress(f"{name}: {time.perf_counter() - start:.1f} s")
        if outcome.reason is None:
            outcome.metrics, outcome.by_fault, outcome.runs = measure(runs, flags)
        outcomes.append(outcome)
    return outcomes


def _delay(m: dict) -> str:
    return "-" if m["median_delay"] is None else f"{m['median_delay']:.0f}"


def _hold(m: dict) -> str:
    return "-" if m["median_hold"] is None else f"{m['median_hold']:.2f}"


def table(outcomes: list[Outcome], runs: list) -> str:
    """Per detector F1 / FAR / MAR / event recall / delay, then event recall per fault type."""
    test_rows = sum(len(r.values) - r.train_rows for r in runs)
    anomalous = sum(int(r.labels[r.train_rows:].sum()) for r in runs)
    kinds = sorted({f.kind for r in runs for f in r.faults})
    count = {k: sum(f.kind == k for r in runs for f in r.faults) for k in kinds}
    lines = [f"{len(runs)} runs, each trained on its first {runs[0].train_rows} rows (normal); "
             f"{test_rows} test rows pooled, {anomalous} anomalous, "
             f"{sum(count.values())} faults",
             f"{'detector':<18} {'P':>6} {'R':>6} {'F1':>6} {'FAR':>6} {'MAR':>6} "
             f"{'events':>7} {'ev.rec':>6} {'delay':>6} {'hold':>5}"]
    notes = []
    for o in outcomes:
        if o.reason:
            lines.append(f"{o.name:<18} not applicable: {o.reason}")
            continue
        m = o.metrics
        lines.append(f"{o.name:<18} {metrics.shown(m['precision'], '6.3f')} "
                     f"{metrics.shown(m['recall'], '6.3f')} {metrics.shown(m['f1'], '6.3f')} "
                     f"{metrics.shown(m['false_alarm_rate'], '6.3f')} "
                     f"{metrics.shown(m['missed_alarm_rate'], '6.3f')} "
                     f"{m['events_caught']:>3}/{m['events']:<3} "
                     f"{metrics.shown(m['event_recall'], '6.3f')} "
                     f"{_delay(m):>6} {_hold(m):>5}")
        notes += [f"  {o.name}: {note}" for note in o.notes]
    lines.append("FAR: false alarms / normal test rows; MAR: missed / anomalous test rows; "
                 "events: faults with a flag inside; delay: median rows from a fault's start "
                 "to its first flag; hold: median over caught faults of the rows from the first "
                 "flag to the last, as a fraction of the rows from the first flag to the end")
    lines += notes
    width = max(len(k) for k in kinds) + 1
    lines += ["", "per fault type: event recall (fraction of its rows flagged)",
              f"{'detector':<18}" + "".join(f"{k:>{width}}" for k in kinds),
              f"{'(faults)':<18}" + "".join(f"{count[k]:>{width}}" for k in kinds)]
    for o in outcomes:
        if not o.reason:
            cells = [o.by_fault[k] for k in kinds]
            lines.append(f"{o.name:<18}" + "".join(
                f"{c['event_recall']:.2f} ({c['recall']:.2f})".rjust(width) for c in cells))
    return "\n".join(lines)
