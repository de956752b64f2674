"""A real board on a serial port as an engine: the firmware app (firmware_targets/app),
built from a bundle and flashed, answers the line protocol of docs/firmware.md.  Every
reading goes out as the exact bits of its float32 and every R line comes back as the
score's bits, so the comparison is as exact as with the simulators.

    with SerialPortEngine(bundle, "/dev/ttyACM0") as engine:  # opens, identifies
        compare(bundle, engine, inputs, flag_api=False)

The app scores through each detector's score API (no flag API) and reports no state.
"""

from __future__ import annotations

import time

import numpy as np
import serial

from codegen.bundle import Bundle
from codegen.detectors.base import Scored
from codegen.errors import UserError
from codegen.firmware.lines import parse_done, parse_info, parse_result, parse_stack

F32 = np.float32
BAUD = 115200  # port_arduino.cpp's Serial.begin
# Bytes the Uno's receive ring holds (64, one slot kept free): never more than this may
# wait unread on the board while it is busy answering.
RX_ROOM = 63
# Rows one run holds, each run from a fresh state (Z): one pass runs every detector (an
# engine without a chunk limit would get the streaming detectors in a second pass).
RUN_ROWS = 10_000
ANSWER_SECONDS = 5.0  # the longest wait for one answer line
# The wait for the identification: a board that resets when the port opens (the Uno,
# through DTR) starts the app only after its bootloader.
IDENTIFY_SECONDS = 6.0


def _flash_hint(bundle_path: str, port: str) -> str:
    return (f"flash the bundle's firmware: mcu-anomaly generate {bundle_path} --firmware "
            f"--out firmware_targets/generated && pio run -e uno -t upload --upload-port "
            f"{port} (or your board's environment, docs/firmware.md)")


class SerialPortEngine:
    """A bundle's detectors on a board running the firmware app
    (codegen.verify.engines.Engine); a context manager that closes the port."""

    chunk = RUN_ROWS

    def __init__(self, bundle: Bundle, port: str, baud: int = BAUD,
                 bundle_path: str = "BUNDLE"):
        self.bundle = bundle
        self.name = port
        self.port = port
        self.baud = baud
        self.hint = _flash_hint(bundle_path, port)
        self.pending = bytearray()  # received bytes after the last whole line
        try:
            self.link = serial.Serial(port, baud, timeout=ANSWER_SECONDS,
                                      write_timeout=ANSWER_SECONDS)
        except (serial.SerialException, ValueError) as error:
            raise UserError(f"cannot open {port} at {baud} baud ({error}); give --port the "
                            f"board's serial device (e.g. /dev/ttyACM0, /dev/ttyUSB0), one "
                            f"you may open (on Linux: the dialout group)") from None
        try:
            self._identify()
            self._reset(after_boot=True)
        except BaseException:
            self.link.close()
            raise

    def __enter__(self) -> SerialPortEngine:
        return self

    def __exit__(self, *exc) -> None:
        self.link.close()

    def _send(self, line: str) -> None:
        try:
            self.link.write(line.encode("ascii") + b"\n")
        except serial.SerialTimeoutException:
            raise UserError(f"{self.port} takes no input (nothing sent within "
                            f"{ANSWER_SECONDS:g} s): is the board connected?") from None

    def _line(self) -> str | None:
        """The next whole line received, None when ANSWER_SECONDS pass without one."""
        while b"\n" not in self.pending:
            chunk = self.link.read(max(1, self.link.in_waiting))
            if not chunk:
                return None
            self.pending += chunk
        line, _, rest = self.pending.partition(b"\n")
        self.pending = bytearray(rest)
        return line.rstrip(b"\r").decode("ascii", "replace")

    def _silent(self, what: str, seen: list[str]) -> UserError:
        heard = f"; it sent {seen[-3:]}" if seen else ""
        return UserError(f"no {what} from {self.port}{heard}: is the baud rate right (the "
                         f"app talks at {BAUD}; --baud {self.baud} given) and is the board "
                         f"running the mcu-anomaly firmware app? If not, {self.hint}")

    def _identify(self) -> None:
        """Asks for the I line (a board that resets on open prints it when the app
        starts) and checks it against the bundle."""
        self._send("I")
        seen: list[str] = []
        deadline = time.monotonic() + IDENTIFY_SECONDS
        while True:
            line = self._line()
            info = parse_info(line) if line else None
            if info:
                break
            if line:
                seen.append(line)
            if time.monotonic() > deadline:
                raise self._silent("identification (I line)", seen)
        want = (self.bundle.name, len(self.bundle.channels), sorted(self.bundle.detectors))
        got = (info.model, info.n_channels, sorted(info.detectors))
        fields = ("model name", "channel count", "detectors")
        differ = [f"{field} {g!r} (the bundle's: {w!r})"
                  for field, g, w in zip(fields, got, want) if g != w]
        if differ:
            raise UserError(f"the board on {self.port} runs another bundle's firmware: "
                            f"{'; '.join(differ)}; {self.hint}")
        self.order = info.detectors  # the board's: the index in its R lines

    def _reset(self, after_boot: bool = False) -> None:
        """Z: the detectors start afresh, samples are numbered from 0.  after_boot: the
        lines the app prints when it starts (I, test vectors, DONE) may come first."""
        self._send("Z")
        seen: list[str] = []
        while (line := self._line()) != "OK":
            if line is None:
                raise self._silent("answer to Z (OK)", seen)
            booting = parse_info(line) or parse_result(line) or parse_done(line) is not None
            if not (after_boot and booting):
                raise UserError(f"{self.port} answered {line!r} to Z, not OK")
            seen.append(line)

    def run(self, X: np.ndarray, detectors: list[str], flag_api: bool = False,
            resume: bool = False, state: bool = True) -> dict[str, Scored]:
        """Scores and flags of every row (no state, whatever state asks), from a fresh
        state."""
        if flag_api:
            raise ValueError(f"{self.name}: the firmware app scores through the score APIs "
                             f"only")
        if resume:
            raise ValueError(f"{self.name}: every run starts from a fresh state")
        self._reset()
        bits, flags = self._exchange(np.ascontiguousarray(X, dtype=F32))
        return {d: Scored(bits[self.order.index(d)].view(F32), flags[self.order.index(d)])
                for d in detectors}

    def stack_untouched(self) -> int | None:
        """M: the bytes of free RAM the board's stack never reached since it started (0:
        the stack reached the static data), None where the board does not measure it (or
        its app predates M)."""
        self._send("M")
        line = self._line()
        if line is None:
            raise self._silent("answer to M", [])
        if line.startswith("E "):
            return None
        untouched = parse_stack(line)
        if untouched is None:
            raise UserError(f"{self.port} answered {line!r} to M, not 'M <bytes>'")
        return None if untouched < 0 else untouched

    def _exchange(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Sends every row as an S line and reads its R lines, [detector, row] score bits
        and flags.  The next lines go out while the board answers one, as many as fit in
        its receive buffer besides (none when a line alone does not)."""
        n_det, n = len(self.bundle.detectors), len(X)
        bits = np.zeros((n_det, n), dtype=np.uint32)
        flags = np.zeros((n_det, n), dtype=bool)
        lines = ["S " + ",".join(f"x{b:08x}" for b in row) for row in X.view(np.uint32)]
        sent = waiting = 0  # waiting: bytes of the lines sent whose answer has not begun
        for s in range(n):
            if sent == s:  # nothing in flight: the board reads the line as it comes
                self._send(lines[s])
                sent, waiting = s + 1, len(lines[s]) + 1
            for d in range(n_det):
                line = self._line()
                result = parse_result(line) if line else None
                if result is None or (result.detector, result.sample) != (d, s):
                    raise self._unexpected(line, f"R {d} {s} <score> <flag>", lines[s])
                bits[d, s], flags[d, s] = result.score_bits, result.flag
                if d == 0:
                    waiting -= len(lines[s]) + 1
                    while sent < n and waiting + len(lines[sent]) + 1 <= RX_ROOM:
                        self._send(lines[sent])
                        waiting += len(lines[sent]) + 1
                        sent += 1
        return bits, flags

    def _unexpected(self, line: str | None, expected: str, sent: str) -> UserError:
        if line is None:
            return UserError(f"{self.port} stopped answering: nothing within "
                             f"{ANSWER_SECONDS:g} s after {sent!r} (did the board reset or "
                             f"lose power?)")
        if line.startswith("E "):
            return UserError(f"the board on {self.port} reported an error for {sent!r}: "
                             f"{line[2:]}")
        return UserError(f"{self.port} answered {line!r} to {sent!r}, expected {expected!r} "
                         f"(garbled lines: is --baud {self.baud} the app's {BAUD}?)")
