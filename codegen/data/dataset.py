"""Sensor data: CSV loading and the built-in data sets of the reference documents."""

from __future__ import annotations

import csv
import itertools
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from codegen.emit.cnames import map_channel_names
from codegen.errors import UserError

LABEL_COLUMNS = ("is_anomaly", "anomaly", "label")
TIME_COLUMNS = ("time", "timestamp", "datetime", "date", "t")
SEPARATORS = {",": ",", ";": ";", "tab": "\t"}  # --sep's values
SNIFF_BYTES = 64 * 1024


@dataclass
class Dataset:
    """Rows of float32 sensor readings, optional 0/1 labels and an optional time column.
    channels are C identifiers; columns the names the data gives them (default: the same)."""

    name: str
    channels: list[str]
    values: np.ndarray  # (rows, channels) float32
    labels: np.ndarray | None = None  # (rows,) bool, True = anomalous
    time: list[str] | None = None
    columns: list[str] | None = None

    def __post_init__(self):
        self.columns = list(self.columns or self.channels)

    def label_like(self) -> list[str]:
        """The columns read as channels that hold only 0 and 1, both: labels or markers
        more likely than sensors."""
        return [c for c, v in zip(self.columns, self.values.T)
                if np.isin(v, (0, 1)).all() and 0 < v.sum() < len(v)]

    @property
    def renamed(self) -> list[tuple[str, str]]:
        """(column, channel) for each column whose name is not its C identifier."""
        return [(c, ch) for c, ch in zip(self.columns, self.channels) if c != ch]

    @property
    def missing(self) -> np.ndarray:
        """(rows,) bool: the rows holding a missing (NaN) or non-finite reading, which the
        device flags and never learns from."""
        return ~np.isfinite(self.values).all(axis=1)

    @property
    def normal(self) -> np.ndarray:
        """The rows training may use: those labelled normal, or all rows when unlabelled,
        that hold no missing reading."""
        keep = ~self.missing if self.labels is None else ~self.labels & ~self.missing
        return self.values[keep]

    def rows(self, keep: np.ndarray) -> "Dataset":
        """The dataset of the rows where keep (a (rows,) bool mask) holds."""
        return Dataset(self.name, self.channels, self.values[keep],
                       None if self.labels is None else self.labels[keep],
                       None if self.time is None else [t for t, k in zip(self.time, keep) if k],
                       self.columns)


def iot_sensors(n: int = 5000, seed: int = 42) -> Dataset:
    """The notebook's three noisy sine/cosine sensors with 50 injected +-5 spikes.

    Same random calls in the same order as the notebook, so seed 42 gives its data exactly.
    """
    rng = np.random.RandomState(seed)
    t = np.arange(n)
    s1 = np.sin(0.02 * t) + 0.5 * rng.randn(n)
    s2 = np.cos(0.02 * t) + 0.3 * rng.randn(n)
    s3 = np.sin(0.01 * t + 1) + 0.2 * rng.randn(n)
    values = np.column_stack([s1, s2, s3])
    anomalies = rng.choice(n, size=50, replace=False)
    values[anomalies] += rng.choice([5, -5], 50)[:, None]
    labels = np.zeros(n, dtype=bool)
    labels[anomalies] = True
    return Dataset("iot", ["sensor_1", "sensor_2", "sensor_3"], values.astype(np.float32),
                   labels, [str(i) for i in t])


def day_night(seed: int = 42) -> Dataset:
    """The lab's day/night temperature and humidity readings with three anomalies appended."""
    rng = np.random.RandomState(seed)
    half = 100
    day_temp = rng.normal(28, 2, half)
    day_humidity = rng.normal(65, 5, half)
    night_temp = rng.normal(18, 1.5, half)
    night_humidity = rng.normal(80, 4, half)
    normal = np.column_stack([np.concatenate([day_temp, night_temp]),
                              np.concatenate([day_humidity, night_humidity])])
    anomalies = np.array([[40, 30], [10, 95], [35, 20]], dtype=float)
    values = np.vstack([normal, anomalies]).astype(np.float32)
    labels = np.zeros(len(values), dtype=bool)
    labels[-3:] = True
    return Dataset("daynight", ["temperature", "humidity"], values, labels)


def pump_run(seed: int = 0) -> Dataset:
    """Run 0 of the simulated pump benchmark (codegen/data/pump.py): 8 correlated channels,
    its first third normal, then labelled faults."""
    from codegen.data import pump  # pump builds Datasets: imported here, not at the top

    return pump.dataset(pump.benchmark(seed, runs=1)[0])


def pump_benchmark(seed: int = 0, runs: int | None = None, rows: int | None = None) -> list:
    """Every run of the pump benchmark (pump.Run: readings, labels, faults, normal head)."""
    from codegen.data import pump

    return pump.benchmark(seed, runs or pump.RUNS, rows or pump.ROWS)


BUILTIN = {"iot": iot_sensors, "daynight": day_night, "pump": pump_run}
# The built-in benchmarks: several runs, each trained on its normal head and tested on the
# rest (codegen/evaluate/protocol.py).
BENCHMARKS = {"pump": pump_benchmark}


def builtin(name: str) -> Dataset:
    if name not in BUILTIN:
        raise UserError(f"no built-in data set {name!r}; choose one of {', '.join(BUILTIN)}")
    return BUILTIN[name]()


def _parse_label(text: str, column: str, line: int) -> bool:
    value = text.strip()
    if value in ("0", "1", "0.0", "1.0"):
        return value.startswith("1")
    raise UserError(
        f"label column {column!r} holds {text!r} on line {line}; labels must be 0 (normal) or "
        f"1 (anomaly): fix the value or pass --label-column with the right column"
    )


def separator(sample: str, sep: str | None) -> str:
    """The field separator: sep (a SEPARATORS key) when given, else the one of , ; and tab
    that csv.Sniffer finds in the sample (the file's first lines), else ','."""
    if sep is not None:
        if sep not in SEPARATORS:
            raise UserError(f"--sep {sep!r} is not a separator this tool reads; give one of "
                            f"',', ';' or tab")
        return SEPARATORS[sep]
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:  # one column, or too little text to tell
        return ","


def _not_utf8(path: Path, error: UnicodeDecodeError) -> UserError:
    return UserError(f"{path} is not UTF-8 text (it holds the byte "
                     f"0x{error.object[error.start]:02x}, which UTF-8 does not allow there); save "
                     f"it as UTF-8 (e.g. 'CSV UTF-8' in a spreadsheet, or iconv -t UTF-8)")


def _rows(path: Path, sep: str | None) -> Iterator[tuple[int, list[str]]]:
    """(line number, fields) of the CSV's rows that are not blank, read as they are needed.
    A UTF-8 BOM is dropped; CRLF and LF line ends are both read."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            sample = handle.read(SNIFF_BYTES)
            delimiter = separator(sample[:sample.rfind("\n") + 1] or sample, sep)
            handle.seek(0)
            reader = csv.reader(handle, delimiter=delimiter)
            for row in reader:
                if any(cell.strip() for cell in row):
                    yield reader.line_num, row
    except UnicodeDecodeError as error:
        raise _not_utf8(path, error) from None
    except csv.Error as error:  # e.g. a field beyond the csv module's limit
        raise UserError(f"{path} cannot be read as CSV ({error}); check that it is a text "
                        f"table with one row per line") from None


@dataclass
class Table:
    """A CSV opened for reading: which of its columns are the channels, the label and the
    time, and the C identifiers the channels take."""

    path: Path
    sep: str | None
    header: list[str]
    columns: list[str]
    channels: list[str]
    label: str | None
    time: str | None

    def chunks(self, size: int | None = None) -> Iterator[Dataset]:
        """The data rows, size rows at a time (all at once without size).  An empty cell
        is a missing reading, NaN; NaN, Inf and values beyond float32 (Inf) are read as the
        device would see them (Dataset.missing)."""
        for block in self._blocks(size):
            yield self._parse(block)

    def keyed_chunks(self, column: str, size: int) -> Iterator[tuple[list[str], Dataset]]:
        """(the cells of column, the Dataset) of the data rows, size rows at a time: a long
        table's rows with the key (a device id) each belongs to."""
        at = self.header.index(column)
        for block in self._blocks(size):
            chunk = self._parse(block)  # first: it refuses a row of the wrong length
            yield [row[at] for _, row in block], chunk

    def _blocks(self, size: int | None) -> Iterator[list[tuple[int, list[str]]]]:
        rows = _rows(self.path, self.sep)
        next(rows)  # the header
        while True:
            block = list(itertools.islice(rows, size)) if size else list(rows)
            if not block:
                return
            yield block
            if not size:
                return

    def _parse(self, block: list[tuple[int, list[str]]]) -> Dataset:
        index = {name: i for i, name in enumerate(self.header)}
        values = np.empty((len(block), len(self.columns)), dtype=np.float32)
        labels = np.zeros(len(block), dtype=bool) if self.label else None
        times = [] if self.time else None
        bad = []  # (line, column, text) of every cell that is not a number
        for r, (line, row) in enumerate(block):
            if len(row) != len(self.header):
                raise UserError(f"line {line} of {self.path} has {len(row)} fields, the header "
                                f"has {len(self.header)}; fix the row")
            for c, name in enumerate(self.columns):
                value = _number(row[index[name]])
                if value is None:
                    bad.append((line, name, row[index[name]]))
                else:
                    values[r, c] = value
            if labels is not None:
                labels[r] = _parse_label(row[index[self.label]], self.label, line)
            if times is not None:
                times.append(row[index[self.time]])
        if bad:
            raise _not_numeric(self.path, bad)
        return Dataset(self.path.stem, self.channels, values, labels, times, self.columns)


def _number(text: str) -> np.float32 | None:
    """A cell's reading: NaN for an empty cell (a missing reading), Inf beyond float32;
    None when it is not a number."""
    if not text.strip():
        return np.float32(np.nan)
    try:
        value = float(text)
    except ValueError:
        return None
    with np.errstate(over="ignore"):
        return np.float32(value)


SHOWN_CELLS = 20


def _not_numeric(path: Path, bad: list[tuple[int, str, str]]) -> UserError:
    """Every cell that is not a number: per column a count and the first, then the first
    SHOWN_CELLS cells by line and column."""
    columns: dict[str, list[tuple[int, str]]] = {}
    for line, column, text in bad:
        columns.setdefault(column, []).append((line, text))
    per_column = "; ".join(f"column {c!r}: {len(cells):,} (first line {cells[0][0]}: "
                           f"{cells[0][1]!r})" for c, cells in columns.items())
    shown = "; ".join(f"line {line} column {column!r} holds {text!r}"
                      for line, column, text in bad[:SHOWN_CELLS])
    more = f" and {len(bad) - SHOWN_CELLS:,} more" if len(bad) > SHOWN_CELLS else ""
    comma = ("; decimal commas are not read: export with a decimal point"
             if any("," in t and t.replace(",", "", 1).strip().isdigit() for _, _, t in bad)
             else "")
    ignore = ",".join(columns)
    return UserError(f"{path}: {len(bad):,} cell(s) are not numeric, by column: {per_column}; "
                     f"the cells: {shown}{more}; fix the values (an empty cell is read as a "
                     f"missing reading), or leave a column that is not a sensor out with "
                     f"--ignore {ignore!r} (or pick the sensors with --columns){comma}")


def open_csv(path: str | Path, columns: list[str] | None = None,
             label_column: str | None = None, time_column: str | None = None,
             sep: str | None = None, renames: dict[str, str] | None = None,
             channels: list[str] | None = None, ignore: list[str] | None = None) -> Table:
    """Open a CSV with a header row.  columns: the sensor columns to read (default: all but
    the label and time columns and those in ignore); channels: the C identifiers they take
    (default: mapped from their names, with renames, cnames.map_channel_names)."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file {str(path)!r} does not exist; pass the path of a CSV file "
                        f"with a header row, or leave it out to use built-in data")
    rows = _rows(path, sep)
    first = next(rows, None)
    if first is None:
        raise UserError(f"{path} is empty; it needs a header row and at least one data row")
    if next(rows, None) is None:
        raise UserError(f"{path} has a header but no data rows")
    rows.close()
    header = [name.strip() for name in first[1]]
    columns, label, time = choose_columns(path, header, columns, label_column, time_column,
                                          ignore)
    if channels is None:
        channels = map_channel_names(list(columns), renames or {})
    return Table(path, sep, header, list(columns), list(channels), label, time)


def choose_columns(path: Path, header: list[str], columns: list[str] | None,
                   label_column: str | None, time_column: str | None,
                   ignore: list[str] | None) -> tuple[list[str], str | None, str | None]:
    """(sensor columns, label column, time column) of a table with these column names:
    columns (default: all but the label and time columns and those in ignore); the label and
    time columns given, else the first named as LABEL_COLUMNS / TIME_COLUMNS, else None."""
    twice = next((name for name in header if header.count(name) > 1), None)
    if twice is not None:
        raise UserError(f"{path} names the column {twice!r} {header.count(twice)} times; give "
                        f"each column its own name in the header")

    def pick(given: str | None, candidates: tuple[str, ...], what: str) -> str | None:
        if given is not None:
            if given not in header:
                raise UserError(f"{what} column {given!r} is not in {path}; its columns are "
                                f"{', '.join(header)}")
            return given
        return next((name for name in header if name.lower() in candidates), None)

    label = pick(label_column, LABEL_COLUMNS, "label")
    time = pick(time_column, TIME_COLUMNS, "time")
    for name in ignore or ():
        pick(name, (), "ignored")
    if columns is None:
        columns = [name for name in header if name not in (label, time, *(ignore or ()))]
    missing = [name for name in columns if name not in header]
    if missing:
        raise UserError(f"column(s) {', '.join(map(repr, missing))} not in {path}; its "
                        f"columns are {', '.join(header)}")
    if not columns:
        raise UserError(f"{path} has no sensor columns besides its label/time columns")
    return list(columns), label, time


def load_csv(path: str | Path, columns: list[str] | None = None,
             label_column: str | None = None, time_column: str | None = None,
             sep: str | None = None, renames: dict[str, str] | None = None,
             ignore: list[str] | None = None) -> Dataset:
    """Read a CSV with a header row whole (open_csv): numeric sensor columns (an empty
    cell a missing reading), and the optional label and time columns."""
    return next(open_csv(path, columns, label_column, time_column, sep, renames,
                         ignore=ignore).chunks())


def open_for_bundle(path: str | Path, bundle, label_column: str | None = None,
                    time_column: str | None = None, sep: str | None = None,
                    columns: list[str] | None = None) -> Table:
    """Open a CSV whose sensor columns are a bundle's (bundle.Bundle): columns, the CSV's
    names for the bundle's channels in order, or else found by the data's names the bundle
    stores (or by the channels' C names).  Other columns are left out, with a warning when
    columns is not given."""
    if columns is not None:
        if len(columns) != len(bundle.channels):
            raise UserError(f"--columns names {len(columns)} column(s) and the bundle has "
                            f"{len(bundle.channels)} channel(s) "
                            f"({', '.join(map(repr, bundle.columns))}); give one CSV column "
                            f"per channel, in that order")
        return open_csv(path, columns, label_column, time_column, sep,
                        channels=list(bundle.channels))
    table = open_csv(path, None, label_column, time_column, sep)
    names = (bundle.columns if all(c in table.columns for c in bundle.columns)
             else bundle.channels)
    missing = [c for c in names if c not in table.columns]
    extra = [c for c in table.columns if c not in names]
    if missing:
        parts = [f"lacks {', '.join(map(repr, missing))}"]
        if extra:
            parts.append(f"has {', '.join(map(repr, extra))} that the bundle does not know")
        raise UserError(f"{path} does not match the bundle: its sensor columns "
                        f"({', '.join(map(repr, table.columns))}) {' and '.join(parts)}; the "
                        f"bundle was trained on {', '.join(map(repr, bundle.columns))}: rename "
                        f"the CSV's columns, or name them in that order with --columns")
    if extra:
        print(f"warning: {path}: the bundle does not know {', '.join(map(repr, extra))}: left "
              f"out", file=sys.stderr)
    return open_csv(path, list(names), table.label, table.time, sep,
                    channels=list(bundle.channels))
