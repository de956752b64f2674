"""The metrics of flags against 0/1 labels, for training's report, the labelled threshold
strategies and `evaluate`: point-wise (scikit-learn's precision, recall and F1) and per
anomalous span (a run of rows labelled 1 is caught when any of its rows is flagged; its
delay is the number of rows from its first row to the first flag)."""

from __future__ import annotations

import re

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


def point_metrics(flags: np.ndarray, labels: np.ndarray) -> dict:
    """Precision, recall, F1 (None where undefined: precision without flags, recall without
    anomalous rows, F1 when there is neither a flag nor an anomalous row) and the confusion
    counts."""
    flags = np.asarray(flags, dtype=bool)
    labels = np.asarray(labels, dtype=bool)
    tp, fp = int((flags & labels).sum()), int((flags & ~labels).sum())
    fn, tn = int((~flags & labels).sum()), int((~flags & ~labels).sum())
    p, r, f1, _ = precision_recall_fscore_support(labels, flags, average="binary",
                                                  zero_division=0)
    return {"precision": float(p) if tp + fp else None, "recall": float(r) if tp + fn else None,
            "f1": float(f1) if tp + fp + fn else None,
            "tp": tp, "fp": fp, "fn": fn, "tn": tn}


def alarm_rates(point: dict) -> dict:
    """FAR (false alarms / normal rows) and MAR (missed / anomalous rows) of point_metrics'
    counts, None where there are no such rows."""
    normal, anomalous = point["fp"] + point["tn"], point["fn"] + point["tp"]
    return {"false_alarm_rate": point["fp"] / normal if normal else None,
            "missed_alarm_rate": point["fn"] / anomalous if anomalous else None}


def shown(value: float | None, spec: str) -> str:
    """A metric as text in format spec; an undefined one (None) as '–' in the same width."""
    if value is None:
        width = re.match(r"\d*", spec).group()
        return f"{'–':>{width}}" if width else "–"
    return format(value, spec)


def events(labels: np.ndarray, flags: np.ndarray, ids: np.ndarray | None = None) -> list[dict]:
    """Per anomalous span: start, end (rows), caught, delay (None when missed), flagged (its
    rows flagged), hold (rows from its first flag to its last one: how long a sustained
    fault keeps flagging; None when missed).  A span is a
    run of rows labelled 1, or with ids (0 normal, else an event's number) a run of one id,
    so that two events back to back stay two."""
    labels = np.asarray(labels, dtype=bool)
    flags = np.asarray(flags, dtype=bool)
    ids = labels.astype(np.int64) if ids is None else np.where(labels, ids, 0)
    change = np.flatnonzero(np.diff(np.r_[0, ids, 0]))  # every row where the id changes
    out = []
    for start, stop in zip(change[:-1], change[1:]):
        if ids[start]:
            hits = np.flatnonzero(flags[start:stop])
            out.append({"start": int(start), "end": int(stop - 1), "caught": bool(len(hits)),
                        "delay": int(hits[0]) if len(hits) else None, "flagged": len(hits),
                        "hold": int(hits[-1] - hits[0] + 1) if len(hits) else None})
    return out


def event_metrics(spans: list[dict]) -> dict:
    """Event recall (spans with a flag / spans; None without spans), the delays over the caught spans (mean,
    median and max) and their median hold as a fraction of the rows from the first flag to
    the span's end (None when none is caught)."""
    delays = [e["delay"] for e in spans if e["caught"]]
    holds = [e["hold"] / (e["end"] - e["start"] + 1 - e["delay"]) for e in spans if e["caught"]]
    return {"events": len(spans), "events_caught": len(delays),
            "event_recall": len(delays) / len(spans) if spans else None,
            "mean_delay": float(np.mean(delays)) if delays else None,
            "median_delay": float(np.median(delays)) if delays else None,
            "max_delay": int(max(delays)) if delays else None,
            "median_hold": float(np.median(holds)) if holds else None}


def recall_by_kind(spans: list[dict], kinds: list[str]) -> dict[str, dict]:
    """Per kind of event (kinds[i] the kind of spans[i]): its event recall, and the
    fraction of its rows flagged (`recall`, which stray alarms move less)."""
    out = {}
    for kind in sorted(set(kinds)):
        mine = [e for e, k in zip(spans, kinds) if k == kind]
        rows = sum(e["end"] - e["start"] + 1 for e in mine)
        out[kind] = {"events": len(mine),
                     "event_recall": sum(e["caught"] for e in mine) / len(mine),
                     "recall": sum(e["flagged"] for e in mine) / rows}
    return out
