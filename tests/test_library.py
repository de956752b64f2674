"""`generate --library`: an Arduino / PlatformIO library, used as a user would use it — a
PlatformIO project in a temporary directory outside the repository with the library in
lib_deps and the example sketch in src/, built offline for the Uno and run in simavr with
readings of the built-in data sent on its UART; every row's flags equal the reference's."""

import dataclasses
import importlib.util
import json
import shutil
import subprocess
from decimal import Decimal
from pathlib import Path

import numpy as np
import pytest

from codegen import bundle as bundle_mod
from codegen.cli import main
from codegen.detectors import DEFAULT, DETECTORS
from codegen.emit import library
from codegen.emit import render as emit
from codegen.training import train as training
from codegen.verify.engines import PythonEngine
from host_sim import targets
from support import require, require_env, require_tool

F32 = np.float32
ARDUINO_AVR = Path("/usr/share/arduino/hardware/arduino/avr")
HAVE_AUTOENCODER = all(importlib.util.find_spec(m) for m in ("tensorflow", "tflite_micro"))
# Rows of the built-in iot data fed to the Uno: 11 of its spikes are in them.
ROWS = slice(2400, 2800)
# A reading the example sends as a multiple of 1/64 written out exactly: at most 7
# significant digits for these readings, which avr-libc's strtod parses exactly
# (test_avr_strtod_parses_the_fed_values_exactly); most other decimals it does not.
STEP = 64
MALFORMED = [("1.5,2", "E expected 3 values separated by commas"),
             ("1.5,abc,2", "E bad value"),
             ("1," * 60 + "1", "E line too long"),
             ("", None)]  # an empty line: no answer


def tree(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes()
            for p in sorted(root.rglob("*")) if p.is_file()}


def exact_text(value) -> str:
    """The exact decimal expansion of a float32."""
    return format(Decimal(float(value)), "f")


def fed_rows(iot) -> np.ndarray:
    return (np.round(iot.values[ROWS].astype(np.float64) * STEP) / STEP).astype(F32)


# --- the generated files -------------------------------------------------------------


def test_library_holds_the_generated_c_manifests_and_an_example(iot_bundle):
    files = library.render(iot_bundle)
    name = iot_bundle.name
    assert {k[len("src/"):]: v for k, v in files.items() if k.startswith("src/")} \
        == emit.render(iot_bundle)
    assert set(files) - {k for k in files if k.startswith("src/")} == {
        "library.json", "library.properties", "README.md", f"examples/{name}/{name}.ino"}
    manifest = json.loads(files["library.json"])
    assert manifest["name"] == name and manifest["headers"] == f"{name}.h"
    assert manifest["build"]["flags"] == "-ffp-contract=off"
    assert manifest["frameworks"] == manifest["platforms"] == "*"  # the offline platform too
    properties = dict(line.split("=", 1) for line in files["library.properties"].splitlines())
    assert {"name", "version", "author", "maintainer", "sentence", "paragraph", "category",
            "url", "architectures"} <= set(properties)
    assert properties["name"] == name and properties["includes"] == f"{name}.h"
    readme = files["README.md"]
    for detector in iot_bundle.detectors:
        assert f"| {detector} |" in readme
    assert "symlink://" in readme and "without compiler flags" in readme
    sketch = files[f"examples/{name}/{name}.ino"]
    assert "GPIOR0" not in sketch and "mcua_mark" not in sketch  # no firmware markers
    assert f"*flag = {name}_zscore_flag(x);" in sketch  # the flag API where there is one


def test_same_bundle_gives_the_same_library_and_the_directory_is_replaced_whole(
        iot_bundle, tmp_path, capsys):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    first, second = tmp_path / "a", tmp_path / "b"
    assert main(["generate", str(model), "--library", str(first)]) == 0
    assert main(["generate", str(model), "--library", str(second)]) == 0
    assert tree(first) == tree(second)
    assert (first / ".mcu-anomaly-library").is_file()
    (first / "src" / "stale.h").write_text("from an older model")
    assert main(["generate", str(model), "--library", str(first)]) == 0
    assert tree(first) == tree(second)

    foreign = tmp_path / "mine"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("keep me")
    capsys.readouterr()
    assert main(["generate", str(model), "--library", str(foreign)]) == 2
    err = capsys.readouterr().err
    assert "holds no Arduino / PlatformIO library" in err
    assert "choose another --library, or give --force" in err
    assert [p.name for p in foreign.iterdir()] == ["notes.txt"]
    assert main(["generate", str(model), "--library", str(foreign), "--force"]) == 0
    assert tree(foreign) == tree(second)


@pytest.mark.parametrize("extra, message", [
    (["--firmware"], "--library and --firmware write different outputs; give one of them"),
    (["--out", "x"], "--library DIR names the output directory itself; leave out --out"),
])
def test_library_refuses_options_that_contradict_it(iot_bundle, tmp_path, capsys, extra,
                                                     message):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    assert main(["generate", str(model), "--library", str(tmp_path / "lib"), *extra]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "lib").exists()


def test_library_target_refuses_detectors_that_cannot_fit_the_board(iot, tmp_path, capsys):
    big = training.train(iot, ["streaming_zscore"], {"streaming_zscore": {"window": 1000}},
                         seed=0, name="sensors", verbose=False)
    model = bundle_mod.save(big, tmp_path / "model")
    assert main(["generate", str(model), "--library", str(tmp_path / "lib"),
                 "--target", "uno"]) == 2
    assert "needs at least" in capsys.readouterr().err and not (tmp_path / "lib").exists()
    assert main(["generate", str(model), "--library", str(tmp_path / "lib"),
                 "--target", "cortex_m4f"]) == 0


@pytest.fixture(scope="module")
def every_kind(iot, iot_bundle):
    """The default detectors and every other registered one (the windowed autoencoder
    with the [autoencoder] extra; the forest small enough for an AVR): stateless, streaming
    and windowed calls."""
    others = [d for d in DETECTORS if d not in iot_bundle.detectors
              and (HAVE_AUTOENCODER or d != "autoencoder")]
    params = {"isolation_forest": {"target": "uno"}, "autoencoder": {"epochs": 2}}
    more = training.train(iot, others, {d: params.get(d, {}) for d in others}, seed=0,
                          name="sensors", verbose=False)
    return dataclasses.replace(iot_bundle, detectors={**iot_bundle.detectors,
                                                      **more.detectors})


@pytest.fixture(scope="module")
def several_channels(iot):
    """The autoencoder on windows of rows of every channel (it keeps rows, not readings)."""
    require(HAVE_AUTOENCODER, "the [autoencoder] extra")
    return training.train(iot, ["autoencoder"], {"autoencoder": {"epochs": 2, "channels": "all"}},
                          seed=0, name="sensors", verbose=False)


@pytest.mark.parametrize("which", ["default", "every_kind", "several_channels"])
def test_example_compiles_without_warnings_with_avr_gpp(which, request, tmp_path):
    """The sketch as the Arduino build compiles it (C++ with Arduino.h first) under
    -Wall -Wextra -Wpedantic -Werror."""
    require_tool("avr-g++")
    require((ARDUINO_AVR / "cores" / "arduino").is_dir(), str(ARDUINO_AVR))
    bundle = request.getfixturevalue({"default": "iot_bundle"}.get(which, which))
    out = library.write(library.render(bundle), tmp_path / "lib")
    sketch = out / "examples" / bundle.name / f"{bundle.name}.ino"
    result = subprocess.run(
        ["avr-g++", "-x", "c++", "-std=gnu++11", "-mmcu=atmega328p", "-DF_CPU=16000000L",
         "-DARDUINO=10807", "-DARDUINO_AVR_UNO", "-DARDUINO_ARCH_AVR", "-Os", "-Wall",
         "-Wextra", "-Wpedantic", "-Werror", "-ffp-contract=off",
         "-I", str(ARDUINO_AVR / "cores" / "arduino"),
         "-I", str(ARDUINO_AVR / "variants" / "standard"), "-I", str(out / "src"),
         "-include", "Arduino.h", "-c", str(sketch), "-o", str(tmp_path / "sketch.o")],
        capture_output=True, text=True)
    assert result.returncode == 0 and not result.stderr, result.stderr


# --- on the Uno, from a project outside the repository -------------------------------


def project(tmp_path: Path, lib: Path, scheme: str) -> Path:
    """A PlatformIO project of its own: the offline Uno environment
    (targets.offline_uno_config, with its own core directory) and the library in lib_deps."""
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True)
    config = targets.offline_uno_config(tmp_path / "core")
    (root / "platformio.ini").write_text(f"{config}lib_deps = {scheme}://{lib}\n")
    return root


def build(root: Path, tmp_path: Path) -> Path:
    return targets.build("uno", project_dir=root, core_dir=tmp_path / "core")


def generate(bundle, tmp_path: Path, lib: Path):
    """The library of the bundle, through the CLI; the bundle as generate read it."""
    model = bundle_mod.save(bundle, tmp_path / "model", force=True)
    assert main(["generate", str(model), "--library", str(lib)]) == 0
    return bundle_mod.load(model)


def retrained(iot):
    """The default detectors with a lower Z-score threshold: other flags on the same rows
    (on 31 % of the normal rows: allowed)."""
    return training.train(iot, DEFAULT, {"zscore": {"threshold": "value:1.5"}}, seed=0,
                          name="sensors", verbose=False, max_alarm_share=1.0)


def answers(lines: list[str], bundle) -> tuple[np.ndarray, list[str], list[str]]:
    """The example's output: flags [sample, detector] of the F lines, ALARM lines, E lines."""
    lines = [line.rstrip("\r") for line in lines]
    names = list(bundle.detectors)
    assert lines[0] == (f"READY {bundle.name} channels={','.join(bundle.channels)} "
                        f"detectors={','.join(names)}")
    flags, alarms, errors = [], [], []
    for line in lines[1:]:
        kind, _, rest = line.partition(" ")
        if kind == "F":
            sample, bits = rest.split()
            assert int(sample) == len(flags) and len(bits) == len(names), line
            flags.append([c == "1" for c in bits])
        elif kind == "ALARM":
            alarms.append(line)
        else:
            assert kind == "E", line
            errors.append(line)
    return np.array(flags, dtype=bool), alarms, errors


def run_example(elf: Path, bundle, X: np.ndarray):
    """Feed the rows (and the malformed lines, between them) on the UART; the flags,
    the alarm and error lines, the lowest stack pointer."""
    lines = [",".join(exact_text(v) for v in row) for row in X]
    for i, (text, _) in enumerate(MALFORMED):
        lines.insert(10 + 50 * i, text)
    result = targets.run("uno", elf, lines)
    assert result.exit_code == 0
    return (*answers(result.stdout_lines, bundle), result.sp_min)


def check_against_reference(bundle, X, flags, alarms, errors):
    reference = PythonEngine(bundle).run(X, list(bundle.detectors))
    expected = np.stack([s.flags for s in reference.values()], axis=1)
    assert flags.shape == expected.shape
    differ = np.nonzero((flags != expected).any(axis=1))[0]
    assert differ.size == 0, f"rows {differ[:10]} differ from the reference"
    names = list(bundle.detectors)
    assert alarms == [f"ALARM {s} {names[d]}" for s, d in zip(*np.nonzero(expected))]
    assert errors == [e for _, e in MALFORMED if e]
    return expected


@pytest.mark.firmware(group="uno")
def test_example_on_the_uno_from_a_project_outside_the_repo(iot, iot_bundle, tmp_path):
    require_env("uno")
    lib = tmp_path / "lib"
    bundle = generate(iot_bundle, tmp_path, lib)
    root = project(tmp_path, lib, "symlink")
    name = bundle.name
    shutil.copy(lib / "examples" / name / f"{name}.ino", root / "src")
    X = fed_rows(iot)
    assert np.array_equal(np.array([[F32(float(exact_text(v))) for v in row] for row in X]), X)

    elf = build(root, tmp_path)
    flash, ram = targets.size("uno", elf)
    flags, alarms, errors, sp_min = run_example(elf, bundle, X)
    first = check_against_reference(bundle, X, flags, alarms, errors)
    assert first.any(axis=1).sum() >= 11  # the spikes, at least
    # Static RAM from 0x100 up, the stack from 0x8ff down: they never met.
    free = sp_min - (0x100 + ram)
    print(f"\nUno: flash {flash} B, static RAM {ram} B, deepest stack {0x8ff - sp_min} B, "
          f"{free} B never touched; {len(X)} rows, {int(first.sum())} flags")
    assert flash <= targets.flash_limit("uno") and free >= 128

    # Retrained and regenerated in place: symlink:// builds the new library.
    other = generate(retrained(iot), tmp_path, lib)
    assert (lib / "examples" / name / f"{name}.ino").read_bytes() \
        == (root / "src" / f"{name}.ino").read_bytes()  # same detectors and channels
    flags, alarms, errors, _ = run_example(build(root, tmp_path), other, X)
    second = check_against_reference(other, X, flags, alarms, errors)
    assert (second != first).any()


@pytest.mark.firmware(group="uno")
def test_file_uri_builds_a_copy_that_goes_stale(iot, iot_bundle, tmp_path):
    """PlatformIO 6.2.0 copies a file:// library once into .pio/libdeps and keeps building
    that copy after a regeneration; `pio pkg install -e uno --force` copies it again
    (docs/library.md)."""
    require_env("uno")
    lib = tmp_path / "lib"
    generate(iot_bundle, tmp_path, lib)
    root = project(tmp_path, lib, "file")
    name = iot_bundle.name
    shutil.copy(lib / "examples" / name / f"{name}.ino", root / "src")
    header = f"src/{name}_zscore.h"
    build(root, tmp_path)
    copy = root / ".pio" / "libdeps" / "uno" / name
    assert (copy / header).read_bytes() == (lib / header).read_bytes()

    generate(retrained(iot), tmp_path, lib)
    build(root, tmp_path)
    assert (copy / header).read_bytes() != (lib / header).read_bytes()  # stale
    subprocess.run(targets.pio_command() + ["pkg", "install", "-e", "uno", "--force", "-d",
                                            str(root)],
                   env=targets.pio_environ(core_dir=tmp_path / "core"), check=True,
                   capture_output=True, timeout=300)
    assert (copy / header).read_bytes() == (lib / header).read_bytes()


@pytest.mark.firmware(group="uno")
def test_avr_strtod_parses_the_fed_values_exactly(iot, tmp_path):
    """avr-libc's strtod (Debian 2.0.0) against Python's float32(float(text)): exact on the
    multiples of 1/64 the example test sends, 1-3 ulp off on many other decimals (the
    shortest text of each float32, three decimals)."""
    require_env("uno")
    elf = tmp_path / "strtod.elf"
    subprocess.run(["avr-gcc", "-mmcu=atmega328p", "-Os", "-std=gnu99", "-ffp-contract=off",
                    "-Wall", "-Wextra", "-Werror",
                    str(Path(__file__).resolve().parent / "avr_strtod.c"), "-o", str(elf)],
                   check=True)
    values = iot.values[ROWS].ravel()
    forms = {"fed": [exact_text(v) for v in fed_rows(iot).ravel()],
             "shortest": [str(v) for v in values],
             "three decimals": [f"{v:.3f}" for v in values]}
    feed = tmp_path / "input.txt"
    wrong = {}
    for form, texts in forms.items():
        feed.write_text("".join(t + "\n" for t in texts))
        proc = subprocess.run([str(targets.build_simavr_runner()), "-q", "2", "-i", str(feed),
                               str(elf)], capture_output=True, text=True, timeout=120,
                              check=True)
        got = np.array([int(word, 16) for word in proc.stdout.split()], dtype=np.uint32)
        want = np.array([F32(float(t)) for t in texts]).view(np.uint32)
        assert got.shape == want.shape
        wrong[form] = int((got != want).sum())
        assert np.abs(got.astype(np.int64) - want.astype(np.int64)).max() <= 3
    print(f"\navr-libc strtod differs from Python on {wrong} of {len(values)} values each")
    assert wrong["fed"] == 0
    assert wrong["shortest"] > len(values) // 10 and wrong["three decimals"] > len(values) // 10
