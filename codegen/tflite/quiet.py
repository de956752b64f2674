"""Silencing TensorFlow, its converter and LiteRT, which log from C++ straight to file
descriptors 1 and 2 (where redirecting sys.stdout/sys.stderr cannot reach)."""

from __future__ import annotations

import contextlib
import io
import os
import sys
import tempfile
import warnings


@contextlib.contextmanager
def quiet(enabled: bool = True, keep_stdout: bool = False):
    """Silence file descriptors 1 and 2 (TensorFlow's C++ logs, the converter's
    prints, LiteRT's delegate notice); with keep_stdout, only fd 2 and Python
    warnings (Keras prints its progress to sys.stdout).  Yields a callable that
    returns what was captured, for error messages."""
    if not enabled:
        yield lambda: ""
        return
    fds = (2,) if keep_stdout else (1, 2)
    sys.stdout.flush()
    sys.stderr.flush()
    saved = {fd: os.dup(fd) for fd in fds}
    tmp = tempfile.TemporaryFile(mode="w+b")
    text = {"v": None}

    def captured():
        if text["v"] is None:
            tmp.flush()
            tmp.seek(0)
            return tmp.read().decode("utf-8", "replace")
        return text["v"]

    try:
        for fd in fds:
            os.dup2(tmp.fileno(), fd)
        with contextlib.ExitStack() as stack:
            if not keep_stdout:
                stack.enter_context(contextlib.redirect_stdout(io.StringIO()))
            stack.enter_context(warnings.catch_warnings())
            warnings.simplefilter("ignore")
            yield captured
    finally:
        try:
            sys.stdout.flush()
            sys.stderr.flush()
        except Exception:  # pragma: no cover
            pass
        for fd, dup in saved.items():
            os.dup2(dup, fd)
            os.close(dup)
        text["v"] = captured()
        tmp.close()
