"""The Numenta Anomaly Benchmark: a scorer written from NAB's protocol, and our detectors on it.

Protocol (as in ../shared/data/README.md, NAB v1.1 at commit ea702d7):

* Each file has anomaly windows (``labels/combined_windows.json``, timestamp pairs, rows
  inside are labelled 1).  The first ``min(floor(0.15 n), 750)`` rows are a probation period:
  nothing there is scored.
* A detector gives every row a score in [0, 1]; a row is a detection when score >= threshold.
* Within a window only the earliest detection counts, weighted by the scaled sigmoid
  ``S(y) = 2 / (1 + exp(5 y)) - 1`` of its relative position ``y = -(end - i + 1) / length``
  (so -1 at the window's first row, just below 0 at its last), divided by S(-1) and
  multiplied by the profile's TP weight.  A window with no detection costs the FN weight.
* A detection outside every window is a false positive weighted ``S(y) * FP weight`` with
  ``y = (i - end) / (length - 1)`` of the closest preceding window (S = -1 beyond y > 3), or
  the full ``-FP weight`` before the first window.
* One threshold per profile is chosen over the whole corpus: the one that maximises the
  summed raw score.  NAB's own optimiser is a local hill climb; this one sweeps every distinct
  score value exactly, so it finds the global optimum (the same threshold whenever the hill
  climb found it).
* Normalised score = 100 (raw - null) / (perfect - null) with null = -FN weight per window
  (a detector that never fires) and perfect = TP weight per window, summed over all files.
"""

from __future__ import annotations

import csv
import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

import numpy as np

from codegen.bundle import Bundle
from codegen.data.nab_files import read_series
from codegen.detectors import DETECTORS, get
from codegen.detectors.base import scalar
from codegen.detectors.window import ADAPTATION_DEFAULTS
from codegen.errors import UserError
from codegen.progress import Progress
from codegen.training import thresholds
from codegen.verify.engines import Engine, PythonEngine

PROFILES_FILE = "config/profiles.json"
WINDOWS_FILE = "labels/combined_windows.json"
PROBATION_FRACTION = 0.15
PROBATION_MAX = PROBATION_FRACTION * 5000  # 750 rows
FINAL_RESULTS = "results/final_results.json"  # NAB's normalised totals: the scoreboard
# A readable name beside some of NAB's keys, as NAB's README names them in its "Scoreboard"
# and "Additional Scores" tables; the other keys are shown as they are.
README_NAMES = {
    "numenta": "Numenta HTM", "numentaTM": "NumentaTM HTM", "htmjava": "HTM Java",
    "contextOSE": "CAD OSE", "knncad": "KNN CAD", "earthgeckoSkyline": "earthgecko Skyline",
    "relativeEntropy": "Relative Entropy", "randomCutForest": "Random Cut Forest",
    "twitterADVec": "Twitter ADVec", "windowedGaussian": "Windowed Gaussian",
    "skyline": "Etsy Skyline", "expose": "EXPoSE",
}
PROFILE_ORDER = ("standard", "reward_low_FP_rate", "reward_low_FN_rate")


def scaled_sigmoid(y: np.ndarray | float) -> np.ndarray:
    """NAB's S(y) = 2 sigmoid(-5 y) - 1, and -1 for y > 3 (far behind a window)."""
    y = np.asarray(y, dtype=np.float64)
    with np.errstate(over="ignore"):
        s = 2.0 / (1.0 + np.exp(5.0 * y)) - 1.0
    return np.where(y > 3.0, -1.0, s)


MAX_TP = float(scaled_sigmoid(-1.0))


@dataclass
class NabFile:
    """One data file with its windows turned into row indices and its scoring weights."""

    name: str  # "<category>/<file>.csv"
    timestamps: np.ndarray  # datetime64[s]
    values: np.ndarray  # float64
    windows: list[tuple[int, int]]  # inclusive row ranges
    probation: int = 0
    window_id: np.ndarray = field(default=None, repr=False)  # per row, -1 outside windows
    tp_unit: np.ndarray = field(default=None, repr=False)  # S(y)/S(-1) inside windows
    fp_unit: np.ndarray = field(default=None, repr=False)  # S(y) (<= 0) outside windows

    def __post_init__(self):
        n = len(self.values)
        self.probation = int(min(math.floor(PROBATION_FRACTION * n), PROBATION_MAX))
        self.window_id = np.full(n, -1, dtype=np.int64)
        self.tp_unit = np.zeros(n)
        self.fp_unit = np.full(n, -1.0)  # before any window: the full FP weight
        rows = np.arange(n)
        for j, (start, end) in enumerate(self.windows):
            length = end - start + 1
            inside = slice(start, end + 1)
            self.window_id[inside] = j
            self.tp_unit[inside] = scaled_sigmoid(-(end - rows[inside] + 1) / length) / MAX_TP
            following = self.windows[j + 1][0] if j + 1 < len(self.windows) else n
            after = slice(end + 1, following)
            y = (rows[after] - end) / (length - 1) if length > 1 else np.full(following - end - 1, np.inf)
            self.fp_unit[after] = scaled_sigmoid(y)
        self.fp_unit[self.window_id >= 0] = 0.0

    @property
    def labels(self) -> np.ndarray:
        return self.window_id >= 0


@dataclass
class Corpus:
    root: Path
    files: list[NabFile]
    profiles: dict[str, dict[str, float]]

    @property
    def n_windows(self) -> int:
        return sum(len(f.windows) for f in self.files)

    @property
    def rows(self) -> int:
        return sum(len(f.values) for f in self.files)


def _timestamps(texts: list[str], where: str) -> np.ndarray:
    try:
        return np.array([t.strip().replace(" ", "T") for t in texts], dtype="datetime64[us]")
    except ValueError as error:
        raise UserError(f"{where}: a timestamp is not a date and time ({error})") from None


def load_corpus(root: str | Path, only: list[str] | None = None) -> Corpus:
    """Read a NAB folder (data/, labels/combined_windows.json, config/profiles.json).

    only: a subset of file names ("<category>/<file>.csv") to load, for tests."""
    root = Path(root)
    needed = [root / "data", root / WINDOWS_FILE, root / PROFILES_FILE]
    missing = [str(p.relative_to(root)) for p in needed if not p.exists()]
    if missing:
        raise UserError(f"{root} is not a complete NAB folder: missing {', '.join(missing)}; "
                        f"point at the folder that holds data/, labels/ and config/ "
                        f"(e.g. ../shared/data/nab)")
    try:
        windows = json.loads((root / WINDOWS_FILE).read_text())
        profiles = {name: p["CostMatrix"] for name, p in
                    json.loads((root / PROFILES_FILE).read_text()).items()}
    except (json.JSONDecodeError, KeyError, TypeError) as error:
        raise UserError(f"{root}: labels or profiles are not NAB's JSON ({error})") from None
    for name in PROFILE_ORDER:
        if name not in profiles:
            raise UserError(f"{root / PROFILES_FILE} has no {name!r} profile")
    names = sorted(windows) if only is None else list(only)
    absent = [n for n in names if not (root / "data" / n).is_file()]
    if absent:
        more = f" and {len(absent) - 3} more" if len(absent) > 3 else ""
        raise UserError(f"{root} is incomplete: {len(absent)} of the {len(names)} labelled data "
                        f"files are missing ({', '.join(absent[:3])}{more}); copy the whole NAB "
                        f"data/ folder")
    files = []
    for name in names:
        if name not in windows:
            raise UserError(f"{name} has no entry in {WINDOWS_FILE}")
        texts, values = read_series(root / "data" / name)
        stamps = _timestamps(texts, name)
        ranges = []
        for pair in windows[name]:
            lo, hi = _timestamps(list(pair), f"{WINDOWS_FILE} {name}")
            inside = np.flatnonzero((stamps >= lo) & (stamps <= hi))
            if len(inside) == 0:
                raise UserError(f"{WINDOWS_FILE}: window {pair} of {name} holds no row")
            ranges.append((int(inside[0]), int(inside[-1])))
        ranges.sort()
        files.append(NabFile(name, stamps, values, ranges))
    return Corpus(root, files, profiles)


# --------------------------------------------------------------------------- scoring

@dataclass
class FileScore:
    name: str
    score: float
    tp: int
    tn: int
    fp: int
    fn: int
    total: int


def score_file(f: NabFile, scores: np.ndarray, threshold: float, cost: dict) -> FileScore:
    """NAB's raw score of one file at one threshold, with its point counts (rows after
    probation: a detection in a window is a TP row, outside one an FP row)."""
    scores = np.asarray(scores, dtype=np.float64)
    if len(scores) != len(f.values):
        raise UserError(f"{f.name}: {len(scores)} scores for {len(f.values)} rows")
    judged = np.arange(len(scores)) >= f.probation
    detected = (scores >= threshold) & judged
    label = f.labels
    total = 0.0
    for j in range(len(f.windows)):
        hits = np.flatnonzero(detected & (f.window_id == j))
        total += f.tp_unit[hits[0]] * cost["tpWeight"] if len(hits) else -cost["fnWeight"]
    total += float(f.fp_unit[detected & ~label].sum()) * cost["fpWeight"]
    return FileScore(f.name, total, int((detected & label).sum()),
                     int((~detected & ~label & judged).sum()), int((detected & ~label).sum()),
                     int((~detected & label & judged).sum()), len(scores))


def sweep(corpus: Corpus, scores: dict[str, np.ndarray], cost: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every distinct score value t (descending) and the corpus raw score at threshold t.

    A window's part is -FN while none of its rows is detected, then the largest TP weight
    among its detected rows (the earliest); its changes happen where that running maximum
    grows.  FP rows add their weight from their own score down.  Summing these changes in
    descending score order gives the raw score at every threshold in one pass."""
    event_scores, event_deltas = [], []
    for f in corpus.files:
        s = np.asarray(scores[f.name], dtype=np.float64)
        judged = np.arange(len(s)) >= f.probation
        out = judged & (f.window_id < 0)
        event_scores.append(s[out])
        event_deltas.append(f.fp_unit[out] * cost["fpWeight"])
        for j in range(len(f.windows)):
            rows = np.flatnonzero(judged & (f.window_id == j))
            if len(rows) == 0:
                continue
            order = np.argsort(-s[rows], kind="stable")
            weight = f.tp_unit[rows[order]] * cost["tpWeight"]
            best = np.maximum.accumulate(np.concatenate([[-cost["fnWeight"]], weight]))
            grow = np.flatnonzero(np.diff(best) > 0)
            event_scores.append(s[rows[order]][grow])
            event_deltas.append(np.diff(best)[grow])
    s = np.concatenate(event_scores)
    d = np.concatenate(event_deltas)
    order = np.argsort(-s, kind="stable")
    s, d = s[order], d[order]
    cumulative = np.cumsum(d) - corpus.n_windows * cost["fnWeight"]
    # the score at threshold t counts every event with score >= t: the last of each run
    last = np.r_[s[1:] != s[:-1], True]
    return s[last], cumulative[last]


def optimise(corpus: Corpus, scores: dict[str, np.ndarray], cost: dict) -> tuple[float, float]:
    """(threshold, corpus raw score) maximising the raw score; ties go to the higher
    threshold (fewer detections).  A threshold above every score is the null detector."""
    thresholds, totals = sweep(corpus, scores, cost)
    null = -corpus.n_windows * cost["fnWeight"]
    if len(totals) == 0 or totals.max() <= null:
        return 1.0 + 1e-9 if not len(thresholds) else float(thresholds[0]) + 1.0, null
    best = int(np.argmax(totals))
    return float(thresholds[best]), float(totals[best])


def normalise(raw: float, corpus: Corpus, cost: dict) -> float:
    null = -corpus.n_windows * cost["fnWeight"]
    perfect = corpus.n_windows * cost["tpWeight"]
    return 100.0 * (raw - null) / (perfect - null)


@dataclass
class ProfileResult:
    profile: str
    threshold: float
    raw: float
    normalised: float
    files: list[FileScore]


def score_corpus(corpus: Corpus, scores: dict[str, np.ndarray],
                 thresholds: dict[str, float] | None = None) -> dict[str, ProfileResult]:
    """Per profile: the optimised (or given) threshold, per-file scores and the totals."""
    results = {}
    for profile in PROFILE_ORDER:
        cost = corpus.profiles[profile]
        if thresholds and profile in thresholds:
            threshold = thresholds[profile]
        else:
            threshold, _ = optimise(corpus, scores, cost)
        files = [score_file(f, scores[f.name], threshold, cost) for f in corpus.files]
        raw = sum(r.score for r in files)
        results[profile] = ProfileResult(profile, threshold, raw, normalise(raw, corpus, cost),
                                         files)
    return results


# --------------------------------------------------------------------------- published results

def published_scores(root: str | Path, detector: str, corpus: Corpus) -> dict[str, np.ndarray]:
    """The per-row anomaly_score of a published detector (results/<detector>/...)."""
    root = Path(root)
    out = {}
    for f in corpus.files:
        category, filename = f.name.split("/")
        path = root / "results" / detector / category / f"{detector}_{filename}"
        if not path.is_file():
            raise UserError(f"{path} is missing: the published per-row results of {detector} "
                            f"are incomplete")
        with path.open(newline="") as handle:
            reader = csv.DictReader(handle)
            out[f.name] = np.array([float(r["anomaly_score"]) for r in reader])
    return out


def published_file_scores(root: str | Path, detector: str, profile: str) -> dict[str, dict]:
    """results/<detector>/<detector>_<profile>_scores.csv: File -> row (Threshold, Score, ...)."""
    path = Path(root) / "results" / detector / f"{detector}_{profile}_scores.csv"
    with path.open(newline="") as handle:
        return {r["File"]: r for r in csv.DictReader(handle) if r["File"]}


def published_final(root: str | Path) -> dict[str, dict[str, float]]:
    """results/final_results.json, NAB's normalised score of every published detector per
    profile, checked as the input it is: the scoreboard is built from it."""
    path = Path(root) / FINAL_RESULTS
    fix = f"restore NAB's own {FINAL_RESULTS} (e.g. from ../shared/data/nab)"
    try:
        document = json.loads(path.read_text())
    except FileNotFoundError:
        raise UserError(f"{path} is missing and the scoreboard is read from it; {fix}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} cannot be read as JSON ({error}); {fix}") from None
    if not isinstance(document, dict) or not document:
        raise UserError(f"{path} is not an object of detectors and their scores; {fix}")
    return {name: _profile_scores(figures, f"{path}: {name!r}", fix)
            for name, figures in document.items()}


def _profile_scores(figures, where: str, fix: str) -> dict[str, float]:
    """A detector's {profile: normalised score} of final_results.json, each a finite number."""
    if not isinstance(figures, dict):
        raise UserError(f"{where} is not an object of profiles; {fix}")
    for profile in PROFILE_ORDER:
        value = figures.get(profile)
        number = isinstance(value, (int, float)) and not isinstance(value, bool)
        if not (number and math.isfinite(value)):
            raise UserError(f"{where} has no {profile} score (a finite number, got "
                            f"{value!r}); {fix}")
    return {profile: float(figures[profile]) for profile in PROFILE_ORDER}


# --------------------------------------------------------------------------- our detectors

# Parameters tuned on NAB (standard profile) and kept for all files; see docs/nab.md.
NAB_PARAMS = {
    "streaming_zscore": {"window": 100, "min_count": 10, "threshold": 5.0,
                         "noise_floor": 2.0, "spread_floor": 1.0, "decay": 0.9999,
                         "outliers": "clip"},
    "moving_average": {"window": 100, "min_count": 10, "threshold": 5.0,
                       "noise_floor": 2.0, "spread_floor": 1.0, "decay": 0.9999},
}
# Settings handed to the detector's fit_series as they are, where it has them.
PASSED = (*ADAPTATION_DEFAULTS, "outliers")
F32 = np.float32
TINY = float(np.finfo(np.float32).tiny)
EngineFactory = Callable[[Bundle], Engine]  # builds the engine that runs a one-detector bundle


def learning_rows(f: NabFile) -> np.ndarray:
    """The rows a detector may learn its constants from: the probation period, which NAB
    never scores.  Every scored row comes after them, so no score looks ahead."""
    return f.values[:f.probation].astype(F32)


def fitted_for(detector: str, f: NabFile, params: dict):
    """The detector's Fitted for one NAB file, with constants learnt on the probation rows
    (its spec's fit_series, given the window settings and a variance floor).

    The floor is the larger of (noise_floor x the sample-to-sample noise)^2 and
    (spread_floor x the standard deviation)^2 of the probation rows, so a change smaller
    than the normal spread never counts as many sigmas (NAB has noiseless periodic series
    whose window variance collapses on every plateau)."""
    module = get(detector)
    if module.SPEC.fit_series is None:
        streaming = [n for n, m in DETECTORS.items() if m.SPEC.fit_series]
        raise UserError(f"nab runs the streaming detectors ({', '.join(streaming)}), "
                        f"not {detector}")
    x = learning_rows(f).astype(np.float64)
    noise = np.diff(x).std() / np.sqrt(2) if len(x) > 1 else 0.0
    floor = max(float(F32((params["noise_floor"] * noise) ** 2)),
                float(F32((params["spread_floor"] * x.std()) ** 2)), TINY)
    # A frozen baseline calibrates on the probation rows, which NAB gives to learn from.
    common = {"window": params["window"], "min_count": params["min_count"],
              "threshold": f"value:{params['threshold']}", "calibration": f.probation,
              **{k: params[k] for k in PASSED if k in params}}
    fitted = module.SPEC.fit_series(x, common, floor)
    return thresholds.apply(module, fitted, scalar(params["threshold"]))


def _bundle(detector: str, fitted):
    return Bundle("nab", ["value"], [0.0], [1.0], {detector: fitted}, {})


def raw_scores(detector: str, f: NabFile, params: dict,
               engine: EngineFactory = PythonEngine) -> np.ndarray:
    """The detector's own score for every row of the file, fed one sample at a time from a
    fresh state, on the engine: the reference (default) or the host C build
    (host_sim.hostlib.HostModel, the code the device runs); they agree bit for bit
    (tests/test_nab.py)."""
    fitted = fitted_for(detector, f, params)
    X = f.values.astype(F32)[:, None]
    return engine(_bundle(detector, fitted)).run(X, [detector])[detector].scores


def nab_mapping(score: np.ndarray, decay: float, k: float, quiet: int = 0) -> np.ndarray:
    """Our score in [0, 1] for NAB, online and O(1): a row keeps z/(z+k) only when its score
    sets a new record against the slowly decaying peak of the scores before it (peak *= decay
    every row); every other row maps to 0.  One alarm per event instead of one per row: NAB
    counts only the first detection in a window and charges every other one as a false
    positive.  The first `quiet` rows (the detector's min_count, before which it never
    flags) are not judgements: they map to 0 and set no peak."""
    z = np.nan_to_num(np.asarray(score, dtype=np.float64), nan=np.inf, posinf=1e30)
    z[:quiet] = 0.0
    out = np.zeros(len(z))
    peak = 0.0
    for i, v in enumerate(z):
        if v > peak:
            out[i] = v / (v + k)
        peak = max(peak * decay, v)
    return out


def run_detector(corpus: Corpus, detector: str, params: dict | None = None,
                 engine: EngineFactory = PythonEngine, progress: Progress | None = None,
                 run: str = "") -> dict[str, np.ndarray]:
    """The detector's NAB score of every file; progress: a step per file, named after
    the run (e.g. "setting 3/18") and the file."""
    params = {**NAB_PARAMS[detector], **(params or {})}
    out = {}
    for f in corpus.files:
        z = raw_scores(detector, f, params, engine)
        out[f.name] = nab_mapping(z, params["decay"], params["threshold"], params["min_count"])
        if progress:
            progress.step(f"{detector}{' ' + run if run else ''}: {f.name}")
    return out


# The settings `nab --cross-validate` chooses among; NAB_PARAMS is one of them.
CV_GRID = {"window": (50, 100, 200), "threshold": (4.0, 5.0, 6.0), "spread_floor": (0.5, 1.0)}


def settings(detector: str, given: dict | None = None) -> list[dict]:
    """NAB_PARAMS[detector] with the given settings, varied over CV_GRID, in a fixed
    order."""
    return [{**NAB_PARAMS[detector], **(given or {}), **dict(zip(CV_GRID, combo))}
            for combo in itertools.product(*CV_GRID.values())]


def subset(corpus: Corpus, names: set[str]) -> Corpus:
    return Corpus(corpus.root, [f for f in corpus.files if f.name in names], corpus.profiles)


@dataclass
class Fold:
    held_out: list[str]  # the files scored with a setting chosen without them
    setting: dict
    tuned: float  # the setting's standard score on the other files
    scores: dict[str, float]  # per profile, the held-out files scored as a corpus of their own


def cross_validate(corpus: Corpus, detector: str, grid: list[dict] | None = None,
                   folds: int = 2, engine: EngineFactory = PythonEngine,
                   progress: Progress | None = None) -> tuple[list[Fold], dict[str, float]]:
    """Out-of-sample NAB scores for a detector whose settings are chosen on NAB itself.
    Files (sorted by name, so every category is split) go to `folds` interleaved parts; for
    each part the grid setting with the best standard score on the other files is chosen and
    the part is scored with it.  Returns the folds and, per profile, the normalised score of
    the whole corpus when every file is scored with the setting chosen without it (the
    threshold optimised as NAB does for every detector)."""
    grid = grid or settings(detector)
    scores = [run_detector(corpus, detector, setting, engine, progress,
                           f"setting {i + 1}/{len(grid)}") for i, setting in enumerate(grid)]
    names = [f.name for f in corpus.files]
    result, chosen = [], {}
    for k in range(folds):
        held = set(names[k::folds])
        train = subset(corpus, set(names) - held)
        cost = corpus.profiles["standard"]
        tuned = [normalise(optimise(train, s, cost)[1], train, cost) for s in scores]
        best = int(np.argmax(tuned))
        held_scores = score_corpus(subset(corpus, held), scores[best])
        result.append(Fold(sorted(held), grid[best], tuned[best],
                           {p: r.normalised for p, r in held_scores.items()}))
        chosen.update({name: scores[best][name] for name in held})
    whole = score_corpus(corpus, chosen)
    return result, {p: r.normalised for p, r in whole.items()}


def cross_validation_report(corpus: Corpus, detector: str,
                            engine: EngineFactory = PythonEngine, given: dict | None = None,
                            progress: Progress | None = None
                            ) -> tuple[list[str], tuple[float, ...]]:
    """The report's lines on each fold, and the out-of-sample normalised scores (every file
    scored with the setting chosen without it) in PROFILE_ORDER."""
    grid = settings(detector, given)
    folds, whole = cross_validate(corpus, detector, grid, engine=engine, progress=progress)
    varied = list(CV_GRID)
    lines = [f"mcu-anomaly {label(detector, given)}, 2-fold cross-validation over {len(grid)} "
             f"settings ({', '.join(varied)}):"]
    for k, fold in enumerate(folds):
        chosen = ", ".join(f"{key} {fold.setting[key]:g}" for key in varied)
        lines.append(f"  fold {k + 1}: {len(fold.held_out)} files held out; chosen on the "
                     f"others ({chosen}; standard {fold.tuned:.1f} there); held-out files "
                     + " / ".join(f"{fold.scores[p]:.1f}" for p in PROFILE_ORDER))
    lines.append("  every file scored with the setting chosen without it: "
                 + " / ".join(f"{whole[p]:.1f}" for p in PROFILE_ORDER)
                 + " (standard / low FP / low FN)")
    return lines, tuple(whole[p] for p in PROFILE_ORDER)


@dataclass
class OurScores:
    """One of our detectors on the scoreboard: normalised scores in PROFILE_ORDER."""

    name: str
    in_sample: tuple[float, ...]  # with its settings, tuned on these same files
    out_of_sample: tuple[float, ...] | None = None  # with --cross-validate


def display_name(key: str) -> str:
    return f"{key} ({README_NAMES[key]})" if key in README_NAMES else key


def our_row(ours: OurScores) -> tuple[str, tuple[float, ...], str]:
    """One of ours on the scoreboard: its name and figure kind, the figures it is ranked by
    (out of sample when there are such), and what follows them on the line."""
    if ours.out_of_sample is None:
        return f"{ours.name} (in-sample)", ours.in_sample, "  <- ours"
    in_sample = " / ".join(f"{v:.1f}" for v in ours.in_sample)
    return f"{ours.name} (out of sample)", ours.out_of_sample, f"  <- ours; in-sample {in_sample}"


RANKED_OUT_OF_SAMPLE = [
    "ours are ranked by the out-of-sample figure: each file scored with the setting chosen",
    "on the other half of the files. In both figures, as in every NAB row, the threshold is",
    "optimised over the whole corpus. NAB's rows do not record on what data their one",
    "parameter set was chosen, so this rank is the cautious one: it gives ours no credit for",
    "tuning on the files scored."]
RANKED_IN_SAMPLE = [
    "ours are ranked by the in-sample figure: their settings (docs/nab.md) were tuned on",
    "these same files; --cross-validate gives the out-of-sample figure, the cautious one, and",
    "ranks by it."]


def scoreboard(published: dict[str, dict[str, float]], ours: list[OurScores]) -> list[str]:
    """NAB's published rows and ours in one ranking by the standard profile, and which of
    our figures the rank uses."""
    rows = [(display_name(key), tuple(scores[p] for p in PROFILE_ORDER), "")
            for key, scores in published.items()] + [our_row(o) for o in ours]
    rows.sort(key=lambda row: -row[1][0])
    width = max(len(row[0]) for row in rows)
    lines = [f"{'rank':>4}  {'detector':<{width}} {'standard':>9} {'low FP':>9} {'low FN':>9}"]
    lines += [f"{rank:>4}  {name:<{width}} " + " ".join(f"{v:9.1f}" for v in scores) + mark
              for rank, (name, scores, mark) in enumerate(rows, 1)]
    if not ours:
        return lines
    cross_validated = any(o.out_of_sample is not None for o in ours)
    return lines + (RANKED_OUT_OF_SAMPLE if cross_validated else RANKED_IN_SAMPLE)


def reproduce(root: str | Path, corpus: Corpus, detector: str = "windowedGaussian") -> dict:
    """Score a published detector's per-row output with this scorer: per-file agreement with
    its published raw scores and the normalised totals (ours, published)."""
    scores = published_scores(root, detector, corpus)
    final = published_final(root).get(detector, {})
    out = {}
    for profile, result in score_corpus(corpus, scores).items():
        published = published_file_scores(root, detector, profile)
        worst = max(abs(r.score - float(published[r.name]["Score"])) for r in result.files)
        counts = all((r.tp, r.tn, r.fp, r.fn) == tuple(int(published[r.name][k]) for k in
                                                       ("TP", "TN", "FP", "FN"))
                     for r in result.files)
        out[profile] = {"threshold": result.threshold, "raw": result.raw,
                        "normalised": result.normalised, "published": final.get(profile),
                        "max_file_difference": worst, "counts_equal": counts}
    return out


def label(detector: str, given: dict | None) -> str:
    """A detector's name in the report, with the settings given for it."""
    return " ".join([detector, *(f"{k}={v}" for k, v in sorted((given or {}).items()))])


def check_settings(detectors: list[str], given: dict[str, dict]) -> None:
    """Refuse settings for a detector not run, or a setting the detector does not have."""
    unknown = sorted(set(given) - set(detectors))
    if unknown:
        raise UserError(f"settings given for {', '.join(unknown)}, which is not among the "
                        f"detectors run ({', '.join(detectors)})")
    for detector, setting in given.items():
        known = {*NAB_PARAMS.get(detector, {}), *ADAPTATION_DEFAULTS}
        for key in sorted(set(setting) - known):
            raise UserError(f"nab: {detector} has no setting {key}; its settings are "
                            f"{', '.join(sorted(known))}")


def scorer_check(root: Path, corpus: Corpus) -> list[str]:
    """The report's lines on this scorer run over the published windowedGaussian rows."""
    check = reproduce(root, corpus)
    lines = ["scorer check on the published windowedGaussian rows "
             "(ours / published, largest per-file raw-score difference):"]
    for profile in PROFILE_ORDER:
        c = check[profile]
        pub = "-" if c["published"] is None else f"{c['published']:.4f}"
        lines.append(f"  {profile:<20} threshold {c['threshold']:.6g}  {c['normalised']:.4f} / "
                     f"{pub}  max |diff| {c['max_file_difference']:.1e}  counts "
                     f"{'equal' if c['counts_equal'] else 'DIFFER'}")
    return lines


def our_scores(corpus: Corpus, detector: str, engine: EngineFactory, given: dict | None,
               cross_validation: bool, progress: Progress | None = None
               ) -> tuple[list[str], OurScores]:
    """The report's lines on one of our detectors (its thresholds, with cross_validation its
    folds) and its scores for the scoreboard."""
    result = score_corpus(corpus, run_detector(corpus, detector, given, engine, progress))
    name = f"mcu-anomaly {label(detector, given)}"
    lines = [f"{name}: thresholds " + ", ".join(f"{p} {result[p].threshold:.4g}"
                                                for p in PROFILE_ORDER)]
    out_of_sample = None
    if cross_validation:
        report, out_of_sample = cross_validation_report(corpus, detector, engine, given,
                                                        progress)
        lines += report
    return lines, OurScores(name, tuple(result[p].normalised for p in PROFILE_ORDER),
                            out_of_sample)


def main(root: str | Path, detectors: list[str], engine: EngineFactory = PythonEngine,
         cross_validation: bool = False, given: dict[str, dict] | None = None) -> str:
    """The `mcu-anomaly nab` report: the scorer proven on windowedGaussian, ours (with
    cross_validation, out of sample too), and the scoreboard of NAB's published results with
    ours placed among them; given: settings per detector."""
    given = given or {}
    check_settings(detectors, given)
    root = Path(root)
    corpus = load_corpus(root)
    published = published_final(root)  # before the detectors run: a bad file fails at once
    lines = [f"NAB: {len(corpus.files)} files, {corpus.rows} rows, {corpus.n_windows} windows"]
    if (root / "results" / "windowedGaussian").is_dir():
        lines += scorer_check(root, corpus)
    runs = 1 + math.prod(map(len, CV_GRID.values())) if cross_validation else 1  # per detector
    progress = Progress(len(detectors) * runs * len(corpus.files), "nab")
    ours = []
    for detector in detectors:
        report, scores = our_scores(corpus, detector, engine, given.get(detector),
                                    cross_validation, progress)
        lines += report
        ours.append(scores)
    lines.append(f"scoreboard by the standard profile, NAB's rows from {root / FINAL_RESULTS}:")
    lines += scoreboard(published, ours)
    return "\n".join(lines)
