"""Training on normal data: the Keras dense autoencoder, its int8 conversion, the TFLite
Micro arena, the threshold on the validation windows, and the LiteRT comparison."""

from __future__ import annotations

import hashlib
import json
import sys
import time

import numpy as np

from codegen.detectors.autoencoder.params import (MAX_WINDOW, NAME, AutoencoderConfigError,
                                                  AutoencoderError,
                                                  ConstantChannelError, InsufficientDataError,
                                                  NonFiniteInputError, check_params)
from codegen.detectors.autoencoder.pipeline import (network_int8, score_windows,
                                                    sliding_windows, standardise)
from codegen.detectors.autoencoder.stored import BLOB_ARENA, BLOB_MODEL
from codegen.detectors.base import FLOAT32_TINY, Fitted
from codegen.tflite import arena as tflm_arena
from codegen.tflite.convert import seeded_session, to_int8
from codegen.tflite.flatbuffer import Network, extract_network
from codegen.tflite.quantize import quantize
from codegen.tflite.quiet import quiet
from codegen.tflite.runners import litert_run, lsb_histogram
from codegen.training import thresholds

MIN_TRAIN_WINDOWS = 64
MIN_VAL_WINDOWS = 16
LITERT_RANDOM_WINDOWS = 2000


def _log(verbose: bool, msg: str) -> None:
    if verbose:
        print(f"[autoencoder] {msg}", file=sys.stderr, flush=True)


def power_of_two_scale(std: np.float32) -> np.float32:
    """The power of two nearest std (in ratio: within a factor sqrt(2)), in float32's
    normal range: the scale the channel is standardised by.  Its reciprocal is exact, so the
    device multiplies by it instead of dividing (pipeline.std_reciprocal), with the same
    results; the network sees values of unit order all the same."""
    exponent = np.ceil(np.log2(np.float64(std)) - 0.5)
    return np.float32(np.exp2(np.clip(exponent, -126, 127)))


def _first_nonfinite(x: np.ndarray):
    bad = np.flatnonzero(~np.isfinite(x))
    return (int(bad[0]), int(bad.size)) if bad.size else None


def _train_and_convert(p: dict, z_train_w: np.ndarray, z_val_w: np.ndarray, seed: int,
                       verbose: bool) -> tuple:
    tf, keras = seeded_session(seed)
    W = z_train_w.shape[1]   # the network's width: window rows times channels
    layers = [keras.Input(shape=(W,), name="window")]
    for k, h in enumerate(p["hidden"]):
        layers.append(keras.layers.Dense(h, activation="relu", name=f"hidden{k}"))
    layers.append(keras.layers.Dense(W, activation="linear", name="reconstruction"))
    model = keras.Sequential(layers, name="autoencoder")
    model.compile(optimizer=keras.optimizers.Adam(learning_rate=p["learning_rate"]),
                  loss="mse")
    fit_verbose = (1 if sys.stdout.isatty() else 2) if verbose else 0
    t0 = time.time()
    with quiet(keep_stdout=verbose):   # TF's C++ logs; Keras progress when verbose
        hist = model.fit(z_train_w, z_train_w, validation_data=(z_val_w, z_val_w),
                         epochs=p["epochs"], batch_size=p["batch_size"], shuffle=True,
                         verbose=fit_verbose)
    t_train = time.time() - t0

    t0 = time.time()
    blob = to_int8(model, z_train_w, p["representative_samples"],
                   "Use only Dense layers with ReLU hidden activations")
    t_conv = time.time() - t0
    history = {k: np.asarray(v, dtype=np.float32) for k, v in hist.history.items()}
    # Timings are printed, never stored: the same data and seed give the same bundle.
    _log(verbose, f"trained in {t_train:.1f} s, converted in {t_conv:.1f} s")
    return blob, history, {"tensorflow": tf.__version__, "keras": keras.__version__}


def _threshold(val_scores: np.ndarray, spec: str) -> np.float32:
    t32 = thresholds.choose(spec, val_scores)
    if not np.isfinite(t32):
        raise AutoencoderError(
            f"threshold from {spec!r} is not finite: the validation scores overflow "
            f"float32; check the data for extreme values")
    return t32


def _pkg_version(name: str) -> str:
    try:
        from importlib.metadata import version
        return version(name)
    except Exception:
        return "not installed"


def _litert_vs_tflm(fitted: Fitted, net: Network, z_val_w: np.ndarray, seed: int) -> dict:
    """LiteRT against TFLite Micro on the same int8 inputs: the validation windows and
    random int8 windows.  Informative only: a failure is reported, never raised."""
    blob = fitted.blobs[BLOB_MODEL]
    litert: dict = {"version": _pkg_version("ai-edge-litert")}
    try:
        q_val = quantize(z_val_w, net.input_scale, net.input_zero_point)
        rng = np.random.default_rng(int(seed))
        q_rand = rng.integers(-128, 128, size=(LITERT_RANDOM_WINDOWS, net.window)).astype(np.int8)
        with quiet():
            lr_val = litert_run(blob, q_val)
            lr_rand = litert_run(blob, q_rand)
        litert["validation_windows"] = {"windows": int(q_val.shape[0]),
                                        **lsb_histogram(lr_val, network_int8(fitted, q_val))}
        litert["random_int8_windows"] = {"windows": LITERT_RANDOM_WINDOWS,
                                         **lsb_histogram(lr_rand, network_int8(fitted, q_rand))}
    except Exception as exc:  # informative only; never blocks training
        litert["error"] = f"{type(exc).__name__}: {exc}"
    return litert


def _index(name, key: str, channels: list[str] | None, n_channels: int):
    """A channel given by name or index, as its index (an integer below n_channels)."""
    if not isinstance(name, str):
        if isinstance(name, int) and not isinstance(name, bool) and name >= n_channels:
            raise AutoencoderConfigError(
                f"{NAME}.{key}: channel {name} does not exist: the data has {n_channels} "
                f"channel(s) (0..{n_channels - 1})")
        return name
    if not channels or name not in channels:
        raise AutoencoderConfigError(
            f"{NAME}.{key} {name!r} is not a channel of the data; give one of "
            f"{', '.join(channels or [])} or its index")
    return channels.index(name)


def channel_index(params: dict, channels: list[str] | None, n_channels: int) -> dict:
    """params with channels given by name replaced by their indices in channels, and
    "channels" resolved: "all" is every channel, a single one is `channel`."""
    params = dict(params or {})
    if "channel" in params:
        params["channel"] = _index(params["channel"], "channel", channels, n_channels)
    many = check_params({"channels": params.get("channels")})["channels"]  # names split
    if many == "all":
        many = list(range(n_channels))
    if isinstance(many, list):
        many = [_index(c, "channels", channels, n_channels) for c in many]
        if len(many) == 1:
            params["channel"], many = many[0], None
        params["channels"] = many
    return params


def validation_rows(n: int, W: int, split: float, spec: str) -> int:
    """The last rows, whose windows set the threshold: a fraction split of the n rows, more
    where the threshold strategy needs more windows (thresholds.scores_needed: percentile:99
    needs 100, or it is only their maximum), as long as MIN_TRAIN_WINDOWS stay to train on."""
    need = max(MIN_VAL_WINDOWS, thresholds.scores_needed(spec))
    rows = max(int(round(n * split)), need + W - 1)
    if n - rows - W + 1 < MIN_TRAIN_WINDOWS:
        least = MIN_TRAIN_WINDOWS + need + 2 * (W - 1)
        raise InsufficientDataError(
            f"too few normal windows: {n} rows of windows of {W} cannot give "
            f"{MIN_TRAIN_WINDOWS} training windows and the {need} validation windows "
            f"{NAME}.threshold {spec!r} needs (at least {MIN_VAL_WINDOWS}; a percentile P "
            f"needs 100/(100-P) to be more than their maximum); supply at least {least} "
            f"normal rows, or use a shorter window or a lower percentile (e.g. "
            f"percentile:95) or sigma:K")
    return rows


def _standardisation(xt: np.ndarray, watched: list) -> tuple:
    """Per watched channel of the training rows xt [rows, C]: the mean, and the power of two
    nearest the standard deviation (float32 arrays); a channel that cannot be standardised
    is refused."""
    means, stds = [], []
    for column, ch in enumerate(watched):
        values = xt[:, column].astype(np.float64)
        mean, std = np.float32(values.mean()), np.float32(values.std())
        if not (np.isfinite(std) and std > 0 and np.isfinite(mean)):
            raise ConstantChannelError(
                f"channel {ch} is constant (or overflows float32) in the normal training rows "
                f"(std {float(std)!r}): it cannot be standardised; watch another channel or "
                f"use another detector")
        if std < FLOAT32_TINY:
            raise AutoencoderError(
                f"channel {ch}: standard deviation {float(std):.3g} is below float32's normal "
                f"range ({FLOAT32_TINY:.3g}); the device standardises (x - mean) / std in "
                f"float32, where so small a std keeps only a few significant bits: rescale "
                f"the channel (e.g. to µV) or watch another one")
        means.append(mean)
        stds.append(power_of_two_scale(std))
    return np.asarray(means, np.float32), np.asarray(stds, np.float32)


def fit(normal: np.ndarray, params: dict, seed: int, verbose: bool,
        channels: list[str] | None = None) -> Fitted:
    """Train on normal data only, convert to int8, size the arena, set the threshold.
    params' channel may name one of channels (the C names) instead of giving its index."""
    normal = np.asarray(normal)
    if normal.ndim == 1:
        normal = normal.reshape(-1, 1)
    if normal.ndim != 2:
        raise InsufficientDataError(
            f"normal data has shape {normal.shape}; pass a 2-D array (rows, channels)")
    p = check_params(channel_index(params, channels, normal.shape[1]))
    W, ch = p["window"], p["channel"]
    watched = p["channels"] if p["channels"] is not None else [ch]
    if ch >= normal.shape[1]:
        raise AutoencoderConfigError(
            f"channel {ch} does not exist: the data has {normal.shape[1]} channel(s) "
            f"(0..{normal.shape[1] - 1}); set param 'channel'")
    if W * len(watched) > MAX_WINDOW:
        raise AutoencoderConfigError(
            f"a window of {W} rows of {len(watched)} channels is {W * len(watched)} network "
            f"inputs, more than {MAX_WINDOW}: use a shorter --window or fewer "
            f"{NAME}.channels")
    x = normal[:, watched].astype(np.float32)
    n = x.shape[0]
    if W > n:
        raise InsufficientDataError(
            f"window {W} is longer than the data ({n} rows): use a shorter window "
            f"(param 'window') or supply more normal rows")
    bad = _first_nonfinite(x)
    if bad is not None:
        row, column = divmod(bad[0], len(watched))
        raise NonFiniteInputError(
            f"{bad[1]} NaN/Inf value(s) in channel {watched[column]} of the normal data "
            f"(first at row {row}): training needs finite values; drop or interpolate those "
            f"rows")
    n_val_rows = validation_rows(n, W, p["validation_split"], p["threshold"])
    n_train_rows = n - n_val_rows
    n_train_w = n_train_rows - W + 1
    n_val_w = n_val_rows - W + 1

    xt = x[:n_train_rows]
    mean, std = _standardisation(xt, watched)
    raw_train_w = sliding_windows(xt, W)
    raw_val_w = sliding_windows(x[n_train_rows:], W)
    z_train_w = standardise(raw_train_w, mean, std)
    z_val_w = standardise(raw_val_w, mean, std)
    if _first_nonfinite(z_train_w) or _first_nonfinite(z_val_w):
        raise NonFiniteInputError(
            f"standardised values of channel(s) {watched} overflow float32 (values far beyond "
            f"the mean +- 1e38 std): rescale the channel")

    width = W * len(watched)
    arch = "-".join(str(v) for v in [width, *p["hidden"], width])
    _log(verbose, f"training {arch} on {n_train_w} windows (validation {n_val_w}), "
                  f"{p['epochs']} epochs, seed {seed}")
    blob, history, versions = _train_and_convert(p, z_train_w, z_val_w, seed, verbose)
    _log(verbose, f"converted to int8: {len(blob)} bytes")
    net = extract_network(blob, BLOB_MODEL)

    scratch = 4 * max(layer.out_dim for layer in net.layers)
    t0 = time.time()
    arena_d, cached = tflm_arena.search(blob, cap=p["arena_cap"], kernel_scratch_bytes=scratch)
    how = ("as measured for this architecture before (the cache)" if cached else
           f"found in {time.time() - t0:.1f} s (one subprocess per try)")
    _log(verbose, f"TensorFlow Lite Micro arena: minimum {arena_d['minimum']} B, emitted "
                  f"{arena_d['emitted']} B, {how}; {arena_d['note']}")

    one = len(watched) == 1
    scalars = {
        **({"channel": ch, "mean": float(mean[0]), "std": float(std[0])} if one else {}),
        "window": W,
        "input_scale": float(net.input_scale), "input_zero_point": net.input_zero_point,
        "output_scale": float(net.output_scale), "output_zero_point": net.output_zero_point,
        "threshold": 0.0,
        "arena_size": arena_d["emitted"], "arena_minimum": arena_d["minimum"],
        "n_train_windows": n_train_w, "n_val_windows": n_val_w,
    }
    kept = {} if one else {"channels": np.asarray(watched, np.int32), "mean": mean, "std": std}
    fitted = Fitted(params=p, scalars=scalars, arrays=dict(kept),
                    blobs={BLOB_MODEL: blob,
                           BLOB_ARENA: json.dumps(arena_d, indent=1, sort_keys=True).encode()})
    val_scores, _ = score_windows(fitted, raw_val_w)
    thr = _threshold(val_scores, p["threshold"])
    scalars["threshold"] = float(thr)
    _log(verbose, f"threshold {p['threshold']} of the scores of {n_val_w} validation windows "
                  f"(the last {n_val_rows} rows): {float(thr):.6g}, "
                  f"{int(np.count_nonzero(val_scores > thr))} of them above it")
    fitted.arrays = {**kept, "validation_scores": val_scores,
                     **{f"history_{k}": v for k, v in history.items()}}

    litert = _litert_vs_tflm(fitted, net, z_val_w, seed)

    fitted.report = {
        "architecture": arch,
        "tflite_bytes": len(blob),
        "tflite_sha256": hashlib.sha256(blob).hexdigest(),
        "ops": list(net.ops),
        "per_channel_layers": [bool(layer.per_channel) for layer in net.layers],
        "arena": {k: arena_d[k] for k in ("minimum", "emitted", "margin", "margin_parts",
                                          "report_total", "report_head", "report_tail",
                                          "runtime", "consistent", "note")},
        "arena_probes": len(arena_d["probes"]),
        "litert_vs_tflm": litert,
        "threshold": {"spec": p["threshold"], "value": float(thr),
                      "validation_windows": n_val_w,
                      "validation_flagged": int(np.count_nonzero(val_scores > thr))},
        "final_loss": float(history["loss"][-1]) if "loss" in history else None,
        "final_val_loss": float(history["val_loss"][-1]) if "val_loss" in history else None,
        "versions": {**versions,
                     "tflite-micro": _pkg_version("tflite-micro"),
                     "ai-edge-litert": _pkg_version("ai-edge-litert"),
                     "numpy": np.__version__},
        "c_engine_ram_bytes": sum(net.scratch_sizes),
    }
    _log(verbose, f"threshold {p['threshold']} = {float(thr)!r}")
    return fitted
