"""A simulated centrifugal pump and its motor: the built-in multivariate benchmark.

One row a second of eight sensors that follow a few hidden variables (speed set-point, valve
opening, ambient temperature, supply voltage) through simple physics:

    pump curve        H = H0 s^2 - A Q^2                       (affinity laws)
    system curve      H = H_static + (K_v / v^2 + K_f) Q^2      (valve v, inlet filter K_f)
    outlet pressure   the tank's head + H_static + K_v Q^2 / v^2, in bar
    power             P_h = rho g Q H, shaft = P_h / eta(Q / s), current = P_el / (sqrt3 V pf)
    vibration         base + c s^2 + a term away from the best efficiency point (each end)
    temperatures      first-order lags toward ambient + losses (fluid) and ambient + k I^2 (motor)

Normal operation moves between operating points (speed and valve ramps), the ambient swings
daily, and the supply voltage sags now and then, which the current follows (normal: the
power is the same).  Faults are labelled from start to end; most break only a relation
between channels, each channel staying mostly within its normal range, so that a detector
watching the channels one by one misses them.  A run is deterministic from its seed; its
first `train_rows` rows are normal.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from codegen.data.dataset import Dataset

CHANNELS = ("vib_de", "vib_nde", "current", "voltage", "pressure", "flow", "fluid_temp",
            "motor_temp")
# Sensor noise (standard deviation) and ADC step (12 bits over the sensor's range) per channel.
NOISE = np.array([0.04, 0.03, 0.08, 1.5, 0.015, 0.4, 0.08, 0.1])
STEP = np.array([20, 20, 50, 500, 10, 100, 150, 150]) / 4096

FAULTS = ("valve_blocked", "cavitation", "filter_blocked", "bearing_wear", "stuck_sensor",
          "sensor_drift", "current_high")
# Rows each fault lasts (low, high).
DURATION = {"valve_blocked": (60, 250), "cavitation": (40, 150), "filter_blocked": (150, 350),
            "bearing_wear": (150, 400), "stuck_sensor": (100, 300), "sensor_drift": (150, 350),
            "current_high": (60, 200)}
STUCK = ("pressure", "flow", "current", "vib_nde")
DRIFT = {"pressure": 0.25, "flow": 5.0, "fluid_temp": 3.0, "motor_temp": 4.0}  # final offset
OPERATING_POINTS = ((1.0, 1.0), (1.0, 0.7), (0.9, 0.85), (0.85, 1.0), (0.8, 0.6), (0.75, 0.8))

ROWS, TRAIN_ROWS, RUNS, FAULTS_PER_RUN = 6000, 2000, 6, 6
AMBIENT, DAY = 0.8, 1000  # K, rows: the ambient's daily swing (the normal head sees two days)
TAU_FLUID, TAU_MOTOR = 60, 100  # rows: the temperatures' lags
SAG_EVERY = 800  # rows per normal voltage sag, on average
GAP = 120  # normal rows at least between two faults

H0, H_STATIC, H_TANK, A, K_V, K_F = 50.0, 15.0, 3.0, 0.005, 0.0045, 0.00022


@dataclass(frozen=True)
class Fault:
    kind: str
    start: int
    end: int  # last row, inclusive
    channel: str | None = None  # the sensor of stuck_sensor / sensor_drift


@dataclass
class Run:
    """One simulated run: readings (rows, 8) float32, labels, its faults and its normal head."""

    seed: int
    values: np.ndarray
    labels: np.ndarray
    faults: list[Fault]
    train_rows: int
    channels: tuple[str, ...] = CHANNELS

    def event_ids(self) -> np.ndarray:
        """Per row, 0 when normal, else 1 + the index of its fault (adjacent faults apart)."""
        ids = np.zeros(len(self.values), dtype=np.int32)
        for i, fault in enumerate(self.faults):
            ids[fault.start:fault.end + 1] = i + 1
        return ids


def _schedule(rng, rows: int, ramp: int, head: int, dwell=(200, 500)) -> np.ndarray:
    """(rows, 2) speed and valve set-points: operating points held for `dwell` rows, each
    change a linear ramp of `ramp` rows.  The first `head` rows (the normal ones) visit every
    point in a random order, equally long; random ones follow."""
    first = rng.permutation(len(OPERATING_POINTS))
    times, points = [], []
    while not times or times[-1] < rows:
        if len(points) < len(first):
            index, end = first[len(points)], head * (len(points) + 1) // len(first)
        else:
            index, end = rng.integers(len(OPERATING_POINTS)), times[-1] + int(rng.integers(*dwell))
        times.append(end)
        points.append(OPERATING_POINTS[index])
    knots_t, knots_v = [0.0], [points[0]]
    for i in range(1, len(points)):
        knots_t += [times[i - 1], times[i - 1] + ramp]
        knots_v += [points[i - 1], points[i]]
    t = np.arange(rows)
    return np.column_stack([np.interp(t, knots_t, [v[k] for v in knots_v]) for k in (0, 1)])


def _place(rng, rows: int, train_rows: int, kinds: list[str]) -> list[Fault]:
    """Faults in order after the normal head, GAP normal rows at least between them."""
    lengths = [int(rng.integers(*DURATION[k])) for k in kinds]
    slack = rows - train_rows - sum(lengths) - GAP * (len(kinds) + 1)
    while slack < 0 and len(kinds) > 1:  # a short run holds fewer faults
        kinds, lengths = kinds[:-1], lengths[:-1]
        slack = rows - train_rows - sum(lengths) - GAP * (len(kinds) + 1)
    if slack < 0:
        raise ValueError(f"{rows} rows hold no fault after {train_rows} normal rows")
    cuts = np.sort(rng.integers(0, slack + 1, len(kinds)))
    faults, row = [], train_rows + GAP
    previous = 0
    for kind, length, cut in zip(kinds, lengths, cuts):
        row += int(cut - previous)
        previous = int(cut)
        channel = None
        if kind == "stuck_sensor":
            channel = str(rng.choice(STUCK))
        elif kind == "sensor_drift":
            channel = str(rng.choice(list(DRIFT)))
        faults.append(Fault(kind, row, row + length - 1, channel))
        row += length + GAP
    return faults


def _ramp(rows: int, fault: Fault, power: float = 1.0) -> np.ndarray:
    """0 outside the fault, growing from 0 to 1 over it as t**power."""
    out = np.zeros(rows)
    n = fault.end - fault.start + 1
    out[fault.start:fault.end + 1] = (np.arange(1, n + 1) / n) ** power
    return out


def _lag(target: np.ndarray, tau: float) -> np.ndarray:
    """A first-order lag of time constant tau rows, starting at the target's first value."""
    out = np.empty(len(target))
    value = target[0]
    for i, goal in enumerate(target):
        value += (goal - value) / tau
        out[i] = value
    return out


def _smooth(x: np.ndarray, n: int) -> np.ndarray:
    """The mean of each row's last n values (the first value held before the start)."""
    return np.convolve(np.r_[np.full(n - 1, x[0]), x], np.ones(n) / n, "valid")


def _operation(rng, rows: int, train_rows: int, faults: list[Fault]):
    """The normal hidden variables: speed and valve set-points, ambient, supply voltage."""
    plan = _schedule(rng, rows, 30, train_rows)
    for fault in faults:  # a stuck reading is visible only when the machine moves
        if fault.kind == "stuck_sensor":
            middle = (fault.start + fault.end) // 2
            s = plan[middle, 0]
            plan[middle:fault.end + 1, 0] = s - 0.1 if s > 0.85 else s + 0.1
    t = np.arange(rows)
    ambient = 22 + AMBIENT * np.sin(2 * np.pi * t / DAY + rng.uniform(0, 2 * np.pi))
    voltage = 400 + 2 * np.sin(2 * np.pi * t / 700 + rng.uniform(0, 2 * np.pi))
    sags = rows // SAG_EVERY  # normal sags, spread out so that the normal head has some
    for start in (np.arange(sags) + rng.uniform(0.1, 0.9, sags)) * rows / sags:
        start, length = int(start), int(rng.integers(20, 80))
        voltage[start:start + length] *= 1 - rng.uniform(0.06, 0.12)
    return _smooth(plan[:, 0], 11), plan[:, 1].copy(), ambient, voltage


def _machine(rng, rows: int, faults: list[Fault], valve: np.ndarray) -> dict:
    """What the machine's faults change: the valve (blocked), the head (cavitation), the
    inlet filter's resistance, the DE bearing's wear, the current at the same load."""
    out = {"head": np.ones(rows), "filter": np.full(rows, K_F), "wear": np.zeros(rows),
           "current": np.ones(rows), "cavitation": np.zeros(rows, dtype=bool)}
    for fault in faults:
        span = slice(fault.start, fault.end + 1)
        if fault.kind == "valve_blocked":
            valve[span] = np.minimum(valve[span], rng.uniform(0.25, 0.4))
        elif fault.kind == "cavitation":
            out["head"][span] = rng.uniform(0.8, 0.9)
            out["cavitation"][span] = True
        elif fault.kind == "filter_blocked":
            out["filter"] += _ramp(rows, fault) * rng.uniform(0.004, 0.007)
        elif fault.kind == "bearing_wear":
            out["wear"] += _ramp(rows, fault, 2.0) * rng.uniform(0.5, 0.9)
        elif fault.kind == "current_high":
            out["current"][span] = 1 + rng.uniform(0.06, 0.1)
    out["valve"] = _smooth(valve, 8)
    return out


def _physics(rng, speed, ambient, voltage, m: dict) -> np.ndarray:
    """The true values of the eight channels (module docstring)."""
    rows, valve, head, cav = len(speed), m["valve"], m["head"], m["cavitation"]
    # Operating point: the pump curve meets the system curve.
    shutoff = np.maximum(H0 * speed ** 2 * head - H_STATIC, 0.5)
    flow = np.sqrt(shutoff / (A * head + K_V / valve ** 2 + m["filter"]))
    flow = flow * (1 + cav * 0.04 * rng.normal(0, 1, rows))
    pump_head = H0 * speed ** 2 * head - A * head * flow ** 2
    pressure = (H_TANK + H_STATIC + K_V * flow ** 2 / valve ** 2) / 10.2
    pressure = pressure * (1 + cav * 0.03 * rng.normal(0, 1, rows))

    q = flow / speed  # the flow at full speed by the affinity laws: where on the curve
    efficiency = np.clip(0.78 * (1 - ((q - 55) / 55) ** 2), 0.3, None) * np.where(cav, 0.9, 1)
    hydraulic = 9.81 * flow * pump_head / 3600  # kW
    shaft = hydraulic / efficiency + 0.3 * speed
    current = shaft / 0.9 * 1000 / (np.sqrt(3) * voltage * 0.85) * m["current"]

    off_bep = np.abs(q / 55 - 1)
    boost = 1 + cav * rng.uniform(0.3, 0.6) * (1 + 0.3 * np.abs(rng.normal(0, 1, rows)))
    wear = m["wear"] * (1 + 2 * (rng.random(rows) < 0.03))  # a worn bearing knocks now and then
    vib_de = (0.6 + 2.2 * speed ** 2 + 0.8 * off_bep) * boost + wear
    vib_nde = (0.4 + 1.6 * speed ** 2 + 0.5 * off_bep) * boost

    fluid_temp = _lag(ambient + 4 * (shaft - hydraulic), TAU_FLUID)
    motor_temp = _lag(ambient + 0.15 * current ** 2, TAU_MOTOR)
    return np.column_stack([vib_de, vib_nde, current, voltage, pressure, flow, fluid_temp,
                            motor_temp])


def _read(rng, truth: np.ndarray, faults: list[Fault]) -> np.ndarray:
    """The sensors' readings: noise, a drifting sensor's offset, the ADC's steps, a stuck
    sensor's last reading held."""
    rows = len(truth)
    values = truth + rng.normal(0, 1, truth.shape) * NOISE
    for fault in faults:
        if fault.kind == "sensor_drift":
            c = CHANNELS.index(fault.channel)
            values[:, c] += _ramp(rows, fault) * DRIFT[fault.channel] * rng.choice([-1, 1])
    values = np.round(values / STEP) * STEP
    for fault in faults:
        if fault.kind == "stuck_sensor":
            c = CHANNELS.index(fault.channel)
            values[fault.start:fault.end + 1, c] = values[fault.start - 1, c]
    return values.astype(np.float32)


def simulate(seed: int, rows: int = ROWS, train_rows: int = TRAIN_ROWS,
             kinds: list[str] | None = None) -> Run:
    """One run with the faults `kinds` in that order (default: 6 of FAULTS, shuffled)."""
    rng = np.random.default_rng(seed)
    if kinds is None:
        kinds = rng.permutation(FAULTS)[:FAULTS_PER_RUN]
    faults = _place(rng, rows, train_rows, [str(k) for k in kinds])
    speed, valve, ambient, voltage = _operation(rng, rows, train_rows, faults)
    truth = _physics(rng, speed, ambient, voltage, _machine(rng, rows, faults, valve))
    labels = np.zeros(rows, dtype=bool)
    for fault in faults:
        labels[fault.start:fault.end + 1] = True
    return Run(seed, _read(rng, truth, faults), labels, faults, train_rows)


def dataset(run: Run, name: str = "pump"):
    """A run as a labelled Dataset (train and evaluate read these)."""
    return Dataset(name, list(run.channels), run.values, run.labels,
                   [str(i) for i in range(len(run.values))])


def benchmark(seed: int = 0, runs: int = RUNS, rows: int = ROWS,
              train_rows: int | None = None) -> list[Run]:
    """The benchmark's runs: run i has seed (seed, i) and leaves out fault type i mod 7, so
    each has its own mix and every type is in all runs but one of each seven."""
    train_rows = train_rows if train_rows is not None else rows // 3
    out = []
    for i in range(runs):
        kinds = [k for k in FAULTS if k != FAULTS[i % len(FAULTS)]][:FAULTS_PER_RUN]
        rng = np.random.default_rng([seed, i])
        out.append(simulate(int(rng.integers(2**32)), rows, train_rows,
                            [str(k) for k in rng.permutation(kinds)]))
    return out
