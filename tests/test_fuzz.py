"""libFuzzer with AddressSanitizer and UndefinedBehaviorSanitizer (Debian's clang) on the
generated C: every detector's entry points (tests/fuzz/fuzz_detectors.c) and the firmware
app's serial line parser (tests/fuzz/fuzz_serial.c).

Each harness first replays its corpus (tests/fuzz/corpus/<harness>/: the seeds, and every
input that once crashed it, kept as a regression test), then fuzzes for MCUA_FUZZ_SECONDS
(default 60) from there.  New inputs go to a temporary directory; a crash fails the test
with the input's path, to be added to the corpus once fixed.  Longer runs on demand:
MCUA_FUZZ_SECONDS=3600 pytest tests/test_fuzz.py.
"""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from codegen.detectors import get
from codegen.detectors.window import adaptation
from codegen.emit import render as emit
from codegen.firmware import sources as firmware
from codegen.training import train as training
from host_sim.hostlib import glue_source

from support import require

HERE = Path(__file__).resolve().parent / "fuzz"
APP = Path(__file__).resolve().parents[1] / "firmware_targets" / "app"
SECONDS = int(os.environ.get("MCUA_FUZZ_SECONDS", "60"))
FLAGS = ["-std=c99", "-O1", "-g", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror",
         "-fsanitize=fuzzer,address,undefined,float-cast-overflow",
         "-fno-sanitize-recover=all"]
SHORT = {"window": 8, "min_count": 4}  # short windows: swaps, warm-ups and folds come soon
# Two bundles, so that each window detector runs in every adaptation mode; small models,
# so that a fuzz iteration is fast.
BUNDLES = {
    "a": (["zscore", "streaming_zscore", "moving_average", "kmeans", "isolation_forest",
           "mahalanobis", "pca", "gmm"],
          {"streaming_zscore": SHORT,
           "moving_average": {**SHORT, "mode": "frozen", "calibration": 16},
           "kmeans": {"k": 3}, "gmm": {"k": 2},
           "isolation_forest": {"n_trees": 8, "features": "rolling", "window": 8}}),
    "b": (["streaming_zscore", "moving_average", "isolation_forest"],
          {"streaming_zscore": {**SHORT, "mode": "slow", "memory": 24},
           "moving_average": {**SHORT, "mode": "slow", "memory": 16},
           "isolation_forest": {"n_trees": 8}}),
}


def _bundle_table(bundle) -> str:
    """fuzz_bundle.h: the channel count and a table row per detector (fuzz_detectors.c)."""
    lines, streams, batches, widest = [], [], [], 1
    c = len(bundle.channels)
    for call in emit.detector_calls(bundle):
        name, fitted = call["name"], bundle.detectors[call["name"]]
        fn = f"mcua_host_{name}"
        if call["kind"] == "streaming":
            lines.append(f"void {fn}(const float *, uint32_t, float *, uint8_t *, float *, "
                         f"uint16_t *, uint8_t);")
            flag = f"{fn}_flag" if call["flag_api"] else "NULL"
            if call["flag_api"]:
                lines.append(f"void {flag}(const float *, uint32_t, uint8_t *, float *, "
                             f"uint16_t *, uint8_t);")
            w = get(name).SPEC.window(fitted)
            adapt = adaptation(fitted)
            floats = c * (6 + w + (2 if adapt else 0))
            widest = max(widest, floats)
            streams.append(f"    {{{fn}, {flag}, {w}, {floats}, {adapt.blocks if adapt else 0}}},")
        else:
            lines.append(f"void {fn}(const float *, uint32_t, float *, uint8_t *);")
            flag = f"{fn}_flag" if call["flag_api"] else "NULL"
            if call["flag_api"]:
                lines.append(f"void {flag}(const float *, uint32_t, uint8_t *);")
            window = get(name).SPEC.window(fitted) if call["kind"] == "windowed" else 0
            channel = fitted.scalars.get("channel", 0) if window else 0
            batches.append(f"    {{{fn}, {flag}, {window}, {channel}}},")
    return "\n".join([
        f"#define N_CHANNELS {c}", f"#define MAX_STATE_FLOATS {widest}",
        f"#define N_STREAMS {len(streams)}", f"#define N_BATCHES {len(batches)}", *lines,
        "static const struct fuzz_stream streams[] = {", *(streams or ["    {0},"]), "};",
        "static const struct fuzz_batch batches[] = {", *(batches or ["    {0},"]), "};", ""])


def _build(directory: Path, sources: list[Path], includes: list[Path]) -> Path:
    require(shutil.which("clang") is not None, "clang")
    exe = directory / "fuzzer"
    cmd = ["clang", *FLAGS, *(f"-I{d}" for d in includes), *map(str, sources), "-lm",
           "-o", str(exe)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-3000:]
    return exe


def _fuzz(exe: Path, corpus: Path, work: Path) -> str:
    """Replay the corpus, then fuzz for SECONDS; libFuzzer's summary lines.  No RSS limit:
    Linux carries a process's peak RSS across fork and exec, so the fuzzer would start
    with the pytest worker's (often above 1 GB) and report an out-of-memory on its first
    input; a single allocation above 512 MB is still a finding (measured: a 1.5 GB parent made
    the fuzzer report "out-of-memory (used: 1551Mb; limit: 1024Mb)" at once)."""
    assert corpus.is_dir() and any(corpus.iterdir()), f"no seeds in {corpus}"
    replay = subprocess.run([str(exe), *map(str, sorted(corpus.iterdir()))],
                            capture_output=True, text=True)
    assert replay.returncode == 0, replay.stderr[-4000:]
    new, artifacts = work / "new", work / "crashes"
    new.mkdir()
    artifacts.mkdir()
    run = subprocess.run([str(exe), f"-max_total_time={SECONDS}", "-max_len=4096",
                          "-timeout=10", "-rss_limit_mb=0", "-malloc_limit_mb=512",
                          f"-artifact_prefix={artifacts}/",
                          str(new), str(corpus)], capture_output=True, text=True,
                         timeout=SECONDS + 300)
    crashes = sorted(str(p) for p in artifacts.iterdir())
    assert run.returncode == 0 and not crashes, (crashes, run.stderr[-4000:])
    return "\n".join(line for line in run.stderr.splitlines() if "DONE" in line
                     or line.startswith("Done"))


@pytest.fixture(scope="module")
def bundles(iot):
    return {key: training.train(iot, detectors, params, 0, f"fuzz{key}", verbose=False)
            for key, (detectors, params) in BUNDLES.items()}


@pytest.mark.slow
@pytest.mark.parametrize("key", sorted(BUNDLES))
def test_fuzz_every_detectors_entry_points(bundles, key, tmp_path):
    bundle = bundles[key]
    generated = tmp_path / "generated"
    generated.mkdir()
    files = {**emit.render(bundle), "mcua_host_glue.c": glue_source(bundle),
             "fuzz_bundle.h": _bundle_table(bundle)}
    for name, text in files.items():
        (generated / name).write_text(text)
    exe = _build(tmp_path, [HERE / "fuzz_detectors.c", *sorted(generated.glob("*.c"))],
                 [generated])
    print(_fuzz(exe, HERE / "corpus" / "detectors", tmp_path))


@pytest.mark.slow
def test_fuzz_the_serial_line_parser(bundles, tmp_path):
    generated = tmp_path / "generated"
    generated.mkdir()
    for name, text in firmware.render(bundles["a"]).items():
        (generated / name).write_text(text)
    sources = [HERE / "fuzz_serial.c", APP / "mcua_app.c", *sorted(generated.glob("*.c"))]
    exe = _build(tmp_path, sources, [generated, APP])
    print(_fuzz(exe, HERE / "corpus" / "serial", tmp_path))
