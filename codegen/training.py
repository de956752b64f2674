"""Training: fit the chosen detectors on the normal rows of a data set into a bundle."""

from __future__ import annotations

import sys

import numpy as np
from sklearn.metrics import precision_recall_fscore_support

from .bundle import Bundle
from .cnames import check_channel_names, check_model_name
from .data import Dataset
from .detectors import get
from .errors import UserError


def evaluate(flags: np.ndarray, labels: np.ndarray) -> dict:
    """Point-wise precision, recall, F1 and the confusion counts of flags against labels."""
    p, r, f1, _ = precision_recall_fscore_support(labels, flags, average="binary",
                                                  zero_division=0)
    return {"precision": round(float(p), 6), "recall": round(float(r), 6),
            "f1": round(float(f1), 6),
            "tp": int((flags & labels).sum()), "fp": int((flags & ~labels).sum()),
            "fn": int((~flags & labels).sum()), "tn": int((~flags & ~labels).sum())}


def train(dataset: Dataset, detectors: list[str], params: dict[str, dict], seed: int,
          name: str, verbose: bool = True) -> Bundle:
    check_model_name(name)
    check_channel_names(dataset.channels)
    modules = [get(d) for d in detectors]
    unknown = sorted(set(params) - set(detectors))
    if unknown:
        raise UserError(f"parameters given for {', '.join(unknown)}, which is not among the "
                        f"detectors trained ({', '.join(detectors)})")
    if dataset.labels is None:
        print(f"warning: {dataset.name} has no label column (is_anomaly or anomaly): training on "
              f"all {len(dataset.values)} rows as if they were normal", file=sys.stderr)
    normal = dataset.normal
    if len(normal) == 0:
        raise UserError(f"every row of {dataset.name} is labelled anomalous; training needs "
                        f"normal rows (label 0)")
    if len(normal) < 2:
        raise UserError(f"{dataset.name} has only {len(normal)} normal row; training needs more")
    fitted = {}
    for module in modules:
        if verbose:
            print(f"training {module.NAME} on {len(normal)} normal rows ...", flush=True)
        fitted[module.NAME] = module.fit(normal, params.get(module.NAME, {}), seed, verbose,
                                         dataset.channels)
        if dataset.labels is not None:
            _, flags = module.score(fitted[module.NAME], dataset.values)
            fitted[module.NAME].report["evaluation"] = evaluate(flags, dataset.labels)
    stats = normal.astype(np.float64)
    return Bundle(
        name=name,
        channels=list(dataset.channels),
        channel_mean=[float(v) for v in stats.mean(axis=0)],
        channel_std=[float(v) for v in stats.std(axis=0)],
        detectors=fitted,
        training={"data": dataset.name, "rows": int(len(dataset.values)),
                  "normal_rows": int(len(normal)), "labelled": dataset.labels is not None,
                  "seed": seed},
    )
