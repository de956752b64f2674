"""The firmware app's output lines (firmware_targets/README.md, docs/firmware.md), read by
the simulator runs (host_sim/targets.py) and by a board on a serial port
(codegen/verify/serial_port.py)."""

from __future__ import annotations

import re
import struct
from typing import NamedTuple

_INFO = re.compile(r"I (\w+) (\d+) ([\w,]*)\Z")
_RESULT = re.compile(r"R (\d+) (\d+) ([0-9a-f]{8}) ([01])\Z")
_DONE = re.compile(r"DONE (\d+)\Z")
_STACK = re.compile(r"M (\d+|-)\Z")


class Info(NamedTuple):
    """`I <model> <channels> <detector,...>`: what the firmware runs."""

    model: str
    n_channels: int
    detectors: list[str]


class Result(NamedTuple):
    """One `R <detector> <sample> <hex32> <flag>` line of the firmware (a tuple: a run
    prints 100,000 of them)."""

    detector: int
    sample: int
    score_bits: int
    flag: int

    @property
    def score(self) -> float:
        return struct.unpack("<f", struct.pack("<I", self.score_bits))[0]


def parse_info(line: str) -> Info | None:
    """The Info of an I line, None for any other line."""
    match = _INFO.match(line.rstrip("\r"))
    if not match:
        return None
    return Info(match[1], int(match[2]), match[3].split(",") if match[3] else [])


def parse_result(line: str) -> Result | None:
    """The Result of an R line, None for any other line."""
    match = _RESULT.match(line.rstrip("\r"))
    if not match:
        return None
    return Result(int(match[1]), int(match[2]), int(match[3], 16), int(match[4]))


def parse_done(line: str) -> int | None:
    """The count of a DONE line (the test vectors run), None for any other line."""
    match = _DONE.match(line.rstrip("\r"))
    return int(match[1]) if match else None


def parse_stack(line: str) -> int | None:
    """The bytes of an M line (free RAM the stack never reached; -1: the board does not
    measure it), None for any other line."""
    match = _STACK.match(line.rstrip("\r"))
    if not match:
        return None
    return -1 if match[1] == "-" else int(match[1])
