"""Does a bundle fit a board?  A lower bound of the RAM and flash it needs, from its shapes.

Each detector's spec gives its footprint (codegen/detectors/base.py Footprint): constants
in flash, state and static buffers in RAM, buffers on the stack during a call.  The RAM a
firmware needs is at least the sum of the static parts plus the largest stack buffer (the
detectors run one after the other); code, padding and the C library are not counted, so
the estimate never refuses what fits and refuses the clear misfits before the compiler
does ("size of array is too large") or the linker.  The firmware app of `generate
--firmware` and `verify --target` adds its own buffers and a measured baseline (APP).
"""

from __future__ import annotations

from dataclasses import dataclass

from codegen.bundle import Bundle
from codegen.detectors import get
from codegen.errors import UserError


@dataclass(frozen=True)
class Board:
    description: str
    ram: int  # bytes of RAM (the board file's upload.maximum_ram_size)
    flash: int  # bytes of flash a firmware may take (upload.maximum_size)
    # The firmware app with no detector and one channel, less its channel-sized buffers:
    # rounded-down sizes of the measured builds (static RAM 225 B and flash 4,642 B on the
    # Uno; 2,356 and 12,704 B on the Cortex-M4F; 3,360 and 14,452 B on rv32imc).
    app_ram: int
    app_flash: int
    line_protocol: bool  # the app keeps a line buffer of 24 B per channel (serial port)


# firmware_targets/platforms/mcua_offline/boards/*.json (tests/test_shared_constants.py)
BOARDS = {
    "uno": Board("the Uno (ATmega328P)", 2048, 32256, 200, 4096, True),
    "cortex_m4f": Board("the MPS2 AN386 (Cortex-M4F) in qemu", 4 << 20, 4 << 20, 2048, 12288,
                        False),
    "rv32imc": Board("the rv32imc qemu virt machine", 2 << 20, 2 << 20, 3072, 14336, False),
}
BIGGER = {"uno": "cortex_m4f", "rv32imc": "cortex_m4f"}


@dataclass(frozen=True)
class Part:
    what: str  # a detector, or "the firmware app"
    flash: int
    ram: int
    stack: int
    shrink: str
    app: bool = False  # the app's stack buffer is there while every detector runs

    @property
    def memory(self) -> int:
        return self.ram + self.stack


def parts(bundle: Bundle, env: str, app: bool = False) -> list[Part]:
    """What each detector (and, with app, the firmware app) takes on board env."""
    n = len(bundle.channels)
    out = []
    for name, fitted in bundle.detectors.items():
        f = get(name).SPEC.footprint_of(fitted, n)
        out.append(Part(name, f.flash, f.ram, f.stack, f.shrink))
    if app:
        board = BOARDS[env]
        line = 24 * n + 9 if board.line_protocol else 0  # mcua_app.c rx_line
        # + the sample x[channels] on the stack while the detectors run (mcua_app.c)
        out.append(Part("the firmware app", board.app_flash, board.app_ram + line, 4 * n,
                        "fewer channels (--columns)", app=True))
    return out


def needs(found: list[Part]) -> tuple[int, int]:
    """(RAM, flash) in bytes at least: the static parts, the app's stack buffer and the
    largest detector's, and every constant."""
    app_stack = sum(p.stack for p in found if p.app)
    detector_stack = max([p.stack for p in found if not p.app], default=0)
    return (sum(p.ram for p in found) + app_stack + detector_stack,
            sum(p.flash for p in found))


def check(bundle: Bundle, env: str, app: bool = False) -> tuple[int, int]:
    """Refuse a bundle that cannot fit board env (with the firmware app when app), with the
    figure, the limit and what would make it smaller; else its (RAM, flash) lower bound."""
    board = BOARDS[env]
    found = parts(bundle, env, app)
    ram, flash = needs(found)
    n = len(bundle.channels)
    bigger = f", or a bigger board (--target {BIGGER[env]})" if env in BIGGER else ""
    for kind, need, limit, key in (("RAM", ram, board.ram, "memory"),
                                   ("flash", flash, board.flash, "flash")):
        if need > limit:
            found.sort(key=lambda p: -getattr(p, key))
            shares = ", ".join(f"{p.what} {getattr(p, key):,} B" for p in found
                               if getattr(p, key))
            raise UserError(
                f"{'the firmware for ' if app else ''}bundle {bundle.name!r} ({n} channel"
                f"{'s' if n != 1 else ''}) needs at least {need:,} B of {kind} on {env}, and "
                f"{board.description} has {limit:,} B ({shares}); use {found[0].shrink}"
                f"{bigger}")
    return ram, flash
