"""Host-side cost of a bundle: training time, Python vs C scoring throughput, file sizes.

    rows, text = host_table("build/model", engine=HostModel)   # host_sim.hostlib

Per detector: the time to fit it again on the bundle's training data (built-in data sets
only; "-" for a CSV the bundle no longer knows the path of, unless data= is given), the
Python reference's and the host C build's (an engine such as host_sim.hostlib.HostModel;
none: not measured) throughput in samples per second on the same inputs (and whether their outputs agree bit for bit),
the bytes the detector adds to the bundle, and the size of its generated header and of the
runtime units it needs.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np

from codegen import bundle as bundle_mod
from codegen.data import dataset as data_mod
from codegen.emit import render as emit
from codegen.detectors import get
from codegen.verify import battery


def _timed(fn, *args, repeat: int = 1):
    best, result = float("inf"), None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, result


def _training_data(loaded, data):
    if data is not None:
        return data
    name = loaded.training.get("data")
    if name in data_mod.BUILTIN:
        return data_mod.builtin(name)
    return None


def _bundle_bytes(path: Path, detector: str, fitted) -> int:
    files = list((path / "arrays").glob(f"{detector}.*.npy"))
    files += [path / "blobs" / f for f in fitted.blobs]
    return sum(f.stat().st_size for f in files if f.is_file())


def host_rows(bundle_path: str | Path, samples: int = 20_000, data=None, seed: int = 0,
              engine=None) -> list[dict]:
    path = Path(bundle_path)
    loaded = bundle_mod.load(path)
    inputs = battery.battery(loaded, samples, seed=seed)["random"][:samples]
    training = _training_data(loaded, data)
    files = emit.render(loaded)
    model = engine(loaded) if engine else None
    json_bytes = (path / "bundle.json").stat().st_size
    rows = []
    for name, fitted in loaded.detectors.items():
        module = get(name)
        row = {"detector": name, "train_s": None, "python_samples_per_s": None,
               "c_samples_per_s": None, "speedup": None, "bit_exact": None,
               "bundle_bytes": _bundle_bytes(path, name, fitted),
               "header_bytes": len(files.get(f"{loaded.name}_{name}.h", "").encode()),
               "runtime_bytes": sum(len(files[f].encode()) for unit in
                                    module.SPEC.units for f in
                                    (f"mcua_{unit}.h", f"mcua_{unit}.c") if f in files)}
        if training is not None:
            seconds, _ = _timed(module.fit, training.normal, _fit_params(module, fitted),
                                loaded.training.get("seed", 0), False, loaded.channels)
            row["train_s"] = round(seconds, 4)
        py_s, (py_scores, py_flags, _) = _timed(lambda X: module.score(fitted, X), inputs)
        row["python_samples_per_s"] = round(len(inputs) / py_s)
        if model is not None:
            c_s, (c_scores, c_flags, _) = _timed(model.score, name, inputs, repeat=3)
            row["c_samples_per_s"] = round(len(inputs) / c_s)
            row["speedup"] = round(py_s / c_s, 1)
            row["bit_exact"] = bool(
                np.array_equal(np.asarray(py_scores, np.float32).view(np.uint32),
                               np.asarray(c_scores, np.float32).view(np.uint32))
                and np.array_equal(py_flags, c_flags))
        rows.append(row)
    rows.append({"detector": "(bundle.json)", "bundle_bytes": json_bytes})
    return rows


def _fit_params(module, fitted) -> dict:
    """The parameters fit() accepts, from the ones stored (fit may add derived ones)."""
    return {k: v for k, v in fitted.params.items() if k in module.DEFAULTS}


def format_table(rows: list[dict]) -> str:
    def cell(value, fmt="{:,}"):
        if value is None:
            return "-"
        if isinstance(value, bool):
            return "yes" if value else "NO"
        return fmt.format(value)

    lines = [f"{'detector':<18} {'train s':>8} {'Python samples/s':>17} {'C samples/s':>13} "
             f"{'C/Py':>6} {'same':>5} {'bundle B':>9} {'header B':>9} {'runtime B':>10}"]
    for r in rows:
        lines.append(f"{r['detector']:<18} {cell(r.get('train_s'), '{:.3f}'):>8} "
                     f"{cell(r.get('python_samples_per_s')):>17} {cell(r.get('c_samples_per_s')):>13} "
                     f"{cell(r.get('speedup'), '{:.0f}x'):>6} {cell(r.get('bit_exact')):>5} "
                     f"{cell(r.get('bundle_bytes')):>9} {cell(r.get('header_bytes')):>9} "
                     f"{cell(r.get('runtime_bytes')):>10}")
    return "\n".join(lines)


def host_table(bundle_path: str | Path, samples: int = 20_000, data=None,
               engine=None) -> tuple[list[dict], str]:
    """(rows, printed table) of the host-side cost of every detector in the bundle."""
    rows = host_rows(bundle_path, samples, data, engine=engine)
    text = format_table(rows)
    print(text)
    return rows, text
