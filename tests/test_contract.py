"""The contract every registered detector keeps, checked the same way for each: parity with
the reference on the host C build, a one-ulp move of any of its constants caught, NaN/Inf
never learnt, warning-free C under every compiler, constants in flash on AVR, its footprint
as the AVR objects hold it, the runtime version guard, f-suffixed literals.  (On-target parity: test_firmware_parity.py.)"""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess

import numpy as np
import pytest

from codegen.detectors import DETECTORS, get
from codegen.detectors.base import Kind
from codegen.emit import render as emit
from codegen.training import train as training
from codegen.verify import battery as battery_mod
from codegen.verify.compare import compare
from codegen.verify.engines import PythonEngine
from host_sim.hostlib import HostModel, glue_source

from support import (COMPILERS, NAB, bare_float_literals, compile_objects, count_mismatches,
                     only, perturbed, require)

HAVE_TENSORFLOW = all(importlib.util.find_spec(m) for m in ("tensorflow", "tflite_micro"))
# One case per registered detector (trained with its defaults, or taken from the iot
# bundle when it is a default detector), and one per other way a detector runs on the
# device; CASES overrides the parameters where the defaults do not suit a test.
CASES = {name: (name, None) for name in DETECTORS} | {
    "isolation_forest": ("isolation_forest", {"target": "uno"}),  # fits the AVR builds
    "isolation_forest-rolling": ("isolation_forest", {"features": "rolling", "n_trees": 10,
                                                      "max_samples": 64}),
    "autoencoder": ("autoencoder", {"epochs": 4}),  # parity does not need a good model
    # windows of every channel, and one channel scored by its whole window (the old default)
    "autoencoder-channels": ("autoencoder", {"epochs": 4, "channels": "all"}),
    "autoencoder-window": ("autoencoder", {"epochs": 4, "pointwise": "window"}),
    # the iot channels barely correlate: Ledoit-Wolf shrinks their covariance to a diagonal
    "mahalanobis": ("mahalanobis", {"covariance": "empirical"}),
    # the adaptation modes (mcua_window.h): short calibrations and memories, so the inputs
    # cross many baseline folds and, frozen, long stretches after the freeze
    **{f"{d}-{mode}": (d, {"mode": mode, "calibration": 400, "memory": 1000})
       for d in ("streaming_zscore", "moving_average") for mode in ("frozen", "slow")},
    # outliers absorbed into the window (up to 64 deviations), sliding and slow
    "streaming_zscore-absorb": ("streaming_zscore", {"outliers": "absorb"}),
    "streaming_zscore-absorb-slow": ("streaming_zscore", {"outliers": "absorb", "mode": "slow",
                                                          "memory": 1000}),
}
# The autoencoder's Python reference runs TensorFlow Lite Micro window by window.
AUTOENCODERS = [case for case, (detector, _) in CASES.items() if detector == "autoencoder"]
PARITY_INPUTS = {case: 20_000 for case in AUTOENCODERS}
MARKS = {case: [pytest.mark.tensorflow] for case in AUTOENCODERS}


def test_every_spec_names_its_module():
    assert all(module.SPEC.name == name for name, module in DETECTORS.items())


def cases():
    return [pytest.param(case, id=case, marks=MARKS.get(case, [])) for case in CASES]


@pytest.fixture(scope="module")
def contract(iot, iot_bundle):
    """case -> (one-detector bundle, detector), trained once per module."""
    made = {}

    def get_case(case):
        if case not in made:
            detector, params = CASES[case]
            if params is None and detector in iot_bundle.detectors:
                bundle = only(iot_bundle, detector)
            else:
                if MARKS.get(case):
                    require(HAVE_TENSORFLOW, "tensorflow-cpu and tflite-micro")
                bundle = training.train(iot, [detector], {detector: params or {}}, seed=0,
                                        name="sensors", verbose=False)
            made[case] = (bundle, detector)
        return made[case]

    return get_case


@pytest.fixture(scope="module")
def generated(contract, tmp_path_factory):
    """case -> a directory of what `generate` writes plus the host glue, which calls
    every API of the detector (a translation unit that uses all of it)."""
    made = {}

    def get_dir(case):
        if case not in made:
            bundle, _ = contract(case)
            out = tmp_path_factory.mktemp(case)
            emit.write(emit.render(bundle), out)
            (out / "mcua_host_glue.c").write_text(glue_source(bundle))
            made[case] = out
        return made[case]

    return get_dir


def inputs_for(bundle, case, n=None):
    require((NAB / "data").is_dir(), f"the real data {NAB}")
    return battery_mod.battery(bundle, n or PARITY_INPUTS.get(case, 100_000), NAB)


@pytest.mark.parametrize("case", cases())
def test_host_parity_on_random_extreme_and_real_inputs(contract, case):
    bundle, detector = contract(case)
    result = compare(bundle, HostModel(bundle), inputs_for(bundle, case))
    assert result.ok, result.table()
    assert sum(r.inputs for r in result.results if r.detector == detector) >= \
        2.5 * PARITY_INPUTS.get(case, 100_000)


# Constants a case leaves without effect on every score and state, so that no battery can
# catch their one-ulp move: absorbing, the threshold only decides flags (a one-ulp move shows
# only on a z within one ulp of it), and a slow baseline's variance stays above the floor.
UNOBSERVABLE = {"streaming_zscore-absorb": {"threshold"},
                "streaming_zscore-absorb-slow": {"threshold", "var_floor"}}


def mutations():
    return [pytest.param(case, constant, id=f"{case}-{constant}", marks=MARKS.get(case, []))
            for case, (detector, _) in CASES.items() for constant in get(detector).SPEC.mutable
            if constant not in UNOBSERVABLE.get(case, ())]


@pytest.mark.parametrize("case, constant", mutations())
def test_a_constant_moved_one_ulp_is_caught(contract, case, constant):
    bundle, detector = contract(case)
    host = HostModel(perturbed(bundle, detector, constant, index=None))
    assert count_mismatches(bundle, host, inputs_for(bundle, case, 20_000), detector) > 0


@pytest.mark.parametrize("case", cases())
def test_nan_and_inf_are_flagged_and_never_learnt(contract, case):
    bundle, detector = contract(case)
    fitted = bundle.detectors[detector]
    spec = get(detector).SPEC
    kind = spec.kind_of(fitted)
    rng = np.random.default_rng(3)
    warm = spec.warm_up(fitted)
    X = (np.array(bundle.channel_mean) + np.array(bundle.channel_std)
         * rng.standard_normal((warm + 80, len(bundle.channels)))).astype(np.float32)
    bad = [warm + 10, warm + 30, warm + 50]
    for row, value in zip(bad, (np.nan, np.inf, -np.inf)):
        X[row] = value
    reach = spec.window(fitted) if kind is Kind.WINDOWED else 1  # rows whose input holds it
    hit = sorted({r + k for r in bad for k in range(reach)})
    for engine in (PythonEngine(bundle), HostModel(bundle)):
        out = engine.run(X, [detector])[detector]
        assert np.isposinf(out.scores[hit]).all() and out.flags[hit].all(), engine.name
        if kind is Kind.STREAMING:
            floats, counters = out.state
            for row in bad:
                assert np.array_equal(floats[row].view(np.uint32), floats[row - 1].view(np.uint32))
                assert np.array_equal(counters[row], counters[row - 1])


@pytest.mark.parametrize("compiler", COMPILERS)
@pytest.mark.parametrize("case", cases())
def test_compiles_warning_free(generated, case, compiler, tmp_path):
    compile_objects(compiler, generated(case), tmp_path)


@pytest.mark.parametrize("case", cases())
def test_constants_live_in_flash_on_avr(generated, case, tmp_path):
    objects = compile_objects("avr-gcc", generated(case), tmp_path)
    table = "".join(subprocess.run(["avr-objdump", "-t", str(o)], capture_output=True,
                                   text=True, check=True).stdout for o in objects)
    objects = [line for line in table.splitlines()
               if re.search(r"\bsensors_\w+$", line) and " O " in line]
    # constants in flash; in RAM only what the code writes (zeroed scratch, in .bss)
    assert any(".progmem" in line for line in objects)
    assert all(".progmem" in line or ".bss" in line for line in objects), "\n".join(objects)


@pytest.mark.parametrize("case", cases())
def test_footprint_is_what_the_avr_objects_hold(contract, generated, case, tmp_path):
    """The spec's footprint (codegen/firmware/memory.py) against avr-gcc's objects: its
    RAM is the objects' static RAM (the state, scratch buffers) plus the window a caller
    keeps for a windowed detector; its flash leaves out only the model structs."""
    bundle, detector = contract(case)
    fitted = bundle.detectors[detector]
    spec = get(detector).SPEC
    footprint = spec.footprint_of(fitted, len(bundle.channels))
    objects = compile_objects("avr-gcc", generated(case), tmp_path)
    table = "".join(subprocess.run(["avr-objdump", "-t", str(o)], capture_output=True,
                                   text=True, check=True).stdout for o in objects)
    sizes = {".progmem": 0, ".bss": 0}
    for line in table.splitlines():
        section = next((s for s in sizes if f" {s}" in line), None)
        if " O " in line and section:
            sizes[section] += int(line.split()[-2], 16)
    caller = (4 * spec.window(fitted) * spec.row_values_of(fitted)
              if spec.kind_of(fitted) is Kind.WINDOWED else 0)
    assert footprint.ram == sizes[".bss"] + caller
    assert footprint.flash <= sizes[".progmem"] <= footprint.flash + 128


@pytest.mark.parametrize("case", cases())
def test_every_float_literal_has_an_f_suffix(generated, case):
    for path in generated(case).iterdir():
        if path.suffix in (".c", ".h"):
            assert not bare_float_literals(path.read_text()), path.name


@pytest.mark.parametrize("case", cases())
def test_version_guard_stops_a_mismatched_runtime(generated, case, tmp_path):
    for path in generated(case).iterdir():
        shutil.copy(path, tmp_path)
    common = tmp_path / "mcua_common.h"
    ours = f"#define MCUA_RUNTIME_VERSION {emit.RUNTIME_VERSION}"
    assert ours in common.read_text()
    common.write_text(common.read_text().replace(
        ours, f"#define MCUA_RUNTIME_VERSION {emit.RUNTIME_VERSION + 1}"))
    result = subprocess.run(["gcc", "-std=c99", "-fsyntax-only", "-I", str(tmp_path),
                             str(tmp_path / "mcua_host_glue.c")], capture_output=True, text=True)
    assert result.returncode != 0 and "regenerate" in result.stderr
