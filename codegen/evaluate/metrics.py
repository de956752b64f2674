"""The metrics of flags against 0/1 labels, for training's report, the labelled threshold
strategies and `evaluate`: point-wise (scikit-learn's precision, recall and F1) and per
anomalous span (a run of rows labelled 1 is caught when any of its rows is flagged; its
delay is the number of rows from its first row to the first flag)."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import precision_recall_fscore_support


def point_metrics(flags: np.ndarray, labels: np.ndarray) -> dict:
    """Precision, recall, F1 (0 where undefined) and the confusion counts."""
    flags = np.asarray(flags, dtype=bool)
    labels = np.asarray(labels, dtype=bool)
    p, r, f1, _ = precision_recall_fscore_support(labels, flags, average="binary",
                                                  zero_division=0)
    return {"precision": float(p), "recall": float(r), "f1": float(f1),
            "tp": int((flags & labels).sum()), "fp": int((flags & ~labels).sum()),
            "fn": int((~flags & labels).sum()), "tn": int((~flags & ~labels).sum())}


def events(labels: np.ndarray, flags: np.ndarray) -> list[dict]:
    """Per anomalous span: start, end (rows), caught, delay (None when missed)."""
    edges = np.diff(np.r_[0, np.asarray(labels).astype(np.int8), 0])
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1) - 1
    out = []
    for start, end in zip(starts, ends):
        hits = np.flatnonzero(flags[start:end + 1])
        out.append({"start": int(start), "end": int(end), "caught": bool(len(hits)),
                    "delay": int(hits[0]) if len(hits) else None})
    return out
