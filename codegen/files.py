"""Writing outputs: all of a file or a directory, or nothing, with the modes a plain write
gives (0644 files, 0755 directories under umask 022; tempfile's 0600 / 0700 would break a
build run as another user).  Reading the JSON files the tool wrote.

A directory output (a bundle, generated headers, firmware sources) is replaced whole
(write_tree): after a kill at any instant it is the old tree or the new one, complete.  It is
replaced only when it is missing, empty or marked as one of ours (`Output.sign`), or with
force; never the root, the home or the working directory, nor one that holds them.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from codegen.errors import UserError

_RENAME_EXCHANGE = 2  # linux/fs.h
_AT_FDCWD = -100
_UNSUPPORTED = {errno.EINVAL, errno.ENOSYS, errno.ENOTSUP, errno.EOPNOTSUPP}


@dataclass(frozen=True)
class Output:
    """A kind of directory output: its name in messages, the file that marks a directory as
    one of ours, the command that writes it and the option that names the directory."""

    what: str
    sign: str
    command: str
    option: str = "--out"


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _refuse_full_disk(error: OSError, out: Path, option: str = "--out") -> None:
    """A full disk as a UserError; any other OSError goes on to the CLI, which names the
    argument and the fix for its errno (cli.os_error_message)."""
    if error.errno in (errno.ENOSPC, errno.EDQUOT):
        raise UserError(f"cannot write {out}: no space left on {out.parent}; free space or "
                        f"choose another {option}") from None


def write_file(out: str | Path, data: str | bytes) -> Path:
    """Write out through a temporary file beside it and a rename."""
    with replacing(out) as handle:
        handle.write(data.encode("utf-8") if isinstance(data, str) else data)
    return Path(out)


@contextlib.contextmanager
def replacing(out: str | Path, mode: str = "wb"):
    """A handle on a temporary file beside out that takes out's place when the block ends
    without an error, and is removed when it raises: out is the old file or the new one,
    whole, whatever happens while it is written.  The writer holds a lock on its temporary
    file until the rename, so the next writer can tell a killed run's leftover (removed)
    from a live one's (left alone)."""
    out = Path(os.path.abspath(out))
    if out.is_dir():
        raise UserError(f"{out} is a directory; give a file name")
    tmp = None
    text = {} if "b" in mode else {"encoding": "utf-8", "newline": ""}
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _locked(out.parent) as alone:
            if alone:
                _remove_dead_files(out)
            fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.tmp-", dir=out.parent)
            fcntl.flock(fd, fcntl.LOCK_EX)
        with os.fdopen(fd, mode, **text) as handle:
            yield handle
            handle.flush()
            os.fchmod(handle.fileno(), 0o666 & ~_umask())
            os.replace(tmp, out)
    except OSError as error:
        _refuse_full_disk(error, out)
        raise
    finally:
        if tmp is not None and os.path.exists(tmp):
            os.unlink(tmp)


def _remove_dead_files(out: Path) -> None:
    """Remove the temporary files killed writers of out left (replacing): those whose lock
    nobody holds."""
    for path in out.parent.iterdir():
        if not _siblings(out, "tmp").fullmatch(path.name) or not path.is_file():
            continue
        try:
            fd = os.open(path, os.O_RDONLY)
        except OSError:
            continue  # gone already
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            path.unlink(missing_ok=True)
        except OSError:
            pass  # a live writer's
        finally:
            os.close(fd)


def write_tree(out: str | Path, files: dict[str, str | bytes], kind: Output,
               dirs: tuple[str, ...] = (), force: bool = False, keep: tuple = ()) -> Path:
    """Replace directory out by exactly these files (relative paths -> contents) and
    directories, all at once: they are written to a sibling staging directory, which then
    takes out's place (_swap).

    out may be replaced when it is missing, empty or holds kind.sign; force replaces any
    other directory too, deleting what it holds, but never the root, the home directory,
    the working directory, or one holding any of them or a path of keep.  A symlink out
    (not one of ours) stands for the directory it points to.  Writers in one directory take
    turns, and each first removes what a killed run left there."""
    given = out
    out = Path(os.path.abspath(out))
    if out.is_symlink() and not _our_link(out):
        out = out.resolve()
    staging = old = None
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        with _locked(out.parent) as alone:
            if alone:
                _recover(out)
            _check_replaceable(out, kind, force, keep)
            staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
            _fill(staging, files, dirs)
            old = _swap(staging, out)
    except OSError as error:
        _refuse_full_disk(error, out, kind.option)
        raise
    finally:
        for path in (staging, old):
            if path is not None:
                _remove(path)
    return Path(given)


def _fill(staging: Path, files: dict[str, str | bytes], dirs: tuple[str, ...]) -> None:
    mask = _umask()
    for name in dirs:
        (staging / name).mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        path = staging / name
        path.parent.mkdir(parents=True, exist_ok=True)
        (path.write_text if isinstance(data, str) else path.write_bytes)(data)
        os.chmod(path, 0o666 & ~mask)
    for path in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
        os.chmod(path, 0o777 & ~mask)


def _check_replaceable(out: Path, kind: Output, force: bool, keep: tuple) -> None:
    if not os.path.lexists(out):
        return
    if not out.is_dir():
        raise UserError(f"{out} exists and is not a directory; choose another {kind.option}")
    real, cwd = out.resolve(), Path.cwd().resolve()
    never = {Path(real.anchor): "the root directory", Path.home().resolve(): "the home directory",
             **{Path(p).resolve(): f"the input {p}" for p in keep}, cwd: "the working directory"}
    for path, what in never.items():
        if path == real or real in path.parents:
            relation = "is" if path == real else "holds"
            raise UserError(f"{out} {relation} {what}: `{kind.command}` replaces its "
                            f"{kind.option} directory whole, so it never takes this one, even "
                            f"with --force; choose another {kind.option}")
    if not (force or (out / kind.sign).is_file() or not any(out.iterdir())):
        raise UserError(f"{out} is not empty and holds no {kind.what} ({kind.sign}): "
                        f"`{kind.command}` replaces its {kind.option} directory whole, deleting "
                        f"everything in it; choose another {kind.option}, or give --force to "
                        f"replace it")


def _swap(staging: Path, out: Path) -> Path | None:
    """Put the finished tree staging at out; the path that then holds the old tree (to be
    deleted), or None.

    renameat2(RENAME_EXCHANGE) swaps the two directories in one step (Linux >= 3.15, glibc
    >= 2.28; ext4, xfs, btrfs, tmpfs, overlayfs have it, measured here on ext4 and tmpfs:
    ~20 us) and leaves out a plain directory, what every tool reading it expects.  Where the
    exchange is missing (macOS, NFS, FUSE, ext2, an older kernel or libc) out becomes a
    symlink to a versioned sibling `.<out>.v-*`, replaced by renaming a new symlink over it,
    also one step.  The first time, turning a real directory into that symlink takes two
    renames: a kill between them leaves the old tree as `.<out>.old-*`, which the next run
    puts back (_recover) before it writes.  The symlink is not the first choice because it
    changes what out is (rm -r out/, copying tools) and needs that conversion."""
    if not os.path.lexists(out):
        staging.rename(out)
        return None
    if not _our_link(out) and _exchange(staging, out):
        return staging
    suffix = staging.name.rsplit("-", 1)[1]
    version, link = (out.with_name(f".{out.name}.{k}-{suffix}") for k in ("v", "lnk"))
    staging.rename(version)
    os.symlink(version.name, link)
    if _our_link(out):
        old = out.with_name(os.readlink(out))
    else:
        old = out.with_name(f".{out.name}.old-{suffix}")
        out.rename(old)
    os.replace(link, out)
    return old


def _exchange(a: Path, b: Path) -> bool:
    """Swap a and b atomically; False where libc, the kernel or the filesystem cannot."""
    try:
        renameat2 = ctypes.CDLL(None, use_errno=True).renameat2
    except (AttributeError, OSError, TypeError):
        return False
    renameat2.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p,
                          ctypes.c_uint]
    if renameat2(_AT_FDCWD, os.fsencode(a), _AT_FDCWD, os.fsencode(b), _RENAME_EXCHANGE) == 0:
        return True
    code = ctypes.get_errno()
    if code in _UNSUPPORTED:
        return False
    raise OSError(code, os.strerror(code), str(b))


def _siblings(out: Path, kinds: str = "tmp|v|lnk|old") -> re.Pattern:
    """The names a run gives what it puts beside out (mkdtemp's 8-character suffix): its
    staging tree (after the exchange, the old tree), and for the symlink fallback a version,
    a link, an old tree."""
    return re.compile(rf"\.{re.escape(out.name)}\.({kinds})-[a-z0-9_]{{8}}")


def _our_link(out: Path) -> bool:
    """out is the symlink fallback's link to one of its versions."""
    return out.is_symlink() and _siblings(out, "v").fullmatch(os.readlink(out)) is not None


@contextlib.contextmanager
def _locked(directory: Path):
    """Writers in one directory take turns: flock on the directory itself, released when its
    holder dies, so what lies beside out under the lock is a dead run's.  Yields False where
    the filesystem has no such lock (the run then leaves others' leftovers alone)."""
    fd = os.open(directory, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except OSError:
            yield False
        else:
            yield True
    finally:
        os.close(fd)


def _recover(out: Path) -> None:
    """Remove what killed runs left beside out (staging trees, old trees, links, versions out
    does not point to); if one was killed inside the fallback's first conversion (no out, an
    old tree), put the old tree back first."""
    found = sorted(p for p in out.parent.iterdir() if _siblings(out).fullmatch(p.name))
    olds = [p for p in found if p.name.startswith(f".{out.name}.old-")]
    if olds and not os.path.lexists(out):
        olds[0].rename(out)
    current = os.readlink(out) if _our_link(out) else None
    for path in found:
        if path.name != current and os.path.lexists(path):
            _remove(path)


def _remove(path: Path) -> None:
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path, ignore_errors=True)


def read_json(path: Path, fix: str):
    """The JSON document in path; a UserError naming the problem and `fix` otherwise."""
    try:
        return json.loads(Path(path).read_bytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserError(f"{path} is not valid JSON text ({error}); {fix}") from None
