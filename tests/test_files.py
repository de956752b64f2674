"""Outputs are written whole or not at all, with the modes a plain write gives."""

import os
import stat

import pytest

from codegen import bundle as bundle_mod
from codegen.cli import main
from codegen.files import Output, write_file, write_tree

TREE = Output("test trees", "new.txt", "write_tree")


@pytest.fixture
def umask_022():
    old = os.umask(0o022)
    yield
    os.umask(old)


def modes(root):
    return {p.relative_to(root).as_posix(): stat.S_IMODE(p.stat().st_mode)
            for p in [root, *root.rglob("*")]}


def test_generated_files_and_bundles_are_0644_and_0755(umask_022, iot_bundle, tmp_path):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    assert main(["generate", str(model), "--out", str(tmp_path / "include")]) == 0
    assert main(["generate", str(model), "--firmware", "--out", str(tmp_path / "fw")]) == 0
    assert main(["generate", str(model), "--library", str(tmp_path / "lib")]) == 0
    for root in (model, tmp_path / "include", tmp_path / "fw", tmp_path / "lib"):
        found = modes(root)
        assert len(found) > 3
        for name, mode in found.items():
            assert mode == (0o755 if (root / name).is_dir() else 0o644), (root, name, oct(mode))


def test_scores_and_reports_are_0644(umask_022, iot_bundle, labelled_csv, tmp_path):
    model = bundle_mod.save(iot_bundle, tmp_path / "model")
    out = tmp_path / "new" / "scores.csv"
    assert main(["score", str(model), str(labelled_csv), "--out", str(out)]) == 0
    assert main(["evaluate", str(model), str(labelled_csv), "--no-baseline", "--report",
                 str(tmp_path / "r.html")]) == 0
    for path in (out, tmp_path / "r.html"):
        assert stat.S_IMODE(path.stat().st_mode) == 0o644, path
    assert stat.S_IMODE(out.parent.stat().st_mode) == 0o755


def test_modes_follow_the_umask(tmp_path):
    old = os.umask(0o077)
    try:
        path = write_file(tmp_path / "a.txt", "x")
        tree = write_tree(tmp_path / "t", {"d/b.bin": b"\0"}, TREE)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert set(modes(tree).values()) == {0o700, 0o600}


def test_a_tree_replaces_the_old_one_whole(tmp_path):
    write_tree(tmp_path / "t", {"new.txt": "1", "old.txt": "1", "keep/x.txt": "2"}, TREE)
    write_tree(tmp_path / "t", {"new.txt": "3"}, TREE, dirs=("empty",))
    assert sorted(modes(tmp_path / "t")) == [".", "empty", "new.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t"]  # no staging left behind
