"""mahalanobis' behaviour (the detector contract: test_contract.py)."""

import numpy as np
import pytest
from sklearn.covariance import EmpiricalCovariance

from codegen.detectors import mahalanobis, quadform, zscore
from codegen.errors import UserError

F32 = np.float32
CHANNELS = ["flow", "current", "pressure"]


def correlated(n=3000, seed=0):
    """Flow drives current and pressure: three channels that move together."""
    rng = np.random.default_rng(seed)
    flow = 10 + 3 * rng.standard_normal(n)
    current = 2 + 0.3 * flow + 0.1 * rng.standard_normal(n)
    pressure = 50 - 2 * flow + 0.5 * rng.standard_normal(n)
    return np.column_stack([flow, current, pressure]).astype(F32)


def test_a_broken_relation_is_flagged_where_each_channel_looks_normal():
    normal = correlated()
    fitted = mahalanobis.fit(normal, {}, 0, False, CHANNELS)
    per_channel = zscore.fit(normal, {}, 0, False, CHANNELS)
    # high flow with the current of a low flow: each reading within 1.5 sigma of its mean
    broken = np.array([[14.0, 2 + 0.3 * 6.0, 50 - 2 * 14.0]], dtype=F32)
    assert mahalanobis.score(fitted, broken).flags.all()
    assert not zscore.score(per_channel, broken).flags.any()
    assert mahalanobis.score(fitted, normal).flags.mean() == pytest.approx(0.01, abs=0.002)


def test_the_score_is_scikit_learns_squared_distance():
    normal = correlated()
    fitted = mahalanobis.fit(normal, {"covariance": "empirical"}, 0, False, CHANNELS)
    theirs = EmpiricalCovariance().fit(normal.astype(np.float64)).mahalanobis(normal)
    ours = mahalanobis.score(fitted, normal).scores
    assert np.allclose(ours, theirs, rtol=2e-3, atol=1e-3)


def test_the_robust_estimate_ignores_a_contaminated_tenth_of_the_rows():
    normal = correlated()
    normal[::10, 1] += 5  # a tenth of the rows with a current far off its relation
    fitted = {c: mahalanobis.fit(normal, {"covariance": c, "threshold": "value:16.3"}, 0,
                                 False, CHANNELS)
              for c in mahalanobis.ESTIMATORS}
    assert fitted["robust"].report["support_rows"] < len(normal)
    # (16.3: chi-square, 3 degrees of freedom, 99.9 %) the robust model keeps the tight
    # relation, so the contaminated rows stand out; the others stretch their covariance to
    # take them in (masking)
    caught = {c: mahalanobis.score(f, normal[::10]).flags.mean() for c, f in fitted.items()}
    assert caught["robust"] == 1.0
    assert caught["empirical"] < 0.2 and caught["ledoit_wolf"] < 0.2


def test_ledoit_wolf_reports_its_shrinkage():
    fitted = mahalanobis.fit(correlated(), {}, 0, False, CHANNELS)
    assert fitted.params["covariance"] == "ledoit_wolf"
    assert 0 <= fitted.report["shrinkage"] < 0.1


def test_collinear_channels_are_refused_naming_them():
    normal = correlated()
    normal = np.column_stack([normal, 2 * normal[:, 0]]).astype(F32)
    with pytest.raises(UserError, match=r"'flow' and 'twice_flow' \(correlation 1.0"):
        mahalanobis.fit(normal, {"covariance": "empirical"}, 0, False,
                        CHANNELS + ["twice_flow"])


@pytest.mark.parametrize("params, words", [
    ({"covariance": "mcd"}, "must be one of empirical, ledoit_wolf, robust"),
    ({"shrink": 1}, "has no parameter shrink"),
])
def test_bad_parameters_are_refused(params, words):
    with pytest.raises(UserError, match=words):
        mahalanobis.fit(correlated(), params, 0, False, CHANNELS)


def test_fewer_rows_than_channels_are_refused():
    with pytest.raises(UserError, match="3 rows for 3 channels"):
        mahalanobis.fit(correlated(3), {}, 0, False, CHANNELS)


def test_nan_inf_and_overflow_score_infinity_never_nan():
    fitted = mahalanobis.fit(correlated(), {}, 0, False, CHANNELS)
    rows = np.array([[np.nan, 2, 50], [10, np.inf, 50], [3e38, -3e38, 3e38]], dtype=F32)
    scored = mahalanobis.score(fitted, rows)
    assert np.isposinf(scored.scores).all() and scored.flags.all()


def test_quadform_is_the_triangular_product_summed_in_order():
    rng = np.random.default_rng(0)
    upper = np.triu(rng.standard_normal((4, 4))).astype(F32)
    d = rng.standard_normal((100, 4)).astype(F32)
    b = rng.standard_normal(4).astype(F32)
    want = (((d.astype(np.float64) @ upper.T.astype(np.float64)) - b) ** 2).sum(axis=1)
    assert np.allclose(quadform.upper(quadform.pack_upper(upper), b, d), want, rtol=1e-5)
    assert np.allclose(quadform.diag(np.diag(upper).copy(), None, d),
                       ((d * np.diag(upper)).astype(np.float64) ** 2).sum(axis=1), rtol=1e-5)
