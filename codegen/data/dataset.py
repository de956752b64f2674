"""Sensor data: CSV loading and the built-in data sets of the reference documents."""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.emit.cnames import check_channel_names
from codegen.errors import UserError

LABEL_COLUMNS = ("is_anomaly", "anomaly", "label")
TIME_COLUMNS = ("time", "timestamp", "datetime", "date", "t")


@dataclass
class Dataset:
    """Rows of float32 sensor readings, optional 0/1 labels and an optional time column."""

    name: str
    channels: list[str]
    values: np.ndarray  # (rows, channels) float32
    labels: np.ndarray | None = None  # (rows,) bool, True = anomalous
    time: list[str] | None = None

    @property
    def normal(self) -> np.ndarray:
        """The rows training may use: those labelled normal, or all rows when unlabelled."""
        if self.labels is None:
            return self.values
        return self.values[~self.labels]


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


def _rows(handle):
    """The CSV's rows that are not blank, as they are read."""
    return (row for row in csv.reader(handle) if any(cell.strip() for cell in row))


def _read_rows(path: Path, first_only: bool = False) -> list[list[str]]:
    """The CSV's rows that are not blank (only the first with first_only); a file that is
    not UTF-8 text is a UserError."""
    try:
        with path.open(newline="", encoding="utf-8-sig") as handle:
            rows = _rows(handle)
            return [next(rows, [])] if first_only else list(rows)
    except UnicodeDecodeError as error:
        raise UserError(f"{path} is not UTF-8 text (byte {error.start} is "
                        f"0x{error.object[error.start]:02x}); save it as UTF-8 (e.g. 'CSV UTF-8' "
                        f"in a spreadsheet, or iconv -t UTF-8)") from None


def read_header(path: Path) -> list[str]:
    """The column names of a CSV file: its first row that is not blank (load_csv's)."""
    return [name.strip() for name in _read_rows(path, first_only=True)[0]]


def load_csv(path: str | Path, columns: list[str] | None = None,
             label_column: str | None = None, time_column: str | None = None) -> Dataset:
    """Read a CSV with a header row: numeric sensor columns, optional label and time columns."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f"data file {str(path)!r} does not exist; pass the path of a CSV file "
                        f"with a header row, or leave it out to use built-in data")
    rows = _read_rows(path)
    if not rows:
        raise UserError(f"{path} is empty; it needs a header row and at least one data row")
    header = [name.strip() for name in rows[0]]
    body = rows[1:]
    if not body:
        raise UserError(f"{path} has a header but no data rows")

    def pick(given: str | None, candidates: tuple[str, ...], what: str) -> str | None:
        if given is not None:
            if given not in header:
                raise UserError(f"{what} column {given!r} is not in {path}; its columns are "
                                f"{', '.join(header)}")
            return given
        return next((name for name in header if name.lower() in candidates), None)

    label = pick(label_column, LABEL_COLUMNS, "label")
    time = pick(time_column, TIME_COLUMNS, "time")
    if columns is None:
        channels = [name for name in header if name not in (label, time)]
    else:
        missing = [name for name in columns if name not in header]
        if missing:
            raise UserError(f"column(s) {', '.join(map(repr, missing))} not in {path}; its "
                            f"columns are {', '.join(header)}")
        channels = list(columns)
    if not channels:
        raise UserError(f"{path} has no sensor columns besides its label/time columns")
    check_channel_names(channels)

    index = {name: i for i, name in enumerate(header)}
    values = np.empty((len(body), len(channels)), dtype=np.float32)
    labels = np.zeros(len(body), dtype=bool) if label else None
    times = [] if time else None
    for r, row in enumerate(body):
        line = r + 2
        if len(row) != len(header):
            raise UserError(f"line {line} of {path} has {len(row)} fields, the header has "
                            f"{len(header)}; fix the row")
        for c, name in enumerate(channels):
            text = row[index[name]]
            try:
                value = float(text)
            except ValueError:
                raise UserError(f"column {name!r} is not numeric: line {line} holds {text!r}; "
                                f"fix the value or leave the column out with --columns") from None
            with np.errstate(over="ignore"):
                values[r, c] = value
            if not np.isfinite(values[r, c]):
                raise UserError(f"column {name!r} holds {text.strip()!r} on line {line}, which is "
                                f"not a finite float32; training data must be finite: drop or "
                                f"interpolate that row")
        if labels is not None:
            labels[r] = _parse_label(row[index[label]], label, line)
        if times is not None:
            times.append(row[index[time]])
    return Dataset(path.stem, channels, values, labels, times)
