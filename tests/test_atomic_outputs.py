"""Directory outputs are replaced whole (issue 18, item 3): writers killed at inotify events
inside the swap leave the old or the new tree whole, concurrent runs give one of them, a
full filesystem leaves the old one, and directories mcu-anomaly did not write are refused."""

import ctypes
import dataclasses
import multiprocessing
import os
import select
import shutil
import signal
import struct
import subprocess
from collections import Counter
from pathlib import Path

import pytest

from codegen import bundle as bundle_mod
from codegen import files
from codegen.cli import main
from codegen.errors import UserError
from codegen.files import Output, write_tree

from support import only, require

IN_MOVED_FROM, IN_MOVED_TO, IN_CREATE, IN_DELETE = 0x40, 0x80, 0x100, 0x200
EVENTS = {IN_CREATE: "create", IN_MOVED_FROM: "moved_from", IN_MOVED_TO: "moved_to",
          IN_DELETE: "delete"}
FORK = multiprocessing.get_context("fork")
KIND = Output("test trees", "sign", "write_tree")
# Two trees with files in common, files of their own and different bytes; 40 files make
# filling the staging tree and deleting the old one take long enough to be hit.
TREES = {tag: {"sign": tag, f"{tag}_only.txt": tag,
               **{f"{'sub/' if i % 5 == 0 else ''}f{i:03}.h": f"{tag} {i}\n" * (i % 9 + 1)
                  for i in range(40)}}
         for tag in ("a", "b")}
# (watched, event, n): kill the writer at the n-th such event.  "parent" is the directory
# holding out, "staging" the staging tree (watched once created), "old" the tree out held.
KILLS = [("parent", "create", 1),                       # staging created
         ("staging", "create", 2), ("staging", "create", 20), ("staging", "create", 38),
         ("parent", "moved_from", 1), ("parent", "moved_to", 1),   # each rename
         ("parent", "moved_from", 2), ("parent", "moved_to", 2),
         ("parent", "create", 2),                       # the fallback's link
         ("old", "delete", 1), ("old", "delete", 20),   # the old tree being deleted
         ("parent", "delete", 1)]                       # the old tree gone
ROUNDS = 2


class Inotify:
    """inotify(7) through libc: (watched, event, name) for the events of EVENTS."""

    def __init__(self):
        self.libc = ctypes.CDLL(None, use_errno=True)
        self.fd = self.libc.inotify_init1(os.O_CLOEXEC)
        require(self.fd >= 0, "inotify (Linux)")
        self.watched = {}

    def watch(self, path, label):
        wd = self.libc.inotify_add_watch(self.fd, os.fsencode(path), sum(EVENTS))
        if wd >= 0:  # a path already gone is not watched
            self.watched[wd] = label

    def events(self, timeout):
        if not select.select([self.fd], [], [], timeout)[0]:
            return
        data, at = os.read(self.fd, 1 << 16), 0
        while at < len(data):
            wd, mask, _, size = struct.unpack_from("iIII", data, at)
            name = data[at + 16:at + 16 + size].rstrip(b"\0").decode()
            at += 16 + size
            for bit, event in EVENTS.items():
                if mask & bit and wd in self.watched:
                    yield self.watched[wd], event, name

    def close(self):
        os.close(self.fd)


def run(target, *args, kill_at=None, out=None):
    """Run target(*args) in a forked process; with kill_at (watched, event, n), SIGKILL it at
    that event in out's directory.  Whether it was killed."""
    watcher = Inotify()
    if kill_at:
        watcher.watch(out.parent, "parent")
        if out.exists():
            watcher.watch(out, "old")
    process = FORK.Process(target=target, args=args)
    process.start()
    seen, killed = 0, False
    while kill_at and not killed:
        for label, event, name in watcher.events(0.05):
            if (label, event) == ("parent", "create") and ".tmp-" in name:
                watcher.watch(out.parent / name, "staging")
            seen += (label, event) == kill_at[:2]
            if seen == kill_at[2]:
                os.kill(process.pid, signal.SIGKILL)
                killed = True
                break
        if not process.is_alive() and not killed:
            break
    process.join()
    watcher.close()
    assert killed or process.exitcode == 0, process.exitcode
    return killed


def write(out, tag, mechanism):
    if mechanism == "symlink":  # as on a filesystem without RENAME_EXCHANGE
        files._exchange = lambda a, b: False
    write_tree(out, TREES[tag], KIND)


def tree(path):
    return {p.relative_to(path).as_posix(): p.read_bytes()
            for p in Path(path).rglob("*") if p.is_file()}


def expected(tag):
    return {name: text.encode() for name, text in TREES[tag].items()}


def beside(out):
    """What lies beside out, less the version a fallback symlink out points to."""
    current = os.readlink(out) if out.is_symlink() else None
    return sorted(p for p in out.parent.iterdir() if p.name not in (out.name, current))


def describe(path, old, new):
    if path.is_symlink() and not path.exists():
        return "link"
    found = tree(path)
    for whole, label in ((new, "new whole"), (old, "old whole")):
        if found == whole:
            return label
    for whole, label in ((new, "new partial"), (old, "old partial")):  # a file cut short too
        if all(whole.get(name, b"-").startswith(data) for name, data in found.items()):
            return label
    raise AssertionError(f"{path} holds a mix of both trees")


@pytest.mark.parametrize("mechanism", ["exchange", "symlink"])
def test_kills_timed_inside_the_swap_leave_the_old_or_the_new_tree_whole(tmp_path, mechanism):
    out = tmp_path / "out"
    for tag in ("a", "b"):  # the symlink fallback turns the real directory into its link
        run(write, out, tag, mechanism)
    assert (mechanism == "symlink") == out.is_symlink()
    table, old = Counter(), "b"
    for kill_at in KILLS * ROUNDS:
        new = "a" if old == "b" else "b"
        killed = run(write, out, new, mechanism, kill_at=kill_at, out=out)
        found = tree(out)
        assert found in (expected(old), expected(new)), kill_at  # whole, in place
        left = ", ".join(describe(p, expected(old), expected(new)) for p in beside(out))
        state = ("old" if found == expected(old) else "new") + (left and f" + beside: {left}")
        table[(kill_at, state if killed else "finished before the kill")] += 1
        run(write, out, new, mechanism)  # the next run succeeds and cleans up
        assert tree(out) == expected(new) and beside(out) == []
        old = new
    inside = sum(n for (_, state), n in table.items()
                 if "old + beside: new whole" in state or "new + beside: old" in state)
    print(f"\n{mechanism}: {sum(table.values())} kills, {inside} timed inside the swap, "
          f"old/new whole every time")
    for (kill_at, state), n in sorted(table.items()):
        print(f"  {kill_at[0]}:{kill_at[1]} #{kill_at[2]:<4} {n}x  {state}")
    assert inside >= ROUNDS  # the kills did reach the swap


def test_a_kill_inside_the_fallbacks_conversion_is_undone_by_the_next_run(tmp_path):
    """Turning a real directory into the fallback's symlink is two renames; a kill between
    leaves the old tree beside, which the next run puts back before anything else (here a
    run refused for another reason)."""
    out, states = tmp_path / "out", Counter()
    for _ in range(6):
        shutil.rmtree(tmp_path)
        tmp_path.mkdir()
        run(write, out, "a", "exchange")  # a real directory
        run(write, out, "b", "symlink", kill_at=("parent", "moved_from", 2), out=out)
        if not os.path.lexists(out):
            states["no out"] += 1
            with pytest.raises(UserError, match="holds no"):
                write_tree(out, {}, Output("other trees", "other", "another writer"))
            assert not out.is_symlink() and tree(out) == expected("a")
        else:
            states["old" if tree(out) == expected("a") else "new"] += 1
        run(write, out, "b", "symlink")
        assert tree(out) == expected("b") and beside(out) == []
    print(f"\nconversion kills: {dict(states)}")


def test_an_error_while_writing_leaves_the_old_tree_and_no_staging(tmp_path):
    out = tmp_path / "out"
    write_tree(out, TREES["a"], KIND)
    with pytest.raises(TypeError):
        write_tree(out, {**TREES["b"], "z.h": None}, KIND)
    assert tree(out) == expected("a") and beside(out) == []


@pytest.fixture(scope="module")
def two_bundles(iot_bundle, tmp_path_factory):
    """Two bundles whose generated directories differ in file names and bytes, and what
    `generate` writes for each."""
    root = tmp_path_factory.mktemp("bundles")
    alpha = dataclasses.replace(only(iot_bundle, "zscore", "kmeans"), name="alpha")
    made = {"alpha": bundle_mod.save(alpha, root / "alpha"),
            "beta": bundle_mod.save(iot_bundle, root / "beta")}
    for name, path in made.items():
        assert main(["generate", str(path), "--out", str(root / f"{name}.h")]) == 0
    return made, {name: tree(root / f"{name}.h") for name in made}


def generate(bundle, out):
    os._exit(main(["generate", str(bundle), "--out", str(out)]))


def test_killed_generate_leaves_one_bundles_headers_whole(two_bundles, tmp_path):
    paths, trees = two_bundles
    out, old, kills = tmp_path / "include", "alpha", 0
    assert main(["generate", str(paths[old]), "--out", str(out)]) == 0
    for kill_at in KILLS[:2] + KILLS[4:8] + KILLS[9:]:
        new = "beta" if old == "alpha" else "alpha"
        kills += run(generate, paths[new], out, kill_at=kill_at, out=out)
        assert tree(out) in (trees[old], trees[new]), kill_at
        assert main(["generate", str(paths[new]), "--out", str(out)]) == 0
        assert tree(out) == trees[new] and beside(out) == []
        old = new
    assert kills >= 6


def test_concurrent_generates_leave_one_of_them_whole(two_bundles, tmp_path):
    paths, trees = two_bundles
    out = tmp_path / "include"
    for _ in range(4):
        runs = [FORK.Process(target=generate, args=(paths[n], out)) for n in ("alpha", "beta")]
        for process in runs:
            process.start()
        for process in runs:
            process.join()
            assert process.exitcode == 0
        assert tree(out) in trees.values() and beside(out) == []


@pytest.fixture
def small_disk(tmp_path):
    """A 1 MiB tmpfs (needs root, or a mount namespace)."""
    mount = tmp_path / "small"
    mount.mkdir()
    require(shutil.which("mount") is not None, "mount")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    require(done.returncode == 0, f"permission to mount a tmpfs ({done.stderr.strip()})")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], check=True)


def fill(disk, leave):
    """Fill disk, then free `leave` bytes."""
    filler = disk / "filler"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT)
    try:
        while os.write(fd, b"\0" * 4096):
            pass
    except OSError:
        pass
    finally:
        os.close(fd)
    os.truncate(filler, max(filler.stat().st_size - leave, 0))


def test_a_full_disk_is_an_error_and_leaves_the_old_output(two_bundles, small_disk, iot_bundle,
                                                           capsys):
    paths, trees = two_bundles
    out = small_disk / "include"
    assert main(["generate", str(paths["alpha"]), "--out", str(out)]) == 0
    fill(small_disk, 16 * 1024)
    capsys.readouterr()
    assert main(["generate", str(paths["beta"]), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"no space left on {small_disk}; free space or choose another --out" in err, err
    assert "Traceback" not in err
    assert tree(out) == trees["alpha"]
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "include"]
    with pytest.raises(UserError, match="no space left"):
        bundle_mod.save(iot_bundle, small_disk / "model")
    assert sorted(p.name for p in small_disk.iterdir()) == ["filler", "include"]


def test_a_directory_generate_did_not_write_is_refused_unless_forced(two_bundles, tmp_path,
                                                                     capsys):
    paths, trees = two_bundles
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "model.h").write_text("/* my own header */\n")
    assert main(["generate", str(paths["beta"]), "--out", str(mine)]) == 2
    err = capsys.readouterr().err
    assert f"{mine} is not empty and holds no generated headers (.mcu-anomaly-generated)" in err
    assert "choose another --out, or give --force" in err
    assert tree(mine) == {"model.h": b"/* my own header */\n"}
    assert main(["generate", str(paths["beta"]), "--out", str(mine), "--force"]) == 0
    assert tree(mine) == trees["beta"]  # replaced whole: model.h is gone, as --help says
    for kind in ([], ["--firmware"]):  # a bundle is no generated output, and vice versa
        assert main(["generate", str(paths["beta"]), "--out", str(paths["alpha"]), *kind]) == 2
    assert main(["generate", str(paths["beta"]), "--firmware", "--out", str(mine)]) == 2
    assert "holds no generated firmware sources (mcua_firmware.h)" in capsys.readouterr().err
    assert bundle_mod.load(paths["alpha"]).name == "alpha"


def test_stale_files_of_another_model_disappear(two_bundles, tmp_path):
    paths, trees = two_bundles
    out = tmp_path / "include"
    for name in ("beta", "alpha"):
        assert main(["generate", str(paths[name]), "--out", str(out)]) == 0
    assert tree(out) == trees["alpha"]
    assert not (out / "sensors_streaming_zscore.h").exists()


def test_root_home_working_directory_and_the_bundle_are_never_replaced(
        two_bundles, tmp_path, monkeypatch, capsys):
    paths, _ = two_bundles
    home, work = tmp_path / "home", tmp_path / "work" / "project"
    for directory in (home, work):
        directory.mkdir(parents=True)
        (directory / "notes.txt").write_text("keep")
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(work)
    cases = [("/", "/ is the root directory", []),
             (home, f"{home} is the home directory", ["--force"]),
             (work, f"{work} is the working directory", ["--force"]),
             (work.parent, f"{work.parent} holds the working directory", ["--force"]),
             (paths["alpha"].parent, f"holds the input {paths['alpha']}", ["--force"])]
    for out, message, force in cases:
        assert main(["generate", str(paths["alpha"]), "--out", str(out), *force]) == 2
        err = capsys.readouterr().err
        assert message in err and "never takes this one, even with --force" in err, err
    assert not Path("/alpha.h").exists()
    assert tree(home) == tree(work) == {"notes.txt": b"keep"}


def test_train_refuses_a_foreign_directory_unless_forced(iot_bundle, tmp_path, capsys):
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "data.csv").write_text("a\n1\n")
    train = ["train", "--detectors", "zscore", "--quiet", "--out", str(mine)]
    assert main(train) == 2
    assert "holds no bundle (bundle.json): `train` replaces" in capsys.readouterr().err
    assert (mine / "data.csv").is_file()
    assert main(train + ["--force"]) == 0
    assert not (mine / "data.csv").exists() and bundle_mod.load(mine).detectors


def test_leftovers_of_a_killed_run_are_removed_and_never_read(two_bundles, tmp_path):
    paths, trees = two_bundles
    out = tmp_path / "include"
    assert main(["generate", str(paths["alpha"]), "--out", str(out)]) == 0
    for name in (".include.tmp-abcd1234", ".include.old-abcd1234", ".include.v-abcd1234"):
        shutil.copytree(out, tmp_path / name)
    os.symlink(".include.v-abcd1234", tmp_path / ".include.lnk-abcd1234")
    (tmp_path / ".include.tmp-mine").mkdir()  # not one of ours: left alone
    assert main(["generate", str(paths["beta"]), "--out", str(out)]) == 0
    assert tree(out) == trees["beta"]
    assert [p.name for p in beside(out)] == [".include.tmp-mine"]
