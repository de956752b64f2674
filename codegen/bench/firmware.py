"""Exact cost of each detector on each offline target: `mcu-anomaly bench`.

Per detector and target:
  cycles        uno: simavr's exact CPU cycles for one call of the detector's generated API
                (argument set-up, call, return), per sample;
  instructions  cortex_m4f, rv32imc: instructions qemu executes for that call;
  flash, RAM    what the detector adds to the firmware: the size of the app running only
                this detector minus the size of the same app running a stub that returns 0
                (text + data, data + bss; stack use such as the kmeans scratch is not in it).
A detector with a flag API (zscore, streaming_zscore) gets a second row, api "flag": the
same measures for its flag-only call (Kind.flag_function): the Z-score's compares the
readings' order keys with precomputed bounds, the streaming Z-score's update compares
squares, without a square root or a division.
Counts are taken over normal readings: held-out synthetic rows for the reference shapes,
Gaussian readings with the training data's per-channel mean and deviation for a user's
bundle.  A streaming detector (the isolation forest with rolling features too) is measured
once its window is full (as it runs for good); its max includes the sample that swaps in the
rebuilt sums.  The autoencoder is measured per window, from its first full window on.  Every
score and flag of the measured runs is also checked bit for bit against the Python
reference.

Without a bundle, bench trains the shapes the speed goals (GOALS) are set for on synthetic
data, and three isolation forests: the Uno forest on every target, the default (ESP32-class)
one and the one on rolling features on the 32-bit targets (neither fits an Uno); with the
[peers] extra, emlearn's models on the Uno beside the detectors of ours paired with them
(codegen/bench/peers.py).
"""

from __future__ import annotations

import dataclasses
import importlib.util
import json
import tempfile
from pathlib import Path

import numpy as np

from codegen import __version__
from codegen.bench import lab_peer, peers
from codegen.training import train as training
from codegen.bundle import Bundle
from codegen.data.dataset import Dataset
from codegen.detectors import get
from codegen.errors import UserError
from codegen.files import write_file
from codegen.progress import Progress
from codegen.verify.engines import PythonEngine

F32 = np.float32
SAMPLES = 200


@dataclasses.dataclass(frozen=True)
class Goal:
    """A speed or size goal on the Uno (ATmega328P, 16 MHz) for one call of a detector's API,
    per sample; channels: only for bundles of that many (None: any)."""

    detector: str
    api: str = "score"
    channels: int | None = None
    median: int | None = None  # cycles
    max: int | None = None  # cycles
    max_ratio: float | None = None  # the max at most this times the median
    flash: int | None = None  # bytes added to the app

    def judge(self, row: dict) -> dict:
        """{measure: {"limit", "met"}} for this goal's measures of a row."""
        checks = {"median": (self.median, row["cycles"]), "max": (self.max, row["cycles_max"]),
                  "max_ratio": (self.max_ratio, row["cycles_max"] / row["cycles"]),
                  "flash": (self.flash, row["flash_bytes"])}
        return {k: {"limit": limit, "met": bool(value <= limit)}
                for k, (limit, value) in checks.items() if limit is not None}


GOALS = (Goal("zscore", channels=1, median=350, flash=1024),
         Goal("zscore", channels=3, median=900),
         Goal("zscore", "flag", median=300, flash=1024),
         Goal("streaming_zscore", median=3000, max_ratio=1.3),
         Goal("streaming_zscore", "flag", median=1900, max_ratio=1.3),
         Goal("moving_average", median=2000),
         Goal("kmeans", median=5000, max=6000),
         Goal("autoencoder", median=40000, flash=3072))


def goal_for(row: dict) -> Goal | None:
    """The goal a measured row is judged by (Uno rows of GOALS' shapes), or None."""
    return next((g for g in GOALS if row["target"] == "uno" and g.detector == row["detector"]
                 and g.api == row["api"] and g.channels in (None, row["channels"])), None)


COUNTER = {"uno": "cycles", "cortex_m4f": "instructions", "rv32imc": "instructions"}


def synthetic(channels: int, rows: int = 3000, seed: int = 0) -> Dataset:
    """Noisy sines, one per channel, all rows normal."""
    rng = np.random.default_rng(seed)
    t = np.arange(rows)
    values = np.column_stack([np.sin(t / 50 + c) + 0.1 * rng.standard_normal(rows)
                              for c in range(channels)]).astype(F32)
    return Dataset("synthetic", [f"s{c}" for c in range(channels)], values,
                   np.zeros(rows, dtype=bool))


QEMU_ENVS = ("cortex_m4f", "rv32imc")
# The isolation forests on three channels: (bundle name, parameters, envs)
FORESTS = [("forest_uno", {"target": "uno"}, None),
           ("forest_esp32", {}, QEMU_ENVS),
           ("forest_rolling", {"features": "rolling"}, QEMU_ENVS)]


ONE_CHANNEL = "one_channel"  # the bundle of the one-channel shapes (lab_peer pairs with it)


def _one_channel(detectors: list[str], seed: int) -> tuple[Bundle, np.ndarray, None]:
    one = training.train(synthetic(1, seed=seed), detectors, {}, seed, ONE_CHANNEL,
                         verbose=False)
    return one, synthetic(1, seed=seed + 1).values, None


def reference_bundles(seed: int = 0) -> list[tuple[Bundle, np.ndarray, tuple | None]]:
    """The shapes of the goals (GOALS) and the forests (FORESTS), each with held-out normal rows to
    measure on and the envs it runs on (None: all): Z-score, streaming Z-score and moving
    average on one channel; Z-score on three (on the Uno, where its goal is); K-means with
    K = 3 on five features; the int8 autoencoder 20-8-4-8-20 when TensorFlow and TFLite
    Micro are installed (the [autoencoder] extra), scoring rows and whole windows; the
    isolation forests of FORESTS on three channels; the bundles of ours paired with
    emlearn's models (emlearn_bundles)."""
    detectors = ["zscore", "streaming_zscore", "moving_average"]
    if all(importlib.util.find_spec(m) for m in ("tensorflow", "tflite_micro")):
        detectors.append("autoencoder")
    three = training.train(synthetic(3, seed=seed), ["zscore"], {}, seed, "three_channels",
                           verbose=False)
    five = training.train(synthetic(5, seed=seed), ["kmeans"], {"kmeans": {"k": 3}}, seed,
                          "five_features", verbose=False)
    cases = [_one_channel(detectors, seed),
             (three, synthetic(3, seed=seed + 1).values, ("uno",)),
             (five, synthetic(5, seed=seed + 1).values, None)]
    if "autoencoder" in detectors:  # also scoring whole windows, as before point-wise scores
        whole = training.train(synthetic(1, seed=seed), ["autoencoder"],
                               {"autoencoder": {"pointwise": "window"}}, seed, "window_error",
                               verbose=False)
        cases.append((whole, synthetic(1, seed=seed + 1).values, None))
    for name, params, envs in FORESTS:
        forest = training.train(synthetic(3, seed=seed), ["isolation_forest"],
                                {"isolation_forest": params}, seed, name, verbose=False)
        cases.append((forest, synthetic(3, seed=seed + 1).values, envs))
    return cases + emlearn_bundles(seed)


def peer_bundles(seed: int = 0) -> list[tuple[Bundle, np.ndarray, tuple | None]]:
    """Only what the peers are measured beside (`bench --peers`): the one-channel streaming
    Z-score of the lab's peer, and emlearn_bundles."""
    return [_one_channel([lab_peer.OURS], seed)] + emlearn_bundles(seed)


def emlearn_bundles(seed: int = 0) -> list[tuple[Bundle, np.ndarray, tuple]]:
    """Our detectors that peers.PEERS pairs with emlearn's models, one bundle per feature
    count, measured on the Uno only (as the peers)."""
    cases = []
    for features, detectors in peers.paired().items():
        ours = training.train(synthetic(features, seed=seed), list(detectors), detectors, seed,
                              peers.bundle_name(features), verbose=False)
        cases.append((ours, synthetic(features, seed=seed + 1).values, (peers.ENV,)))
    return cases


def peer_rows(envs: list[str], make_target, workdir: Path, samples: int, seed: int = 0,
              progress: Progress | None = None, with_emlearn: bool = True) -> list[dict]:
    """On the Uno (when in envs): the lab's Z-score (lab_peer) and, with_emlearn, each of
    peers.PEERS, trained and measured on the rows emlearn_bundles gives the detectors they
    are paired with."""
    if peers.ENV not in envs:
        return []
    rows = [{**lab_peer.measure(synthetic(1, seed=seed + 1).values, samples, make_target,
                                workdir / "lab", seed), "bundle": ONE_CHANNEL}]
    if progress:
        progress.step(f"{peers.ENV} the lab's Z-score: {rows[0]['cycles']} cycles")
    for i, peer in enumerate(peers.PEERS if with_emlearn else ()):
        normal = synthetic(peer.features, seed=seed + 1).values
        row = peers.measure(peer, synthetic(peer.features, seed=seed).values,
                            np.resize(normal, (samples, peer.features)), make_target,
                            workdir / f"peer{i}", seed)
        rows.append(row)
        if progress:
            progress.step(f"{peers.ENV} {row['peer']} {row['model']} ({row['shape']}): "
                          f"{row['cycles']} cycles")
    return rows


def shape(bundle: Bundle, detector: str) -> str:
    n = len(bundle.channels)
    text = f"{n} channel{'s' if n > 1 else ''}"
    describe = get(detector).SPEC.describe
    return text + (f", {describe(bundle.detectors[detector])}" if describe else "")


def readings(bundle: Bundle, n: int, normal: np.ndarray | None = None,
             seed: int = 0) -> np.ndarray:
    """n rows of normal data (repeated as needed), or else Gaussian readings with the
    training data's per-channel mean and deviation."""
    if normal is not None:
        return np.resize(np.asarray(normal, dtype=F32), (n, len(bundle.channels)))
    rng = np.random.default_rng(seed)
    mean, std = np.array(bundle.channel_mean), np.array(bundle.channel_std)
    return (mean + std * rng.standard_normal((n, len(mean)))).astype(F32)


def _only(bundle: Bundle, detectors: list[str]) -> Bundle:
    return dataclasses.replace(bundle, detectors={d: bundle.detectors[d] for d in detectors})


def _counts(target, bundle: Bundle, elf: Path, vectors: np.ndarray,
            flag_only: bool, profile: bool = False) -> tuple[list[int], list[dict] | None]:
    """The cycles or instructions of every call, checked against the reference; with
    profile (uno), where they went (profile_rows)."""
    profile = profile and target.env == "uno"
    run = target.run(bundle, elf, profile=profile)
    want = PythonEngine(bundle).run(vectors, list(bundle.detectors), flag_api=flag_only)
    for d, name in enumerate(bundle.detectors):
        if ((run.scores[d].view(np.uint32) != want[name].scores.view(np.uint32)).any()
                or (run.flags[d] != want[name].flags).any()):
            raise UserError(f"{target.env}: the firmware's scores differ from the Python "
                            f"reference; run `mcu-anomaly verify BUNDLE --target {target.env}`")
    if target.env == "uno":
        counts = run.cycles
    else:
        counts = target.instruction_count(elf)
    if len(counts) != len(vectors):
        raise UserError(f"{target.env}: {len(counts)} measurements for {len(vectors)} samples")
    return counts, profile_rows(run.profile, len(vectors)) if profile else None


PROFILE_ROWS = 10  # the costliest functions a row's profile keeps


def profile_rows(costs, calls: int) -> list[dict]:
    """The costliest functions of a profiled run (host_sim.targets.function_profile), per
    call of the run (the warm-up's calls included): cycles spent in each function's own
    instructions and how often it ran."""
    return [{"function": c.name, "cycles": round(c.cycles / calls, 1),
             "calls": round(c.calls / calls, 2)} for c in costs[:PROFILE_ROWS]]


def measure(bundle: Bundle, envs: list[str], make_target, workdir: Path,
            samples: int = SAMPLES, normal: np.ndarray | None = None, judge: bool = False,
            progress: Progress | None = None, profile: bool = False) -> list[dict]:
    """One row per detector and target, measured on `normal` rows (see readings), and one
    more for a detector's flag API (api "flag"); judge: compare with GOALS (for the
    reference_bundles shapes); progress: a step per row.  make_target(env, workdir) gives
    the firmware target (host_sim.firmware_target.Target)."""
    rows = []
    for env in envs:
        target = make_target(env, workdir / env)
        for detector in bundle.detectors:
            spec = get(detector).SPEC
            # Each detector on its own, once warmed up.
            warm = spec.warm_up(bundle.detectors[detector])
            vectors = readings(bundle, warm + samples, normal)
            base = target.size(target.build(_only(bundle, []), vectors, stub=True))
            single = _only(bundle, [detector])
            for api in apis(spec):
                flag_only = api == "flag"
                elf = target.build(single, vectors, flag_only=flag_only)
                flash, ram = target.size(elf)
                counts, spent = _counts(target, single, elf, vectors, flag_only, profile)
                counts = np.array(counts[warm:])
                counter = COUNTER[env]
                row = {"target": env, "detector": detector, "api": api, "bundle": bundle.name,
                       "channels": len(bundle.channels),
                       "shape": shape(bundle, detector), "samples": len(counts),
                       "cycles": None, "cycles_max": None,
                       "instructions": None, "instructions_max": None,
                       "flash_bytes": flash - base[0], "ram_bytes": ram - base[1],
                       "float_routines": target.float_routines(elf)}
                row[counter] = int(np.median(counts))
                row[counter + "_max"] = int(counts.max())
                if spent is not None:
                    row["profile"] = spent
                goal = goal_for(row) if judge else None
                if goal:
                    row["goal"] = goal.judge(row)
                rows.append(row)
                if progress:
                    progress.step(f"{env} {label(row)}: {row[counter]} {counter}")
    return rows


def apis(spec) -> tuple[str, ...]:
    """The calls measured of a detector: its score, and its flag API when it has one."""
    return ("score", "flag") if spec.flag_api else ("score",)


def _steps(bundles, envs: list[str], with_peers: bool, with_emlearn: bool) -> int:
    """The rows run() measures: per bundle, env it runs on, detector and API; the peers."""
    rows = sum(len(apis(get(d).SPEC)) * sum(only is None or env in only for env in envs)
               for bundle, _, only in bundles for d in bundle.detectors)
    if not (with_peers and peers.ENV in envs):
        return rows
    return rows + 1 + (len(peers.PEERS) if with_emlearn else 0)


def label(row: dict) -> str:
    """The detector, and its API when not the score: "zscore", "zscore flag"."""
    api = row.get("api", "score")
    return row["detector"] + ("" if api == "score" else f" {api}")


GOAL_WORDS = {"median": "≤{} median", "max": "≤{} max", "max_ratio": "max ≤{}× median",
              "flash": "≤{} B flash"}


def verdict(goal: dict) -> str:
    """A row's goal as the table prints it: "≤350 median: met; ≤1024 B flash: met"."""
    return "; ".join(f"{GOAL_WORDS[k].format(g['limit'])}: {'met' if g['met'] else 'MISSED'}"
                     for k, g in goal.items())


def table(rows: list[dict]) -> str:
    """Our rows; float routines: the soft-float and maths routines the call pulls in."""
    wide = max([27] + [len(r["shape"]) for r in rows])
    lines = [f"{'detector':<24} {'shape':<{wide}} {'target':<11} {'median':>7} {'max':>7} "
             f"{'per sample':<12} {'flash B':>7} {'RAM B':>6}  {'float routines':<40} "
             "goal (uno)"]
    for r in rows:
        counter = COUNTER[r["target"]]
        routines = " ".join(r["float_routines"]) or "none"
        lines.append(f"{label(r):<24} {r['shape']:<{wide}} {r['target']:<11} {r[counter]:>7} "
                     f"{r[counter + '_max']:>7} {counter:<12} {r['flash_bytes']:>7} "
                     f"{r['ram_bytes']:>6}  {routines:<40} {verdict(r.get('goal', {}))}")
    return "\n".join(lines)


def run(bundles: list[tuple[Bundle, np.ndarray | None, tuple | None]], envs: list[str],
        make_target, json_out: str | Path, samples: int = SAMPLES, judge: bool = False,
        progress: bool = False, with_peers: bool = False, with_emlearn: bool = True,
        profile: bool = False) -> dict:
    """Measure each (bundle, normal rows or None, the envs it runs on or None for all) on
    those of envs (make_target: see measure), and with_peers the peers (peer_rows: the lab's
    Z-score and, with_emlearn, emlearn's models), paired with our rows; profile: each Uno
    row with where its cycles went (profile_rows); write the JSON (atomically) and return
    what it holds; progress: a step per row on stderr."""
    if samples < 1:
        raise UserError(f"--samples must be at least 1, not {samples}")
    bar = Progress(_steps(bundles, envs, with_peers, with_emlearn), "bench") if progress else None
    rows, peer = [], []
    with tempfile.TemporaryDirectory(prefix="mcua-bench-") as tmp:
        for bundle, normal, only in bundles:
            runs_on = [env for env in envs if only is None or env in only]
            rows += measure(bundle, runs_on, make_target, Path(tmp) / bundle.name, samples,
                            normal, judge, bar, profile)
        if with_peers:
            peer = peer_rows(envs, make_target, Path(tmp) / "peers", samples,
                             progress=bar, with_emlearn=with_emlearn)
    document = {"tool_version": __version__, "samples": samples, "rows": rows,
                "autoencoder_memory": autoencoder_memory(bundles, rows),
                "peers": [peers.pair(p, rows) for p in peer]}
    write_file(json_out, json.dumps(document, indent=2) + "\n")
    return document


def profile_table(rows: list[dict]) -> str:
    """The profiled rows: per call, the costliest functions' cycles and calls."""
    lines = []
    for r in rows:
        if "profile" in r:
            lines.append(f"{r['target']} {label(r)} ({r['shape']}): {r['cycles']} cycles "
                         "median; per call, by function (its own cycles, calls):")
            lines += [f"    {p['function']:<40} {p['cycles']:>9.1f} {p['calls']:>7.2f}"
                      for p in r["profile"]]
    return "\n".join(lines)


def autoencoder_memory(bundles, rows: list[dict]) -> list[dict]:
    """The autoencoder's memory, per target, for every detector with a TensorFlow Lite Micro
    arena figure: the plain-C engine's static RAM and code+weights (measured above) beside
    TFLM's measured arena and model size.  The goal is RAM <= 5% of the arena."""
    out = []
    for bundle, _, _ in bundles:
        for name, fitted in bundle.detectors.items():
            if "arena_minimum" in fitted.scalars:
                out += _memory_rows(bundle, name, fitted, rows)
    return out


def _memory_rows(bundle: Bundle, name: str, fitted, rows: list[dict]) -> list[dict]:
    out = []
    arena = int(fitted.scalars["arena_minimum"])
    model = next(blob for file, blob in fitted.blobs.items() if file.endswith(".tflite"))
    for r in rows:
        if r["bundle"] == bundle.name and r["detector"] == name:
            out.append({"target": r["target"], "engine_ram_bytes": r["ram_bytes"],
                        "engine_flash_bytes": r["flash_bytes"],
                        "tflm_arena_minimum_bytes": arena,
                        "tflm_arena_emitted_bytes": int(fitted.scalars["arena_size"]),
                        "tflite_model_bytes": len(model),
                        "ram_percent_of_arena": round(100 * r["ram_bytes"] / arena, 2)})
    return out


def memory_table(memory: list[dict]) -> str:
    if not memory:
        return ""
    lines = ["autoencoder: plain-C engine vs TensorFlow Lite Micro (arena measured on the host, "
             "64-bit)",
             f"{'target':<11} {'engine RAM B':>12} {'engine code+weights B':>22} "
             f"{'TFLM arena min/emitted B':>25} {'.tflite B':>9} {'RAM % of arena':>15}"]
    for m in memory:
        lines.append(f"{m['target']:<11} {m['engine_ram_bytes']:>12} "
                     f"{m['engine_flash_bytes']:>22} "
                     f"{m['tflm_arena_minimum_bytes']:>15}/{m['tflm_arena_emitted_bytes']:<9} "
                     f"{m['tflite_model_bytes']:>9} {m['ram_percent_of_arena']:>15}")
    return "\n".join(lines)
