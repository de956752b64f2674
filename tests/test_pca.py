"""pca's behaviour (the detector contract: test_contract.py), and its T² and Q from C bit
for bit."""

import copy

import numpy as np
import pytest
from scipy import stats

from codegen.data.dataset import Dataset
from codegen.detectors import pca, zscore
from codegen.emit import render as emit
from codegen.errors import UserError
from codegen.training import train as training
from codegen.verify import battery as battery_mod

from codegen import cli

from support import build_program, rows_input, run_program, write_csv

F32 = np.float32
CHANNELS = ["flow", "current", "pressure"]
WARN = ["-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror"]


def correlated(n=3000, seed=0):
    """Flow drives current and pressure: three channels that move together."""
    rng = np.random.default_rng(seed)
    flow = 10 + 3 * rng.standard_normal(n)
    current = 2 + 0.3 * flow + 0.1 * rng.standard_normal(n)
    pressure = 50 - 2 * flow + 0.5 * rng.standard_normal(n)
    return np.column_stack([flow, current, pressure]).astype(F32)


def six_channels(n=4000, seed=1):
    """Two operating drivers (speed, load) behind six noisy channels."""
    rng = np.random.default_rng(seed)
    speed, load = rng.standard_normal(n), rng.standard_normal(n)
    mix = np.array([[1, 0], [0.9, 0.3], [0.2, 1], [0.5, 0.5], [-0.7, 0.4], [0, -1]])
    return (np.column_stack([speed, load]) @ mix.T * 5 + 20
            + 0.3 * rng.standard_normal((n, 6))).astype(F32)


def test_a_broken_relation_is_flagged_by_q_where_each_channel_looks_normal():
    normal = correlated()
    fitted = pca.fit(normal, {}, 0, False, CHANNELS)
    per_channel = zscore.fit(normal, {}, 0, False, CHANNELS)
    # high flow with the current of a low flow: each reading within 1.5 sigma of its mean
    broken = np.array([[14.0, 2 + 0.3 * 6.0, 50 - 2 * 14.0]], dtype=F32)
    t2, q = pca.parts(fitted, broken)
    assert q[0] > 10 * fitted.scalars["q_limit"] and t2[0] < fitted.scalars["t2_limit"]
    assert pca.score(fitted, broken).flags.all()
    assert not zscore.score(per_channel, broken).flags.any()


def test_threshold_one_flags_where_t2_or_q_passes_its_percentile_limit():
    normal = correlated()
    fitted = pca.fit(normal, {}, 0, False, CHANNELS)
    t2, q = pca.parts(fitted, normal)
    assert fitted.scalars["t2_limit"] == float(F32(np.percentile(t2.astype(np.float64), 99)))
    assert fitted.scalars["q_limit"] == float(F32(np.percentile(q.astype(np.float64), 99)))
    assert fitted.scalars["threshold"] == 1.0
    flags = pca.score(fitted, normal).flags
    either = (t2 > fitted.scalars["t2_limit"]) | (q > fitted.scalars["q_limit"])
    assert (flags != either).sum() <= 2  # a product's rounding at the very limit
    assert 0.01 <= flags.mean() <= 0.02
    # another threshold scales both limits together
    wide = pca.fit(normal, {"threshold": "value:2"}, 0, False, CHANNELS)
    assert np.array_equal(pca.score(wide, normal).flags, pca.score(fitted, normal).scores > 2)


def test_automatic_components_reach_the_variance_fraction():
    normal = six_channels()
    explained = {}
    for variance, k in ((0.5, 1), (0.95, 2), (0.999, 5)):
        fitted = pca.fit(normal, {"variance": variance}, 0, False, [f"c{i}" for i in range(6)])
        explained = fitted.report["explained"]
        assert fitted.params["k_chosen"] == k == fitted.arrays["loadings"].shape[1]
        assert np.sum(explained[:k]) >= variance or k == 5  # at most C - 1
        assert k == 1 or np.sum(explained[:k - 1]) < variance
    assert explained[1] > 0.4 and explained[2] < 0.01  # two drivers, then noise
    fixed = pca.fit(normal, {"components": 3}, 0, False, [f"c{i}" for i in range(6)])
    assert fixed.arrays["inv_lambda"].shape == (3,)


def test_the_loadings_are_orthonormal_and_lambda_the_component_variances():
    normal = six_channels()
    fitted = pca.fit(normal, {"components": 2}, 0, False, [f"c{i}" for i in range(6)])
    P = fitted.arrays["loadings"].astype(np.float64)
    assert np.allclose(P.T @ P, np.eye(2), atol=1e-6)
    Z = (normal - fitted.arrays["mean"]) * fitted.arrays["inv_scale"]
    scores = Z.astype(np.float64) @ P
    assert np.allclose(1 / scores.var(axis=0, ddof=1), fitted.arrays["inv_lambda"], rtol=1e-5)


def test_classical_limits_are_the_f_and_jackson_mudholkar_formulas():
    normal = six_channels()
    names = [f"c{i}" for i in range(6)]
    fitted = pca.fit(normal, {"components": 2, "limits": "classical:0.01"}, 0, False, names)
    n, k, alpha = len(normal), 2, 0.01
    Z = (normal.astype(np.float64) - normal.mean(axis=0)) / normal.astype(np.float64).std(axis=0)
    lam = np.sort(np.linalg.eigvalsh(np.cov(Z, rowvar=False)))[::-1][k:]
    t2 = k * (n - 1) * (n + 1) / (n * (n - k)) * stats.f.ppf(1 - alpha, k, n - k)
    th1, th2, th3 = lam.sum(), (lam ** 2).sum(), (lam ** 3).sum()
    h0 = 1 - 2 * th1 * th3 / (3 * th2 ** 2)
    q = th1 * (stats.norm.ppf(1 - alpha) * np.sqrt(2 * th2 * h0 ** 2) / th1 + 1
               + th2 * h0 * (h0 - 1) / th1 ** 2) ** (1 / h0)
    assert fitted.scalars["t2_limit"] == pytest.approx(t2, rel=1e-6)
    assert fitted.scalars["q_limit"] == pytest.approx(q, rel=1e-4)
    assert fitted.scalars["inv_q_limit"] == float(F32(1 / fitted.scalars["q_limit"]))
    # on Gaussian data T² alone passes its limit on about alpha of the rows
    t2_rows, _ = pca.parts(fitted, normal)
    assert (t2_rows > fitted.scalars["t2_limit"]).mean() == pytest.approx(alpha, abs=0.005)


@pytest.mark.parametrize("params, words", [
    ({"components": 3}, "leaves no residual space for Q with 3 channels"),
    ({"components": 7}, "leaves no residual space"),
    ({"components": 0}, r"an integer from 1 to 2"),
    ({"components": "two"}, r"'auto' or an integer from 1 to 2"),
    ({"variance": 0}, r"variance must be a number in \(0, 1\]"),
    ({"variance": 1.5}, r"variance must be a number in \(0, 1\]"),
    ({"limits": "classical:0.99"}, "false-alarm rate A in"),
    ({"limits": "percentile:0"}, "pca.limits 'percentile:0' is not understood"),
    ({"limits": "chi2"}, "is not understood"),
    ({"threshold": "foo:1"}, "is not understood"),
    ({"k": 2}, "has no parameter k"),
])
def test_bad_parameters_are_refused(params, words):
    with pytest.raises(UserError, match=words):
        pca.fit(correlated(), params, 0, False, CHANNELS)


def test_one_channel_is_refused_pointing_to_zscore():
    with pytest.raises(UserError, match="at least 2 channels.*use zscore"):
        pca.fit(correlated()[:, :1], {}, 0, False, CHANNELS[:1])


def test_fewer_rows_than_channels_are_refused():
    with pytest.raises(UserError, match="3 rows for 3 channels"):
        pca.fit(correlated(3), {}, 0, False, CHANNELS)


def test_collinear_channels_leaving_no_residual_are_refused_naming_them():
    normal = correlated()
    normal = np.column_stack([normal, 2 * normal[:, 0]]).astype(F32)
    with pytest.raises(UserError, match=r"residual variance .* below .*'flow' and 'twice_flow'"
                                        r" \(correlation 1.0"):
        pca.fit(normal, {"components": 3}, 0, False, CHANNELS + ["twice_flow"])
    # with a component fewer, the residual holds the pressure's own noise again
    assert pca.fit(normal, {"components": 2}, 0, False, CHANNELS + ["twice_flow"])


def test_the_cli_refuses_collinear_channels_and_writes_nothing(tmp_path, capsys):
    normal = correlated(500)
    rows = [[repr(float(v)) for v in (*row, 2 * row[0])] for row in normal]
    csv = write_csv(tmp_path / "pump.csv", CHANNELS + ["twice_flow"], rows)
    out = tmp_path / "model"
    assert cli.main(["train", str(csv), "--detectors", "pca", "--set", "pca.components=3",
                     "--out", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    last = err.splitlines()[-1]
    assert last.startswith("error: pca: the residual variance") and "'twice_flow'" in last
    assert not out.exists()


def test_nan_inf_and_overflow_give_infinite_t2_q_and_score_never_nan():
    fitted = pca.fit(correlated(), {}, 0, False, CHANNELS)
    rows = np.array([[np.nan, 2, 50], [10, np.inf, 50], [10, 2, -np.inf],
                     [3e38, -3e38, 3e38], [3e38, 3e38, 3e38]], dtype=F32)
    t2, q = pca.parts(fitted, rows)
    scored = pca.score(fitted, rows)
    assert np.isposinf(t2).all() and np.isposinf(q).all()
    assert np.isposinf(scored.scores).all() and scored.flags.all()


# --- T² and Q from C, bit for bit ----------------------------------------------------------

PARTS_MAIN = r"""
#include <stdio.h>
#include <stdlib.h>
#include "{model}.h"

/* stdin: uint32 n, then n rows.  stdout: n scores, n flags, n T², n Q, and n scores of
 * the calls without T² and Q. */
int main(void)
{{
    uint32_t n, i;
    float *x, *out;
    uint8_t *flags;
    if (fread(&n, sizeof n, 1, stdin) != 1) {{
        return 1;
    }}
    x = (float *)malloc((size_t)n * {MODEL}_N_CHANNELS * sizeof *x);
    out = (float *)malloc((size_t)n * 4 * sizeof *out);
    flags = (uint8_t *)malloc(n);
    if (!x || !out || !flags || fread(x, sizeof *x, (size_t)n * {MODEL}_N_CHANNELS, stdin) !=
        (size_t)n * {MODEL}_N_CHANNELS) {{
        return 1;
    }}
    for (i = 0; i < n; ++i) {{
        const float *row = x + (size_t)i * {MODEL}_N_CHANNELS;
        uint8_t again;
        out[i] = {model}_pca_score(row, &flags[i], &out[n + i], &out[2 * n + i]);
        out[3 * n + i] = {model}_pca_score(row, &again, NULL, NULL);
    }}
    fwrite(out, sizeof *out, n, stdout);
    fwrite(flags, 1, n, stdout);
    fwrite(out + n, sizeof *out, (size_t)n * 3, stdout);
    free(x);
    free(out);
    free(flags);
    return 0;
}}
"""


def c_parts(bundle, X, directory):
    """(score, flag, T², Q, score without T² and Q) per row, from the generated header."""
    files = emit.render(bundle)
    files["main.c"] = PARTS_MAIN.format(model=bundle.name, MODEL=bundle.name.upper())
    out = run_program(build_program("gcc", directory, files, WARN), rows_input(X))
    n = len(X)
    floats = np.frombuffer(out[:4 * n] + out[5 * n:], dtype=F32)
    return floats[:n], np.frombuffer(out[4 * n:5 * n], np.uint8), floats[n:2 * n], \
        floats[2 * n:3 * n], floats[3 * n:]


def parity_inputs(bundle):
    X = np.vstack(list(battery_mod.battery(bundle, 100_000).values()))
    special = np.array([np.nan, np.inf, -np.inf, 3.4e38, -3.4e38, 0.0], dtype=F32)
    rows = np.tile(np.array(bundle.channel_mean, dtype=F32), (len(special) ** 2, 1))
    rows[:, 0] = np.repeat(special, len(special))
    rows[:, -1] = np.tile(special, len(special))
    return np.vstack([X, rows]).astype(F32)


def bits(values):
    return np.asarray(values, dtype=F32).view(np.uint32)


@pytest.fixture(scope="module", params=["iot-k2-of-3", "six-k3-of-6"])
def bundle(request, iot):
    if request.param.startswith("iot"):
        dataset, params = iot, {}
    else:
        dataset, params = Dataset("six", [f"c{i}" for i in range(6)], six_channels()), \
            {"components": 3}
    return training.train(dataset, ["pca"], {"pca": params}, seed=0, name="plant",
                          verbose=False)


def test_t2_and_q_from_c_are_the_references_bit_for_bit(bundle, tmp_path):
    X = parity_inputs(bundle)
    assert len(X) >= 100_000
    fitted = bundle.detectors["pca"]
    score, flag, t2, q, score_alone = c_parts(bundle, X, tmp_path)
    want_t2, want_q = pca.parts(fitted, X)
    want = pca.score(fitted, X)
    for ours, theirs in ((t2, want_t2), (q, want_q), (score, want.scores),
                         (score_alone, want.scores)):
        assert np.array_equal(bits(ours), bits(theirs))
    assert np.array_equal(flag.astype(bool), want.flags)
    assert not np.isnan(score).any() and np.isposinf(q[~np.isfinite(X).all(axis=1)]).all()


def test_t2_and_q_parity_fails_with_one_loading_one_ulp_off(bundle, tmp_path):
    X = parity_inputs(bundle)[:20_000]
    moved = copy.deepcopy(bundle)
    loadings = moved.detectors["pca"].arrays["loadings"]
    loadings[1, 0] = np.nextafter(loadings[1, 0], F32(np.inf))
    _, _, t2, q, _ = c_parts(moved, X, tmp_path)
    want_t2, want_q = pca.parts(bundle.detectors["pca"], X)
    assert (bits(t2) != bits(want_t2)).sum() > 100 and (bits(q) != bits(want_q)).sum() > 100
