"""The wheel: built from this tree, installed into a clean venv, run from an empty directory.

A wheel install must train, generate, verify on the host, score and evaluate with no checkout
around: the templates and the C runtime are package data (codegen/resources.py). The firmware
commands need the checkout and say so. The new venv sees the dependencies of the Python
running the tests through a .pth path line to their site-packages: the .pth files in there
(this tree's editable install) are not processed, so `codegen` can only be the wheel's.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import subprocess
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import pytest

from codegen import cli
from support import ROOT, require, require_tool

pytestmark = [pytest.mark.slow, pytest.mark.xdist_group("wheel")]

DETECTORS = "zscore,streaming_zscore,moving_average,kmeans,isolation_forest,mahalanobis,pca,gmm"
# What a build or a run leaves in a tree: not copied into the tree the wheel is built from.
NOT_SOURCES = shutil.ignore_patterns(".git", ".venv*", ".pio", ".pio-core", "build",
                                     "__pycache__", "*.egg-info", ".pytest_cache")
ISOLATING = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "VIRTUAL_ENV")


def pip(*args: str, cwd: Path) -> None:
    proc = subprocess.run([sys.executable, "-m", "pip", "-q", *args], cwd=cwd,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def source(tmp_path_factory) -> Path:
    """A copy of this tree: building writes build/ and an egg-info into the tree it builds."""
    require(all(importlib.util.find_spec(m) for m in ("pip", "setuptools")),
            "pip and setuptools (the wheel is built with --no-build-isolation)")
    tree = tmp_path_factory.mktemp("source") / "mcu-anomaly"
    shutil.copytree(ROOT, tree, ignore=NOT_SOURCES)
    return tree


@pytest.fixture(scope="module")
def wheel(source, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    pip("wheel", str(source), "--no-deps", "--no-build-isolation", "-w", str(out), cwd=out)
    (built,) = out.glob("mcu_anomaly-*.whl")
    return built


def dependency_paths() -> list[str]:
    """The site directories the running Python imports its dependencies from."""
    return [p for p in sys.path if Path(p).name in ("site-packages", "dist-packages")]


@dataclass
class Venv:
    root: Path
    cwd: Path  # empty at the start, no repository above it

    @property
    def python(self) -> Path:
        return self.root / "bin" / "python"

    def environ(self) -> dict[str, str]:
        environ = {k: v for k, v in os.environ.items() if k not in ISOLATING}
        return {**environ, "PYTHONNOUSERSITE": "1", "MCUA_CACHE": str(self.root / "cache")}

    def run(self, *args: str, code: int = 0) -> subprocess.CompletedProcess:
        """The installed mcu-anomaly script, run in cwd; it must exit with code, never with
        a traceback."""
        proc = subprocess.run([str(self.root / "bin" / "mcu-anomaly"), *args], cwd=self.cwd,
                              env=self.environ(), capture_output=True, text=True, timeout=900)
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr, proc.stderr
        return proc


def make_venv(root: Path, *install: str) -> Venv:
    """A venv at root with `pip install --no-deps ...install` done in it, then the running
    Python's dependencies on its path."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(root)], check=True)
    pip("--python", str(root / "bin" / "python"), "install", "--no-deps", "--no-index",
        *install, cwd=root)
    (site,) = root.glob("lib/python*/site-packages")
    (site / "mcua_test_dependencies.pth").write_text("".join(p + "\n" for p in dependency_paths()))
    cwd = root.parent / "cwd"
    cwd.mkdir()
    return Venv(root, cwd)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Venv:
    return make_venv(tmp_path_factory.mktemp("installed") / "venv", str(wheel))


@pytest.fixture(scope="module")
def model(installed) -> Path:
    installed.run("train", "--detectors", DETECTORS, "--out", "model", "--quiet")
    return installed.cwd / "model"


def where(venv: Venv) -> list[str]:
    """Where venv's Python finds codegen, host_sim and the templates, and its checkout."""
    probe = ("import codegen, host_sim\nfrom codegen import resources\n"
             "print(codegen.__file__, host_sim.__file__, resources.templates(), "
             "resources.checkout(), sep='\\n')")
    proc = subprocess.run([str(venv.python), "-c", probe], cwd=venv.cwd, env=venv.environ(),
                          capture_output=True, text=True, check=True)
    return proc.stdout.splitlines()


def wheel_files() -> set[str]:
    """What the wheel must hold besides its metadata: every module of the packages, the C
    runtime, the top-level templates/ as codegen/templates, the simavr runner's source."""
    modules = {str(p.relative_to(ROOT)) for package in ("codegen", "host_sim")
               for p in (ROOT / package).rglob("*.py") if "__pycache__" not in p.parts}
    runtime = {str(p.relative_to(ROOT)) for p in (ROOT / "codegen" / "runtime").iterdir()}
    templates = {f"codegen/templates/{p.name}" for p in (ROOT / "templates").iterdir()}
    return modules | runtime | templates | {"host_sim/simavr_runner.c"}


def test_the_wheel_holds_what_the_code_reads(wheel):
    names = zipfile.ZipFile(wheel).namelist()
    assert {n for n in names if ".dist-info/" not in n} == wheel_files()
    size = wheel.stat().st_size
    print(f"{wheel.name}: {size} bytes, {len(names)} files")


def test_codegen_is_the_wheels_own(installed):
    venv = installed.root.resolve()
    *packages, templates, checkout = where(installed)
    for path in (*packages, templates):
        assert Path(path).resolve().is_relative_to(venv), path
    assert checkout == "None"


def assert_same_tree(a: Path, b: Path) -> None:
    """The same files, at every depth, with the same bytes."""
    def files(root: Path) -> dict:
        return {p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()}
    mine, theirs = files(a), files(b)
    assert sorted(mine) == sorted(theirs)
    assert [name for name in mine if mine[name] != theirs[name]] == []


@pytest.mark.parametrize("kind", ["--out", "--firmware", "--library"])
def test_generate_writes_what_the_source_tree_writes(installed, model, tmp_path, kind):
    where = {"--out": ["--out"], "--firmware": ["--firmware", "--out"], "--library": ["--library"]}
    out = installed.cwd / kind.strip("-")
    installed.run("generate", "model", *where[kind], out.name)
    assert cli.main(["generate", str(model), *where[kind], str(tmp_path / "ours")]) == 0
    assert_same_tree(out, tmp_path / "ours")


def test_verify_on_the_host_without_nab(installed, model):
    require_tool("gcc")
    proc = installed.run("verify", "model", "--samples", "2000")
    assert "0 mismatches" in proc.stdout
    assert "no NAB data" in proc.stderr and " real " not in proc.stdout


def test_evaluate_a_labelled_csv_with_its_report(installed, model, labelled_csv):
    proc = installed.run("evaluate", "model", str(labelled_csv), "--report", "report.html",
                         "--no-baseline")
    assert "kmeans" in proc.stdout
    assert (installed.cwd / "report.html").stat().st_size > 0


def test_score_with_the_c_and_the_python_engine(installed, model, labelled_csv):
    require_tool("gcc")
    for engine in ("c", "python"):
        installed.run("score", "model", str(labelled_csv), "--out", f"{engine}.csv",
                      "--engine", engine)
    c, python = ((installed.cwd / f"{e}.csv").read_bytes() for e in ("c", "python"))
    assert c == python and len(c.splitlines()) == 5001


@pytest.mark.parametrize("command", [("verify", "model", "--target", "uno"),
                                     ("bench", "model", "--targets", "uno")],
                         ids=["verify", "bench"])
def test_firmware_commands_ask_for_the_checkout(installed, model, command):
    proc = installed.run(*command, code=2)
    assert proc.stderr.startswith("error: ") and proc.stdout == ""
    assert "needs the source checkout" in proc.stderr and "clone the repository" in proc.stderr
    usage = " ".join(installed.run(command[0], "--help").stdout.split())
    assert "needs the source checkout" in usage


def editable_wheel(source: Path, out: Path) -> Path:
    """What `pip install -e` installs (PEP 660), built by the running Python's setuptools:
    the new venv has none to build it with."""
    build = ("import sys; from setuptools import build_meta; "
             "print(build_meta.build_editable(sys.argv[1]))")
    proc = subprocess.run([sys.executable, "-c", build, str(out)], cwd=source,
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out / proc.stdout.splitlines()[-1]


def test_an_editable_install_generates_the_same(source, model, tmp_path):
    """`pip install -e .`, what `make setup` does: the templates come from the tree's own
    top-level templates/."""
    venv = make_venv(tmp_path / "venv", str(editable_wheel(source, tmp_path)))
    *_, templates, checkout = where(venv)
    assert Path(templates).resolve() == (source / "templates").resolve()
    assert Path(checkout).resolve() == source.resolve()
    venv.run("generate", str(model), "--out", "include")
    assert cli.main(["generate", str(model), "--out", str(tmp_path / "ours")]) == 0
    assert_same_tree(venv.cwd / "include", tmp_path / "ours")
