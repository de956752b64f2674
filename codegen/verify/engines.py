"""Engines: what runs a bundle's detectors on inputs and reports scores, flags and state.

Four engines answer the same question, "run these rows and give me what the detectors say":
  PythonEngine      the float32 Python reference (codegen/detectors), here;
  HostModel         the generated C built for this machine (host_sim/hostlib.py);
  TargetEngine      the firmware built with PlatformIO, run in simavr or qemu
                    (host_sim/firmware_target.py);
  SerialPortEngine  a real board running the firmware app, over its serial port
                    (codegen/verify/serial_port.py).
codegen/verify/compare.py compares an engine with the reference.  codegen never imports
host_sim: the CLI builds the C engines and hands them in.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from codegen.bundle import Bundle
from codegen.detectors import get
from codegen.detectors.base import Scored
from codegen.detectors.window import Window, new_state

F32 = np.float32


class Engine(Protocol):
    name: str  # in reports: "python", "host", "uno", ...
    chunk: int | None  # rows one run holds, each run from a fresh state (None: no limit)

    def run(self, X: np.ndarray, detectors: list[str], flag_api: bool = False,
            resume: bool = False, state: bool = True) -> dict[str, Scored]:
        """Every detector named, from a fresh state, over the rows of X, with the state
        after every row where the engine can report it (and state is True: without it the
        memory stays that of the scores).  flag_api: the detectors whose spec has flag_api,
        through their flag API (Kind.flag_function; scores are 0, a streaming detector's
        state is still reported).  resume (engines without a chunk limit,
        streaming detectors): go on from the state the engine's previous run of the
        detector left, as if X followed those rows in one stream."""
        ...


class PythonEngine:
    """The reference: each detector module's score()."""

    name = "python"
    chunk = None

    def __init__(self, bundle: Bundle):
        self.bundle = bundle
        self.windows: dict[str, Window] = {}  # each streaming detector's, for resume

    def run(self, X: np.ndarray, detectors: list[str], flag_api: bool = False,
            resume: bool = False, state: bool = True) -> dict[str, Scored]:
        out = {}
        for name in detectors:
            fitted = self.bundle.detectors[name]
            module = get(name)
            if module.SPEC.streaming(fitted):
                if not resume or name not in self.windows:
                    self.windows[name] = new_state(fitted, len(self.bundle.channels))
                result = module.score(fitted, X, with_state=state, state=self.windows[name])
            else:
                result = module.score(fitted, X)
            if flag_api:  # the flag API's flags and state are the score API's
                result = Scored(np.zeros(len(X), dtype=F32), result.flags, result.state)
            out[name] = result
        return out
