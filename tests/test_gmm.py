"""gmm: what it flags, how it chooses K, full against diagonal covariance, its errors, and
its score against scikit-learn's log-likelihood (parity, mutations, NaN/Inf, compilers and
flash come from tests/test_contract.py)."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.mixture import GaussianMixture

from codegen import bundle as bundle_mod
from codegen import cli
from codegen.bench.firmware import synthetic
from codegen.detectors import gmm, quadform
from codegen.detectors.base import Fitted
from codegen.errors import UserError
from support import write_csv

F32 = np.float32
CHANNELS = ["a", "b", "c"]
CENTRES = np.array([[0.0, 0.0, 0.0], [8.0, 1.0, -3.0], [-4.0, 9.0, 5.0]])


def blobs(n=3000, seed=0) -> np.ndarray:
    """Three well separated round clusters in three channels of different scales."""
    rng = np.random.default_rng(seed)
    X = CENTRES[rng.integers(0, 3, n)] + rng.standard_normal((n, 3))
    return (X * [1.0, 10.0, 0.1] + [0.0, 100.0, 0.0]).astype(F32)


def correlated(n=3000, seed=0) -> np.ndarray:
    """b follows a closely, c is independent noise."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal(n)
    return np.column_stack([a, a + 0.05 * rng.standard_normal(n),
                            rng.standard_normal(n)]).astype(F32)


def fit(X, **params):
    return gmm.fit(X, params, seed=0, verbose=False, channels=CHANNELS)


def test_bic_chooses_the_number_of_clusters():
    fitted = fit(blobs())
    assert fitted.params["k_chosen"] == 3
    assert fitted.arrays["factor"].shape == (3, 6)
    assert fitted.arrays["offset"].shape == (3, 3) and fitted.arrays["constant"].shape == (3,)


def test_flags_points_off_the_mixture():
    X = blobs()
    fitted = fit(X, k=3)
    scale, shift = np.array([1.0, 10.0, 0.1]), np.array([0.0, 100.0, 0.0])
    centres = (CENTRES * scale + shift).astype(F32)
    between = ((CENTRES[0] + CENTRES[1]) / 2 * scale + shift).astype(F32)
    far = (np.array([[30.0, -20.0, 15.0]]) * scale + shift).astype(F32)
    scored = gmm.score(fitted, np.vstack([centres, between[None], far]))
    assert not scored.flags[:3].any()
    assert scored.flags[3:].all()
    assert np.mean(gmm.score(fitted, X).flags) == pytest.approx(0.01, abs=0.002)


def test_nan_and_inf_score_inf_and_flag():
    fitted = fit(blobs(), k=3)
    X = np.array([[np.nan, 100.0, 0.0], [0.0, np.inf, 0.0], [0.0, 100.0, -np.inf],
                  [3e38, -3e38, 0.0]], dtype=F32)
    scored = gmm.score(fitted, X)
    assert (scored.scores == np.inf).all() and scored.flags.all()


def test_full_covariance_sees_a_broken_correlation_that_diag_misses():
    X = correlated()
    full, diag = fit(X, k=1), fit(X, k=1, covariance="diag")
    assert full.arrays["factor"].shape == (1, 6) and diag.arrays["factor"].shape == (1, 3)
    broken = np.array([[1.0, -1.0, 0.0]], dtype=F32)  # each channel normal, the pair not
    assert gmm.score(full, broken).flags.all()
    assert not gmm.score(diag, broken).flags.any()


@pytest.mark.parametrize("covariance", ["full", "diag"])
def test_the_score_is_scikit_learns_negative_log_likelihood(covariance):
    """The formula, not parity: -score_samples of the same mixture on standardised rows."""
    X = blobs()
    fitted = fit(X, k=3, covariance=covariance)
    mean = X.astype(np.float64).mean(axis=0).astype(F32)
    Z = ((X - mean) * (1.0 / X.astype(np.float64).std(axis=0)).astype(F32)).astype(np.float64)
    mixture = GaussianMixture(3, covariance_type=covariance, n_init=2, random_state=0).fit(Z)
    probe = np.vstack([X[:500], blobs(500, seed=1) * F32(1.3)])
    Zp = ((probe - mean) * (1.0 / X.astype(np.float64).std(axis=0)).astype(F32))
    want = -mixture.score_samples(Zp.astype(np.float64))
    got = gmm.score(fitted, probe).scores.astype(np.float64)
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("params, words", [
    ({"covariance": "spherical"}, "gmm.covariance must be one of full, diag"),
    ({"k": 0}, "gmm.k must be 'auto' or an integer from 1 to 64"),
    ({"k": "three"}, "gmm.k must be"),
    ({"k_max": 0}, "gmm.k_max must be an integer from 1 to 64"),
    ({"n_init": 0}, "gmm.n_init must be an integer from 1"),
    ({"threshold": "median"}, "gmm.threshold"),
    ({"components": 3}, "gmm has no parameter components"),
])
def test_bad_parameters_are_refused(params, words):
    with pytest.raises(UserError, match=words.replace("(", r"\(").replace(")", r"\)")):
        fit(blobs(200), **params)


def test_more_components_than_rows_is_refused():
    with pytest.raises(UserError, match="gmm.k = 50 is larger than the 20 normal rows"):
        fit(blobs(20), k=50)


def test_a_constant_channel_is_refused():
    X = blobs(200)
    X[:, 1] = 5.0
    with pytest.raises(UserError, match="channel 'b' is constant"):
        fit(X)


def test_the_terms_left_out_change_no_bit(monkeypatch):
    """Terms below exp(-16.7) after the maximum's are left out (mcua_gmm.c): the total holds
    1 by then, so adding them rounds them away; scores without the shortcut are the same."""
    X = blobs()
    fitted = fit(X, k=3)
    rng = np.random.default_rng(2)
    probe = np.vstack([X, X[:3000] + rng.standard_normal((3000, 3)).astype(F32) * [3, 30, 0.3]])
    short = gmm.score(fitted, probe).scores
    monkeypatch.setattr(gmm, "NEGLIGIBLE", F32(-np.inf))
    assert (gmm.score(fitted, probe).scores.view(np.uint32) == short.view(np.uint32)).all()


def test_a_mixture_beyond_the_unos_flash_is_refused(tmp_path, capsys):
    """60 channels, 5 full components: 5 x 60 x 61 / 2 factor floats (36,600 B), the offsets'
    1,200 B, the constants' 20 B and the mean's 240 B exceed the Uno's 32 KB of flash; the
    diagonal mixture fits."""
    values = synthetic(60, 400).values
    csv = write_csv(tmp_path / "wide.csv", [f"s{c}" for c in range(60)],
                    [[repr(float(v)) for v in row] for row in values])
    out = tmp_path / "model"
    args = ["train", str(csv), "--detectors", "gmm", "--set", "gmm.k=5", "--out", str(out),
            "--quiet", "--target", "uno"]
    assert cli.main(args) == 2
    err = capsys.readouterr().err.splitlines()[-1]
    assert not out.exists()
    assert "38,060 B of flash on uno" in err and "gmm 38,060 B" in err
    assert "gmm.covariance=diag" in err
    assert cli.main(args + ["--set", "gmm.covariance=diag"]) == 0


def test_full_rows_longer_than_uint16_are_strided_right(tmp_path, capsys):
    """From 362 channels on, a full component's factor row (C(C+1)/2 floats: 65,703 here)
    no longer fits a uint16_t; the C walked the second component's constants from the wrong
    place.  A hand-made two-component mixture, near-identity factors, on the host."""
    c, k = 362, 2
    rng = np.random.default_rng(0)
    upper = [np.eye(c) + np.triu(0.01 * rng.standard_normal((c, c)), 1) for _ in range(k)]
    fitted = Fitted({"covariance": "full", "k_chosen": k, **{
        key: value for key, value in gmm.DEFAULTS.items() if key not in ("covariance", "k")}},
        {"threshold": 400.0},
        {"mean": np.zeros(c, np.float32),
         "factor": np.array([quadform.pack_upper(u) for u in upper], np.float32),
         "offset": rng.standard_normal((k, c)).astype(np.float32),
         "constant": np.array([-300.0, -310.0], np.float32)})
    channels = [f"s{i}" for i in range(c)]
    bundle_mod.save(bundle_mod.Bundle("wide", channels, [0.0] * c, [1.0] * c,
                                      {"gmm": fitted}, {}), tmp_path / "wide")
    assert cli.main(["verify", str(tmp_path / "wide"), "--samples", "200"]) == 0
    assert "0 mismatches" in capsys.readouterr().out
