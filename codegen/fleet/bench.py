"""fleet bench: `fleet train` on a synthetic fleet, per engine (joblib here, a local Dask
cluster) and worker count, each run a fresh `mcu-anomaly fleet train` process into an empty
directory: wall time, devices per second, peak RSS, the scaling against one worker, and
whether the bundles are byte-identical to the first run's.

Peak RSS is psutil's: the sum of the resident sets of every process the bench started (the
train command, its joblib workers, the Dask cluster's nannies and workers), sampled every
SAMPLE_S; the bench's own process, which holds the Dask scheduler, is not counted.
Without psutil, getrusage(RUSAGE_CHILDREN)'s ru_maxrss stands in: the largest single child,
not their sum (the table says which).
"""

from __future__ import annotations

import hashlib
import os
import resource
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

from codegen.errors import UserError
from codegen.fleet import require

SAMPLE_S = 0.1
ENGINES = ("joblib", "dask")
BLOCK_ROWS = 65_536  # rows of the synthetic table written at a time


def synthetic_table(path: Path, devices: int, rows: int, channels: int, seed: int = 0) -> None:
    """A long Parquet table (time, device_id, ch0..): every device's readings a level of its
    own plus noise, the devices interleaved time step by time step as a logger writes them."""
    pa = require("pyarrow", "fleet bench")
    pq = require("pyarrow.parquet", "fleet bench")
    rng = np.random.default_rng(seed)
    level = rng.normal(0, 10, (devices, channels))
    spread = rng.uniform(0.5, 2.0, (devices, channels))
    ids = np.array([f"dev-{d:05d}" for d in range(devices)])
    steps = max(1, BLOCK_ROWS // devices)
    schema = pa.schema([("time", pa.int64()), ("device_id", pa.string())]
                       + [(f"ch{c}", pa.float32()) for c in range(channels)])
    tmp = path.with_name(path.name + ".tmp")
    with pq.ParquetWriter(tmp, schema) as writer:
        for start in range(0, rows, steps):
            n = min(steps, rows - start)
            noise = rng.normal(size=(n, devices, channels))
            values = (level + spread * noise).reshape(-1, channels).astype(np.float32)
            columns = [pa.array(np.repeat(np.arange(start, start + n), devices)),
                       pa.array(np.tile(ids, n))]
            columns += [pa.array(values[:, c]) for c in range(channels)]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))
    tmp.replace(path)


class PeakRSS:
    """The peak, over a run, of the summed RSS of this process's descendants (psutil), or
    else RUSAGE_CHILDREN's largest child."""

    def __init__(self):
        try:
            import psutil
        except ImportError:
            psutil = None
        self.psutil, self.peak, self.stop = psutil, 0, threading.Event()
        self.how = ("psutil, sum over the process tree" if psutil else
                    "getrusage(RUSAGE_CHILDREN), largest child")

    def _sample(self) -> None:
        me = self.psutil.Process()
        while not self.stop.wait(SAMPLE_S):
            total = 0
            for child in me.children(recursive=True):
                try:
                    total += child.memory_info().rss
                except self.psutil.Error:
                    pass  # ended between the listing and the reading
            self.peak = max(self.peak, total)

    def __enter__(self):
        if self.psutil:
            self.thread = threading.Thread(target=self._sample, daemon=True)
            self.thread.start()
        return self

    def __exit__(self, *exc):
        if self.psutil:
            self.stop.set()
            self.thread.join()
        else:
            self.peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def _tree_hash(folder: Path) -> str:
    h = hashlib.sha256()
    for path in sorted(p for p in folder.rglob("*") if p.is_file()):
        h.update(str(path.relative_to(folder)).encode() + b"\0" + path.read_bytes())
    return h.hexdigest()


def _train(table: Path, out: Path, options: list[str], workers: int, scheduler: str | None):
    command = [sys.executable, "-m", "codegen.cli", "fleet", "train", str(table), "--out",
               str(out), *options]
    command += ["--scheduler", scheduler] if scheduler else ["--workers", str(workers)]
    proc = subprocess.run(command, capture_output=True, text=True)
    if proc.returncode != 0:
        raise UserError(f"fleet bench: `{' '.join(command)}` failed ({proc.stderr.strip()[-800:]})")


def _run(engine: str, workers: int, table: Path, out: Path, options: list[str]) -> dict:
    shutil.rmtree(out, ignore_errors=True)
    load = os.getloadavg()[0]
    if engine == "joblib":
        with PeakRSS() as rss:
            start = time.perf_counter()
            _train(table, out, options, workers, None)
            wall = time.perf_counter() - start
    else:
        distributed = require("distributed", "fleet bench")
        with distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                      dashboard_address=None) as cluster, PeakRSS() as rss:
            start = time.perf_counter()
            _train(table, out, options, workers, cluster.scheduler_address)
            wall = time.perf_counter() - start
    return {"engine": engine, "workers": workers, "wall": wall, "peak": rss.peak,
            "how": rss.how, "load": load, "hash": _tree_hash(out / "devices")}


def table(runs: list[dict], devices: int, rows: int, channels: int, options: list[str]) -> str:
    first = runs[0]["hash"]
    lines = [f"fleet train: {devices:,} devices x {rows:,} rows x {channels} channels, "
             f"{' '.join(options)}; peak RSS by {runs[0]['how']}",
             "| engine | workers | wall | devices/s | peak RSS | scaling vs 1 worker | "
             "load (1 min) before | bundles as the first run's |",
             "|---|---|---|---|---|---|---|---|"]
    base = {r["engine"]: r["wall"] for r in runs if r["workers"] == 1}
    for r in runs:
        scaling = f"{base[r['engine']] / r['wall']:.2f}x" if r["engine"] in base else "–"
        lines.append(f"| {r['engine']} | {r['workers']} | {r['wall']:.1f} s | "
                     f"{devices / r['wall']:.1f} | {r['peak'] / 2**20:,.0f} MiB | {scaling} | "
                     f"{r['load']:.2f} | {'identical' if r['hash'] == first else 'DIFFERENT'} |")
    return "\n".join(lines)


def main(devices: int, rows: int, channels: int, detectors: str, sets: list[str],
         workers: list[int], engines: list[str], work: str | Path) -> str:
    unknown = [e for e in engines if e not in ENGINES]
    if unknown:
        raise UserError(f"--engines {','.join(engines)!r} names {unknown[0]!r}; choose from "
                        f"{', '.join(ENGINES)}")
    work = Path(work)
    work.mkdir(parents=True, exist_ok=True)
    data = work / f"fleet-{devices}x{rows}x{channels}.parquet"
    if not data.is_file():
        print(f"writing the synthetic fleet {data} ...", file=sys.stderr, flush=True)
        synthetic_table(data, devices, rows, channels)
    options = ["--detectors", detectors, *(f"--set={s}" for s in sets)]
    runs = []
    for engine in engines:
        for count in workers:
            print(f"fleet train on {engine} with {count} worker(s) ...", file=sys.stderr,
                  flush=True)
            runs.append(_run(engine, count, data, work / "fleet", options))
    return table(runs, devices, rows, channels, options)
