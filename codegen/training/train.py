"""Training: fit the chosen detectors on the normal rows of a data set into a bundle."""

from __future__ import annotations

import json
import sys

import numpy as np

from codegen import schema
from codegen.bundle import Bundle
from codegen.emit.cnames import check_channel_names, check_model_name
from codegen.data import missing
from codegen.data.dataset import Dataset
from codegen.detectors import NAMES, get
from codegen.detectors.base import FLOAT32_MAX
from codegen.errors import UserError
from codegen.evaluate.metrics import point_metrics
from codegen.training import thresholds


def evaluate(flags: np.ndarray, labels: np.ndarray) -> dict:
    """Point-wise precision, recall, F1 (to 6 decimals, for the bundle's report) and the
    confusion counts of flags against labels."""
    m = point_metrics(flags, labels)
    return {**m, **{k: round(m[k], 6) for k in ("precision", "recall", "f1")
                    if m[k] is not None}}


def _metrics(flags: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    """(precision, recall) for the labelled choice, an undefined one as 0: a threshold that
    flags nothing has no precision to offer."""
    m = point_metrics(flags, labels)
    return m["precision"] or 0.0, m["recall"] or 0.0


def _judged_scores(module, fitted, X: np.ndarray, quiet: int):
    """(scores, flags) of X, the scores 0 where the detector cannot flag whatever its threshold: the first
    `quiet` rows after the reset, and rows over its threshold that did not flag (a window
    detector warming up again after a restart, mcua_window_settle)."""
    scores, flags, _ = module.score(fitted, X)
    silent = (scores > np.float32(fitted.scalars["threshold"])) & ~flags
    silent[:quiet] = True
    return np.where(silent, np.float32(0), scores), flags


def select(module, fitted, spec: str, X: np.ndarray, labels: np.ndarray, rounds: int = 6):
    """fitted with the threshold of a labelled strategy (max-f1, recall:R, precision:P) chosen
    on validation rows X with labels.  For a detector whose threshold feeds its state, the
    scores themselves depend on the threshold: the choice is iterated (choose on the scores
    of the last candidate, rerun with the new one) and the candidate whose *actual* flags
    serve the strategy best is kept.  Returns (fitted, info)."""
    labels = np.asarray(labels, dtype=bool)
    stateful = module.SPEC.threshold_feeds_state
    # Starting points: the detector as fit() left it, and (stateful) with nothing clipped.
    starts = [fitted] + ([thresholds.apply(module, fitted, np.float32(np.inf))] if stateful else [])
    tried = {}
    best = None
    quiet = module.SPEC.quiet(fitted) if module.SPEC.quiet else 0
    for start in starts:
        scores, _ = _judged_scores(module, start, X, quiet)
        for _ in range(rounds if stateful else 1):
            t = thresholds.from_labels(spec, scores, labels)
            if float(t) in tried:
                break
            candidate = thresholds.apply(module, fitted, t)
            scores, flags = _judged_scores(module, candidate, X, quiet)
            precision, recall = _metrics(flags, labels)
            tried[float(t)] = (precision, recall)
            key = thresholds.objective(spec, precision, recall, float(t))
            if best is None or key > best[0]:
                best = (key, candidate, float(t), precision, recall)
    if stateful and len(tried) < rounds * 4:
        # The threshold moves the scores too: also try the score levels of the anomalous rows
        # under the best candidate so far (up to a dozen), each run for its actual flags.
        scores = module.score(best[1], X).scores
        levels = np.unique(np.asarray(scores, dtype=np.float32)[labels & np.isfinite(scores)])
        for level in levels[np.linspace(0, len(levels) - 1, min(12, len(levels))).astype(int)]:
            t = thresholds.below(level)
            if float(t) in tried or not t >= 0:
                continue
            candidate = thresholds.apply(module, fitted, t)
            flags = module.score(candidate, X).flags
            precision, recall = _metrics(flags, labels)
            tried[float(t)] = (precision, recall)
            key = thresholds.objective(spec, precision, recall, float(t))
            if key > best[0]:
                best = (key, candidate, float(t), precision, recall)
    _, chosen, t, precision, recall = best
    info = {"strategy": spec, "threshold": t, "validation_precision": round(precision, 6),
            "validation_recall": round(recall, 6), "candidates_run": len(tried)}
    return chosen, info


def _judge(module, fitted, spec: str, validation: Dataset | None, dataset: Dataset,
           flags: np.ndarray | None, max_share: float) -> None:
    """thresholds.judge on the rows the threshold was chosen from: a labelled strategy's
    validation rows, else the normal rows training learnt from, as a stream of their own
    (in the labelled stream, the rows after an anomaly hold it in their windows, and a
    windowed detector rightly flags them); the anomalous rows of the labelled data
    (flags: the detector's on the dataset's rows, when it is labelled).  Rows with a
    missing reading, flagged whatever the threshold, are left out."""
    if validation is not None:
        data = validation
        if validation is not dataset or flags is None:  # else: the flags on it are given
            flags = module.score(fitted, data.values).flags
        normal_flags = flags[~data.missing & ~data.labels]
    else:
        data = dataset
        normal_flags = module.score(fitted, dataset.normal).flags
    anomaly_flags = (None if data.labels is None or flags is None
                     else flags[~data.missing & data.labels])
    warning = thresholds.judge(module.NAME, spec, fitted.scalars["threshold"], normal_flags,
                               anomaly_flags, data.name, max_share)
    if warning:
        print(warning, file=sys.stderr)


def check_constants(name: str, fitted, channels: list[str]) -> None:
    """Refuse a trained detector that generate could not turn into working C: a float
    constant that is not a finite float32, an empty array, anything bundle.load's schema
    would refuse.  The detectors refuse the causes they can name first (a channel's
    deviation, span, ...); this catches the rest."""
    fix = ("rescale that channel of the training data (e.g. to mV or kV) or leave it out with "
           "--columns")
    fix_all = "rescale the channels of the training data (e.g. to mV or kV)"
    for key, value in fitted.scalars.items():
        if isinstance(value, float) and not abs(value) <= FLOAT32_MAX:
            raise UserError(f"{name}: its constant {key} = {value!r} is not a finite float32; "
                            f"{fix_all}")
    for key, array in fitted.arrays.items():
        if array.size == 0:
            raise UserError(f"{name}: training left its array {key!r} empty, so the model is "
                            f"degenerate; check that the normal rows vary on every channel")
        if array.dtype.kind == "f" and not np.isfinite(array).all():
            bad = int(np.flatnonzero(~np.isfinite(array.reshape(-1)))[0])
            where = (f" (channel {channels[bad]!r})"
                     if array.ndim == 1 and len(array) == len(channels) else f"[{bad}]")
            raise UserError(f"{name}: its constant {key}{where} is "
                            f"{float(array.reshape(-1)[bad])!r}, not a finite float32; {fix}")
    # Last, what bundle.load will check (codegen/schema.py): train never writes a bundle
    # that load refuses.  params and scalars as load reads them back, through JSON.
    stored = schema.Stored("trained", name, json.loads(json.dumps(fitted.params)),
                           json.loads(json.dumps(fitted.scalars)), fitted.arrays, len(channels))
    try:
        get(name).SPEC.schema(stored)
    except schema.BundleError as error:
        detail = str(error).removeprefix("bundle trained: ").removesuffix(f"; {schema.FIX}")
        raise UserError(f"{name}: training gave a model that bundle.load would refuse "
                        f"({detail}); the data is probably near float32's limits: "
                        f"{fix_all}") from None


def train(dataset: Dataset, detectors: list[str], params: dict[str, dict], seed: int,
          name: str, verbose: bool = True, threshold: str | None = None,
          validation: Dataset | None = None, policy: str = missing.DEFAULT,
          max_alarm_share: float = thresholds.MAX_ALARM_SHARE) -> Bundle:
    """Fit each detector on the normal rows of dataset, those without a missing reading.
    threshold (a strategy, see thresholds.py) applies to every detector whose --set
    threshold is not given; the labelled strategies choose on validation (default: the
    labelled dataset itself), whose rows with a missing reading go as the policy says
    (codegen/data/missing.py).  A threshold that flags more than max_alarm_share of the
    normal rows is refused (thresholds.judge)."""
    check_model_name(name)
    check_channel_names(dataset.channels)
    if not detectors:
        raise UserError(f"no detector to train; choose one or more with --detectors, from "
                        f"{', '.join(NAMES)}")
    modules = [get(d) for d in detectors]
    unknown = sorted(set(params) - set(detectors))
    if unknown:
        raise UserError(f"parameters given for {', '.join(unknown)}, which is not among the "
                        f"detectors trained ({', '.join(detectors)})")
    if dataset.labels is None:
        print(f"warning: {dataset.name} has no label column (is_anomaly or anomaly): training on "
              f"all {len(dataset.values)} rows as if they were normal", file=sys.stderr)
    if threshold is not None:
        thresholds.parse(threshold, "--threshold")
        params = {d: {"threshold": threshold, **params.get(d, {})} for d in detectors}
    specs = {m.NAME: str(params.get(m.NAME, {}).get("threshold", m.DEFAULTS.get("threshold", "")))
             for m in modules}
    labelled = [d for d, spec in specs.items()
                if spec and thresholds.needs_labels(spec, f"{d}.threshold")]
    validation = validation or dataset
    if labelled:
        if validation.labels is None:
            raise UserError(f"threshold {specs[labelled[0]]!r} ({', '.join(labelled)}) is chosen on "
                            f"labelled data, and {validation.name} has no label column: add one "
                            f"(is_anomaly, 0/1) or give --validation with a labelled CSV")
        if list(validation.channels) != list(dataset.channels):
            raise UserError(f"validation data {validation.name} has columns "
                            f"{', '.join(validation.channels)}; training used "
                            f"{', '.join(dataset.channels)}")
    gaps = missing.check(dataset, policy)
    validation = missing.apply(validation, policy)
    if gaps.size:
        print(f"warning: {gaps.size} of the {len(dataset.values)} rows of {dataset.name} hold a "
              f"missing reading (empty cell, nan or inf): data rows {missing.rows_shown(gaps)}; "
              f"the device flags such a sample and learns nothing from it, so training leaves "
              f"them out", file=sys.stderr)
    normal = dataset.normal
    if len(normal) == 0:
        what = ("labelled anomalous or holds a missing reading" if gaps.size
                else "labelled anomalous")
        raise UserError(f"every row of {dataset.name} is {what}; training needs normal rows "
                        f"(label 0) with every reading present")
    if len(normal) < 2:
        raise UserError(f"{dataset.name} has only {len(normal)} normal row; training needs more")
    fitted = {}
    for module in modules:
        if verbose:
            print(f"training {module.NAME} on {len(normal)} normal rows ...", flush=True)
        fitted[module.NAME] = module.fit(normal, params.get(module.NAME, {}), seed, verbose,
                                         dataset.channels)
        if module.NAME in labelled:
            if verbose:
                print(f"  {module.NAME}: choosing the {specs[module.NAME]} threshold on "
                      f"{len(validation.values)} labelled rows of {validation.name} ...", flush=True)
            fitted[module.NAME], info = select(module, fitted[module.NAME], specs[module.NAME],
                                               validation.values, validation.labels)
            info["data"] = validation.name
            fitted[module.NAME].report["threshold_choice"] = info
        check_constants(module.NAME, fitted[module.NAME], dataset.channels)
        flags = None
        if dataset.labels is not None:
            flags = module.score(fitted[module.NAME], dataset.values).flags
            fitted[module.NAME].report["evaluation"] = evaluate(flags, dataset.labels)
        _judge(module, fitted[module.NAME], specs[module.NAME],
               validation if module.NAME in labelled else None, dataset, flags,
               max_alarm_share)
    stats = normal.astype(np.float64)
    return Bundle(
        name=name,
        channels=list(dataset.channels),
        channel_mean=[float(v) for v in stats.mean(axis=0)],
        channel_std=[float(v) for v in stats.std(axis=0)],
        detectors=fitted,
        columns=list(dataset.columns),
        training={"data": dataset.name, "rows": int(len(dataset.values)),
                  "normal_rows": int(len(normal)), "labelled": dataset.labels is not None,
                  "seed": seed},
    )
