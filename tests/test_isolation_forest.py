import copy
import re
import shutil
import subprocess

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr
from sklearn.ensemble import IsolationForest

from codegen import bundle as bundle_mod
from codegen import emit, parity, training
from codegen.detectors import isolation_forest as iforest
from codegen.errors import UserError
from host_sim.hostlib import HostModel

from conftest import NAB, assert_parity, count_mismatches, perturbed

NAME = "isolation_forest"


def train(iot, **params):
    return training.train(iot, [NAME], {NAME: params}, seed=0, name="sensors", verbose=False)


@pytest.fixture(scope="module")
def forests(iot):
    """The default (ESP32-class) forest and the Uno one, each with its host build."""
    out = {}
    for target in ("esp32", "uno"):
        b = train(iot, target=target)
        out[target] = (b, HostModel(b))
    return out


@pytest.fixture(scope="module")
def inputs(forests):
    assert (NAB / "data").is_dir(), f"real data missing: {NAB}"
    b, _ = forests["esp32"]
    return parity.battery(b, 100_000, NAB)


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
    battery = {**inputs, "boundary": rows}
    assert assert_parity(b, host, battery, NAME) >= 250_000


def test_non_finite_input_scores_infinity_and_is_flagged(forests):
    b, host = forests["uno"]
    X = np.array([[np.nan, 0, 0], [0, np.inf, 0], [0, 0, -np.inf], [0, 0, 0]], np.float32)
    for scores, flags in (host.score(NAME, X), iforest.score(b.detectors[NAME], X)):
        assert np.isposinf(scores[:3]).all() and flags[:3].all()
        assert np.isfinite(scores[3]) and scores[3] < 0


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
    from codegen.data import Dataset

    rng = np.random.default_rng(3)
    values = np.tile(np.float32([[1.0, 2.0]]), (400, 1))
    values[rng.choice(400, 8, replace=False)] += rng.standard_normal((8, 2)).astype(np.float32)
    b = training.train(Dataset("flat", ["a", "b"], values), [NAME],
                       {NAME: {"max_samples": 16, "n_trees": 40}}, seed=0, name="flat",
                       verbose=False)
    roots = b.detectors[NAME].arrays["root"]
    assert (roots >= iforest.LEAF).any() and (roots < iforest.LEAF).any()
    assert assert_parity(b, HostModel(b), parity.battery(b, 20_000), NAME)


def test_parity_fails_when_a_split_value_moves_one_ulp(forests, iot):
    b, _ = forests["uno"]
    fitted = b.detectors[NAME]
    rows, nodes = boundary(fitted, iot)
    reference, _ = iforest.score(fitted, rows)
    # a split whose one-ulp move changes the score of the boundary rows (a split between two
    # leaves of equal path length changes no score)
    index = next(s for s in range(len(fitted.arrays["split"]))
                 if (iforest.score(perturbed(b, NAME, "split", s).detectors[NAME], rows)[0]
                     != reference).any())
    host = HostModel(perturbed(b, NAME, "split", index))
    battery = parity.battery(b, 20_000)
    assert count_mismatches(b, host, {"boundary": rows}, NAME) > 0
    # only the rows on that split's boundary tell: random readings do not hit it exactly
    assert count_mismatches(b, host, battery, NAME) == 0


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

def test_export_is_scikit_learns_forest(forests, iot):
    fitted = forests["esp32"][0].detectors[NAME]
    exported = iforest._export(sklearn_forest(fitted, iot.normal))
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
        ours, _ = iforest.score(fitted, X)
        decision = forest.decision_function(X)  # lower = more anomalous
        assert spearmanr(ours, -decision).statistic > 0.99999
        top_ours = set(np.argsort(-ours, kind="stable")[:50])
        top_theirs = set(np.argsort(decision, kind="stable")[:50])
        assert len(top_ours & top_theirs) >= 49
        # the same mean path length, but for float32 rounding
        mean_path = -np.log2(-forest.score_samples(X)) * c
        assert np.abs(-ours.astype(np.float64) - mean_path).max() < 1e-4
    ours, _ = iforest.score(fitted, iot.values)
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
    scores, _ = iforest.score(fitted, iot.normal)
    assert fitted.scalars["threshold"] == float(np.float32(np.percentile(scores, 99)))


def test_value_threshold_is_the_papers_anomaly_score(iot):
    fitted = train(iot, threshold="value:0.6").detectors[NAME]
    forest = sklearn_forest(fitted, iot.normal)
    _, flags = iforest.score(fitted, iot.values)
    theirs = -forest.score_samples(iot.values) > 0.6
    assert (flags != theirs).sum() <= 2  # rounding at the bound only
    assert flags.sum() >= 50


def test_quality_on_the_notebooks_data(forests, iot):
    from sklearn.metrics import average_precision_score

    for target in forests:
        fitted = forests[target][0].detectors[NAME]
        scores, _ = iforest.score(fitted, iot.values)
        assert average_precision_score(iot.labels, scores) > 0.99
        assert fitted.report["evaluation"]["recall"] == 1.0


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


@pytest.fixture(scope="module")
def generated(forests, tmp_path_factory):
    out = {}
    for target, (b, _) in forests.items():
        path = tmp_path_factory.mktemp(target)
        emit.write(emit.render(b), path)
        (path / "use.c").write_text(USE)
        out[target] = path
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
    frame = int((tmp_path / "forest.su").read_text().split()[1])
    assert frame <= 64
    sizes = subprocess.run(["avr-size", str(obj)], capture_output=True, text=True,
                           check=True).stdout.split("\n")[1].split()
    assert sizes[1] == "0" and sizes[2] == "0"  # no .data, no .bss


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


# --- generated C --------------------------------------------------------------------------

COMPILERS = {
    "gcc": ["gcc", "-std=c99"],
    "clang": ["clang", "-std=c99"],
    "g++": ["g++", "-x", "c++", "-std=c++11"],
    "avr-gcc": ["avr-gcc", "-std=c99", "-mmcu=atmega328p"],
    "avr-g++": ["avr-g++", "-x", "c++", "-std=c++11", "-mmcu=atmega328p"],
    "arm-none-eabi-gcc": ["arm-none-eabi-gcc", "-std=c99", "-mcpu=cortex-m4", "-mthumb",
                          "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"],
}


@pytest.mark.parametrize("compiler", COMPILERS)
def test_compiles_warning_free(generated, compiler, tmp_path):
    command = COMPILERS[compiler]
    assert shutil.which(command[0]), f"{command[0]} is not installed (make setup installs it)"
    for target, path in generated.items():
        if compiler.startswith("avr") and target != "uno":
            continue  # refused with #error: test_esp32_forest_stops_an_avr_build
        for source in ("use.c", "mcua_isolation_forest.c"):
            result = subprocess.run([*command, "-Wall", "-Wextra", "-Wpedantic", "-Werror",
                                     "-ffp-contract=off", "-Os", "-I", str(path), "-c",
                                     str(path / source), "-o", str(tmp_path / "x.o")],
                                    capture_output=True, text=True)
            assert result.returncode == 0 and not result.stderr, f"{target} {source}:\n" \
                                                                 f"{result.stderr}"


def test_esp32_forest_stops_an_avr_build(generated, tmp_path):
    result = subprocess.run([*AVR, "-I", str(generated["esp32"]), "-c",
                             str(generated["esp32"] / "use.c"), "-o", str(tmp_path / "x.o")],
                            capture_output=True, text=True)
    assert result.returncode and "retrain with --set isolation_forest.target=uno" in result.stderr


def test_every_float_literal_has_an_f_suffix(generated):
    number = re.compile(r"(?<![\w.])(\d+\.\d*(?:e[+-]?\d+)?|\d+e[+-]?\d+)(\w?)", re.I)
    for path in generated["esp32"].iterdir():
        if path.suffix in (".c", ".h"):
            code = re.sub(r"/\*.*?\*/|//[^\n]*|\"[^\"\n]*\"", "", path.read_text(), flags=re.S)
            bare = [m.group(0) for m in number.finditer(code) if m.group(2).lower() != "f"]
            assert not bare, f"{path.name}: {bare}"


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


@pytest.mark.parametrize("params, message", [
    ({"target": "mega"}, "target must be one of uno, esp32"),
    ({"n_trees": 0}, "n_trees must be 'auto' or an integer from 1"),
    ({"max_samples": 1}, "max_samples must be 'auto' or an integer from 2"),
    ({"max_samples": 6000}, "more than the 4950 normal rows"),
    ({"threshold": "value:3"}, "0 < s < 1"),
    ({"trees": 3}, "has no parameter trees"),
])
def test_bad_parameters_are_refused(iot, params, message):
    with pytest.raises(UserError, match=message):
        iforest.fit(iot.normal, params, 0, False, iot.channels)
