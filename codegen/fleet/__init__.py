"""Fleets: one model per device, trained in parallel (joblib locally, Dask distributed given
a scheduler), one header set per device, and a summary across devices (docs/fleet.md).

    reading.py    the input: a long table (CSV or Parquet) split by device, or a folder
    ids.py        device ids -> C identifiers, the mapping and its refusals
    device.py     one device's work: its content hash, training, its record
    execution.py  the jobs on joblib or on Dask, through one joblib.Parallel
    train.py      fleet train: read, skip what is done, run, write each device whole
    generate.py   fleet generate: a header set per device and the id mapping
    summary.py    per-device thresholds, metrics, failures, outliers among devices
    report.py     the summary as JSON and HTML
    bench.py      the benchmark: synthetic fleets, workers and engines, a table
"""

from __future__ import annotations

import importlib

from codegen.errors import UserError

INSTALL = "pip install 'mcu-anomaly[fleet]'"


def require(module: str, what: str):
    """Import module of the [fleet] extra, or a UserError naming the extra."""
    try:
        return importlib.import_module(module)
    except ImportError:
        raise UserError(f"{what} needs {module.split('.')[0]}, which is not installed; install "
                        f"the fleet extra: {INSTALL}") from None
