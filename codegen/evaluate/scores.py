"""Per-row scores and flags of a bundle's detectors on a CSV, as the device computes them.

The rows are read and scored a chunk at a time, so memory stays that of one chunk whatever
the file's length; the answer is the one a single pass gives:
  a streaming detector goes on from the state the chunk before left (the engine's resume),
  as the device's state goes on from sample to sample;
  a windowed one (the autoencoder) gets the chunk before's last W-1 rows in front of the
  chunk, and their answers are dropped, so every row is scored on its own window;
  a stateless one scores each row alone.
Scores are written in the shortest text that reads back to the same float32 (inf and nan
as such), flags as 0/1.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Callable

import numpy as np

from codegen import files
from codegen.bundle import Bundle
from codegen.data import missing
from codegen.data.dataset import open_for_bundle
from codegen.detectors import get
from codegen.detectors.base import Kind
from codegen.errors import UserError
from codegen.verify.engines import Engine

CHUNK_ROWS = 65536


def detector_names(bundle: Bundle, given: str | None) -> list[str]:
    """The bundle's detectors named in a comma-separated list (default: all of them)."""
    if given is None:
        return list(bundle.detectors)
    names = [d.strip() for d in given.split(",") if d.strip()]
    unknown = [d for d in names if d not in bundle.detectors]
    if unknown or not names:
        raise UserError(f"--detectors {given!r} names {', '.join(unknown) or 'no detector'}; "
                        f"the bundle holds {', '.join(bundle.detectors)}")
    return names


def _text(scores: np.ndarray) -> list[str]:
    return [str(v) for v in scores.astype(np.float32)]


def _cells(fed_values: list, fed: np.ndarray) -> list:
    """One cell per row: the value of each row fed to the detectors, empty for the others."""
    if fed.all():
        return fed_values
    cells = [""] * len(fed)
    for i, value in zip(np.flatnonzero(fed), fed_values):
        cells[i] = value
    return cells


def _lines(path: Path) -> int:
    """Line ends in the file: the progress report's total (a count, not a parse)."""
    with path.open("rb") as handle:
        return sum(block.count(b"\n") for block in iter(lambda: handle.read(1 << 20), b""))


class _Chunks:
    """Runs the engine on consecutive chunks as on one stream (see the module's doc)."""

    def __init__(self, bundle: Bundle, engine: Engine, detectors: list[str]):
        self.engine = engine
        self.kinds = {d: get(d).SPEC.kind_of(bundle.detectors[d]) for d in detectors}
        self.overlap = {d: get(d).SPEC.warm_up(bundle.detectors[d]) for d in detectors
                        if self.kinds[d] is Kind.WINDOWED}
        self.tail = {d: None for d in self.overlap}
        self.started = False

    def run(self, X: np.ndarray) -> dict[str, tuple[np.ndarray, np.ndarray]]:
        if not len(X):  # a chunk whose every row was skipped
            return {d: (np.zeros(0, np.float32), np.zeros(0, bool)) for d in self.kinds}
        out = {}
        plain = [d for d in self.kinds if d not in self.overlap]
        if plain:
            for d, result in self.engine.run(X, plain, resume=self.started,
                                             state=False).items():
                out[d] = (result.scores, result.flags)
        for d, keep in self.overlap.items():
            before = self.tail[d] if self.tail[d] is not None else X[:0]
            joined = np.concatenate([before, X])
            result = self.engine.run(joined, [d], state=False)[d]
            out[d] = (result.scores[len(before):], result.flags[len(before):])
            self.tail[d] = joined[-keep:] if keep else X[:0]
        self.started = True
        return out


def score_csv(bundle: Bundle, path: str | Path, out: str | Path, engine: Engine,
              detectors: list[str], label_column: str | None = None,
              time_column: str | None = None, sep: str | None = None,
              policy: str = missing.DEFAULT, chunk: int = CHUNK_ROWS,
              progress: Callable[[str], None] | None = None,
              columns: list[str] | None = None) -> int:
    """Write out: per row of the CSV its time and label (where it has them) and per
    detector `<name>_score`, `<name>_flag`; a row with a missing reading as the policy says
    (codegen/data/missing.py; skip: empty score and flag cells); columns: see
    open_for_bundle.  Returns the rows read."""
    table = open_for_bundle(path, bundle, label_column, time_column, sep, columns)
    header = [c for c in (table.time, table.label) if c]
    header += [f"{d}_{what}" for d in detectors for what in ("score", "flag")]
    total = _lines(Path(path)) if progress else 0
    runner = _Chunks(bundle, engine, detectors)
    rows = 0
    with files.replacing(out, "w") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(header)
        for part in table.chunks(chunk):
            missing.check(part, policy, first=rows + 1)
            fed = ~part.missing if policy == "skip" else np.ones(len(part.values), bool)
            results = runner.run(part.values[fed])
            columns = [part.time] if table.time else []
            if table.label:
                columns.append(part.labels.astype(np.uint8).tolist())
            for d in detectors:
                scores, flags = results[d]
                columns += [_cells(_text(scores), fed),
                            _cells(flags.astype(np.uint8).tolist(), fed)]
            writer.writerows(zip(*columns))
            rows += len(part.values)
            if progress:
                progress(f"scored {rows:,} of about {max(total - 1, rows):,} rows")
    return rows
