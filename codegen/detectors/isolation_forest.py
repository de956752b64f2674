"""isolation_forest: scikit-learn's IsolationForest, exported tree by tree as flat arrays.

scikit-learn grows the forest on features of the normal rows; every tree then becomes flat
arrays (see mcua_isolation_forest.h): split nodes (feature, float32 split value, left and
right child codes) and leaves (an index into a table of leaf path lengths).

Features (`features`):
    raw      the channels themselves; the detector keeps no state (score(x, &flag)).
    rolling  the notebook's features: per sample the C channels, then per channel the mean
             and the standard deviation of its last `window` readings, the current one
             included (fewer right after a reset) -- 3C features in the order
             x_0..x_{C-1}, mean_0, sd_0, mean_1, sd_1, ...  The device keeps the window
             (mcua_window: anchored sums, rebuilt every W samples), so the detector is
             streaming (reset(&state) / update(&state, x, &flag)).  In float32, after the
             sample entered the window (n readings, inv_n = 1/n):
                 m    = sum * inv_n                  (relative to the window's anchor)
                 mean = anchor + m
                 var  = sumsq * inv_n - m * m
                 sd   = sqrt(var) if var > 0 else 0  (population deviation, ddof = 0)
             The population deviation needs no division per sample (the window keeps 1/n);
             once the window is full it is the notebook's sample deviation (pandas, ddof = 1)
             times sqrt((W-1)/W), a constant factor that an Isolation Forest's random splits
             (uniform between the node's minimum and maximum) do not see.  A NaN/Inf sample
             scores +Inf and never enters the window.  The forest is grown, and its
             threshold set, on the features of the normal rows taken as one stream from a
             fresh window, from the row that fills the window on: the W-1 rows before it
             see partial windows.  Likewise on the device those warm-up samples are scored
             but never flagged (the streaming detectors' min_count rule, with min_count W).

Reference arithmetic (float32, the order of mcua_isolation_forest.c):
    go left     when f[feature] <= split                 (float32 comparison)
    leaf value  = float32(depth + c(n) - 1)              (scikit-learn's float64 terms)
    total       = sum over trees, in tree order, of the leaf value reached, in float32
    score       = total * float32(-1 / n_trees)          (-mean path length)
    flag        = score > threshold                      (+Inf score for NaN/Inf input)

Why the comparison is exact: scikit-learn casts the input to float32 and compares it with
a float64 threshold t.  For every float32 x, x <= t exactly when x <= t32, t32 the largest
float32 not above t; the arrays store t32, so every input reaches the leaf scikit-learn's
`apply` reaches.  Only the path-length sum is rounded differently (float32 here, float64
there), so the ranking agrees with scikit-learn's decision_function up to near-ties.

Higher score = shorter mean path = more anomalous.  scikit-learn's anomaly score (the
paper's s, `-score_samples`) is 2^(score / c(max_samples)); the device never evaluates
it.  A `value:s` threshold is given in those units (0 < s < 1, the paper suggests about
0.6) and becomes the bound log2(s) * c(max_samples) on the score, i.e. on the mean path
length.  `percentile:P` and `sigma:K` work on the score itself, as for every detector.

Size: every split costs 9 bytes of flash (1 + 4 + 2 + 2), every leaf 1 (2 when the forest
has more than 256 distinct leaf values), every tree 2, every leaf value 4, plus the model
struct; rolling features add the window to RAM.  `target` picks defaults and the limits a
forest must fit (see TARGETS).
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from codegen.training import thresholds
from codegen.errors import UserError
from codegen.detectors import window
from codegen.detectors.base import (F32, DetectorSpec, Fitted, Footprint, Kind, Scored,
                                    array_bytes, channel_std, choice_param, int_param,
                                    merge_params, positive_int, scalar, threshold_param)
from codegen.detectors.window import Window

if TYPE_CHECKING:
    from sklearn.ensemble import IsolationForest

NAME = "isolation_forest"
LEAF = 0x8000  # MCUA_IFOREST_LEAF: node codes at or above it are leaves
MAX_SPLITS = LEAF  # node codes are uint16: at most 32768 split nodes and 32768 leaves
MAX_LEAVES = LEAF
MIN_ROWS = 16
# scikit-learn's trees take a feature whose values in a node lie within this of each other
# for constant (FEATURE_THRESHOLD in sklearn/tree/_splitter.pyx) and never split on it.
SPLIT_RESOLUTION = 1e-7
FEATURES = ("raw", "rolling")


@dataclass(frozen=True)
class Target:
    description: str
    flash: int  # bytes of flash the model constants may take
    ram: int  # bytes of RAM the detector may keep (raw features: none; rolling: the window)
    pointer: int  # pointer size in the model struct
    align: int  # worst-case alignment padding per array is align - 1
    n_trees: int
    max_samples: int


TARGETS = {
    "uno": Target("ATmega328P (Arduino Uno): 32 KB flash, 2 KB RAM", 24 * 1024, 64, 2, 1,
                  n_trees=25, max_samples=128),
    "esp32": Target("ESP32-class (4 MB flash, 320 KB RAM)", 512 * 1024, 8 * 1024, 4, 4,
                    n_trees=100, max_samples=256),
}
DEFAULTS = {"target": "esp32", "n_trees": "auto", "max_samples": "auto", "features": "raw",
            "window": 50, "threshold": "percentile:99"}


def rolling(params: dict) -> bool:
    """Whether the forest reads rolling mean/std features (bundles written before the option
    existed read raw channels)."""
    return params.get("features", "raw") == "rolling"


def kind(fitted: Fitted) -> Kind:
    """Rolling features keep a window on the device: reset(&state) / update(&state, x, &flag)
    instead of the stateless score(x, &flag)."""
    return Kind.STREAMING if rolling(fitted.params) else Kind.STATELESS


def describe(fitted: Fitted) -> str:
    text = f"{fitted.params['n_trees_used']}x{fitted.params['max_samples_used']}"
    return text + (f", W={fitted.params['window']}" if rolling(fitted.params) else "")


def average_path_length(n) -> np.ndarray:
    """c(n): the average path length of an unsuccessful search in a binary search tree of
    n keys, in float64, written term by term as scikit-learn writes it."""
    n = np.asarray(n, dtype=np.float64)
    out = np.zeros(n.shape)
    out[n == 2] = 1.0
    big = n > 2
    m = n[big]
    out[big] = 2.0 * (np.log(m - 1.0) + np.euler_gamma) - 2.0 * (m - 1.0) / m
    return out


def float32_at_or_below(t: np.ndarray) -> np.ndarray:
    """The largest float32 not above each float64 t: x <= t  <=>  x <= result, for float32 x."""
    t = np.asarray(t, dtype=np.float64)
    t32 = t.astype(F32)
    above = t32.astype(np.float64) > t
    t32[above] = np.nextafter(t32[above], F32(-np.inf))
    return t32


def _target(params: dict) -> Target:
    return TARGETS[choice_param(NAME, params, "target", TARGETS)]


def _aligned(size: int, target: Target) -> int:
    return -(-size // target.align) * target.align


def flash_bytes(arrays: dict[str, np.ndarray], target: Target) -> int:
    """Bytes of flash the model's constants take on the target: every array plus the model
    struct (exact on AVR; on 32-bit targets alignment padding is counted at its worst)."""
    pad = target.align - 1
    total = _aligned(3 * 2, target) + 2 * 4 + 8 * target.pointer  # 3 uint16, 2 floats, 8 pointers
    for array in arrays.values():
        total += array.nbytes + pad
    return total


def ram_bytes(params: dict, target: Target) -> int:
    """Bytes of RAM the detector keeps between samples: none with raw features; with rolling
    ones the window state (per channel six float sums and W readings, and the counters:
    three uint16, a uint8 and a float)."""
    if not rolling(params):
        return 0
    return window.state_bytes(params["n_channels"], params["window"], target.align)


def _export(forest: IsolationForest) -> dict[str, np.ndarray]:
    """Every tree of a fitted scikit-learn forest as the flat arrays of the C runtime."""
    roots, feature, split, left, right, leaf_values = [], [], [], [], [], []
    for estimator, features in zip(forest.estimators_, forest.estimators_features_):
        tree = estimator.tree_
        is_leaf = tree.children_left < 0
        # node id -> code: split nodes and leaves numbered in scikit-learn's node order,
        # continuing from the trees before
        code = np.empty(tree.node_count, dtype=np.int64)
        code[~is_leaf] = len(split) + np.arange((~is_leaf).sum())
        code[is_leaf] = LEAF + len(leaf_values) + np.arange(is_leaf.sum())
        roots.append(code[0])
        inner = np.nonzero(~is_leaf)[0]
        feature.extend(np.asarray(features)[tree.feature[inner]])
        split.extend(float32_at_or_below(tree.threshold[inner]))
        left.extend(code[tree.children_left[inner]])
        right.extend(code[tree.children_right[inner]])
        depth = tree.compute_node_depths().astype(np.float64)
        n = tree.n_node_samples.astype(np.float64)
        # the terms of scikit-learn's _compute_score_samples, in its order, in float64
        leaf_values.extend(((depth + average_path_length(n)) - 1.0)[is_leaf])
    n_splits, n_leaves = len(split), len(leaf_values)
    if n_splits > MAX_SPLITS or n_leaves > MAX_LEAVES:
        raise UserError(f"{NAME}: the forest has {n_splits} split nodes and {n_leaves} leaves; "
                        f"node indices are 16-bit, so at most {MAX_SPLITS} of each: use fewer "
                        f"trees ({NAME}.n_trees) or smaller ones ({NAME}.max_samples)")
    values32 = np.asarray(leaf_values).astype(F32)
    table, index = np.unique(values32, return_inverse=True)
    return {
        "root": np.asarray(roots, dtype=np.uint16),
        "feature": np.asarray(feature, dtype=np.uint8),
        "split": np.asarray(split, dtype=F32),
        "left": np.asarray(left, dtype=np.uint16),
        "right": np.asarray(right, dtype=np.uint16),
        "leaf": index.astype(np.uint8 if len(table) <= 256 else np.uint16),
        "leaf_value": table.astype(F32),
    }


def check_size(fitted: Fitted) -> None:
    """Refuse a forest that does not fit its target, naming the figure and the limit."""
    target = _target(fitted.params)
    flash = flash_bytes(fitted.arrays, target)
    ram = ram_bytes(fitted.params, target)
    trees, samples = fitted.params["n_trees_used"], fitted.params["max_samples_used"]
    if flash > target.flash:
        raise UserError(
            f"{NAME}: the forest ({trees} trees of {samples} samples, "
            f"{len(fitted.arrays['split'])} splits) needs {flash} bytes of flash, more than "
            f"the {target.flash} bytes allowed on target {fitted.params['target']} "
            f"({target.description}): use fewer trees ({NAME}.n_trees) or smaller ones "
            f"({NAME}.max_samples), or another target")
    if ram > target.ram:
        raise UserError(
            f"{NAME}: the rolling features keep {ram} bytes of RAM (a window of "
            f"{fitted.params['window']} readings of {fitted.params['n_channels']} channels), "
            f"more than the {target.ram} bytes allowed on target {fitted.params['target']} "
            f"({target.description}): use a smaller {NAME}.window, {NAME}.features=raw, or "
            f"another target")


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool, channels: list[str]) -> Fitted:
    params = merge_params(NAME, DEFAULTS, params)
    target = _target(params)
    kind, value = threshold_param(NAME, params)
    if kind == "value" and not 0 < value < 1:
        raise UserError(f"{NAME}.threshold {params['threshold']!r}: a value threshold is the "
                        f"anomaly score s of the Isolation Forest paper, 0 < s < 1 (e.g. "
                        f"value:0.6); or use percentile:P")
    n_trees = int_param(NAME, params, "n_trees", 1, 4096, auto=target.n_trees)
    choice_param(NAME, params, "features", FEATURES)
    length = positive_int(NAME, params, "window", window.MAX_WINDOW)
    normal = np.asarray(normal, dtype=F32)
    if len(normal) < MIN_ROWS:
        raise UserError(f"{NAME} needs at least {MIN_ROWS} normal rows to grow its trees, got "
                        f"{len(normal)}; give more normal data")
    full = len(normal) - length + 1
    if rolling(params) and full < MIN_ROWS:
        raise UserError(f"{NAME}: {len(normal)} normal rows give {max(full, 0)} "
                        f"full windows of {length} for the rolling features, and the forest "
                        f"grows on full windows only; it needs at least {MIN_ROWS}: give more "
                        f"data or a smaller {NAME}.window")
    n_features = normal.shape[1] * (3 if rolling(params) else 1)
    if n_features > 255:
        raise UserError(f"{NAME} reads at most 255 features (uint8 indices); "
                        f"{normal.shape[1]} channels give {n_features} "
                        f"({params['features']} features): pick fewer with --columns")
    channel_std(NAME, normal, channels)
    span = normal.max(axis=0).astype(np.float64) - normal.min(axis=0)
    for c in np.flatnonzero(span <= SPLIT_RESOLUTION):
        raise UserError(f"{NAME}: channel {channels[c]!r} spans only {span[c]:.3g} in the "
                        f"normal training rows; scikit-learn's trees take a feature that varies "
                        f"by at most {SPLIT_RESOLUTION:g} for constant and never split on it, so "
                        f"the forest would ignore the channel; rescale it (e.g. to µV) or leave "
                        f"it out with --columns")
    if rolling(params):
        window.check_span(NAME, normal, channels)
    rows = len(normal) - (length - 1 if rolling(params) else 0)  # those the forest grows on
    max_samples = int_param(NAME, params, "max_samples", 2, 32768,
                            auto=min(target.max_samples, rows))
    if max_samples > rows:
        raise UserError(f"{NAME}.max_samples = {max_samples} is more than the {rows} "
                        f"normal rows it grows on; choose at most {rows} or give more data")
    if not np.isfinite(normal).all():
        raise UserError(f"{NAME}: the normal training rows hold NaN or Inf; drop them")
    # the rows of partial windows neither grow the forest nor set its threshold
    features = rolling_features(normal, length)[0][length - 1:] if rolling(params) else normal
    from sklearn.ensemble import IsolationForest  # imported on use: the CLI starts without it

    forest = IsolationForest(n_estimators=n_trees, max_samples=max_samples, random_state=seed,
                             n_jobs=1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        forest.fit(features)
    arrays = _export(forest)
    c_psi = float(average_path_length([max_samples])[0])
    params = {**params, "n_channels": normal.shape[1], "n_trees_used": n_trees,
              "max_samples_used": max_samples,
              "max_depth": int(math.ceil(math.log2(max(max_samples, 2))))}
    fitted = Fitted(params, {"threshold": 0.0, "neg_inv_trees": scalar(np.float64(-1.0) / n_trees),
                             "c_max_samples": c_psi}, arrays)
    if kind == "value":
        threshold = F32(math.log2(value) * c_psi)
    else:
        threshold = thresholds.choose(params["threshold"], path_score(fitted, features))
    fitted.scalars["threshold"] = scalar(threshold)
    fitted.report["flash_bytes"] = flash_bytes(arrays, target)
    fitted.report["ram_bytes"] = ram_bytes(params, target)
    fitted.report["splits"] = int(len(arrays["split"]))
    fitted.report["leaves"] = int(len(arrays["leaf"]))
    if verbose:
        print(f"  {NAME}: {n_trees} trees of {max_samples} samples on {n_features} "
              f"{params['features']} features, {len(arrays['split'])} splits, "
              f"{fitted.report['flash_bytes']} bytes of flash and {fitted.report['ram_bytes']} "
              f"of RAM (target {params['target']}: at most {target.flash} and {target.ram})")
    check_size(fitted)
    return fitted


def rolling_features(X: np.ndarray, length: int, with_state: bool = False,
                     state: Window | None = None):
    """The rolling features of the readings X fed one by one to a fresh window of `length`,
    or to `state` (a Window, updated in place) (see the module's docstring; a NaN/Inf row
    gives NaN features and leaves the window as it was): (features [rows, 3 * channels], the
    window's state after every row when asked, in the layout of window.Window.snapshot, else
    None)."""
    X = np.asarray(X, dtype=F32)

    def step(w: Window, x: np.ndarray) -> np.ndarray:
        if not np.isfinite(x).all():
            return np.full(3 * len(x), np.nan, dtype=F32)
        w.push(x)
        m, mean_sq = w.mean()
        var = mean_sq - m * m
        sd = np.where(var > 0, np.sqrt(np.maximum(var, F32(0))), F32(0))
        return np.concatenate([x, np.stack([w.anchor + m, sd], axis=1).ravel()])

    state = Window(X.shape[1], length) if state is None else state
    out, states = window.replay(step, X, state, with_state)
    return np.array(out, dtype=F32).reshape(len(X), 3 * X.shape[1]), states


def leaves(fitted: Fitted, X: np.ndarray) -> np.ndarray:
    """The leaf (global index) every row of features reaches in every tree: shape (rows,
    trees)."""
    X = np.asarray(X, dtype=F32)
    a = fitted.arrays
    feature, split = a["feature"].astype(np.intp), a["split"]
    left, right = a["left"].astype(np.int64), a["right"].astype(np.int64)
    rows = np.arange(len(X))
    out = np.empty((len(X), len(a["root"])), dtype=np.int64)
    with np.errstate(invalid="ignore"):
        for t, root in enumerate(a["root"]):
            node = np.full(len(X), int(root), dtype=np.int64)
            inner = node < LEAF
            while inner.any():
                s = node[inner]
                go_left = X[rows[inner], feature[s]] <= split[s]  # float32 <= float32
                node[inner] = np.where(go_left, left[s], right[s])
                inner = node < LEAF
            out[:, t] = node - LEAF
    return out


def boundary_inputs(fitted: Fitted, base: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Two rows of features per split node that reach it and sit exactly on its split value
    and one ulp above it (the first goes left, the second right): with raw features, inputs
    that tell every split value apart from its float32 neighbours.  base (one row) fills the
    features the path leaves free.  Returns (rows, the split node of each row)."""
    a = fitted.arrays
    base = np.asarray(base, dtype=F32)
    rows, nodes = [], []
    up = F32(np.inf)
    stack = [(int(r), np.full(len(base), -np.inf, F32), np.full(len(base), np.inf, F32))
             for r in a["root"]]
    while stack:
        node, lo, hi = stack.pop()  # a row reaches node when lo < x <= hi on every channel
        if node >= LEAF:
            continue
        f, v = int(a["feature"][node]), a["split"][node]
        x = base.copy()
        outside = ~((lo < x) & (x <= hi))
        x[outside] = np.where(np.isfinite(hi), hi, np.nextafter(lo, up))[outside]
        for value in (v, np.nextafter(v, up)):
            x[f] = value
            rows.append(x.copy())
            nodes.append(node)
        hi_left, lo_right = hi.copy(), lo.copy()
        hi_left[f] = min(hi[f], v)
        lo_right[f] = max(lo[f], v)
        stack.append((int(a["left"][node]), lo, hi_left))
        stack.append((int(a["right"][node]), lo_right, hi))
    return np.array(rows, dtype=F32), np.array(nodes)


def root_crossings(fitted: Fitted, normal: np.ndarray, gap: int = 5):
    """For rolling features, what boundary_inputs is for raw ones, as far as readings can
    reach: a stream of normal readings in which, for every tree whose root splits on a raw
    channel, one reading puts that channel exactly on the split value and the next one ulp
    above it (every sample reaches the roots, whatever its window).  Returns (rows, the root
    split node crossed at each row, -1 elsewhere)."""
    a = fitted.arrays
    normal = np.asarray(normal, dtype=F32)
    rows, nodes = [], []
    for i, root in enumerate(int(r) for r in a["root"] if r < LEAF):
        f, v = int(a["feature"][root]), a["split"][root]
        if f >= normal.shape[1]:
            continue  # a mean or deviation feature: no single reading puts it on the split
        start = (i * (gap + 2)) % (len(normal) - gap - 2)
        block = normal[start:start + gap + 2].copy()
        block[gap, f] = v
        block[gap + 1, f] = np.nextafter(v, F32(np.inf))
        rows.append(block)
        nodes += [-1] * gap + [root, root]
    return np.vstack(rows), np.array(nodes)


def path_score(fitted: Fitted, features: np.ndarray) -> np.ndarray:
    """-(mean path length) of every row of features; +Inf for a row holding NaN or Inf."""
    features = np.asarray(features, dtype=F32)
    a = fitted.arrays
    values = a["leaf_value"][a["leaf"].astype(np.intp)]  # float32 path length of every leaf
    reached = leaves(fitted, features)
    total = np.zeros(len(features), dtype=F32)
    for t in range(reached.shape[1]):  # tree order, float32 additions
        total = total + values[reached[:, t]]
    result = total * F32(fitted.scalars["neg_inv_trees"])
    result[~np.isfinite(features).all(axis=1)] = np.inf
    return result


def score(fitted: Fitted, X: np.ndarray, with_state: bool = False,
          state: Window | None = None) -> Scored:
    """Scores and flags of the readings X, fed in order from a fresh state with rolling
    features (or on from `state`, a Window); with_state adds the window's state after every
    row (None with raw features)."""
    X = np.asarray(X, dtype=F32)
    warming = np.zeros(len(X), dtype=bool)
    if rolling(fitted.params):
        length = fitted.params["window"]
        held = 0 if state is None else state.count  # before the rows go in
        features, states = rolling_features(X, length, with_state, state)
        finite = np.isfinite(X).all(axis=1)
        warming = finite & (held + np.cumsum(finite) < length)  # a partial window: no flag
    else:
        features, states = X, None
    result = path_score(fitted, features)
    return Scored(result, (result > F32(fitted.scalars["threshold"])) & ~warming, states)


def template_context(fitted: Fitted) -> dict:
    check_size(fitted)
    a = fitted.arrays
    target = _target(fitted.params)
    # integers the header carries as text, checked: a bundle is a file anyone can edit
    max_samples = positive_int(NAME, fitted.params, "max_samples_used")
    length = (positive_int(NAME, fitted.params, "window", window.MAX_WINDOW)
              if rolling(fitted.params) else 0)
    return {"threshold": fitted.scalars["threshold"],
            "neg_inv_trees": fitted.scalars["neg_inv_trees"],
            "target": fitted.params["target"], "n_trees": len(a["root"]),
            "max_samples": max_samples, "window": length,
            "flash_bytes": flash_bytes(a, target),
            "ram_bytes": ram_bytes(fitted.params, target),
            "wide_leaves": a["leaf"].dtype == np.uint16, **a}


def _codes(stored, key: str, shape: tuple, n_splits: int, n_leaves: int) -> np.ndarray:
    """Node codes: a split node below n_splits, or LEAF + a leaf below n_leaves."""
    codes = stored.array(key, np.uint16, shape).astype(np.int64)
    bad = ~((codes < n_splits) | ((codes >= LEAF) & (codes < LEAF + n_leaves)))
    if bad.any():
        stored.fail(f"arrays.{key}", f"holds the node code {codes[bad][0]}, which is neither a "
                                     f"split node (below {n_splits}) nor a leaf ({LEAF} to "
                                     f"{LEAF + n_leaves - 1})")
    return codes


def check_stored(stored) -> None:
    """The forest as the C walks it: every index in range and every tree acyclic (a split
    node's children come after it, as in scikit-learn's node order), so every walk ends in
    a leaf within `splits` steps."""
    c = stored.n_channels
    stored.choice("params", "target", TARGETS)
    if "features" in stored.params:
        stored.choice("params", "features", FEATURES)
    stored.integer("params", "n_channels", c, c)
    if rolling(stored.params):
        stored.integer("params", "window", 1, window.MAX_WINDOW)
    n_trees = stored.integer("params", "n_trees_used", 1, 4096)
    stored.integer("params", "max_samples_used", 2, 32768)
    stored.number("scalars", "threshold")
    stored.number("scalars", "neg_inv_trees", lo=-1, hi=0)
    stored.only_arrays("root", "feature", "split", "left", "right", "leaf", "leaf_value")
    n_features = c * (3 if rolling(stored.params) else 1)
    split = stored.floats("split", (None,))
    n_splits = len(split)
    leaf_value = stored.floats("leaf_value", (None,))
    leaf = stored.indices("leaf", (np.uint8, np.uint16), (None,), len(leaf_value))
    if n_splits > MAX_SPLITS or len(leaf) > MAX_LEAVES:
        stored.fail("arrays", f"hold {n_splits} splits and {len(leaf)} leaves, more than "
                              f"{MAX_SPLITS} of each")
    stored.indices("feature", np.uint8, (n_splits,), n_features)
    _codes(stored, "root", (n_trees,), n_splits, len(leaf))
    for key in ("left", "right"):
        child = _codes(stored, key, (n_splits,), n_splits, len(leaf))
        backwards = (child < LEAF) & (child <= np.arange(n_splits))
        if backwards.any():
            node = int(np.argmax(backwards))
            stored.fail(f"arrays.{key}", f"sends split node {node} to node {child[node]}: a "
                                         f"child must come after its parent, or a walk may "
                                         f"never end")


def footprint(fitted: Fitted, n_channels: int) -> Footprint:
    """Its arrays in flash; with rolling features the window in RAM and the features
    (3 floats per channel) on the stack."""
    shrink = (f"fewer trees ({NAME}.n_trees), smaller ones ({NAME}.max_samples, or "
              f"{NAME}.target=uno)")
    if not rolling(fitted.params):
        return Footprint(array_bytes(fitted), shrink=shrink)
    state = window.state_bytes(n_channels, window.length(fitted))
    return Footprint(array_bytes(fitted), ram=state, stack=12 * n_channels,
                     shrink=f"fewer channels (--columns), a smaller --window, {NAME}.features=raw "
                            f"or {shrink}")


def warm_up_rows(fitted: Fitted) -> int:
    """Rows after a reset that never flag: those of a partial rolling window."""
    return fitted.params["window"] - 1 if rolling(fitted.params) else 0


SPEC = DetectorSpec(NAME, units=("window", "isolation_forest"),  # the window: rolling features
                    kind=kind, schema=check_stored, window=window.length, mutable=("leaf_value",),
                    describe=describe, footprint=footprint, quiet=warm_up_rows)
