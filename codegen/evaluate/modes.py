"""The adaptation modes side by side (`python -m codegen.evaluate.modes`): each clipping
window detector in each mode on the built-in data, the notebook's three sensors and the
pump benchmark's runs, with F1, FAR, MAR, event recall, the median detection delay and
how long a caught fault keeps flagging (metrics.event_metrics' hold).

Per data set the detector is fitted on normal rows and scores the whole stream in order
from a fresh state, as a device switched on at its start: the notebook's sensors are fitted
on their normal rows and scored whole; each pump run follows the benchmark protocol
(protocol.py: fitted on its normal head, its test rows pooled).  The frozen mode calibrates
on the first `calibration` rows of the stream, which lie in the normal part of every data
set here.
"""

from __future__ import annotations

import argparse

import numpy as np

from codegen.data import dataset as data
from codegen.detectors import get
from codegen.evaluate import metrics, protocol

DETECTORS = ("streaming_zscore", "moving_average")
# The modes compared, with the lengths (rows) that suit the data: the frozen baseline
# calibrates on the normal head; the slow one forgets over `memory` rows.
MODES = {"window": {}, "frozen": {"mode": "frozen", "calibration": 2000},
         "slow": {"mode": "slow", "memory": 1000}, "slow 3000": {"mode": "slow", "memory": 3000}}
COLUMNS = ("F1", "FAR", "MAR", "events", "delay", "hold")


def _row(m: dict) -> list[str]:
    delay = "-" if m["median_delay"] is None else f"{m['median_delay']:.0f}"
    hold = "-" if m["median_hold"] is None else f"{m['median_hold']:.2f}"
    return [metrics.shown(m["f1"], ".3f"), metrics.shown(m["false_alarm_rate"], ".4f"),
            metrics.shown(m["missed_alarm_rate"], ".3f"),
            f"{m['events_caught']}/{m['events']}", delay, hold]


def iot_metrics(detector: str, params: dict) -> dict:
    ds = data.iot_sensors()
    module = get(detector)
    fitted = module.fit(ds.normal, params, 0, False, ds.channels)
    flags = module.score(fitted, ds.values).flags
    point = metrics.point_metrics(flags, ds.labels)
    return {**point, **metrics.alarm_rates(point),
            **metrics.event_metrics(metrics.events(ds.labels, flags))}


def pump_metrics(detector: str, params: dict, runs: list) -> dict:
    outcome = protocol.evaluate(runs, list(runs[0].channels), [detector], {detector: params})[0]
    if outcome.reason:
        raise SystemExit(f"{detector}: {outcome.reason}")
    return outcome.metrics


def table() -> str:
    runs = data.pump_benchmark()
    lines = [f"{'data':<6} {'detector':<17} {'mode':<10} " + " ".join(f"{c:>7}" for c in COLUMNS)]
    for name, measure in (("iot", iot_metrics),
                          ("pump", lambda d, p: pump_metrics(d, p, runs))):
        for detector in DETECTORS:
            for mode, params in MODES.items():
                cells = _row(measure(detector, dict(params)))
                lines.append(f"{name:<6} {detector:<17} {mode:<10} "
                             + " ".join(f"{c:>7}" for c in cells))
    lines.append("FAR: false alarms / normal rows; MAR: missed / anomalous rows; events: "
                 "anomalous spans with a flag; delay: median rows to the first flag; hold: "
                 "median over caught spans of the rows from the first flag to the last, as a "
                 "fraction of the rows from the first flag to the span's end")
    return "\n".join(lines)


def main() -> None:
    argparse.ArgumentParser(description=__doc__.split("\n\n")[0]).parse_args()
    print(table())


if __name__ == "__main__":
    main()
