"""The firmware as an engine: generated sources built with PlatformIO for one offline
environment and run in its simulator (simavr or qemu), read back as scores and flags.

    target = Target("uno", workdir)            # builds, sizes, runs, counts
    engine = TargetEngine(bundle, target)      # codegen.verify.engines.Engine

Test vectors live in the firmware's flash: a stream longer than one firmware holds
(chunk) is run in chunks, each from a fresh detector state (codegen/verify/compare.py
starts the reference afresh at the same rows).
"""

from __future__ import annotations

import dataclasses
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from codegen.bundle import Bundle
from codegen.detectors.base import Scored
from codegen.errors import UserError
from codegen.firmware import OFFLINE_ENVS, sources
from host_sim import targets

F32 = np.float32
UNO_FLASH_MARGIN = 256  # flash the Uno's test vectors leave free (bytes)
# The qemu targets' test vectors: at most this many samples and bytes of flash per run (of
# rv32imc's 2 MB); fewer, longer runs spend less on PlatformIO's start-up.
MAX_CHUNK = 60_000
QEMU_VECTOR_BYTES = 1 << 20


@dataclass
class Run:
    """One firmware run on a target: what it printed, as arrays [detector, sample]."""

    scores: np.ndarray  # float32
    flags: np.ndarray  # bool
    cycles: list[int] | None  # uno: per measured call, sample-major
    answers: list[str]  # lines after DONE
    profile: list[targets.FunctionCost] | None = None  # uno, when asked: by function


class Target:
    """One offline PlatformIO environment, built and run from a private workspace."""

    def __init__(self, env: str, workdir: str | Path, build_flags: tuple = ()):
        """build_flags: compiler flags after the environment's own (platformio.ini)."""
        if env not in OFFLINE_ENVS:
            raise UserError(f"no simulator for {env!r}; choose from "
                            f"{', '.join(OFFLINE_ENVS)}")
        missing = targets.missing_tools(env)
        if missing:
            raise UserError(f"{env} needs {', '.join(missing)}: install host_sim/targets.py "
                            f"APT_PACKAGES (apt) and PIP_PACKAGES (pip)")
        self.env = env
        self.build_flags = tuple(build_flags)
        self.workdir = Path(workdir)
        self.generated = self.workdir / "generated"  # one path: pio rebuilds incrementally

    def build(self, bundle: Bundle, vectors: np.ndarray | None = None, stub: bool = False,
              flag_only: bool = False, peer: dict | None = None) -> Path:
        """The firmware of sources.render(...); a peer's "include_dirs" go on the include
        path."""
        sources.write(sources.render(bundle, vectors, stub, flag_only, peer), self.generated)
        try:
            return targets.build(self.env, generated_dir=self.generated,
                                 workspace_dir=self.workdir / "workspace",
                                 include_dirs=tuple(peer["include_dirs"]) if peer else (),
                                 build_flags=self.build_flags)
        except targets.FirmwareError as error:
            raise UserError(str(error)) from None

    def size(self, elf: Path) -> tuple[int, int]:
        return targets.size(self.env, elf)

    def float_routines(self, elf: Path) -> list[str]:
        """The floating-point library routines the app's detector dispatch calls
        (host_sim.targets.float_routines)."""
        return targets.float_routines(self.env, elf)

    def instruction_count(self, elf: Path) -> list[int]:
        return targets.instruction_count(self.env, elf)

    def run(self, bundle: Bundle, elf: Path, input_lines: list[str] | None = None,
            detectors: list[str] | None = None, profile: bool = False) -> Run:
        """detectors: the names the firmware runs (default: the bundle's; the bench's peers
        run beside none of them); profile (uno): where the measured calls' cycles went, by
        function (targets.function_profile)."""
        with tempfile.TemporaryDirectory(prefix="mcua-profile-") as tmp:
            path = Path(tmp) / "profile.txt" if profile else None
            result = targets.run(self.env, elf, input_lines, profile=path)
            self._check_stack(elf, result.sp_min)
            if result.exit_code != 0:
                tail = "\n".join(result.stdout_lines[-5:])
                raise UserError(f"{self.env} firmware exited with {result.exit_code}:\n{tail}")
            by_function = targets.function_profile(self.env, elf, path) if profile else None
        out = targets.parse_output(result.stdout_lines)
        expected = list(bundle.detectors) if detectors is None else detectors
        if out.detectors != expected or out.n_channels != len(bundle.channels):
            raise UserError(f"{self.env} firmware runs {out.detectors}, not the bundle's "
                            f"{expected}")
        n_det = len(out.detectors)
        n = len(out.results) // n_det if n_det else 0
        bits = np.array([r.score_bits for r in out.results], dtype=np.uint32)
        flags = np.array([r.flag for r in out.results], dtype=bool)
        return Run(bits.view(F32).reshape(n, n_det).T, flags.reshape(n, n_det).T,
                   result.cycles, out.answers, by_function)

    def _check_stack(self, elf: Path, sp_min: int | None) -> None:
        """On the Uno (which reports the stack's deepest point): refuse a run whose stack
        grew into the static RAM below it, where it overwrote the detectors' state and the
        serial buffers, so nothing it printed can be trusted."""
        if sp_min is None:
            return
        _, ram = self.size(elf)
        top = targets.AVR_RAM_START + ram
        deepest = sp_min + 1  # a push writes at SP, then decrements it
        if deepest < top:
            raise UserError(f"{self.env}: the firmware's stack grew {top - deepest} B into its "
                            f"{ram} B of static RAM (the detectors' state and buffers): the "
                            f"model does not fit the board's RAM beside the firmware app; "
                            f"make the windows smaller, or use fewer channels or detectors")

    def chunk_size(self, bundle: Bundle) -> int:
        """Samples one firmware run holds: on the Uno what flash leaves room for."""
        if self.env != "uno":
            return min(MAX_CHUNK, QEMU_VECTOR_BYTES // (4 * len(bundle.channels)))
        one = np.zeros((1, len(bundle.channels)), dtype=F32)
        flash, _ = self.size(self.build(bundle, one))
        limit = targets.flash_limit("uno")
        room = limit - UNO_FLASH_MARGIN - flash
        per_sample = 4 * len(bundle.channels)
        if room < 100 * per_sample:
            raise UserError(f"the Uno firmware for this bundle takes {flash} of {limit} bytes "
                            f"of flash, leaving no room for test vectors")
        return min(MAX_CHUNK, room // per_sample)


class TargetEngine:
    """A bundle's detectors on a target (codegen.verify.engines.Engine): every run builds
    the firmware with the rows as its test vectors and reads back what it printed (scores
    and flags; the device does not report its state)."""

    def __init__(self, bundle: Bundle, target: Target):
        self.bundle = bundle
        self.target = target
        self.name = target.env
        self.chunk = target.chunk_size(bundle)

    def run(self, X: np.ndarray, detectors: list[str], flag_api: bool = False,
            resume: bool = False, state: bool = True) -> dict[str, Scored]:
        """Scores and flags (the firmware reports no state, whatever state asks)."""
        if resume:
            raise ValueError(f"{self.name}: every firmware run starts from a fresh state")
        only = dataclasses.replace(self.bundle,
                                   detectors={d: self.bundle.detectors[d] for d in detectors})
        run = self.target.run(only, self.target.build(only, X, flag_only=flag_api))
        if run.scores.shape[1] != len(X):
            raise UserError(f"{self.name} firmware reported {run.scores.shape[1]} samples, "
                            f"not {len(X)}")
        return {d: Scored(run.scores[i], run.flags[i]) for i, d in enumerate(detectors)}
