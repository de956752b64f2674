"""The lab's Arduino streaming Z-score on the Uno beside ours: `mcu-anomaly bench`.

The user's own document (../shared/reference/, the lab's "Quick Reference") gives a Z-score
for Arduino over a window of 50 that learns only from the values it does not flag.  Its C,
firmware_targets/peers/lab_zscore.h, runs in the bench's harness as a peer (the firmware
app, the uno env's flags, simavr's cycles around one call, the same stub for flash and RAM).

Its cost depends on what it does with a sample: a value it learns from pays the window's
update, a value it flags does not.  On drifting input it locks out (every later value is
flagged, none is learnt), so one median would mislead: the row reports the samples it learns
from (held-out normal readings, once its window is full) and the samples it flags (the same
readings with a drift added, after it has locked out) separately.  Its flags are checked
against a float32 transcription of the same code (reference), which on AVR, where double is
float, computes exactly what the sketch computes.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from codegen import resources
from codegen.bundle import Bundle
from codegen.errors import UserError

F32 = np.float32
ENV = "uno"
NAME = "lab_zscore"
HEADER = "lab_zscore.h"  # in firmware_targets/peers/
WINDOW, THRESHOLD, MIN_COUNT, MIN_VARIANCE = 50, F32(2.5), 10, F32(0.0001)
OURS = "streaming_zscore"  # the detector of ours doing the same job
DRIFT_SIGMAS = 20  # the drift added over the flagged part, in the readings' deviations


def reference(values: np.ndarray) -> np.ndarray:
    """The lab's detectAnomaly over values, in float32 as the sketch computes on AVR: its
    flags."""
    buffer = np.zeros(WINDOW, dtype=F32)
    index = count = 0
    total = total_sq = F32(0)
    flags = np.zeros(len(values), dtype=bool)
    with np.errstate(invalid="ignore", divide="ignore"):  # 0/0 before the first value
        for i, value in enumerate(np.asarray(values, dtype=F32)):
            mean = total / F32(max(count, 1))
            variance = total_sq / F32(count) - mean * mean
            std = np.sqrt(variance if variance > MIN_VARIANCE else MIN_VARIANCE)
            z = abs(value - mean) / std
            flags[i] = anomaly = count >= MIN_COUNT and z > THRESHOLD
            if not anomaly:
                if count == WINDOW:
                    total = total - buffer[index]
                    total_sq = total_sq - buffer[index] * buffer[index]
                else:
                    count += 1
                total = total + value
                total_sq = total_sq + value * value
                buffer[index] = value
                index = (index + 1) % WINDOW
    return flags


def readings(normal: np.ndarray, samples: int, seed: int = 0) -> tuple[np.ndarray, int]:
    """One channel: WINDOW readings to fill the window and samples it learns from, Gaussian
    with normal's mean and deviation; then samples of the same with a drift that locks it
    out; and where the drifting part starts."""
    mean, std = float(np.mean(normal)), float(np.std(normal))
    steady = mean + std * np.random.default_rng(seed).standard_normal(WINDOW + samples)
    drift = DRIFT_SIGMAS * std * np.linspace(0, 1, samples)
    return np.concatenate([steady, steady[WINDOW:] + drift]).astype(F32), len(steady)


def _source() -> str:
    return (resources.firmware_project("the lab's peer row") / "firmware_targets" / "peers"
            / HEADER).read_text()


def measure(normal: np.ndarray, samples: int, make_target, workdir: Path,
            seed: int = 0) -> dict:
    """The lab peer's row on the Uno (make_target: codegen.bench.firmware.measure), run on
    readings(normal, samples, seed), its flags checked against reference."""
    values, drift_from = readings(normal, samples, seed)
    vectors = values.reshape(-1, 1)
    base = Bundle("lab_peer", ["s0"], [float(np.mean(values))], [float(np.std(values))], {}, {})
    target = make_target(ENV, workdir / ENV)
    stub_flash, stub_ram = target.size(target.build(base, vectors, stub=True))
    elf = target.build(base, vectors, peer={"name": NAME, "header": HEADER, "code": _source(),
                                            "call": ["*flag = (uint8_t)detectAnomaly(x[0]);"],
                                            "include_dirs": []})
    flash, ram = target.size(elf)
    run = target.run(base, elf, detectors=[NAME])
    cycles, flags = np.array(run.cycles), run.flags[0]
    if len(cycles) != len(values):
        raise UserError(f"{ENV}: {len(cycles)} measurements for {len(values)} samples")
    want = reference(values)
    if not np.array_equal(flags, want):
        first = int(np.argmax(flags != want))
        raise UserError(f"the lab's Z-score on the {ENV} flags sample {first} "
                        f"{'' if flags[first] else 'not '}as anomalous, its float32 "
                        f"transcription does not: check firmware_targets/peers/{HEADER}")
    learnt = cycles[WINDOW:drift_from][~flags[WINDOW:drift_from]]
    flagged = cycles[drift_from:][flags[drift_from:]]
    if not len(learnt) or not len(flagged):
        raise UserError(f"the lab's Z-score learnt from {len(learnt)} and flagged "
                        f"{len(flagged)} of the bench's readings; give more --samples")
    return {"target": ENV, "peer": "the lab", "model": "Arduino streaming Z-score",
            "shape": f"1 channel, W {WINDOW}", "samples": len(learnt),
            "cycles": int(np.median(learnt)), "cycles_max": int(learnt.max()),
            "flagged_samples": len(flagged), "flagged_cycles": int(np.median(flagged)),
            "flagged_cycles_max": int(flagged.max()),
            "flash_bytes": flash - stub_flash, "ram_bytes": ram - stub_ram,
            "check": f"flags equal its float32 transcription on {len(values)} samples; "
                     f"flagged ones: {int(np.median(flagged))} median",
            "ours": OURS}
