"""The int8 autoencoder: training, conversion, arena, and the plain-C engine's
bit-for-bit parity with TensorFlow Lite Micro (the `tflite-micro` package).

Parity here means exact equality: np.array_equal on int8 outputs, equal
float32 bit patterns for scores, equal flags.
"""

from __future__ import annotations

import ctypes
import hashlib
import json
import math
import subprocess
from pathlib import Path

import numpy as np
import pytest

from codegen.errors import UserError

import importlib.util  # noqa: E402

from support import STRICT, require_tool  # noqa: E402

pytestmark = pytest.mark.tensorflow
for _module in ("tensorflow", "tflite_micro"):
    # find_spec, not import: importing TensorFlow here would log before the
    # detector's quiet mode is set up; under MCUA_TESTS_STRICT the imports below fail
    if importlib.util.find_spec(_module) is None and not STRICT:
        pytest.skip(f"the autoencoder needs {_module} (pip install tensorflow-cpu tflite-micro)",
                    allow_module_level=True)

from codegen.tflite import arena as tflm_arena  # noqa: E402
from codegen.tflite.errors import NotInt8ModelError  # noqa: E402
from codegen.tflite.flatbuffer import extract_network  # noqa: E402
from codegen.tflite.quantize import quantize, quantize_multiplier  # noqa: E402
from codegen.tflite.quiet import quiet  # noqa: E402
from codegen.tflite.runners import numpy_int8_network  # noqa: E402
from codegen.emit import render as emit  # noqa: E402
from codegen.emit import floatkeys  # noqa: E402
from codegen.emit.literals import c_float  # noqa: E402
from codegen.detectors import autoencoder as ae  # noqa: E402
from codegen.detectors.autoencoder import training  # noqa: E402
from codegen.detectors.autoencoder.params import (  # noqa: E402
    AutoencoderConfigError, BundleMismatchError, ConstantChannelError, InsufficientDataError,
    NonFiniteInputError, UnsupportedLayerError, check_params)
from codegen.detectors.autoencoder.pipeline import (  # noqa: E402
    network_int8, reconstruction_error, score_windows, sliding_windows, standardise, watched)
from codegen.detectors.autoencoder.stored import BLOB_ARENA, BLOB_MODEL, network_of  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
RUNTIME = ROOT / "codegen" / "runtime"
NAB = ROOT.parent / "shared" / "data" / "nab" / "data"
MACHINE = NAB / "realKnownCause" / "machine_temperature_system_failure.csv"
CFLAGS = ["-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Wpedantic", "-Werror"]
NAME = "aetest"
TEST_PARAMS = {"epochs": 4}          # few epochs: parity does not need a good model
N_NORMAL = 2200                      # machine temperature rows before its first anomaly window

HARNESS = r"""
#include <stddef.h>
#include "aetest_autoencoder.h"

#ifdef AETEST_AUTOENCODER_CHANNELS /* windows of rows of several channels */
#define W (AETEST_AUTOENCODER_WINDOW * AETEST_AUTOENCODER_CHANNELS)
#else
#define W AETEST_AUTOENCODER_WINDOW
#endif
#ifdef __cplusplus
#define H extern "C"
#else
#define H
#endif

H int h_window(void) { return W; }

H void h_score(const float *x, int32_t n, float *scores, uint8_t *flags)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        scores[i] = aetest_autoencoder_score(x + (size_t)i * W, &flags[i]);
    }
}

H void h_invoke(const int8_t *in, int32_t n, int8_t *out)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        aetest_autoencoder_invoke_int8(in + (size_t)i * W, out + (size_t)i * W);
    }
}

H int32_t h_quantize_input(const float *x, int32_t n, int8_t *q)
{
    int32_t i, ok = 0;
    for (i = 0; i < n; ++i) {
        ok += aetest_autoencoder_quantize_input(x + (size_t)i * W, q + (size_t)i * W);
    }
    return ok;
}

H void h_score_output(const float *x, const int8_t *y, int32_t n, float *scores, uint8_t *flags)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        scores[i] = aetest_autoencoder_score_output(x + (size_t)i * W, y + (size_t)i * W,
                                                    &flags[i]);
    }
}

H void h_quantize(const float *z, int32_t n, int8_t *q)
{
    int32_t i;
    for (i = 0; i < n; ++i) {
        q[i] = aetest_autoencoder_quantize(z[i]);
    }
}

H void h_consts(float *f, int32_t *i)
{
    const mcua_autoencoder_model *m = &aetest_autoencoder_model;
    f[0] = m->mean; f[1] = m->std; f[2] = m->input_scale; f[3] = m->output_scale;
    f[4] = m->threshold;
#ifdef AETEST_AUTOENCODER_MEAN
    f[5] = AETEST_AUTOENCODER_MEAN; f[6] = AETEST_AUTOENCODER_STD;
#endif
    f[7] = AETEST_AUTOENCODER_INPUT_SCALE; f[8] = AETEST_AUTOENCODER_OUTPUT_SCALE;
    f[9] = AETEST_AUTOENCODER_THRESHOLD;
    i[0] = m->input_zero_point; i[1] = m->output_zero_point;
    i[2] = AETEST_AUTOENCODER_ARENA_SIZE; i[3] = AETEST_AUTOENCODER_TFLITE_LEN;
    i[4] = AETEST_AUTOENCODER_OP_COUNT; i[5] = (int32_t)m->window;
}

H const unsigned char *h_tflite(void) { return aetest_autoencoder_tflite; }
"""

# A translation unit that uses everything, for the cross-compilers.
USE_ALL = r"""
#include "aetest_autoencoder.h"
#ifdef __cplusplus
extern "C" {
#endif
float use_all(const float *x, int8_t *q, int8_t *y, uint8_t *flag);
#ifdef __cplusplus
}
#endif
float use_all(const float *x, int8_t *q, int8_t *y, uint8_t *flag)
{
    float s = aetest_autoencoder_score(x, flag);
    if (aetest_autoencoder_quantize_input(x, q)) {
        aetest_autoencoder_invoke_int8(q, y);
        s += aetest_autoencoder_score_output(x, y, flag);
    }
    return s + aetest_autoencoder_dequantize(aetest_autoencoder_quantize(x[0]));
}
"""


# ---------------------------------------------------------------------------
# helpers

def load_series(path: Path) -> np.ndarray:
    return np.loadtxt(path, delimiter=",", skiprows=1, usecols=1, dtype=np.float32)


def render(fitted, mutate=None) -> str:
    ctx = ae.template_context(fitted)
    if mutate is not None:
        mutate(ctx)
    return emit.environment().get_template("autoencoder.h.j2").render(
        model_name=NAME, runtime_version=emit.RUNTIME_VERSION, **ctx)


def write_sources(directory: Path, header: str) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    (directory / f"{NAME}_autoencoder.h").write_text(header)
    (directory / "harness.c").write_text(HARNESS)
    (directory / "use_all.c").write_text(USE_ALL)
    return directory


def compile_shared(directory: Path, header: str, cc: str = "gcc",
                   std: str = "-std=c99", lang: str | None = None) -> ctypes.CDLL:
    """Compile harness + runtime into a uniquely named .so (dlopen caches by path)."""
    write_sources(directory, header)
    runtime_c = (RUNTIME / "mcua_autoencoder.c").read_text()
    key = hashlib.sha256("\0".join([header, HARNESS, runtime_c,
                                    (RUNTIME / "mcua_autoencoder.h").read_text(),
                                    (RUNTIME / "mcua_common.h").read_text(),
                                    cc, std, str(lang)] + CFLAGS).encode()).hexdigest()[:16]
    so = directory / f"libae_{key}.so"
    if not so.exists():
        cmd = [cc, std, *CFLAGS, "-fPIC", "-shared", "-I", str(directory), "-I", str(RUNTIME)]
        if lang:
            cmd += ["-x", lang]
        cmd += [str(directory / "harness.c"), str(RUNTIME / "mcua_autoencoder.c"),
                "-o", str(so)]
        cp = subprocess.run(cmd, capture_output=True, text=True)
        assert cp.returncode == 0, f"{' '.join(cmd)}\n{cp.stderr}"
    lib = ctypes.CDLL(str(so))
    f32p = np.ctypeslib.ndpointer(np.float32, flags="C_CONTIGUOUS")
    i8p = np.ctypeslib.ndpointer(np.int8, flags="C_CONTIGUOUS")
    u8p = np.ctypeslib.ndpointer(np.uint8, flags="C_CONTIGUOUS")
    i32p = np.ctypeslib.ndpointer(np.int32, flags="C_CONTIGUOUS")
    n = ctypes.c_int32
    lib.h_window.restype = ctypes.c_int
    lib.h_score.argtypes = [f32p, n, f32p, u8p]
    lib.h_invoke.argtypes = [i8p, n, i8p]
    lib.h_quantize_input.argtypes = [f32p, n, i8p]
    lib.h_quantize_input.restype = ctypes.c_int32
    lib.h_score_output.argtypes = [f32p, i8p, n, f32p, u8p]
    lib.h_quantize.argtypes = [f32p, n, i8p]
    lib.h_consts.argtypes = [f32p, i32p]
    lib.h_tflite.restype = ctypes.c_void_p
    return lib


def c_score(lib, windows: np.ndarray):
    x = np.ascontiguousarray(windows, dtype=np.float32)
    n = x.shape[0]
    scores = np.empty(n, np.float32)
    flags = np.empty(n, np.uint8)
    lib.h_score(x.reshape(-1), n, scores, flags)
    return scores, flags.astype(bool)


def c_invoke(lib, q: np.ndarray) -> np.ndarray:
    q = np.ascontiguousarray(q, dtype=np.int8)
    out = np.empty_like(q)
    lib.h_invoke(q.reshape(-1), q.shape[0], out.reshape(-1))
    return out


def same_bits(a: np.ndarray, b: np.ndarray) -> bool:
    a = np.ascontiguousarray(a, dtype=np.float32)
    b = np.ascontiguousarray(b, dtype=np.float32)
    return a.shape == b.shape and np.array_equal(a.view(np.uint32), b.view(np.uint32))


def mismatches(lib, fitted, windows) -> int:
    """Windows whose C score bits or flag differ from the Python/TFLite Micro reference."""
    ref_s, ref_f = score_windows(fitted, windows)
    s, f = c_score(lib, windows)
    return int(np.count_nonzero((ref_s.view(np.uint32) != s.view(np.uint32)) | (ref_f != f)))


def real_windows(window: int) -> np.ndarray:
    """Sliding windows of every realKnownCause series (raw values)."""
    out = []
    for path in sorted((NAB / "realKnownCause").glob("*.csv")):
        out.append(sliding_windows(load_series(path), window))
    return np.concatenate(out)


def saturating_windows(fitted, n: int, rng) -> np.ndarray:
    """Raw windows whose quantised inputs hit -128/127 and whose outputs clip,
    plus values on exact rounding midpoints and huge finite values."""
    s = fitted.scalars
    W = s["window"]
    mean, std = np.float32(s["mean"]), np.float32(s["std"])
    scale = np.float32(s["input_scale"])
    k = n // 4
    far = rng.choice(np.float32([-1e30, -1e6, -500.0, 500.0, 1e6, 1e30]), size=(k, W))
    rails = np.where(rng.random((k, W)) < 0.5, -1.0, 1.0).astype(np.float32)
    rails = mean + rails * np.float32(300.0) * scale * std     # |z/scale| around 300
    # z / scale exactly (j + 0.5): x = mean + (j + 0.5) * scale * std, approximately;
    # and x whose z/scale lands within an ulp of a midpoint
    j = rng.integers(-140, 140, size=(k, W)).astype(np.float32)
    mid = mean + (j + np.float32(0.5)) * scale * std
    mid = np.nextafter(mid, rng.choice(np.float32([-np.inf, np.inf]), size=(k, W)))
    mid[:, ::3] = (mean + (j[:, ::3] + np.float32(0.5)) * scale * std)
    mixed = rng.normal(0, 1, size=(n - 3 * k, W)).astype(np.float32) * np.float32(50) * std + mean
    mixed[:, ::2] = rng.choice(np.float32([-3e38, 3e38]), size=mixed[:, ::2].shape)
    return np.concatenate([far, rails, mid, mixed]).astype(np.float32)


# ---------------------------------------------------------------------------
# fixtures

@pytest.fixture(scope="session")
def machine() -> np.ndarray:
    assert MACHINE.is_file(), f"NAB data missing: {MACHINE}"
    return load_series(MACHINE)


@pytest.fixture(scope="session")
def fitted(machine):
    return ae.fit(machine[:N_NORMAL].reshape(-1, 1), TEST_PARAMS, seed=7, verbose=False)


@pytest.fixture(scope="session")
def lib(fitted, tmp_path_factory):
    return compile_shared(tmp_path_factory.mktemp("ae_gcc"), render(fitted))


# ---------------------------------------------------------------------------
# training, conversion, arena

def test_defaults_are_the_lab_architecture():
    p = check_params({})
    assert p["window"] == 20 and p["hidden"] == [8, 4, 8] and p["activation"] == "relu"
    assert p["threshold"] == "percentile:99" and p["channel"] == 0
    assert p["channels"] is None and p["pointwise"] == "newest"
    assert ae.NAME == "autoencoder" and set(ae.DEFAULTS) == set(p)


def test_fit_report(fitted):
    r = fitted.report
    assert r["architecture"] == "20-8-4-8-20"
    assert r["ops"] == ["FULLY_CONNECTED"]
    assert all(r["per_channel_layers"])
    a = r["arena"]
    assert a["consistent"] and a["report_total"] <= a["minimum"] < a["emitted"]
    assert a["emitted"] % 16 == 0 and "64-bit host" in a["runtime"]
    assert fitted.scalars["arena_size"] == a["emitted"]
    lt = r["litert_vs_tflm"]
    assert "error" not in lt, lt
    assert lt["random_int8_windows"]["values"] == training.LITERT_RANDOM_WINDOWS * 20
    # JSON-able, float32 scalars exact
    json.dumps(fitted.params), json.dumps(fitted.scalars), json.dumps(r)
    for k in ("mean", "std", "input_scale", "output_scale", "threshold"):
        v = fitted.scalars[k]
        assert isinstance(v, float) and float(np.float32(v)) == v
    assert set(fitted.blobs) == {BLOB_MODEL, BLOB_ARENA}
    assert fitted.arrays["validation_scores"].dtype == np.float32


def test_threshold_is_the_percentile_of_validation_scores(fitted):
    v = fitted.arrays["validation_scores"]
    assert fitted.scalars["threshold"] == float(np.float32(np.percentile(v.astype(np.float64), 99)))
    assert np.count_nonzero(v > np.float32(fitted.scalars["threshold"])) <= math.ceil(0.01 * v.size)


def test_sigma_threshold():
    v = np.float32([0.1, 0.2, 0.3, 0.4])
    t = training._threshold(v, "sigma:2")
    assert t == np.float32(v.astype(np.float64).mean() + 2 * v.astype(np.float64).std())


def test_same_data_and_seed_give_identical_tflite(machine):
    p = check_params({"epochs": 2})
    x = machine[:600]
    z = standardise(sliding_windows(x, 20), np.float32(x.mean()), np.float32(x.std()))
    a = training._train_and_convert(p, z[:500], z[500:], 3, False)[0]
    b = training._train_and_convert(p, z[:500], z[500:], 3, False)[0]
    c = training._train_and_convert(p, z[:500], z[500:], 4, False)[0]
    assert a == b
    assert a != c


def test_same_data_and_seed_give_byte_identical_bundles(tmp_path):
    """No timing or other run-dependent value is stored: two trainings write the same files."""
    from codegen import bundle as bundle_mod
    from codegen.data import dataset as data
    from codegen.training import train as train_mod

    iot = data.iot_sensors()
    trees = []
    for run in ("a", "b"):
        trained = train_mod.train(iot, ["autoencoder"], {"autoencoder": {"epochs": 2}}, 0,
                                  "sensors", verbose=False)
        root = bundle_mod.save(trained, tmp_path / run)
        trees.append({p.relative_to(root): p.read_bytes() for p in root.rglob("*") if p.is_file()})
    assert trees[0] == trees[1]


def test_load_round_trip(fitted, machine):
    again = ae.load(fitted.params, fitted.scalars, fitted.arrays, fitted.blobs)
    X = machine[N_NORMAL:N_NORMAL + 500].reshape(-1, 1)
    s1, f1, _ = ae.score(fitted, X)
    s2, f2, _ = ae.score(again, X)
    assert same_bits(s1, s2) and np.array_equal(f1, f2)
    assert ae.template_context(again) == ae.template_context(fitted)


def test_load_rejects_mismatched_scalars(fitted):
    bad = dict(fitted.scalars, input_zero_point=fitted.scalars["input_zero_point"] + 1)
    with pytest.raises(BundleMismatchError, match="re-run training"):
        ae.load(fitted.params, bad, fitted.arrays, fitted.blobs)
    with pytest.raises(BundleMismatchError, match="re-run training"):
        ae.load(fitted.params, fitted.scalars, fitted.arrays, {})


def test_score_stream(fitted, machine):
    X = np.stack([machine[:300], np.zeros(300, np.float32)], axis=1)
    s, f, _ = ae.score(fitted, X)
    assert s.dtype == np.float32 and f.dtype == bool and s.shape == (300,)
    assert not s[:19].any() and not f[:19].any()
    ref_s, ref_f = score_windows(fitted, sliding_windows(machine[:300], 20))
    assert same_bits(s[19:], ref_s) and np.array_equal(f[19:], ref_f)
    s, f, _ = ae.score(fitted, X[:10])
    assert s.shape == (10,) and not s.any()


def test_anomalies_score_higher(fitted, machine):
    """Sanity, not parity: the known failure period scores above the normal start."""
    s, _, _ = ae.score(fitted, machine.reshape(-1, 1))
    assert np.median(s[N_NORMAL + 1000:]) > np.median(s[20:N_NORMAL])


def test_quantize_multiplier_like_tflite():
    assert quantize_multiplier(0.5) == (1 << 30, 0)
    assert quantize_multiplier(0.25) == (1 << 30, -1)
    assert quantize_multiplier(1.0) == (1 << 30, 1)
    assert quantize_multiplier(0.0) == (0, 0)
    assert quantize_multiplier(2.0 ** -40) == (0, 0)
    # just below 1.0: q rounds up to 2^31 and carries into the shift
    assert quantize_multiplier(1.0 - 2.0 ** -40) == (1 << 30, 1)


def test_arena_probe_survives_a_segfaulting_size(fitted, tmp_path):
    path = tmp_path / "m.tflite"
    path.write_bytes(fitted.blobs[BLOB_MODEL])
    p = tflm_arena.probe(str(path), 64)
    assert not p.ok and p.outcome != "ok"
    m = fitted.report["arena"]["minimum"]
    assert tflm_arena.probe(str(path), m).ok
    assert not tflm_arena.probe(str(path), m - 1).ok


# ---------------------------------------------------------------------------
# the plain-C engine against TensorFlow Lite Micro

def test_constants_round_trip_and_alignment(fitted, lib):
    f = np.zeros(10, np.float32)
    i = np.zeros(6, np.int32)
    lib.h_consts(f, i)
    s = fitted.scalars
    want = np.float32([s["mean"], s["std"], s["input_scale"], s["output_scale"], s["threshold"]])
    assert same_bits(f[:5], want) and same_bits(f[5:], want)
    assert list(i) == [s["input_zero_point"], s["output_zero_point"], s["arena_size"],
                       len(fitted.blobs[BLOB_MODEL]), 1, 20]
    addr = lib.h_tflite()
    assert addr % 16 == 0
    blob = fitted.blobs[BLOB_MODEL]
    assert ctypes.string_at(addr, len(blob)) == blob


def test_c_float_literals_round_trip():
    for v in [0.1, 1e-30, 3.4028235e38, 1.0, 100.0, 1e10, 1.17549435e-38, 1e-45, 0.0, -2.5]:
        lit = c_float(v)
        assert lit.endswith("f") and ("." in lit or "e" in lit)
        assert np.float32(lit[:-1]) == np.float32(v)


def test_random_int8_windows(fitted, lib):
    rng = np.random.default_rng(1)
    q = rng.integers(-128, 128, size=(40_000, 20)).astype(np.int8)
    q[:20] = np.int8(-128)
    q[20:40] = np.int8(127)
    ref = network_int8(fitted, q)
    out = c_invoke(lib, q)
    assert np.array_equal(out, ref)
    assert np.array_equal(numpy_int8_network(network_of(fitted), q), ref)


def test_real_windows(fitted, lib):
    windows = real_windows(20)
    assert windows.shape[0] >= 60_000
    ref_s, ref_f = score_windows(fitted, windows)
    s, f = c_score(lib, windows)
    assert same_bits(s, ref_s)
    assert np.array_equal(f, ref_f)
    assert ref_f.any() and not ref_f.all()
    # and the int8 path in between
    net = network_of(fitted)
    z = standardise(windows, fitted.scalars["mean"], fitted.scalars["std"])
    q_ref = quantize(z, net.input_scale, net.input_zero_point)
    q = np.empty_like(q_ref)
    assert lib.h_quantize_input(windows.reshape(-1), windows.shape[0], q.reshape(-1)) == len(q)
    assert np.array_equal(q, q_ref)
    assert np.array_equal(c_invoke(lib, q), network_int8(fitted, q))


def step_windows(fitted):
    """Every input step's reading and the float just below it, W per window."""
    steps = np.array(ae.template_context(fitted)["input_steps"], dtype=np.int64)
    x = floatkeys.from_order_key(np.concatenate([steps, steps - 1]))
    W = fitted.scalars["window"]
    return np.resize(x, (-(-x.size // W), W)).astype(np.float32)


def c_quantize_input(lib, windows):
    q = np.empty(windows.shape, np.int8)
    assert lib.h_quantize_input(windows.reshape(-1), len(windows), q.reshape(-1)) == len(q)
    return q


def test_input_steps_quantise_like_the_float_pipeline(fitted, lib):
    """The C quantises through the steps (integer comparisons); on each step's reading and
    the float below it, that equals standardising and quantising in float32."""
    windows = step_windows(fitted)
    net = network_of(fitted)
    z = standardise(windows, fitted.scalars["mean"], fitted.scalars["std"])
    ref = quantize(z, net.input_scale, net.input_zero_point)
    assert np.array_equal(c_quantize_input(lib, windows), ref)
    assert len(np.unique(ref)) == 256  # every level, reached at its step and not before


def test_a_step_moved_one_float_is_caught(fitted, tmp_path):
    def mutate(ctx):
        ctx["input_steps"][100] += 1
    bad = compile_shared(tmp_path / "perturbed", render(fitted, mutate))
    windows = step_windows(fitted)
    net = network_of(fitted)
    z = standardise(windows, fitted.scalars["mean"], fitted.scalars["std"])
    ref = quantize(z, net.input_scale, net.input_zero_point)
    assert (c_quantize_input(bad, windows) != ref).sum() == 1


def test_saturating_windows(fitted, lib):
    windows = saturating_windows(fitted, 20_000, np.random.default_rng(2))
    net = network_of(fitted)
    z = standardise(windows, fitted.scalars["mean"], fitted.scalars["std"])
    q = quantize(z, net.input_scale, net.input_zero_point)
    assert (q == -128).mean() > 0.1 and (q == 127).mean() > 0.1
    y = network_int8(fitted, q)
    assert (y == -128).any() or (y == 127).any()
    ref_s, ref_f = score_windows(fitted, windows)
    s, f = c_score(lib, windows)
    assert same_bits(s, ref_s)
    assert np.array_equal(f, ref_f)
    assert np.isinf(ref_s).any()      # (3e38 - mean) / std overflows: inf score, flagged
    assert np.array_equal(c_invoke(lib, q), y)


def test_quantize_matches_on_midpoints_and_rails(fitted, lib):
    net = network_of(fitted)
    scale = net.input_scale
    k = np.arange(-300, 301, dtype=np.float32)
    z = np.concatenate([(k + np.float32(0.5)) * scale, k * scale,
                        np.nextafter((k + np.float32(0.5)) * scale, np.float32(np.inf)),
                        np.nextafter((k + np.float32(0.5)) * scale, np.float32(-np.inf)),
                        np.float32([0.49999997, -0.49999997, 0.5, -0.5]) * scale,
                        np.float32([np.inf, -np.inf, 3e38, -3e38, 0.0, -0.0, np.nan, -np.nan])]).astype(np.float32)
    q = np.empty(z.size, np.int8)
    lib.h_quantize(z, z.size, q)
    ref = quantize(z, scale, net.input_zero_point)
    assert np.array_equal(q, ref)
    # the TFLite definition on finite values: std::round(z / scale) + zp, clamped
    finite = np.abs(z) < 1e30
    v = (z[finite] / scale).astype(np.float32).astype(np.float64)
    tfl = np.clip(np.sign(v) * np.floor(np.abs(v) + 0.5) + net.input_zero_point, -128, 127)
    assert np.array_equal(ref[finite], tfl.astype(np.int8))


def test_score_output_path_equals_score(fitted, lib, machine):
    """The TFLite Micro path (quantize_input -> TFLM -> score_output) gives the
    plain-C engine's numbers."""
    windows = sliding_windows(machine[:3000], 20)
    q = np.empty((windows.shape[0], 20), np.int8)
    lib.h_quantize_input(windows.reshape(-1), windows.shape[0], q.reshape(-1))
    y = network_int8(fitted, q)
    s = np.empty(windows.shape[0], np.float32)
    f = np.empty(windows.shape[0], np.uint8)
    lib.h_score_output(windows.reshape(-1), y.reshape(-1), windows.shape[0], s, f)
    s2, f2 = c_score(lib, windows)
    assert same_bits(s, s2) and np.array_equal(f.astype(bool), f2)


def test_c_flags_nonfinite_windows(lib, machine):
    w = np.tile(machine[:20], (3, 1)).astype(np.float32)
    w[0, 5] = np.nan
    w[1, 19] = np.inf
    s, f = c_score(lib, w)
    assert np.isposinf(s[0]) and np.isposinf(s[1]) and np.isfinite(s[2])
    assert f[0] and f[1]
    q = np.empty(20 * 3, np.int8)
    assert lib.h_quantize_input(w.reshape(-1), 3, q) == 1


def test_odd_layer_count_and_per_tensor_layer(machine, tmp_path):
    """W=12, 12-6-1-12: an odd number of layers (the last layer reads
    scratch_a, so the score's output goes to scratch_b, which then holds W)
    and a 1-unit layer, which TFLite Micro requantises per tensor (float32
    scale product) rather than per channel."""
    f = ae.fit(machine[:N_NORMAL].reshape(-1, 1), {"epochs": 2, "hidden": [6, 1], "window": 12},
               seed=3, verbose=False)
    net = network_of(f)
    assert [layer.per_channel for layer in net.layers] == [True, False, True]
    assert net.scratch_sizes == (12, 12)
    lib = compile_shared(tmp_path, render(f))
    q = np.random.default_rng(4).integers(-128, 128, size=(20_000, 12)).astype(np.int8)
    assert np.array_equal(c_invoke(lib, q), network_int8(f, q))
    windows = sliding_windows(machine, 12)
    assert mismatches(lib, f, windows) == 0


def test_parity_total_is_at_least_1e5():
    # random int8 40,000 + real (realKnownCause) + saturating 20,000
    assert 40_000 + real_windows(20).shape[0] + 20_000 >= 100_000


def test_perturbed_multiplier_is_caught(fitted, tmp_path):
    """The parity check has teeth: one requantisation multiplier of the output
    layer moved by 0.1% makes C and TFLite Micro disagree."""
    def mutate(ctx):
        last = ctx["layers"][-1]
        vals = [int(v) for v in ", ".join(last["multiplier_rows"]).split(", ")]
        vals[0] = int(vals[0] * 1.001)
        last["multiplier_rows"] = [", ".join(str(v) for v in vals)]
    bad = compile_shared(tmp_path / "perturbed", render(fitted, mutate))
    rng = np.random.default_rng(5)
    q = rng.integers(-128, 128, size=(5_000, 20)).astype(np.int8)
    assert not np.array_equal(c_invoke(bad, q), network_int8(fitted, q))


# ---------------------------------------------------------------------------
# compilers

@pytest.mark.parametrize("cc,std,lang", [
    ("gcc", "-std=c99", None), ("gcc", "-std=c11", None), ("clang", "-std=c99", None),
    ("g++", "-std=c++11", "c++"), ("clang++", "-std=c++11", "c++"),
])
def test_host_compilers(fitted, tmp_path, cc, std, lang):
    require_tool(cc)
    lib = compile_shared(tmp_path, render(fitted), cc=cc, std=std, lang=lang)
    rng = np.random.default_rng(3)
    q = rng.integers(-128, 128, size=(2_000, 20)).astype(np.int8)
    assert np.array_equal(c_invoke(lib, q), network_int8(fitted, q))
    assert lib.h_tflite() % 16 == 0


# ---------------------------------------------------------------------------
# bad input: each a ValueError subclass naming the problem and the fix

def test_window_longer_than_data():
    with pytest.raises(InsufficientDataError, match=r"window 20 is longer than the data \(10 rows\).*shorter window"):
        ae.fit(np.ones((10, 1), np.float32), {}, seed=0, verbose=False)


def test_too_few_normal_windows(machine):
    with pytest.raises(InsufficientDataError, match=r"too few normal windows.*supply at least \d+ normal rows"):
        ae.fit(machine[:200].reshape(-1, 1), {}, seed=0, verbose=False)


def test_the_validation_part_holds_the_windows_its_percentile_needs(machine):
    """On 400 rows the last 10 % gave 21 windows, so percentile:99 was their maximum and the
    training rows themselves flagged 10-16 % (issue 17, item 2): the part grows to the 100
    windows percentile:99 needs, and train says how many set the threshold."""
    from codegen.detectors.autoencoder.training import validation_rows

    assert validation_rows(5000, 20, 0.1, "percentile:99") == 500  # the fraction suffices
    assert validation_rows(400, 20, 0.1, "percentile:99") == 119  # 100 windows
    assert validation_rows(400, 20, 0.1, "percentile:95") == 40  # 20 windows
    assert validation_rows(400, 20, 0.1, "sigma:3") == 40
    with pytest.raises(InsufficientDataError, match=r"cannot give 64 training windows and "
                       r"the 1000 validation windows autoencoder.threshold 'percentile:99.9' "
                       r"needs .* supply at least 1102 normal rows"):
        validation_rows(1000, 20, 0.1, "percentile:99.9")
    fitted = ae.fit(machine[:400].reshape(-1, 1), TEST_PARAMS, seed=7, verbose=False)
    assert fitted.report["threshold"]["validation_windows"] == 100
    assert fitted.report["threshold"]["validation_flagged"] == 1


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nonfinite_training_data(machine, bad):
    x = machine[:1000].copy()
    x[123] = bad
    with pytest.raises(NonFiniteInputError, match=r"NaN/Inf.*row 123.*drop or interpolate"):
        ae.fit(x.reshape(-1, 1), {}, seed=0, verbose=False)


def test_nonfinite_scoring_data_is_flagged(fitted, machine, lib):
    x = machine[:100].copy()
    x[42] = np.nan
    scores, flags, _ = ae.score(fitted, x.reshape(-1, 1))
    hit = np.arange(42, 42 + 20)  # every window holding row 42
    assert np.isposinf(scores[hit]).all() and flags[hit].all()
    assert np.isfinite(scores[62:]).all()
    w = sliding_windows(x, 20)
    py_s, py_f = score_windows(fitted, w)
    c_s, c_f = c_score(lib, w)
    assert same_bits(py_s, c_s) and np.array_equal(py_f, c_f)


def test_constant_channel():
    with pytest.raises(ConstantChannelError, match="constant.*another channel"):
        ae.fit(np.full((1000, 1), 3.0, np.float32), {}, seed=0, verbose=False)


def test_unsupported_layer_choices_fail_before_training():
    with pytest.raises(UnsupportedLayerError, match="tanh.*use activation 'relu'"):
        check_params({"activation": "tanh"})
    with pytest.raises(UnsupportedLayerError, match="hidden"):
        check_params({"hidden": []})
    with pytest.raises(UnsupportedLayerError, match="width"):
        check_params({"hidden": [8, 0, 8]})
    with pytest.raises(AutoencoderConfigError, match="unknown.*spelling"):
        check_params({"epoch": 3})
    with pytest.raises(UserError, match="percentile:P"):
        check_params({"threshold": "p99"})
    with pytest.raises(AutoencoderConfigError, match="channel 3 does not exist"):
        ae.fit(np.ones((1000, 2), np.float32), {"channel": 3}, seed=0, verbose=False)
    assert issubclass(UnsupportedLayerError, ValueError)


def test_model_not_int8_end_to_end(tmp_path):
    import tensorflow as tf
    import keras
    keras.utils.set_random_seed(0)
    m = keras.Sequential([keras.Input((20,)), keras.layers.Dense(4, activation="relu"),
                          keras.layers.Dense(20)])
    rep = np.random.default_rng(0).normal(size=(50, 20)).astype(np.float32)
    conv = tf.lite.TFLiteConverter.from_keras_model(m)
    conv.optimizations = [tf.lite.Optimize.DEFAULT]
    conv.representative_dataset = lambda: ([rep[i:i + 1]] for i in range(50))
    with quiet(True):
        float_io = conv.convert()            # int8 inside, float32 in and out
        conv2 = tf.lite.TFLiteConverter.from_keras_model(m)
        plain_float = conv2.convert()        # no quantisation at all
    for blob in (float_io, plain_float):
        with pytest.raises(NotInt8ModelError, match=r"not int8 end to end.*inference_input_type=tf.int8"):
            extract_network(blob, BLOB_MODEL)
    with pytest.raises(NotInt8ModelError, match="not a readable .tflite"):
        extract_network(b"not a model", BLOB_MODEL)


def test_arena_search_finds_nothing_below_cap(fitted):
    with pytest.raises(tflm_arena.ArenaSearchError, match=r"arena of 1024 bytes.*Raise the cap"):
        tflm_arena.find_arena(fitted.blobs[BLOB_MODEL], cap=1024)
    assert issubclass(tflm_arena.ArenaSearchError, ValueError)


def test_the_arena_is_searched_once_per_architecture(machine, monkeypatch, tmp_path):
    """The arena depends on the graph, not the numbers in it: two trainings of one
    architecture on other data, scale and seed measure the same arena, so the second takes
    the first's from the cache (issue 17, item 7), and its bundle is what a search gives."""
    monkeypatch.setenv("MCUA_CACHE", str(tmp_path))
    x = machine[:2200].reshape(-1, 1)
    first = ae.fit(x, TEST_PARAMS, seed=7, verbose=False)
    assert len(list((tmp_path / "arena").iterdir())) == 1
    other = ae.fit(x[::-1] * 1000, TEST_PARAMS, seed=3, verbose=False)
    assert other.blobs[BLOB_MODEL] != first.blobs[BLOB_MODEL]
    assert tflm_arena.structure(other.blobs[BLOB_MODEL]) == tflm_arena.structure(
        first.blobs[BLOB_MODEL])
    searched = tflm_arena.find_arena(other.blobs[BLOB_MODEL], cap=other.params["arena_cap"],
                                     kernel_scratch_bytes=4 * 20).as_dict()  # widest: W
    assert json.loads(other.blobs[BLOB_ARENA]) == searched  # the cached one is the search's
    wider = ae.fit(x, {**TEST_PARAMS, "hidden": [16, 4, 16]}, seed=7, verbose=False)
    assert len(list((tmp_path / "arena").iterdir())) == 2
    assert json.loads(wider.blobs[BLOB_ARENA])["minimum"] != searched["minimum"]
    for bad in ("{", "[]", '{"minimum": "2648", "emitted": 2704}'):
        spoiled = tmp_path / "spoiled.json"
        spoiled.write_text(bad)
        assert tflm_arena._cached(spoiled) is None  # searched again, not trusted


# ---------------------------------------------------------------------------
# windows of several channels, and the newest row's error

def iot_normal():
    from codegen.data import dataset as data
    iot = data.iot_sensors()
    return iot, iot.values[~iot.labels]


@pytest.fixture(scope="session")
def multi():
    """Windows of 20 rows of the three iot channels (60 inputs), scored by the newest row."""
    iot, normal = iot_normal()
    return ae.fit(normal, {**TEST_PARAMS, "channels": "all"}, seed=7, verbose=False,
                  channels=iot.channels)


@pytest.fixture(scope="session")
def multi_lib(multi, tmp_path_factory):
    return compile_shared(tmp_path_factory.mktemp("ae_multi"), render(multi))


def side_by_side_nab(channels: int) -> np.ndarray:
    """Rows of `channels` different realKnownCause series side by side (cut to the shortest
    of each group): real readings of unrelated scales on every channel."""
    series = [load_series(p) for p in sorted((NAB / "realKnownCause").glob("*.csv"))]
    groups = [series[i:i + channels] for i in range(0, len(series) - channels + 1)]
    return [np.stack([x[:min(map(len, g))] for x in g], axis=1) for g in groups]


def test_channels_all_by_name_and_one_channel_alone():
    iot, normal = iot_normal()
    params = training.channel_index({"channels": ["sensor_3", 0]}, iot.channels, 3)
    assert params["channels"] == [2, 0]
    params = training.channel_index({"channels": ["sensor_2"]}, iot.channels, 3)
    assert params["channel"] == 1 and params["channels"] is None
    assert training.channel_index({"channels": "all"}, iot.channels, 3)["channels"] == [0, 1, 2]
    assert training.channel_index({"channels": "sensor_3, 0"}, iot.channels, 3)["channels"] \
        == [2, 0]  # --set autoencoder.channels=sensor_3,0
    with pytest.raises(AutoencoderConfigError, match="'sensor_9' is not a channel"):
        training.channel_index({"channels": ["sensor_9"]}, iot.channels, 3)
    with pytest.raises(AutoencoderConfigError, match="channels must be 'all' or a non-empty"):
        check_params({"channels": []})
    with pytest.raises(AutoencoderConfigError, match="pointwise must be one of window, newest"):
        check_params({"pointwise": "max"})
    with pytest.raises(AutoencoderConfigError, match="520 rows of 3 channels is 1560 network inputs, more than 1024"):
        ae.fit(normal, {"channels": "all", "window": 520}, seed=0, verbose=False)


def test_a_window_of_rows_is_flattened_row_after_row(multi):
    """Value i of a window is row i // C, channel i mod C, each standardised by its own
    channel's mean and power-of-two deviation; a row's score is its window's."""
    _, normal = iot_normal()
    X = normal[:200]
    windows = sliding_windows(X, 20)
    assert windows.shape == (181, 60)
    assert np.array_equal(windows[5], X[5:25].reshape(-1))
    channels, means, stds = watched(multi)
    assert list(channels) == [0, 1, 2] and multi.report["architecture"] == "60-8-4-8-60"
    assert all(np.frexp(sd)[0] == 0.5 for sd in stds)  # powers of two
    z = standardise(windows, means, stds)
    for c in range(3):
        column = (windows[:, c::3] - means[c]) / stds[c]
        assert same_bits(z[:, c::3], column)
    s, f, _ = ae.score(multi, X)
    ref_s, ref_f = score_windows(multi, windows)
    assert same_bits(s[19:], ref_s) and np.array_equal(f[19:], ref_f) and not s[:19].any()


def test_the_newest_row_is_scored_alone(multi):
    """pointwise=newest: the mean squared error of the window's last C values (its newest
    row); pointwise=window: of all W * C."""
    _, normal = iot_normal()
    windows = sliding_windows(normal[:300], 20)
    net = network_of(multi)
    _, means, stds = watched(multi)
    z = standardise(windows, means, stds)
    y = network_int8(multi, quantize(z, net.input_scale, net.input_zero_point))
    r = (y.astype(np.float32) - np.float32(net.output_zero_point)) * np.float32(net.output_scale)
    sq = (z - r) * (z - r)
    newest = ((sq[:, -3] + sq[:, -2]) + sq[:, -1]) / np.float32(3)
    assert same_bits(score_windows(multi, windows)[0], newest)
    whole = np.zeros(len(windows), np.float32)
    for i in range(60):  # left to right
        whole = whole + sq[:, i]
    assert same_bits(reconstruction_error(z, y, net.output_scale, net.output_zero_point, 60),
                     whole / np.float32(60))


def test_multichannel_parity_with_tflite_micro(multi, multi_lib):
    """>= 10^5 windows of three channels: random int8 through the network, real readings
    (three NAB series side by side, and the iot data with its spikes), and saturating
    windows; every score bit and flag, and the quantised inputs."""
    rng = np.random.default_rng(11)
    q = rng.integers(-128, 128, size=(40_000, 60)).astype(np.int8)
    assert np.array_equal(c_invoke(multi_lib, q), network_int8(multi, q))
    iot, _ = iot_normal()
    real = np.concatenate([sliding_windows(x, 20) for x in side_by_side_nab(3)]
                          + [sliding_windows(iot.values, 20)])
    _, means, stds = watched(multi)
    far = rng.normal(0, 1, size=(40_000, 60)).astype(np.float32) * np.float32(400) \
        * np.tile(stds, 20) + np.tile(means, 20)
    far[::7, ::5] = rng.choice(np.float32([-3e38, 3e38, -1e30, 1e30]), size=far[::7, ::5].shape)
    far[::11, -1] = np.float32(3e38)  # in the newest row: (x - mean) / std overflows
    windows = np.concatenate([real, far]).astype(np.float32)
    assert len(q) + len(windows) >= 100_000
    ref_s, ref_f = score_windows(multi, windows)
    s, f = c_score(multi_lib, windows)
    assert same_bits(s, ref_s) and np.array_equal(f, ref_f)
    assert ref_f.any() and not ref_f.all() and np.isposinf(ref_s).any()
    net = network_of(multi)
    q_ref = quantize(standardise(real, means, stds), net.input_scale, net.input_zero_point)
    assert np.array_equal(c_quantize_input(multi_lib, real), q_ref)
    y = network_int8(multi, q_ref)
    out_s = np.empty(len(real), np.float32)
    out_f = np.empty(len(real), np.uint8)
    multi_lib.h_score_output(real.reshape(-1), y.reshape(-1), len(real), out_s, out_f)
    assert same_bits(out_s, ref_s[:len(real)])


def test_a_channel_mean_moved_one_ulp_is_caught(multi, tmp_path):
    def mutate(ctx):
        ctx["means"][2] = float(np.nextafter(np.float32(ctx["means"][2]), np.float32(np.inf)))
    bad = compile_shared(tmp_path / "perturbed", render(multi, mutate))
    windows = sliding_windows(iot_normal()[0].values, 20)
    ref_s, _ = score_windows(multi, windows)
    s, _ = c_score(bad, windows)
    assert not same_bits(s, ref_s)


def test_newest_flags_the_spike_where_the_window_flags_the_rows_after_it():
    """issue 11: scored by its whole window, the W - 1 rows after a spike are flagged too;
    scored by its own error, the spike's row and (nearly) no other."""
    iot, normal = iot_normal()
    spikes = iot.labels
    false_alarms = {}
    for mode in ("window", "newest"):
        fitted = ae.fit(normal[:, :1], {**TEST_PARAMS, "pointwise": mode}, seed=7,
                        verbose=False)
        _, flags, _ = ae.score(fitted, iot.values[:, :1])
        false_alarms[mode] = np.count_nonzero(flags & ~spikes) / np.count_nonzero(spikes)
        assert flags[spikes].mean() > 0.9, mode
    assert false_alarms["window"] > 10 and false_alarms["newest"] < 2, false_alarms


def test_the_header_of_one_channel_scored_by_window_has_no_rows(fitted):
    """One channel's whole window renders the model alone (the header generated before
    `channels` and `pointwise` existed); the newest row goes through an
    mcua_autoencoder_rows."""
    window = dict(fitted.__dict__, params={**fitted.params, "pointwise": "window"})
    header = render(type(fitted)(**window))
    assert "mcua_autoencoder_rows" not in header and "mcua_autoencoder_score(&" in header
    assert "mcua_autoencoder_score_rows(&aetest_autoencoder_model, &aetest_autoencoder_rows" \
        in render(fitted)


def test_a_bundle_from_before_pointwise_scores_whole_windows(fitted):
    old = {k: v for k, v in fitted.params.items() if k not in ("pointwise", "channels")}
    again = ae.load(old, fitted.scalars, fitted.arrays, fitted.blobs)
    assert again.params["pointwise"] == "window"


def test_the_uno_refuses_a_window_of_rows_it_cannot_hold():
    """200 rows of three channels: 2,400 B of window for the caller and 600 B of scratch
    exceed the Uno's 2,048 B of RAM, refused with the figures; a Cortex-M4F holds them."""
    from codegen.data import dataset as data
    from codegen.firmware import memory
    from codegen.training import train as train_mod

    trained = train_mod.train(data.iot_sensors(), ["autoencoder"],
                              {"autoencoder": {"epochs": 1, "channels": "all", "window": 200}},
                              0, "wide", verbose=False)
    with pytest.raises(UserError, match=r"needs at least 3,008 B of RAM on uno, and the Uno "
                                        r"\(ATmega328P\) has 2,048 B.*fewer autoencoder.channels"
                                        r", or a bigger board \(--target cortex_m4f\)"):
        memory.check(trained, "uno")
    assert memory.check(trained, "cortex_m4f")[0] == 3_008
