"""The parity battery: the inputs every engine is compared on (codegen/verify/compare.py).

The battery holds three kinds of input, each a stream fed to every detector (a streaming
detector starts each stream from a fresh state):
  random   - readings around the training data at several spreads, and values of random
             magnitude from 1e-30 to 1e30 with random signs;
  extreme  - the float32 edge cases: zeros of both signs, denormals, the largest floats,
             NaN and +-Inf, and long constant stretches (zero variance in a window);
  real     - the Numenta Anomaly Benchmark series, mapped onto the training channels' scale
             and also as they are; only with NAB's data (--nab, or default_nab), else the
             battery has the other two kinds alone.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codegen import resources
from codegen.bundle import Bundle
from codegen.data.nab_files import read_series
from codegen.errors import UserError

F32 = np.float32


# Where verify finds NAB's data without --nab, from the working directory: beside it (run
# in a checkout) or under it (run from the checkout's parent); then beside the checkout.
NAB_SEARCH = ("../shared/data/nab", "shared/data/nab")


def default_nab() -> Path | None:
    """The first NAB folder (one with data/) of NAB_SEARCH from the working directory, then
    ../shared/data/nab beside the source checkout this codegen runs from (none for a wheel
    install); None when there is none."""
    candidates = [Path(p) for p in NAB_SEARCH]
    root = resources.checkout()
    if root is not None:
        candidates.append(root.parent / "shared" / "data" / "nab")
    return next((p.resolve() for p in candidates if (p / "data").is_dir()), None)


def _random(bundle: Bundle, rng: np.random.Generator, n: int) -> np.ndarray:
    mean = np.array(bundle.channel_mean)
    std = np.array(bundle.channel_std)
    c = len(mean)
    spread = rng.choice([0.5, 1, 2, 4, 10], size=(n // 2, 1))
    around = mean + std * spread * rng.standard_normal((n // 2, c))
    magnitude = 10.0 ** rng.uniform(-30, 30, size=(n - n // 2, c))
    wide = magnitude * rng.choice([-1, 1], size=magnitude.shape)
    return np.vstack([around, wide]).astype(F32)


def _extreme(bundle: Bundle, rng: np.random.Generator, n: int) -> np.ndarray:
    c = len(bundle.channels)
    specials = np.array([0.0, -0.0, 1e-45, -1e-45, 1e-40, -1e-40, 1.17549435e-38, 1e-38,
                         3.4028235e38, -3.4028235e38, 1e38, -1e38, 1e30, -1e30, 1e15, -1e15,
                         np.nan, np.inf, -np.inf, 1.0, -1.0], dtype=F32)
    rows = []
    while sum(len(r) for r in rows) < n:
        kind = rng.integers(3)
        if kind == 0:  # isolated special values among normal readings
            block = _random(bundle, rng, 64)[:32]
            mask = rng.random(block.shape) < 0.3
            block[mask] = rng.choice(specials, size=int(mask.sum()))
        elif kind == 1:  # a constant stretch: the window's variance goes to zero
            value = rng.choice(np.concatenate([specials[:16], np.array(bundle.channel_mean,
                                                                       dtype=F32)]))
            block = np.full((int(rng.integers(60, 400)), c), value, dtype=F32)
        else:  # a jump to a far level and back
            block = _random(bundle, rng, 200)[:100]
            block[20:80] += F32(rng.choice([1e3, -1e3, 1e20, -1e20]))
        rows.append(block.astype(F32))
    return np.vstack(rows)[:n]


def _nab_series(nab: Path) -> list[np.ndarray]:
    series = []
    for path in sorted((nab / "data").rglob("*.csv")):
        _, values = read_series(path)
        series.append(values[np.isfinite(values)])
    if not series:
        raise UserError(f"{nab / 'data'} holds no CSV series; give a NAB folder with its data, "
                        f"or leave --nab out")
    return series


def _real(bundle: Bundle, nab: Path, n: int) -> np.ndarray:
    c = len(bundle.channels)
    mean = np.array(bundle.channel_mean)
    std = np.array(bundle.channel_std)
    series = _nab_series(nab)
    blocks, i = [], 0
    while sum(len(b) for b in blocks) < n and series:
        group = [series[(i + j) % len(series)] for j in range(c)]
        length = min(len(s) for s in group)
        raw = np.column_stack([s[:length] for s in group])
        scaled = (raw - raw.mean(axis=0)) / np.where(raw.std(axis=0) > 0, raw.std(axis=0), 1)
        blocks.append(raw if i % 2 else mean + std * scaled)
        i += 1
    return np.vstack(blocks)[:n].astype(F32)


def battery(bundle: Bundle, n: int = 100_000, nab: Path | None = None,
            seed: int = 0) -> dict[str, np.ndarray]:
    """The inputs by kind; the real kind from the NAB folder nab, by default default_nab()
    when there is one."""
    rng = np.random.default_rng(seed)
    inputs = {"random": _random(bundle, rng, n), "extreme": _extreme(bundle, rng, n // 2)}
    if nab is not None and not (nab / "data").is_dir():
        raise UserError(f"{nab} is not a NAB folder (no data/ in it); give the folder that "
                        f"holds NAB's data/, or leave --nab out")
    nab = nab or default_nab()
    if nab is not None:
        inputs["real"] = _real(bundle, nab, n)
    return inputs
