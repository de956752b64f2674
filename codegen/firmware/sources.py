"""The firmware path: generated sources for the firmware app, builds, simulator runs, and
on-target parity with the Python reference.

The generated directory holds everything `generate` writes plus (templates/firmware*.j2):
  mcua_firmware.h/.c  the bundle's detectors behind one dispatch function, with the state
                      of the streaming detectors;
  mcua_vectors.h      test vectors in flash (their IEEE-754 bits), run at start-up.
The app (firmware_targets/app) prints one `R <detector> <sample> <hex> <flag>` line per
sample and detector; host_sim.targets builds it with PlatformIO and runs it in simavr or
qemu.  Test vectors beyond a target's flash are fed in chunks, one firmware run each; every
chunk starts from a fresh detector state, and so does the reference.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from codegen.emit import render as emit
from codegen.verify import compare as parity
from codegen.bundle import Bundle
from codegen.detectors import FLAG_ONLY, WINDOWED, get, is_streaming
from codegen.errors import UserError
from codegen.files import swap_in

F32 = np.float32
FIRMWARE_HEADER = "mcua_firmware.h"  # marks a directory as generated firmware sources
# Extra arguments of a stateless detector's `<model>_<detector>_score(x, &flag, ...)`.
EXTRA_ARGS = {"kmeans": ", NULL"}  # the nearest cluster is not reported
UNO_FLASH_MARGIN = 256  # flash the Uno's test vectors leave free (bytes)
MAX_CHUNK = 20_000  # samples per run on the qemu targets (keeps headers and runs small)


def _detector_calls(bundle: Bundle, flag_only: bool = False) -> list[dict]:
    """How templates/firmware.c.j2 calls each detector: a streaming one with its state, a
    windowed one with the last W readings of its channel, any other with the sample;
    flag_only: a FLAG_ONLY detector through its flag API (its score is then 0)."""
    return [{"name": name, "streaming": is_streaming(name, fitted), "windowed": name in WINDOWED,
             "stub": False, "extra_args": EXTRA_ARGS.get(name, ""),
             "flag_only": flag_only and name in FLAG_ONLY}
            for name, fitted in bundle.detectors.items()]


def warm_up(bundle: Bundle, detector: str) -> int:
    """Samples before a detector runs as it does for good: a streaming one's window fills,
    a windowed one scores its first window."""
    fitted = bundle.detectors[detector]
    if is_streaming(detector, fitted):
        return fitted.params["window"]
    if detector in WINDOWED:
        return fitted.scalars["window"] - 1
    return 0


def vector_rows(vectors: np.ndarray) -> list[str]:
    bits = np.ascontiguousarray(vectors, dtype=F32).view(np.uint32)
    return [", ".join(f"0x{b:08x}UL" for b in row) for row in bits]


def render(bundle: Bundle, vectors: np.ndarray | None = None,
           stub: bool = False, flag_only: bool = False) -> dict[str, str]:
    """File name -> text of the firmware's generated directory with these test vectors
    (None: none, the app then only serves the line protocol).

    stub: one more detector, "stub", that returns 0 and does nothing else; the app
    around it is the baseline the bench measures a detector's flash and RAM against.
    flag_only: the FLAG_ONLY detectors run their flag API and report a score of 0.
    """
    vectors = np.asarray([] if vectors is None else vectors, dtype=F32)
    vectors = vectors.reshape(-1, len(bundle.channels))
    files = emit.render(bundle)
    env = emit.environment()
    calls = _detector_calls(bundle, flag_only) + ([{"name": "stub", "streaming": False,
                                                    "windowed": False, "stub": True}]
                                                  if stub else [])
    context = {"model_name": bundle.name, "MODEL": bundle.name.upper(),
               "channels": bundle.channels,
               "tool_version": emit.__version__, "detectors": calls,
               "rows": vector_rows(vectors)}
    files[FIRMWARE_HEADER] = env.get_template("firmware.h.j2").render(context)
    files["mcua_firmware.c"] = env.get_template("firmware.c.j2").render(context)
    files["mcua_vectors.h"] = env.get_template("firmware_vectors.h.j2").render(context)
    return files


def write(files: dict[str, str], out: str | Path) -> Path:
    """Replace directory `out` by exactly these files, all at once.

    `out` must not exist, be empty or hold earlier generated firmware sources: it is
    replaced, so stale sources of another bundle are never compiled in.
    """
    out = Path(out)
    if out.exists() and not (out.is_dir() and (not any(out.iterdir())
                                               or (out / FIRMWARE_HEADER).is_file())):
        raise UserError(f"{out} is not empty and holds no generated firmware sources "
                        f"({FIRMWARE_HEADER}); choose another --out")
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for name, text in files.items():
            (staging / name).write_text(text)
        swap_in(staging, out)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return out


def reference(bundle: Bundle, vectors: np.ndarray,
              flag_only: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """Python reference of one firmware run: (scores, flags), each [detector, sample],
    every streaming detector starting from a fresh state (flag_only: as render's)."""
    vectors = np.asarray(vectors, dtype=F32)
    scores = np.zeros((len(bundle.detectors), len(vectors)), dtype=F32)
    flags = np.zeros((len(bundle.detectors), len(vectors)), dtype=bool)
    for d, (name, fitted) in enumerate(bundle.detectors.items()):
        scores[d], flags[d] = get(name).score(fitted, vectors)
        if flag_only and name in FLAG_ONLY:
            scores[d] = 0
    return scores, flags


@dataclass
class Run:
    """One firmware run on a target: what it printed, as arrays [detector, sample]."""

    scores: np.ndarray  # float32
    flags: np.ndarray  # bool
    cycles: list[int] | None  # uno: per measured call, sample-major
    answers: list[str]  # lines after DONE


class Target:
    """One offline PlatformIO environment, built and run from a private workspace."""

    def __init__(self, env: str, workdir: str | Path):
        from host_sim import targets  # the firmware tools are optional for the rest

        if env not in targets.OFFLINE_ENVS:
            raise UserError(f"no simulator for {env!r}; choose from "
                            f"{', '.join(targets.OFFLINE_ENVS)}")
        missing = targets.missing_tools(env)
        if missing:
            raise UserError(f"{env} needs {', '.join(missing)}: install host_sim/targets.py "
                            f"APT_PACKAGES (apt) and PIP_PACKAGES (pip)")
        self.targets = targets
        self.env = env
        self.workdir = Path(workdir)
        self.generated = self.workdir / "generated"  # one path: pio rebuilds incrementally

    def build(self, bundle: Bundle, vectors: np.ndarray | None = None, stub: bool = False,
              flag_only: bool = False) -> Path:
        write(render(bundle, vectors, stub, flag_only), self.generated)
        try:
            return self.targets.build(self.env, generated_dir=self.generated,
                                      workspace_dir=self.workdir / "workspace")
        except self.targets.FirmwareError as error:
            raise UserError(str(error)) from None

    def size(self, elf: Path) -> tuple[int, int]:
        return self.targets.size(self.env, elf)

    def run(self, bundle: Bundle, elf: Path, input_lines: list[str] | None = None) -> Run:
        result = self.targets.run(self.env, elf, input_lines)
        if result.exit_code != 0:
            tail = "\n".join(result.stdout_lines[-5:])
            raise UserError(f"{self.env} firmware exited with {result.exit_code}:\n{tail}")
        out = self.targets.parse_output(result.stdout_lines)
        if out.detectors != list(bundle.detectors) or out.n_channels != len(bundle.channels):
            raise UserError(f"{self.env} firmware runs {out.detectors}, not the bundle's "
                            f"{list(bundle.detectors)}")
        n_det = len(out.detectors)
        n = len(out.results) // n_det if n_det else 0
        bits = np.array([r.score_bits for r in out.results], dtype=np.uint32)
        flags = np.array([r.flag for r in out.results], dtype=bool)
        return Run(bits.view(F32).reshape(n, n_det).T, flags.reshape(n, n_det).T,
                   result.cycles, out.answers)

    def chunk_size(self, bundle: Bundle) -> int:
        """Samples one firmware run holds: on the Uno what flash leaves room for."""
        if self.env != "uno":
            return MAX_CHUNK
        one = np.zeros((1, len(bundle.channels)), dtype=F32)
        flash, _ = self.size(self.build(bundle, one))
        limit = self.targets.flash_limit("uno")
        room = limit - UNO_FLASH_MARGIN - flash
        per_sample = 4 * len(bundle.channels)
        if room < 100 * per_sample:
            raise UserError(f"the Uno firmware for this bundle takes {flash} of "
                            f"{limit} bytes of flash, leaving no room for "
                            f"test vectors")
        return min(MAX_CHUNK, room // per_sample)



@dataclass
class Mismatch:
    detector: str
    kind: str
    index: int  # within the kind's inputs
    inputs: np.ndarray
    expected: tuple[int, bool]  # (score bits, flag)
    got: tuple[int, bool]


@dataclass
class Verification:
    env: str
    results: list[parity.Result]
    mismatches: list[Mismatch] = field(default_factory=list)  # the first few

    @property
    def ok(self) -> bool:
        return all(r.ok for r in self.results)


def verify(bundle: Bundle, env: str, inputs: dict[str, np.ndarray], workdir: str | Path,
           progress=None, flag_only: bool = False) -> Verification:
    """Run every input on the target and compare each score bit and flag with the Python
    reference.  Each kind's inputs are cut into chunks of what one firmware holds.
    flag_only: the FLAG_ONLY detectors run their flag API (see render)."""
    target = Target(env, workdir)
    chunk = target.chunk_size(bundle)
    names = list(bundle.detectors)
    counts = {(d, k): [0, 0, 0] for d in names for k in inputs}
    mismatches: list[Mismatch] = []
    for kind, X in inputs.items():
        X = np.asarray(X, dtype=F32)
        for start in range(0, len(X), chunk):
            part = X[start:start + chunk]
            run = target.run(bundle, target.build(bundle, part, flag_only=flag_only))
            want_s, want_f = reference(bundle, part, flag_only)
            if run.scores.shape != want_s.shape:
                raise UserError(f"{env} firmware reported {run.scores.shape[1]} samples, "
                                f"not {len(part)}")
            got_bits = run.scores.view(np.uint32)
            want_bits = want_s.view(np.uint32)
            for d, name in enumerate(names):
                bad_s = got_bits[d] != want_bits[d]
                bad_f = run.flags[d] != want_f[d]
                c = counts[(name, kind)]
                c[0] += len(part)
                c[1] += int(bad_s.sum())
                c[2] += int(bad_f.sum())
                for i in np.nonzero(bad_s | bad_f)[0][:max(0, 5 - len(mismatches))]:
                    mismatches.append(Mismatch(
                        name, kind, start + int(i), part[i],
                        (int(want_bits[d, i]), bool(want_f[d, i])),
                        (int(got_bits[d, i]), bool(run.flags[d, i]))))
            if progress:
                progress(f"{env}: {kind} samples {start}..{start + len(part) - 1} compared")
    results = [parity.Result(d, k, n, s, f, None) for (d, k), (n, s, f) in counts.items()]
    return Verification(env, results, mismatches)


def describe(mismatch: Mismatch) -> str:
    def show(bits_flag):
        bits, flag = bits_flag
        value = np.array([bits], dtype=np.uint32).view(F32)[0]
        return f"{bits:08x} ({value!r}) flag {int(flag)}"

    return (f"{mismatch.detector} {mismatch.kind}[{mismatch.index}] x={mismatch.inputs.tolist()}: "
            f"reference {show(mismatch.expected)}, target {show(mismatch.got)}")
