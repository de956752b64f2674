"""A fleet's input, read in chunks: a long table (CSV or Parquet: a device column, the
channels, an optional label and time) or a folder of per-device files (one device per CSV or
Parquet file, its id the file's name without the suffix).

A long table is read once, chunk_rows rows at a time, and each chunk's rows are appended to
a spool file per device (raw float32 readings, a byte per label), so no step holds more than
a chunk of the table; a device's job then reads its own spool, its history in the order of
the table.  A folder's file is read when its device's turn comes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np

from codegen.data import dataset as data
from codegen.emit.cnames import map_channel_names
from codegen.errors import UserError
from codegen.fleet import require

DEVICE_COLUMNS = ("device_id", "device")
SUFFIXES = (".csv", ".parquet")
CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class Reading:
    """How the tables are read: the options train shares with `mcu-anomaly train`."""

    device_column: str | None = None
    columns: list[str] | None = None
    label_column: str | None = None
    time_column: str | None = None
    sep: str | None = None
    renames: dict[str, str] = field(default_factory=dict)
    ignore: list[str] = field(default_factory=list)
    chunk_rows: int = CHUNK_ROWS


def parquet_file(path: Path):
    pa = require("pyarrow", "reading Parquet")
    pq = require("pyarrow.parquet", "reading Parquet")
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as error:
        raise UserError(f"{path} cannot be read as Parquet ({error}); check that it is a "
                        f"Parquet file, or give a CSV") from None


class ParquetTable:
    """A Parquet file opened for reading, as data.Table for a CSV: its channels, label and
    time columns, its rows a batch at a time."""

    def __init__(self, path: Path, reading: Reading, key: str | None):
        pa = require("pyarrow", "reading Parquet")
        self.file, self.pa, self.path = parquet_file(path), pa, path
        schema = self.file.schema_arrow
        self.header = list(schema.names)
        self.columns, self.label, self.time = data.choose_columns(
            path, self.header, reading.columns, reading.label_column, reading.time_column,
            [*([key] if key else []), *reading.ignore])
        for name in self.columns + ([self.label] if self.label else []):
            kind = schema.field(name).type
            if not (pa.types.is_integer(kind) or pa.types.is_floating(kind)
                    or pa.types.is_boolean(kind) or pa.types.is_decimal(kind)):
                raise UserError(f"{path}: column {name!r} holds {kind}, not numbers; leave it "
                                f"out with --ignore {name!r} (or pick the sensors with "
                                f"--columns)")
        self.channels = map_channel_names(self.columns, reading.renames)

    def keyed_chunks(self, column: str, size: int) -> Iterator[tuple[list[str], data.Dataset]]:
        for batch in self._batches(size, [column]):
            keys = ["" if k is None else str(k) for k in batch.column(column).to_pylist()]
            yield keys, self._dataset(batch)

    def chunks(self, size: int) -> Iterator[data.Dataset]:
        for batch in self._batches(size, []):
            yield self._dataset(batch)

    def _batches(self, size: int, more: list[str]):
        wanted = self.columns + [c for c in (self.label, *more) if c]
        try:
            yield from self.file.iter_batches(batch_size=size, columns=wanted)
        except self.pa.ArrowException as error:
            raise UserError(f"{self.path} cannot be read as Parquet ({error}); check the "
                            f"file") from None

    def _numbers(self, column) -> np.ndarray:
        """A column as float64, a null as NaN (an empty cell in a CSV)."""
        return np.asarray(column.cast(self.pa.float64()).to_numpy(zero_copy_only=False),
                          dtype=np.float64)

    def _dataset(self, batch) -> data.Dataset:
        with np.errstate(over="ignore"):
            values = np.column_stack([self._numbers(batch.column(c)) for c in self.columns]
                                     ).astype(np.float32)
        labels = None
        if self.label:
            raw = self._numbers(batch.column(self.label))
            bad = ~np.isin(raw, (0, 1))
            if bad.any():
                raise UserError(f"label column {self.label!r} of {self.path} holds "
                                f"{raw[bad][0]!r}; labels must be 0 (normal) or 1 (anomaly): "
                                f"fix the value or pass --label-column with the right column")
            labels = raw == 1
        return data.Dataset(self.path.stem, self.channels, values, labels, None, self.columns)


def open_table(path: Path, reading: Reading, key: str | None = None):
    """A CSV's data.Table or a ParquetTable, by the file's suffix; key (the device column)
    is neither a channel nor the label."""
    if path.suffix.lower() == ".parquet":
        return ParquetTable(path, reading, key)
    ignore = [*([key] if key else []), *reading.ignore]
    return data.open_csv(path, reading.columns, reading.label_column, reading.time_column,
                         reading.sep, reading.renames, ignore=ignore)


def _header(path: Path, reading: Reading) -> list[str]:
    if path.suffix.lower() == ".parquet":
        return list(parquet_file(path).schema_arrow.names)
    return data.open_csv(path, None, None, None, reading.sep).header


def device_column(path: Path, reading: Reading) -> str:
    """The long table's device column: the one given, else the first named as
    DEVICE_COLUMNS."""
    header = _header(path, reading)
    if reading.device_column is not None:
        if reading.device_column not in header:
            raise UserError(f"device column {reading.device_column!r} is not in {path}; its "
                            f"columns are {', '.join(header)}: give the right one with "
                            f"--device-column")
        return reading.device_column
    found = next((c for c in header if c.lower() in DEVICE_COLUMNS), None)
    if found is None:
        raise UserError(f"{path} has no device column (none named {' or '.join(DEVICE_COLUMNS)});"
                        f" name the column that holds the device ids with --device-column, or "
                        f"give a folder of one file per device")
    return found


class LongTable:
    """A long table split by device into spool files in spool, an empty directory (the
    caller removes it)."""

    def __init__(self, path: Path, reading: Reading, spool: Path):
        key = device_column(path, reading)
        table = open_table(path, reading, key)
        self.channels, self.columns = list(table.channels), list(table.columns)
        self.labelled = table.label is not None
        self.spool = spool
        self.index: dict[str, int] = {}
        for keys, chunk in table.keyed_chunks(key, reading.chunk_rows):
            self._append(np.asarray(keys, dtype=str), chunk)
        self.device_ids = sorted(self.index)

    def _append(self, keys: np.ndarray, chunk: data.Dataset) -> None:
        found, inverse = np.unique(keys, return_inverse=True)
        order = np.argsort(inverse, kind="stable")  # each device's rows in the table's order
        bounds = np.r_[0, np.cumsum(np.bincount(inverse, minlength=len(found)))]
        for k, device_id in enumerate(found.tolist()):
            rows = order[bounds[k]:bounds[k + 1]]
            n = self.index.setdefault(device_id, len(self.index))
            with open(self.spool / f"{n}.f32", "ab") as handle:
                handle.write(chunk.values[rows].tobytes())
            if self.labelled:
                with open(self.spool / f"{n}.lbl", "ab") as handle:
                    handle.write(chunk.labels[rows].astype(np.uint8).tobytes())

    def dataset(self, device_id: str) -> data.Dataset:
        n = self.index[device_id]
        values = np.fromfile(self.spool / f"{n}.f32", dtype=np.float32)
        labels = (np.fromfile(self.spool / f"{n}.lbl", dtype=np.uint8).astype(bool)
                  if self.labelled else None)
        return data.Dataset(device_id, self.channels, values.reshape(-1, len(self.channels)),
                            labels, None, self.columns)


class Folder:
    """A folder of one file per device."""

    def __init__(self, path: Path, reading: Reading):
        if reading.device_column is not None:
            raise UserError(f"--device-column applies to a long table; {path} is a folder of "
                            f"one file per device: leave it out")
        self.reading = reading
        self.files: dict[str, Path] = {}
        for file in sorted(p for p in path.iterdir()
                           if p.suffix.lower() in SUFFIXES and p.is_file()):
            if file.stem in self.files:
                raise UserError(f"{path} holds {self.files[file.stem].name} and {file.name}, "
                                f"two files for the device {file.stem!r}; keep one of them")
            self.files[file.stem] = file
        if not self.files:
            raise UserError(f"{path} holds no .csv or .parquet file; give a folder of one file "
                            f"per device, or a long table with a device column")
        self.device_ids = sorted(self.files)

    def dataset(self, device_id: str) -> data.Dataset:
        """The device's file whole (its history), read in chunks."""
        table = open_table(self.files[device_id], self.reading)
        chunks = list(table.chunks(self.reading.chunk_rows))
        if not chunks:
            raise UserError(f"{self.files[device_id]} has no data rows; give the device its "
                            f"history, or remove the file")
        labels = (None if chunks[0].labels is None
                  else np.concatenate([c.labels for c in chunks]))
        return data.Dataset(device_id, list(table.channels),
                            np.concatenate([c.values for c in chunks]), labels, None,
                            list(table.columns))


def open_fleet(path: str | Path, reading: Reading, spool: Path) -> LongTable | Folder:
    """The fleet's input: a folder of per-device files, or a long table split into spool
    (an empty directory, which the caller removes)."""
    path = Path(path)
    if path.is_dir():
        return Folder(path, reading)
    if not path.is_file():
        raise UserError(f"{str(path)!r} does not exist; give a long table (.csv or .parquet) "
                        f"with a device column, or a folder of one file per device")
    if path.suffix.lower() not in SUFFIXES:
        raise UserError(f"{path} is neither .csv nor .parquet; give a long table in one of "
                        f"those formats, or a folder of one file per device")
    return LongTable(path, reading, spool)
