"""isolation_forest: scikit-learn's forest exported exactly, boundary rows, sizes (the
detector contract: test_contract.py)."""

import copy
import re
import subprocess

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr
from sklearn.ensemble import IsolationForest

from codegen import bundle as bundle_mod
from codegen.emit import render as emit
from codegen.detectors import isolation_forest as iforest
from codegen.detectors.base import Kind
from codegen.detectors.window import Window
from codegen.errors import UserError
from codegen.training import train as training
from codegen.verify.battery import battery
from host_sim.hostlib import HostModel

from support import (COMPILERS, NAB, assert_parity, compile_objects, count_mismatches,
                     perturbed, require)

NAME = "isolation_forest"


def train(iot, **params):
    return training.train(iot, [NAME], {NAME: params}, seed=0, name="sensors", verbose=False)


FORESTS = {"esp32": {}, "uno": {"target": "uno"}, "rolling": {"features": "rolling"}}


@pytest.fixture(scope="module")
def forests(iot):
    """The default (ESP32-class) forest, the Uno one and the default one on rolling features,
    each with its host build."""
    out = {}
    for kind, params in FORESTS.items():
        b = train(iot, **params)
        out[kind] = (b, HostModel(b))
    return out


@pytest.fixture(scope="module")
def inputs(forests):
    require((NAB / "data").is_dir(), f"the real data {NAB}")
    b, _ = forests["esp32"]
    return battery(b, 100_000, NAB)


def sklearn_forest(fitted, normal, seed=0):
    return IsolationForest(n_estimators=fitted.params["n_trees_used"],
                           max_samples=fitted.params["max_samples_used"], random_state=seed,
                           n_jobs=1).fit(normal)


def boundary(fitted, iot):
    rows, nodes = iforest.boundary_inputs(fitted, np.median(iot.normal, axis=0))
    return rows, nodes


# --- parity -------------------------------------------------------------------------------

@pytest.mark.parametrize("target", ["esp32", "uno"])
def test_parity_on_random_extreme_real_and_boundary_inputs(forests, inputs, iot, target):
    b, host = forests[target]
    rows, _ = boundary(b.detectors[NAME], iot)
    assert assert_parity(b, host, {**inputs, "boundary": rows}, NAME) >= 250_000


def test_rolling_parity_with_state_after_every_sample(forests, inputs, iot):
    """Every score, flag and the window's whole state after every sample (compare asks
    for the state of a streaming detector)."""
    b, host = forests["rolling"]
    assert iforest.kind(b.detectors[NAME]) is Kind.STREAMING
    rows, _ = iforest.root_crossings(b.detectors[NAME], iot.normal)
    assert assert_parity(b, host, {**inputs, "boundary": rows}, NAME) >= 250_000


def test_rolling_non_finite_samples_leave_the_window_alone(forests, iot):
    b, host = forests["rolling"]
    X = iot.normal[:80].copy()
    bad = [0, 30, 31, 65]
    X[bad[0], 0], X[bad[1], 1], X[bad[2], 2], X[bad[3], 0] = np.nan, np.inf, -np.inf, np.nan
    good = np.setdiff1d(np.arange(len(X)), bad)
    clean_scores, _, _ = iforest.score(b.detectors[NAME], X[good])
    for scores, flags, (state_f, state_i) in (
            iforest.score(b.detectors[NAME], X, with_state=True), host.run_with_state(NAME, X)):
        assert np.isposinf(scores[bad]).all() and flags[bad].all()
        assert np.array_equal(scores[good].view(np.uint32), clean_scores.view(np.uint32))
        for i in bad[1:]:
            assert np.array_equal(state_f[i - 1], state_f[i])
            assert np.array_equal(state_i[i - 1], state_i[i])


def rolling_float64(X, window):
    """Mean and population deviation of the last `window` rows (fewer at the start), in
    float64."""
    X = np.asarray(X, dtype=np.float64)
    csum = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(X, axis=0)])
    csq = np.vstack([np.zeros((1, X.shape[1])), np.cumsum(X * X, axis=0)])
    hi = np.arange(1, len(X) + 1)
    n = (hi - np.maximum(0, hi - window))[:, None]
    mean = (csum[hi] - csum[hi - n[:, 0]]) / n
    var = (csq[hi] - csq[hi - n[:, 0]]) / n - mean ** 2
    return mean, np.sqrt(np.maximum(var, 0)), n


def test_rolling_features_are_the_notebooks_mean_and_deviation(iot):
    X = iot.values.astype(np.float32)
    features, _ = iforest.rolling_features(X, 50)
    mean, sd, n = rolling_float64(X, 50)
    assert np.array_equal(features[:, :3], X)
    assert np.abs(features[:, 3::2] - mean).max() < 1e-5
    assert np.abs(features[:, 4::2] - sd).max() < 1e-5
    assert (features[0, 4::2] == 0).all()  # one reading: deviation 0, as the notebook's fillna
    # with a full window, the notebook's sample deviation (pandas, ddof=1) is a constant
    # factor away
    sample = sd[49:] * np.sqrt(50 / 49)
    assert np.abs(features[49:, 4::2] * np.float64(np.sqrt(50 / 49)) - sample).max() < 1e-5


def test_wide_leaf_indices_compile_and_agree(forests, inputs, iot):
    """Forests with more than 256 distinct leaf values index them with uint16."""
    b, _ = forests["uno"]
    wide = copy.deepcopy(b)
    fitted = wide.detectors[NAME]
    fitted.arrays["leaf"] = fitted.arrays["leaf"].astype(np.uint16)
    assert "static const uint16_t sensors_isolation_forest_leaf[" in \
        emit.render(wide)["sensors_isolation_forest.h"]
    assert assert_parity(wide, HostModel(wide), {"random": inputs["random"][:20_000]}, NAME)


def test_trees_that_are_a_single_leaf(iot):
    """Mostly repeated readings: many trees see only equal samples and are a single leaf."""
    from codegen.data.dataset import Dataset

    rng = np.random.default_rng(3)
    values = np.tile(np.float32([[1.0, 2.0]]), (400, 1))
    values[rng.choice(400, 8, replace=False)] += rng.standard_normal((8, 2)).astype(np.float32)
    b = training.train(Dataset("flat", ["a", "b"], values), [NAME],
                       {NAME: {"max_samples": 16, "n_trees": 40}}, seed=0, name="flat",
                       verbose=False)
    roots = b.detectors[NAME].arrays["root"]
    assert (roots >= iforest.LEAF).any() and (roots < iforest.LEAF).any()
    assert assert_parity(b, HostModel(b), battery(b, 20_000), NAME)


@pytest.mark.parametrize("kind", ["uno", "rolling"])
def test_parity_fails_when_a_split_value_moves_one_ulp(forests, iot, kind):
    b, _ = forests[kind]
    fitted = b.detectors[NAME]
    rows, nodes = (iforest.root_crossings(fitted, iot.normal) if kind == "rolling"
                   else boundary(fitted, iot))
    reference, _, _ = iforest.score(fitted, rows)
    # a split whose one-ulp move changes the score of the boundary rows (a split between two
    # leaves of equal path length changes no score)
    index = next(s for s in np.unique(nodes[nodes >= 0])
                 if (iforest.score(perturbed(b, NAME, "split", s).detectors[NAME], rows)[0]
                     != reference).any())
    host = HostModel(perturbed(b, NAME, "split", index))
    assert count_mismatches(b, host, {"boundary": rows}, NAME) > 0
    # only the rows on that split's boundary tell: random readings do not hit it exactly
    assert count_mismatches(b, host, battery(b, 20_000), NAME) == 0


def test_boundary_rows_reach_their_split_and_part_there(forests, iot):
    b, _ = forests["esp32"]
    fitted = b.detectors[NAME]
    rows, nodes = boundary(fitted, iot)
    assert len(rows) == 2 * len(fitted.arrays["split"])
    reached = iforest.leaves(fitted, rows)
    roots = fitted.arrays["root"]
    assert (roots < iforest.LEAF).all() and (np.diff(roots) > 0).all()
    tree = np.searchsorted(roots, nodes, side="right") - 1  # tree t's splits start at root[t]
    pairs = np.arange(0, len(rows), 2)
    assert (reached[pairs, tree[pairs]] != reached[pairs + 1, tree[pairs]]).all()


# --- agreement with scikit-learn ----------------------------------------------------------

@pytest.mark.parametrize("kind", ["esp32", "rolling"])
def test_export_is_scikit_learns_forest(forests, iot, kind):
    fitted = forests[kind][0].detectors[NAME]
    features = iforest.rolling_features(iot.normal, 50)[0][49:] if kind == "rolling" else iot.normal
    exported = iforest._export(sklearn_forest(fitted, features))
    assert all(np.array_equal(exported[k], v) for k, v in fitted.arrays.items())


def test_every_input_reaches_scikit_learns_leaf(forests, inputs, iot):
    fitted = forests["esp32"][0].detectors[NAME]
    forest = sklearn_forest(fitted, iot.normal)
    rows, _ = boundary(fitted, iot)
    X = np.vstack([iot.values, rows] + [x[np.isfinite(x).all(axis=1)][:20_000]
                                        for x in inputs.values()])
    ours = iforest.leaves(fitted, X)
    first_leaf = 0
    for t, estimator in enumerate(forest.estimators_):
        tree = estimator.tree_
        leaf_number = np.cumsum(tree.children_left < 0) - 1  # node id -> leaf of this tree
        theirs = first_leaf + leaf_number[tree.apply(X)]
        assert (ours[:, t] == theirs).all(), f"tree {t}"
        first_leaf += int((tree.children_left < 0).sum())


def test_split_values_decide_every_float32_as_scikit_learn(iot):
    rng = np.random.default_rng(1)
    t = rng.standard_normal(100_000) * 10.0 ** rng.uniform(-30, 30, 100_000)
    t32 = iforest.float32_at_or_below(t)
    assert (t32.astype(np.float64) <= t).all()
    assert (np.nextafter(t32, np.float32(np.inf)).astype(np.float64) > t).all()


@pytest.mark.parametrize("target", ["esp32", "uno"])
def test_ranking_agrees_with_scikit_learns_decision_function(forests, inputs, iot, target):
    fitted = forests[target][0].detectors[NAME]
    forest = sklearn_forest(fitted, iot.normal)
    c = iforest.average_path_length([fitted.params["max_samples_used"]])[0]
    for X in [iot.values] + [x[np.isfinite(x).all(axis=1)] for x in inputs.values()]:
        ours, _, _ = iforest.score(fitted, X)
        decision = forest.decision_function(X)  # lower = more anomalous
        assert spearmanr(ours, -decision).statistic > 0.99999
        top_ours = set(np.argsort(-ours, kind="stable")[:50])
        top_theirs = set(np.argsort(decision, kind="stable")[:50])
        assert len(top_ours & top_theirs) >= 49
        # the same mean path length, but for float32 rounding
        mean_path = -np.log2(-forest.score_samples(X)) * c
        assert np.abs(-ours.astype(np.float64) - mean_path).max() < 1e-4
    ours, _, _ = iforest.score(fitted, iot.values)
    tau = kendalltau(ours, -forest.decision_function(iot.values)).statistic
    assert tau > 0.9999
    # the 50 injected spikes are exactly the 50 samples both rank first
    top = np.argsort(-ours, kind="stable")[:50]
    assert iot.labels[top].all()


def test_leaf_values_are_scikit_learns_path_lengths(forests, iot):
    fitted = forests["uno"][0].detectors[NAME]
    forest = sklearn_forest(fitted, iot.normal)
    ours = fitted.arrays["leaf_value"][fitted.arrays["leaf"]]
    theirs = []
    for t, estimator in enumerate(forest.estimators_):
        is_leaf = estimator.tree_.children_left < 0
        c = iforest.average_path_length(estimator.tree_.n_node_samples)
        assert np.array_equal(c, forest._average_path_length_per_tree[t])
        theirs.append((forest._decision_path_lengths[t] + c - 1.0)[is_leaf])
    assert np.array_equal(ours, np.concatenate(theirs).astype(np.float32))


# --- thresholds and quality ---------------------------------------------------------------

def test_default_threshold_is_the_99th_percentile_of_normal_scores(forests, iot):
    fitted = forests["esp32"][0].detectors[NAME]
    scores, _, _ = iforest.score(fitted, iot.normal)
    assert fitted.scalars["threshold"] == float(np.float32(np.percentile(scores, 99)))


def test_value_threshold_is_the_papers_anomaly_score(iot):
    fitted = train(iot, threshold="value:0.6").detectors[NAME]
    forest = sklearn_forest(fitted, iot.normal)
    _, flags, _ = iforest.score(fitted, iot.values)
    theirs = -forest.score_samples(iot.values) > 0.6
    assert (flags != theirs).sum() <= 2  # rounding at the bound only
    assert flags.sum() >= 50


def test_quality_on_the_notebooks_data(forests, iot):
    from sklearn.metrics import average_precision_score

    for target in ("esp32", "uno"):
        fitted = forests[target][0].detectors[NAME]
        scores, _, _ = iforest.score(fitted, iot.values)
        assert average_precision_score(iot.labels, scores) > 0.99
        assert fitted.report["evaluation"]["recall"] == 1.0


def test_rolling_false_alarms_follow_the_spikes(forests, iot):
    """Grown on windows of normal readings, the rolling forest still ranks the spikes first,
    but a spike stays in its channel's window for W samples and lifts its deviation: nearly
    every false alarm at the 99th percentile of normal scores lies in such a window."""
    from sklearn.metrics import average_precision_score

    fitted = forests["rolling"][0].detectors[NAME]
    scores, flags, _ = iforest.score(fitted, iot.values)
    assert average_precision_score(iot.labels, scores) > 0.95
    assert fitted.report["evaluation"]["recall"] == 1.0
    spikes = np.flatnonzero(iot.labels)
    after = np.zeros(len(flags), dtype=bool)
    for i in spikes:
        after[i + 1:i + 50] = True
    false_alarms = flags & ~iot.labels
    assert false_alarms.sum() > 500
    assert (false_alarms & after).sum() >= 0.95 * false_alarms.sum()


# --- size ---------------------------------------------------------------------------------

AVR = ["avr-gcc", "-std=c99", "-mmcu=atmega328p", "-Os", "-Wall", "-Wextra", "-Wpedantic",
       "-Werror", "-ffp-contract=off"]
USE = """#include "sensors.h"
float use_forest(const float *x);
float use_forest(const float *x)
{
    uint8_t flag;
    float s = sensors_isolation_forest_score(x, &flag);
    return s + (float)flag;
}
"""


USE_ROLLING = """#include "sensors.h"
float use_forest(const float *x);
float use_forest(const float *x)
{
    static sensors_isolation_forest_state state;
    uint8_t flag;
    float s;
    sensors_isolation_forest_reset(&state);
    s = sensors_isolation_forest_update(&state, x, &flag);
    return s + (float)flag + (float)SENSORS_ISOLATION_FOREST_STATE_BYTES;
}
"""


@pytest.fixture(scope="module")
def generated(forests, tmp_path_factory):
    out = {}
    for kind, (b, _) in forests.items():
        path = tmp_path_factory.mktemp(kind)
        emit.write(emit.render(b), path)
        (path / "use.c").write_text(USE_ROLLING if kind == "rolling" else USE)
        out[kind] = path
    return out


def test_uno_forest_fits_and_its_flash_figure_is_exact(forests, generated, tmp_path):
    fitted = forests["uno"][0].detectors[NAME]
    assert fitted.report["flash_bytes"] <= 24 * 1024
    obj = tmp_path / "use.o"
    subprocess.run([*AVR, "-I", str(generated["uno"]), "-c", str(generated["uno"] / "use.c"),
                    "-o", str(obj)], check=True)
    sections = subprocess.run(["avr-size", "-A", str(obj)], capture_output=True, text=True,
                              check=True).stdout
    progmem = int(re.search(r"^\.progmem\.data\s+(\d+)", sections, re.M).group(1))
    assert progmem == fitted.report["flash_bytes"]
    symbols = subprocess.run(["avr-objdump", "-t", str(obj)], capture_output=True, text=True,
                             check=True).stdout
    constants = [s for s in symbols.splitlines() if "sensors_isolation_forest" in s and " O " in s]
    assert len(constants) == 8 and all(".progmem" in s for s in constants), "\n".join(constants)


def test_scorer_keeps_no_ram_and_a_small_stack_on_avr(generated, tmp_path):
    source = generated["uno"] / "mcua_isolation_forest.c"
    obj = tmp_path / "forest.o"
    subprocess.run([*AVR, "-fstack-usage", "-I", str(generated["uno"]), "-c", str(source),
                    "-o", str(obj)], check=True)
    frames = {line.split()[0].rsplit(":", 1)[1]: int(line.split()[1])
              for line in (tmp_path / "forest.su").read_text().splitlines()}
    assert frames["mcua_isolation_forest_score"] <= 64 and max(frames.values()) <= 64, frames
    sizes = subprocess.run(["avr-size", str(obj)], capture_output=True, text=True,
                           check=True).stdout.split("\n")[1].split()
    assert sizes[1] == "0" and sizes[2] == "0"  # no .data, no .bss


@pytest.mark.parametrize("target", ["uno", "esp32"])
def test_rolling_ram_figure_is_the_state_size(iot, target, tmp_path):
    """The window state: per channel six sums and W readings, and the counters (10 bytes on
    AVR, 12 with 32-bit alignment).  A forest small enough for an AVR build."""
    b = train(iot, features="rolling", window=20, n_trees=10, max_samples=32)
    path = tmp_path / "include"
    emit.write(emit.render(b), path)
    (path / "use.c").write_text(USE_ROLLING)
    compiler = AVR if target == "uno" else ["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4",
                                            "-mthumb", "-Os"]
    obj = tmp_path / "use.o"
    subprocess.run([*compiler, "-I", str(path), "-c", str(path / "use.c"), "-o", str(obj)],
                   check=True)
    size = "avr-size" if target == "uno" else "arm-none-eabi-size"
    sections = subprocess.run([size, "-A", str(obj)], capture_output=True, text=True,
                              check=True).stdout
    bss = int(re.search(r"^\.bss\s+(\d+)", sections, re.M).group(1))
    fitted = b.detectors[NAME]
    assert bss == iforest.ram_bytes(fitted.params, iforest.TARGETS[target]) == 3 * (24 + 80) + (
        11 if target == "uno" else 12)


def test_esp32_flash_figure_bounds_a_32_bit_build(forests, generated, tmp_path):
    fitted = forests["esp32"][0].detectors[NAME]
    obj = tmp_path / "use.o"
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb", "-Os",
                    "-I", str(generated["esp32"]), "-c", str(generated["esp32"] / "use.c"),
                    "-o", str(obj)], check=True)
    sections = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], capture_output=True,
                              text=True, check=True).stdout
    rodata = sum(int(m) for m in re.findall(r"^\.rodata\S*\s+(\d+)", sections, re.M))
    assert rodata <= fitted.report["flash_bytes"] <= rodata + 8 * 3


# --- generated C (every compiler for the contract's forests: test_contract.py) -----------

@pytest.mark.parametrize("compiler", [c for c in COMPILERS if not c.startswith("avr")])
@pytest.mark.parametrize("kind", ["esp32", "rolling"])
def test_forests_beyond_the_uno_compile_warning_free(generated, kind, compiler, tmp_path):
    compile_objects(compiler, generated[kind], tmp_path)


def test_esp32_forest_stops_an_avr_build(generated, tmp_path):
    result = subprocess.run([*AVR, "-I", str(generated["esp32"]), "-c",
                             str(generated["esp32"] / "use.c"), "-o", str(tmp_path / "x.o")],
                            capture_output=True, text=True)
    assert result.returncode and "retrain with --set isolation_forest.target=uno" in result.stderr


def test_bundle_round_trip_generates_the_same_files(forests, tmp_path):
    b, _ = forests["uno"]
    loaded = bundle_mod.load(bundle_mod.save(b, tmp_path / "model"))
    assert emit.render(loaded) == emit.render(b)


# --- bad input ----------------------------------------------------------------------------

def test_forest_too_large_for_the_uno_is_refused_at_train_time(iot):
    with pytest.raises(UserError, match=r"needs \d+ bytes of flash, more than the 24576 bytes "
                                        r"allowed on target uno"):
        train(iot, target="uno", n_trees=100, max_samples=256)


def test_forest_too_large_for_the_uno_is_refused_at_generate_time(forests):
    b = copy.deepcopy(forests["esp32"][0])
    b.detectors[NAME].params["target"] = "uno"
    flash = b.detectors[NAME].report["flash_bytes"]
    with pytest.raises(UserError, match=r"needs \d+ bytes of flash, more than the 24576"):
        emit.render(b)
    assert flash > 24576


def test_constant_channel_is_refused(iot):
    X = iot.normal.copy()
    X[:, 1] = 2.5
    with pytest.raises(UserError, match="'sensor_2' is constant"):
        iforest.fit(X, {}, 0, False, iot.channels)


@pytest.mark.parametrize("rows", [0, 1, 15])
def test_too_few_normal_rows_are_refused(iot, rows):
    with pytest.raises(UserError, match=f"at least 16 normal rows.*got {rows}"):
        iforest.fit(iot.normal[:rows], {}, 0, False, iot.channels)


def test_fewer_full_windows_than_the_minimum_are_refused(iot):
    with pytest.raises(UserError, match="64 normal rows give 15 full windows of 50 for the "
                                        "rolling features, and the forest grows on full "
                                        "windows only; it needs at least 16"):
        iforest.fit(iot.normal[:64], {"features": "rolling"}, 0, False, iot.channels)
    assert iforest.fit(iot.normal[:65], {"features": "rolling"}, 0, False,
                       iot.channels).report["leaves"] > 0


def test_the_warm_up_of_a_rolling_window_neither_trains_nor_flags(iot):
    """Rows of a partial window (the first W-1 after a reset) used to set the percentile
    threshold: on 400 training rows the top ten scores were rows 0-10 (issue 17, item 1).
    Now they are scored but never flag, and p99 flags 1 % of the full-window rows."""
    normal = iot.normal[:400]
    fitted = iforest.fit(normal, {"features": "rolling"}, 0, False, iot.channels)
    scored = iforest.score(fitted, normal)
    assert not scored.flags[:49].any() and np.isfinite(scored.scores[:49]).all()
    assert 0 < scored.flags[49:].sum() <= 4  # about 1 % of 351
    assert iforest.SPEC.quiet(fitted) == 49
    state = Window(len(iot.channels), 50)  # resumed mid-warm-up: the same flags
    parts = [iforest.score(fitted, rows, state=state).flags
             for rows in (normal[:30], normal[30:])]
    assert np.array_equal(np.concatenate(parts), scored.flags)


def test_rolling_features_do_not_fit_the_uno_budget(iot):
    with pytest.raises(UserError, match=r"the rolling features keep 683 bytes of RAM \(a window "
                                        r"of 50 readings of 3 channels\), more than the 64 "
                                        r"bytes allowed on target uno"):
        train(iot, target="uno", features="rolling")


def test_rolling_forest_too_large_for_the_uno_is_refused_at_generate_time(forests):
    b = copy.deepcopy(forests["rolling"][0])
    b.detectors[NAME].params["target"] = "uno"
    with pytest.raises(UserError, match=r"needs \d+ bytes of flash, more than the 24576"):
        emit.render(b)
    b.detectors[NAME].params["n_channels"] = 3
    b.detectors[NAME].arrays = forests["uno"][0].detectors[NAME].arrays  # flash fits now
    with pytest.raises(UserError, match=r"keep 683 bytes of RAM .* more than the 64 bytes "
                                        r"allowed on target uno"):
        emit.render(b)


def test_constant_channel_is_refused_with_rolling_features(iot):
    X = iot.normal.copy()
    X[:, 2] = -1.0
    with pytest.raises(UserError, match="'sensor_3' is constant"):
        iforest.fit(X, {"features": "rolling"}, 0, False, iot.channels)


@pytest.mark.parametrize("params, message", [
    ({"target": "mega"}, "target must be one of uno, esp32"),
    ({"n_trees": 0}, "n_trees must be 'auto' or an integer from 1"),
    ({"max_samples": 1}, "max_samples must be 'auto' or an integer from 2"),
    ({"max_samples": 6000}, "more than the 4950 normal rows"),
    ({"threshold": "value:3"}, "0 < s < 1"),
    ({"trees": 3}, "has no parameter trees"),
    ({"features": "fft"}, "features must be one of raw, rolling, not 'fft'"),
    ({"features": "rolling", "window": 0}, "window must be an integer from 1 to 4096"),
])
def test_bad_parameters_are_refused(iot, params, message):
    with pytest.raises(UserError, match=message):
        iforest.fit(iot.normal, params, 0, False, iot.channels)


def test_more_than_255_features_are_refused():
    X = np.random.default_rng(0).standard_normal((100, 86)).astype(np.float32)
    channels = [f"c{i}" for i in range(86)]
    with pytest.raises(UserError, match=r"at most 255 features .* 86 channels give 258 "
                                        r"\(rolling features\): pick fewer with --columns"):
        iforest.fit(X, {"features": "rolling"}, 0, False, channels)
    assert iforest.fit(X, {"n_trees": 2}, 0, False, channels).params["n_channels"] == 86


def test_integer_comparison_is_ieee_less_equal(tmp_path):
    """mcua_less_equal, the scorer's split test, against numpy's float32 <= on every pair of
    special values and on random bit patterns (NaN excluded: features are finite)."""
    rng = np.random.default_rng(4)
    specials = np.array([0.0, -0.0, 1e-45, -1e-45, 1.1754942e-38, -1.1754942e-38, 1.0, -1.0,
                         3.4028235e38, -3.4028235e38, np.inf, -np.inf], dtype=np.float32)
    bits = rng.integers(0, 2**32, 4000, dtype=np.uint64).astype(np.uint32).view(np.float32)
    values = np.concatenate([specials, bits[~np.isnan(bits)][:2000]])
    with np.errstate(over="ignore"):  # the largest float's neighbour is +Inf
        above = np.nextafter(values, np.float32(np.inf))
    a = np.concatenate([np.repeat(specials, len(specials)), values[:-1], values])
    b = np.concatenate([np.tile(specials, len(specials)), values[1:], above])
    pairs = np.stack([a, b], axis=1).view(np.uint32)
    (tmp_path / "le.c").write_text(
        '#include <stdio.h>\n#include "mcua_common.h"\nstatic const uint32_t p[][2] = {\n'
        + "".join(f"{{0x{x:08x}UL, 0x{y:08x}UL}},\n" for x, y in pairs) + "};\n"
        "int main(void) { size_t i; for (i = 0; i < sizeof p / sizeof p[0]; ++i) {"
        " float x, y; memcpy(&x, &p[i][0], 4); memcpy(&y, &p[i][1], 4);"
        " putchar('0' + mcua_less_equal(x, y)); } return 0; }\n")
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Wextra", "-Werror", "-I", str(emit.RUNTIME),
                    str(tmp_path / "le.c"), "-o", str(tmp_path / "le")], check=True)
    got = subprocess.run([str(tmp_path / "le")], capture_output=True, text=True).stdout
    assert got == "".join("1" if x <= y else "0" for x, y in zip(a, b))
