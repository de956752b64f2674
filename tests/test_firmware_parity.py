"""On-target parity: the firmware built with PlatformIO and run in simavr (uno) or qemu
(cortex_m4f, rv32imc) prints, for every detector and sample, the Python reference's score
bits and flag; bad input on the device leaves the detectors' state alone; the bench and
verify --target commands work.  Tests assert behaviour, never timing.
"""

import dataclasses
import importlib.util
import json
import subprocess

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen import cli
from codegen.bench import firmware as bench
from codegen.bench import peers
from codegen.detectors import DETECTORS, get
from codegen.errors import UserError
from codegen.detectors import isolation_forest as iforest
from codegen.firmware import OFFLINE_ENVS, lines, memory
from codegen.training import train as training
from codegen.verify.battery import battery
from codegen.verify.compare import compare
from codegen.verify.engines import PythonEngine
from host_sim import targets
from host_sim.firmware_target import Target, TargetEngine
from support import (NAB, ROOT, RememberedReference, only, perturbed, reference, require,
                     require_env)
from test_zscore import boundary_inputs

pytestmark = pytest.mark.firmware

F32 = np.float32
# Random and real inputs per detector (extreme: half as many); every sample goes through
# every detector.  The Uno holds ~1,700 three-channel samples per build: ~16 builds.
SAMPLES = {"uno": 10_000, "cortex_m4f": 100_000, "rv32imc": 100_000}
HAVE_AUTOENCODER = all(importlib.util.find_spec(m) for m in ("tensorflow", "tflite_micro"))


# Detectors with an on-target test of their own (the forests, with their boundary rows).
OWN_TEST = {"isolation_forest"}
# Parameters of the others where their defaults cost time parity does not need, or test
# less (mahalanobis: Ledoit-Wolf shrinks the iot covariance to a diagonal).
QUICK = {"autoencoder": {"epochs": 4}, "mahalanobis": {"covariance": "empirical"}}


@pytest.fixture(scope="module")
def on_target(iot, iot_bundle):
    """The iot bundle's detectors and every other registered one but those in OWN_TEST,
    trained with its defaults and QUICK (the int8 autoencoder: channel 0, 20-8-4-8-20, when
    the [autoencoder] extra is installed)."""
    others = [d for d in DETECTORS if d not in iot_bundle.detectors and d not in OWN_TEST
              and (HAVE_AUTOENCODER or d != "autoencoder")]
    if not others:
        return iot_bundle
    more = training.train(iot, others, {d: QUICK.get(d, {}) for d in others}, seed=0,
                          name="sensors", verbose=False)
    return dataclasses.replace(iot_bundle, detectors={**iot_bundle.detectors, **more.detectors})


def on(bundle, env, workdir):
    require_env(env)
    return TargetEngine(bundle, Target(env, workdir))


def streaming(bundle, name):
    return get(name).SPEC.streaming(bundle.detectors[name])


def subnormal_stream(n, seed=1):
    """Zero stretches (a window's mean and deviation at their floor), then runs of subnormal
    readings on every channel: deviations, z-scores and window sums land in the subnormal
    range, where avr-libc's division rounds wrongly (see
    test_avr_libc_operations_the_runtime_relies_on)."""
    rng = np.random.default_rng(seed)
    blocks = []
    while sum(len(b) for b in blocks) < n:
        blocks.append(np.zeros((60, 3), dtype=F32))
        tiny = 10.0 ** rng.uniform(-45, -38, size=(300, 3)) * rng.choice([-1, 1], size=(300, 3))
        blocks.append(tiny.astype(F32))
    return np.vstack(blocks)[:n]


def assert_same(result):
    details = "\n".join(m.describe() for m in result.mismatches)
    assert result.ok, f"{result.table()}\n{details}"


@pytest.fixture(scope="module")
def remembered():
    """bundle -> its RememberedReference, one per bundle for the whole module: the two qemu
    targets run the same chunks."""
    references = {}
    return lambda bundle: references.setdefault(id(bundle), RememberedReference(bundle))


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_every_score_bit_and_flag_match_on_target(env, on_target, remembered, tmp_path):
    engine = on(on_target, env, tmp_path)
    inputs = battery(on_target, SAMPLES[env], NAB)
    inputs["subnormal"] = subnormal_stream(2_000)
    result = compare(on_target, engine, inputs, flag_api=False,
                     reference=remembered(on_target))
    assert_same(result)
    for detector in on_target.detectors:
        compared = sum(r.inputs for r in result.results if r.detector == detector)
        assert compared >= 10_000, (detector, compared)


# After platformio.ini's flags, as a user's project might build: GNU C (ISO C99 turns
# contraction off by itself), -O2, and contraction wherever GCC may.  Only the runtime's
# own pragmas (mcua_common.h) keep it exact (tests/test_fp_contract.py).
FUSING_FLAGS = ("-std=gnu99", "-O2", "-ffp-contract=fast")


def test_every_score_bit_and_flag_match_on_a_cortex_m4f_build_that_may_fuse(on_target,
                                                                           tmp_path):
    require_env("cortex_m4f")
    engine = TargetEngine(on_target, Target("cortex_m4f", tmp_path, FUSING_FLAGS))
    inputs = battery(on_target, 50_000, NAB)
    inputs["subnormal"] = subnormal_stream(2_000)
    result = compare(on_target, engine, inputs, flag_api=False)
    assert_same(result)
    for detector in on_target.detectors:
        assert sum(r.inputs for r in result.results if r.detector == detector) >= 100_000


# Random and real inputs per forest (extreme: half as many), beside the boundary rows.
FOREST_SAMPLES = {"uno": 5_000, "cortex_m4f": 50_000, "rv32imc": 50_000}


@pytest.fixture(scope="module")
def forests(iot):
    """issue 6's forests: the Uno's (raw channels, target uno) and, for the 32-bit targets,
    the default one on raw channels and on rolling features."""
    def forest(**params):
        return training.train(iot, ["isolation_forest"], {"isolation_forest": params}, seed=0,
                              name="sensors", verbose=False)

    return {"uno": [forest(target="uno")], "32-bit": [forest(), forest(features="rolling")]}


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_isolation_forest_on_target(env, forests, iot, remembered, tmp_path):
    """Every score bit and flag of the forests on target, with the rows that sit exactly on
    every split value and one ulp above it (raw channels), or that cross every root split on
    a raw channel within a stream (rolling features)."""
    require_env(env)
    for i, b in enumerate(forests["uno" if env == "uno" else "32-bit"]):
        fitted = b.detectors["isolation_forest"]
        inputs = battery(b, FOREST_SAMPLES[env], NAB)
        if streaming(b, "isolation_forest"):
            inputs["boundary"], _ = iforest.root_crossings(fitted, iot.normal)
        else:
            inputs["boundary"], _ = iforest.boundary_inputs(fitted, np.median(iot.normal, axis=0))
        result = compare(b, on(b, env, tmp_path / str(i)), inputs, reference=remembered(b))
        assert_same(result)
        compared = sum(r.inputs for r in result.results)
        assert compared == sum(len(x) for x in inputs.values()) >= 14_000


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_zscore_flag_api_on_target(env, iot_bundle, tmp_path):
    """<model>_zscore_flag on target: the reference's flag for random, extreme and real
    inputs and at both ends of every channel's accepted interval (and a score of 0)."""
    zscore = only(iot_bundle, "zscore")
    inputs = battery(zscore, 2_000, NAB)
    inputs["boundary"] = boundary_inputs(zscore.detectors["zscore"], len(zscore.channels))
    result = compare(zscore, on(zscore, env, tmp_path), inputs)
    assert_same(result)
    flag_api = [r for r in result.results if r.detector == "zscore flag"]
    assert sum(r.inputs for r in flag_api) == sum(len(x) for x in inputs.values())


@pytest.fixture(scope="module")
def streaming_modes(iot):
    """streaming_zscore in each adaptation mode, with calibration and memory short enough
    for a baseline to be learnt within one Uno run."""
    params = {"window": {}, "frozen": {"calibration": 200}, "slow": {"memory": 200}}
    return [training.train(iot, ["streaming_zscore"],
                           {"streaming_zscore": {"mode": mode, **more}}, seed=0,
                           name="sensors", verbose=False)
            for mode, more in params.items()]


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_streaming_zscore_flag_update_on_target(env, streaming_modes, tmp_path):
    """<model>_streaming_zscore_flag_update on target, in every adaptation mode: the
    reference's flag for random, extreme and real inputs (the firmware's flag-only build;
    the state it leaves is compared on the host, test_streaming_zscore.py)."""
    for i, b in enumerate(streaming_modes):
        inputs = battery(b, 1_000, NAB)
        result = compare(b, on(b, env, tmp_path / str(i)), inputs)
        assert_same(result)
        flag_api = [r for r in result.results if r.detector == "streaming_zscore flag"]
        assert sum(r.inputs for r in flag_api) == sum(len(x) for x in inputs.values())


@pytest.mark.tensorflow
def test_the_autoencoder_runs_on_target(on_target):
    require(HAVE_AUTOENCODER, "the [autoencoder] extra (tensorflow-cpu, tflite-micro)")
    assert "autoencoder" in on_target.detectors  # so the parity test above covers it


@pytest.fixture(scope="module")
def autoencoders(iot):
    """The autoencoder's other shapes than on_target's (one channel, the newest row's
    error): windows of the three iot channels, and one channel scored by its whole window."""
    require(HAVE_AUTOENCODER, "the [autoencoder] extra (tensorflow-cpu, tflite-micro)")
    return [training.train(iot, ["autoencoder"], {"autoencoder": {"epochs": 4, **params}},
                           seed=0, name="sensors", verbose=False)
            for params in ({"channels": "all"}, {"pointwise": "window"})]


@pytest.mark.tensorflow
@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_autoencoder_of_several_channels_and_of_whole_windows_on_target(env, autoencoders,
                                                                        remembered, tmp_path):
    """Every score bit and flag on target of the windows of three channels and of one
    channel's whole window (the old default)."""
    for i, b in enumerate(autoencoders):
        inputs = battery(b, SAMPLES[env], NAB)
        result = compare(b, on(b, env, tmp_path / str(i)), inputs, reference=remembered(b))
        assert_same(result)
        assert sum(r.inputs for r in result.results) >= 2.5 * SAMPLES[env]


def test_verify_reports_a_one_ulp_difference(iot_bundle, tmp_path):
    """The firmware of a bundle whose zscore mean moved one ulp, against the reference of
    the bundle itself."""
    engine = on(perturbed(iot_bundle, "zscore", "mean", 1), "rv32imc", tmp_path)
    inputs = {"random": battery(iot_bundle, 500)["random"]}
    result = compare(iot_bundle, engine, inputs)
    assert not result.ok
    assert {r.detector for r in result.results if not r.ok} == {"zscore"}
    assert result.mismatches and result.mismatches[0].detector == "zscore"
    assert "rv32imc" in result.mismatches[0].describe()


def _normal_rows(bundle, n, seed=0):
    return bench.readings(bundle, n, seed=seed)


# Static RAM a build holds beyond memory's estimate: the C library's data and padding
# (measured: 25 B on the Uno, about 300 B on the 32-bit targets).
RAM_SLACK = {"uno": 64, "cortex_m4f": 512, "rv32imc": 512}


def assert_estimate_bounds(bundle, env, size):
    """The calibration of codegen/firmware/memory.py on a real build: its static RAM is a
    lower bound within RAM_SLACK of the linker's, its flash a lower bound."""
    flash, ram = size
    parts = memory.parts(bundle, env, app=True)
    static = sum(p.ram for p in parts)
    assert static <= ram <= static + RAM_SLACK[env], (static, ram)
    assert memory.needs(parts)[1] <= flash


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_bad_samples_leave_the_state_alone(env, on_target, tmp_path):
    """NaN/Inf samples score +Inf, are flagged and leave every streaming detector as if they
    had never come; before min_count no finite sample is flagged, not even a huge outlier."""
    require_env(env)
    rows = _normal_rows(on_target, 120)
    rows[3] = [1e6, -1e6, 1e6]  # before min_count
    bad = [25, 26, 60, 61, 62, 90]
    for i, value in zip(bad, [np.nan, np.inf, -np.inf, np.nan, -np.inf, np.nan]):
        rows[i, :] = value
    target = Target(env, tmp_path)
    elf = target.build(on_target, rows)
    assert_estimate_bounds(on_target, env, target.size(elf))
    run = target.run(on_target, elf)

    want_scores, want_flags = reference(on_target, rows)
    good = np.setdiff1d(np.arange(len(rows)), bad)
    clean_scores, clean_flags = reference(on_target, rows[good])
    assert (run.scores.view(np.uint32) == want_scores.view(np.uint32)).all()
    assert (run.flags == want_flags).all()
    for d, name in enumerate(on_target.detectors):
        assert (run.scores[d, bad] == np.inf).all() and run.flags[d, bad].all(), name
        if streaming(on_target, name):
            assert (run.scores[d, good].view(np.uint32) == clean_scores[d].view(np.uint32)).all()
            assert (run.flags[d, good] == clean_flags[d]).all(), name
            min_count = on_target.detectors[name].params["min_count"]
            assert not run.flags[d, good[good < min_count]].any(), name
            assert np.isfinite(run.scores[d, 3]), name


def _hex(row):
    return ",".join(f"x{b:08x}" for b in np.asarray(row, dtype=F32).view(np.uint32))


MALFORMED = [
    ("S 1,2", "expected 3 values"),
    ("S 1,2,3,4", "expected 3 values"),
    ("S", "expected 3 values"),
    ("S 1,,3", "bad value"),
    ("S 1,abc,3", "bad value"),
    ("S x7fc0000g,1,2", "bad value"),
    ("S 1,2,3junk", "expected 3 values"),
    ("s 1,2,3", "unknown command"),
    ("Q", "unknown command"),
    ("S " + ",".join(["1.25"] * 40), "line too long"),
]


@pytest.mark.firmware(group="uno")
def test_serial_protocol_on_the_uno(on_target, tmp_path):
    """The line protocol in simavr: valid samples (exact bits, decimals, NaN/Inf) get one R
    line per detector equal to the reference; every malformed line gets one E line and
    changes nothing; Z restarts learning."""
    require_env("uno")
    rows = _normal_rows(on_target, 40, seed=3)
    rows[2] = [1e6, -1e6, 1e6]  # before min_count
    lines, segments = [], [[]]  # segments: the valid samples between resets
    for i, row in enumerate(rows):
        if i == 25:
            lines.append("Z")
            segments.append([])
        if i % 4 == 1:
            lines.append(MALFORMED[(i // 4) % len(MALFORMED)][0])
        lines.append(f"S {_hex(row)}")
        segments[-1].append(row)
    # Decimal values that parse exactly, with blanks and a CR; NaN and Inf by name.
    decimal = [("S 1.5, -2.25 ,0.5\r", [1.5, -2.25, 0.5]),
               ("S nan,inf,-inf", [np.nan, np.inf, -np.inf]),
               ("S 0.25,1e3,-4", [0.25, 1e3, -4.0])]
    for text, row in decimal:
        lines.append(text)
        segments[-1].append(np.array(row, dtype=F32))
    lines += [m[0] for m in MALFORMED]

    target = Target("uno", tmp_path)
    run = target.run(on_target, target.build(on_target), lines)

    n_det = len(on_target.detectors)
    answers_per_sample = []  # the R lines expected for each valid S line, in order
    for segment in segments:
        scores, flags = reference(on_target, segment)
        answers_per_sample += [[f"R {d} {s} {int(scores[d, s].view(np.uint32)):08x} "
                                f"{int(flags[d, s])}" for d in range(n_det)]
                               for s in range(len(segment))]
    assert len(answers_per_sample) == len(rows) + len(decimal)
    answers, samples = iter(run.answers), iter(answers_per_sample)
    malformed = dict(MALFORMED)
    for line in lines:
        if line == "Z":
            assert next(answers) == "OK"
        elif line in malformed:
            assert next(answers).startswith("E " + malformed[line]), line
        else:
            assert [next(answers) for _ in range(n_det)] == next(samples), line
    assert list(answers) == []


@pytest.mark.firmware(group="uno")
def test_avr_libc_operations_the_runtime_relies_on(tmp_path):
    """avr-libc (Debian 2.0.0) against numpy: + - * sqrtf and the comparisons are correctly
    rounded everywhere, division whenever the quotient is not subnormal.  A subnormal
    quotient comes out 1 ulp low in ~1 % of cases, so the runtime never divides where the
    quotient can be subnormal (mcua_window.h, mcua_streaming_zscore.c)."""
    require_env("uno")
    rng = np.random.default_rng(7)
    n = 600
    a = np.concatenate([
        rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(F32),  # any bits
        (rng.standard_normal(n) * 10.0 ** rng.integers(-45, 38, n)).astype(F32),
        (rng.standard_normal(n) * 10.0 ** rng.integers(-30, -5, n)).astype(F32),
    ])
    b = np.concatenate([
        rng.integers(0, 2**32, n, dtype=np.uint64).astype(np.uint32).view(F32),
        (rng.standard_normal(n) * 10.0 ** rng.integers(-45, 38, n)).astype(F32),
        # products and quotients landing around the subnormal range
        (10.0 ** rng.uniform(-46, -36, n) / np.abs(a[2 * n:].astype(np.float64))
         * rng.choice([-1, 1], n)).astype(F32),
    ])
    b[2 * n::2] = (1 / b[2 * n::2].astype(np.float64)).astype(F32)
    ops = np.stack([a, b], axis=1).view(np.uint32)
    header = tmp_path / "avr_float_ops.h"
    header.write_text(f"#define N_OPS {len(ops)}\nstatic const uint32_t ops[N_OPS][2] PROGMEM = {{\n"
                      + "".join(f"{{0x{x:08x}UL, 0x{y:08x}UL}},\n" for x, y in ops) + "};\n")
    elf = tmp_path / "ops.elf"
    source = ROOT / "tests" / "avr_float_ops.c"
    subprocess.run(["avr-gcc", "-mmcu=atmega328p", "-Os", "-std=gnu99", "-ffp-contract=off",
                    "-Wall", "-Wextra", "-Werror", "-I", str(tmp_path), str(source),
                    "-o", str(elf), "-lm"], check=True)
    proc = subprocess.run([str(targets.build_simavr_runner()), str(elf)], capture_output=True,
                          text=True, timeout=120, check=True)
    fields = [line.split() for line in proc.stdout.splitlines()]
    assert len(fields) == len(ops)
    got = np.array([[int(f, 16) for f in row[:5]] for row in fields], dtype=np.uint32)
    with np.errstate(all="ignore"):
        want = np.stack([a + b, a - b, a * b, a / b, np.sqrt(a)], axis=1)
        want_cmp = ["".join("1" if c else "0" for c in (x < y, x > y, x <= y, x >= y, x == y))
                    for x, y in zip(a, b)]
    want_bits = want.view(np.uint32)
    got_nan = ((got & 0x7F800000) == 0x7F800000) & ((got & 0x7FFFFF) != 0)
    same = (got == want_bits) | (got_nan & np.isnan(want))  # NaN payloads may differ
    for k, name in enumerate(["+", "-", "*", None, "sqrtf"]):
        if name:
            assert same[:, k].all(), (name, np.nonzero(~same[:, k])[0][:5])
    quotient = np.abs(want[:, 3])
    subnormal = (quotient > 0) & (quotient < np.finfo(F32).tiny)
    assert same[~subnormal, 3].all()
    assert subnormal.sum() > 100  # the stream does probe the subnormal range
    assert [row[5] for row in fields] == want_cmp


@pytest.mark.slow
@pytest.mark.firmware(group="uno")  # every target; beside the Uno's tests for balance
def test_bench_measures_every_detector_on_every_target(tmp_path, capsys):
    for env in OFFLINE_ENVS:
        require_env(env)
    out = tmp_path / "bench.json"
    assert cli.main(["bench", "--samples", "5", "--json", str(out)]) == 0
    document = json.loads(out.read_text())
    # issue 10's detectors paired with emlearn's models: on the Uno, beside the peers
    paired = {peers.bundle_name(n): set(d) for n, d in peers.paired().items()}
    assert {(r["bundle"], r["detector"], r["target"]) for r in document["rows"]
            if r["bundle"] in paired} == {(b, d, "uno") for b, ds in paired.items() for d in ds}
    # the lab's Z-score, and emlearn's models with the [peers] extra
    assert len(document["peers"]) == 1 + (len(peers.PEERS) if peers.available() else 0)
    rows = [r for r in document["rows"] if r["bundle"] not in paired]
    detectors = ["zscore", "streaming_zscore", "moving_average", "kmeans"]
    detectors += ["autoencoder"] if HAVE_AUTOENCODER else []
    assert {(r["detector"], r["target"]) for r in rows if r["detector"] != "isolation_forest"} \
        == {(d, env) for d in detectors for env in OFFLINE_ENVS}
    # each flag API has its own row on every target, every other row is a score API's
    assert {(r["detector"], r["target"]) for r in rows if r["api"] == "flag"} \
        == {(d, env) for d in ("zscore", "streaming_zscore") for env in OFFLINE_ENVS}
    assert {r["api"] for r in rows} == {"score", "flag"}
    # the Uno's forest everywhere, the default and the rolling one on the 32-bit targets
    assert {(r["bundle"], r["target"]) for r in rows if r["detector"] == "isolation_forest"} \
        == {(name, env) for name, _, envs in bench.FORESTS
            for env in (envs or OFFLINE_ENVS)}
    for r in rows:
        counter = bench.COUNTER[r["target"]]
        assert r[counter] > 0 and r[counter + "_max"] >= r[counter] and r["samples"] == 5
        assert r["flash_bytes"] > 0
        learns = r["detector"] in ("streaming_zscore", "moving_average") \
            or r["bundle"] == "forest_rolling"
        assert r["ram_bytes"] >= (50 * 4 if learns else 0)
        assert ("goal" in r) == (bench.goal_for(r) is not None)
        if r["api"] == "flag" and r["detector"] == "zscore":  # it compares integer keys
            assert r["float_routines"] == []
    assert {r["channels"] for r in rows if r["detector"] == "zscore" and "goal" in r} == {1, 3}
    uno_forest = next(r for r in rows if r["bundle"] == "forest_uno" and r["target"] == "uno")
    assert uno_forest["ram_bytes"] == 0  # issue 6: RAM <= 64 B on the Uno; the scorer keeps none
    printed, err = capsys.readouterr()
    steps = len(document["rows"]) + len(document["peers"])  # one per row measured
    assert f"bench: step {steps}/{steps}, " in err and ", done (" in err
    assert "kmeans" in printed and "5 channels, K=3" in printed
    assert "3 channels, 100x256, W=50" in printed
    if HAVE_AUTOENCODER:  # issue 3: the plain-C engine's RAM against TFLite Micro's arena
        memory = json.loads(out.read_text())["autoencoder_memory"]
        assert {m["target"] for m in memory} == set(OFFLINE_ENVS)
        uno = next(m for m in memory if m["target"] == "uno")
        assert uno["ram_percent_of_arena"] <= 5 and uno["tflm_arena_minimum_bytes"] > 1000
        assert "plain-C engine vs TensorFlow Lite Micro" in printed


def test_verify_target_cli(iot_bundle, tmp_path, capsys):
    require_env("rv32imc")
    path = bundle_mod.save(iot_bundle, tmp_path / "model")
    assert cli.main(["verify", str(path), "--target", "rv32imc", "--samples", "300"]) == 0
    printed = capsys.readouterr().out
    assert "0 mismatches" in printed
    assert "zscore flag" in printed  # the flag API runs on the target too
    with pytest.raises(SystemExit):  # no simulator for a registry-only board
        cli.main(["verify", str(path), "--target", "esp32dev"])
    assert "invalid choice: 'esp32dev'" in capsys.readouterr().err


def test_generate_firmware_refuses_a_foreign_directory(iot_bundle, tmp_path, capsys):
    path = bundle_mod.save(iot_bundle, tmp_path / "model")
    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    assert cli.main(["generate", str(path), "--firmware", "--out", str(foreign)]) == 2
    assert "holds no generated firmware sources" in capsys.readouterr().err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    out = tmp_path / "generated"
    assert cli.main(["generate", str(path), "--firmware", "--out", str(out)]) == 0
    assert cli.main(["generate", str(path), "--firmware", "--out", str(out)]) == 0  # replaces
    assert "#define MCUA_FW_VECTOR_COUNT 0UL" in (out / "mcua_vectors.h").read_text()


@pytest.fixture(scope="module")
def adapted(iot):
    """The two clipping window detectors in their baseline modes, both pairings, with short
    calibrations and memories so that the inputs cross many folds and a long frozen run."""
    def pair(zscore_mode, average_mode):
        return training.train(iot, ["streaming_zscore", "moving_average"],
                              {"streaming_zscore": {"mode": zscore_mode, "calibration": 400,
                                                    "memory": 1000},
                               "moving_average": {"mode": average_mode, "calibration": 400,
                                                  "memory": 1000}},
                              seed=0, name="sensors", verbose=False)

    return [pair("frozen", "slow"), pair("slow", "frozen")]


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_adaptation_modes_on_target(env, adapted, remembered, tmp_path):
    """Every score bit and flag of the frozen and slow baselines on target."""
    for bundle in adapted:
        engine = on(bundle, env, tmp_path)
        inputs = battery(bundle, SAMPLES[env], NAB)
        assert_same(compare(bundle, engine, inputs, reference=remembered(bundle)))


@pytest.fixture(scope="module")
def absorbing(iot):
    """streaming_zscore absorbing what it flags (outliers=absorb), with its other defaults."""
    return training.train(iot, ["streaming_zscore"], {"streaming_zscore": {"outliers": "absorb"}},
                          seed=0, name="sensors", verbose=False)


@pytest.mark.parametrize("env", OFFLINE_ENVS)
def test_absorbed_outliers_on_target(env, absorbing, remembered, tmp_path):
    """Every score bit and flag of the absorbing streaming Z-score on target."""
    engine = on(absorbing, env, tmp_path)
    inputs = battery(absorbing, SAMPLES[env], NAB)
    assert_same(compare(absorbing, engine, inputs, reference=remembered(absorbing)))


@pytest.mark.firmware(group="uno")
def test_calibration_commands_on_the_uno(iot, tmp_path):
    """C (status), C STOP (end a frozen calibration) and C START (calibrate again) in
    simavr: the status lines tell the windows learnt, and every R line equals the reference
    fed the same samples, frozen at the same point."""
    require_env("uno")
    window = 20
    bundle = training.train(iot, ["streaming_zscore", "moving_average"],
                            {"streaming_zscore": {"mode": "frozen", "window": window,
                                                  "calibration": 2000},
                             "moving_average": {"mode": "slow", "window": window,
                                                "memory": 400}},
                            seed=0, name="sensors", verbose=False)
    rows = _normal_rows(bundle, 330, seed=4)
    rows[230:300] += 10 * iot.values.std(axis=0).astype(F32)  # a fault after the freeze
    cuts = [0, 15, 200, 300, 330]  # 15 rows: no whole window of 20 yet
    parts = [rows[a:b] for a, b in zip(cuts, cuts[1:])]
    commands = [["C", "C STOP"], ["C STOP"], ["C START"], ["C"]]
    lines = [line for part, after in zip(parts, commands)
             for line in [f"S {_hex(r)}" for r in part] + after]
    target = Target("uno", tmp_path)
    run = target.run(bundle, target.build(bundle), lines)

    engine, names = PythonEngine(bundle), list(bundle.detectors)
    expected, status = [], []  # per part its R lines (numbered from the last reset, as
    for i, part in enumerate(parts):  # the app does) and the C lines after it
        out = engine.run(part, names, resume=i in (1, 2))
        first = cuts[i] if i in (1, 2) else 0
        expected.append([f"R {d} {first + s} {int(out[n].scores[s].view(np.uint32)):08x} "
                         f"{int(out[n].flags[s])}"
                         for s in range(len(part)) for d, n in enumerate(names)])
        zscore, average = engine.windows["streaming_zscore"], engine.windows["moving_average"]
        if i == 1:
            assert zscore.freeze() and zscore.blocks >= 5
        if i == 2:
            assert out["streaming_zscore"].flags[30:].mean() > 0.95  # the fault, frozen
        status.append([f"C 0 frozen {zscore.blocks} 100 {int(zscore.frozen)}",
                       f"C 1 slow {average.blocks} 20 0", "OK"])

    answers = iter(run.answers)
    take = lambda n: [next(answers) for _ in range(n)]  # noqa: E731
    assert take(len(expected[0])) == expected[0]
    # C STOP before a whole window is learnt: calibration goes on
    assert status[0] == ["C 0 frozen 0 100 0", "C 1 slow 0 20 0", "OK"]
    assert take(6) == status[0] + status[0]
    assert take(len(expected[1])) == expected[1]
    assert take(3) == status[1]
    assert take(len(expected[2])) == expected[2]
    assert take(1) == ["OK"]
    assert take(len(expected[3])) == expected[3]
    assert take(3) == status[3]
    assert list(answers) == []


def test_a_run_whose_stack_grew_into_the_static_ram_is_refused(tmp_path):
    """Eight pump channels under two windowed streaming detectors (windows of 16) and
    mahalanobis pass memory.check, a lower bound, but on the Uno the stack grows into .bss,
    where it overwrites the serial buffers and the state: the run is refused, never read."""
    require_env("uno")
    from codegen.data import pump
    from codegen.data.dataset import Dataset

    run = pump.simulate(seed=3, rows=2000, train_rows=1000)
    names = ["streaming_zscore", "moving_average", "mahalanobis"]
    big = training.train(Dataset("pump", list(run.channels), run.values[:1000]), names,
                         {"streaming_zscore": {"window": 16}, "moving_average": {"window": 16}},
                         0, "pump", verbose=False)
    memory.check(big, "uno")
    engine = TargetEngine(big, Target("uno", tmp_path))
    with pytest.raises(UserError, match=r"stack grew \d+ B into its \d+ B of static RAM"):
        engine.run(run.values[:50], names)


def _stack_measures(bundle, tmp_path, vectors, rows):
    """(M's untouched bytes, simavr's gap between the static data's end and the deepest
    stack pointer) of a run over `vectors` from flash, then `rows` as S lines."""
    target = Target("uno", tmp_path)
    elf = target.build(bundle, vectors)
    result = targets.run("uno", elf, [f"S {_hex(row)}" for row in rows] + ["M"])
    untouched = [lines.parse_stack(line) for line in result.stdout_lines
                 if lines.parse_stack(line) is not None]
    _, ram = target.size(elf)
    return untouched, [result.sp_min + 1 - (targets.AVR_RAM_START + ram)]


@pytest.mark.firmware(group="uno")
def test_the_unos_own_stack_measure_is_simavrs(on_target, tmp_path):
    """M: the bytes above the static data that the stack never reached, painted at start-up
    and counted by the app itself (for a real board, where no simulator watches), equal the
    gap between the static data's end and simavr's deepest stack pointer."""
    require_env("uno")
    untouched, gap = _stack_measures(on_target, tmp_path, None, _normal_rows(on_target, 30, seed=4))
    assert untouched == gap and untouched[0] > 0


@pytest.mark.firmware(group="uno")
def test_a_half_written_stack_pointer_is_no_stack_depth(adapted, tmp_path):
    """avr-gcc moves SP by a frame in two byte writes; where the frame crosses a 256-byte
    boundary (here the frozen baseline's fold under the streaming update, at a window swap)
    SP passes through a value up to 255 B too deep.  simavr's measure skips it: it equals
    the painted one (it was 174 B "into static RAM" before)."""
    require_env("uno")
    rows = _normal_rows(adapted[0], 600, seed=4)  # many window swaps (W 50)
    untouched, gap = _stack_measures(adapted[0], tmp_path, rows[:400], rows[400:])
    assert untouched == gap and untouched[0] > 0
