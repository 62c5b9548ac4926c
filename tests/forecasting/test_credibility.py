"""The error model's estimated credibility for every segment (``ErrorModelConfig(shrinkage="estimate")``)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting import ErrorModel, ErrorModelConfig
from forecasting.credibility import (
    _credibility,
    estimated_shrinkage,
    overlap_fourth_moments,
    series_fourth_moments,
)
from forecasting.overlap import effective_windows
from policy_selector.config import SelectorConfig
from policy_selector.context import _error_models


def _static_cv(n_series: int = 40, windows: int = 16, step: int = 3, seed: int = 11):
    """A smooth segment forecast at a static level mu_i: 16 windows of 4 steps, ``step`` weeks apart,
    at the end of two years of weekly history.

    Demand is mu_i (1 + 0.2 eps) each week, so every series' cumulative error over H = 4 has sd
    0.4 mu_i: the same scale-free variance, which its 16 windows estimate only with sampling noise.
    Returns the backtest table and the history (the pooling scale's source).
    """
    rng = np.random.default_rng(seed)
    weeks = pd.date_range("2024-01-01", periods=104, freq="W-MON")
    first = len(weeks) - 4 - (windows - 1) * step - 1
    rows, history = [], []
    for i in range(n_series):
        uid, mu = f"S{i:02d}", 20.0 + 5.0 * i
        y = mu * (1 + 0.2 * rng.standard_normal(len(weeks)))
        history.append(pd.DataFrame({"unique_id": uid, "ds": weeks, "y": y}))
        for w in range(windows):
            at = slice(first + w * step + 1, first + w * step + 5)
            rows.append(
                pd.DataFrame({"unique_id": uid, "ds": weeks[at], "cutoff": weeks[first + w * step], "y": y[at]})
            )
    cv = pd.concat(rows, ignore_index=True)
    return cv.assign(M=cv["unique_id"].str[1:].astype(int).mul(5.0).add(20.0)), pd.concat(history, ignore_index=True)


def _std_h4(cfg: ErrorModelConfig, data) -> pd.Series:
    cv, history = data
    return ErrorModel(cfg).fit(cv, history=history).table(horizons=[4]).set_index("unique_id")["std"]


def test_estimated_credibility_ranks_the_buffers_by_the_true_error_not_by_window_noise():
    """Planted defect: 16 windows per series, k = 8 raw pseudo-windows keep 15/23 of each series' own
    sample variance, so the buffers scatter around the true 0.4 mu by sampling noise; the estimated
    credibility sees that the scale-free variances differ by noise only and pools them."""
    data = _static_cv()
    truth = 0.4 * (20.0 + 5.0 * np.arange(40))
    fixed = ErrorModelConfig(shrinkage=8.0, distribution="normal", calibrate=False)  # 8 raw pseudo-windows
    estimate = replace(fixed, shrinkage="estimate")
    own = replace(fixed, shrinkage=0.0)
    scatter = {
        name: float(np.std(np.log(_std_h4(c, data).to_numpy() / truth)))
        for name, c in (("own", own), ("fixed", fixed), ("estimate", estimate))
    }
    assert scatter["fixed"] < scatter["own"]
    assert scatter["estimate"] < 0.75 * scatter["fixed"], scatter  # 0.082 vs 0.120: the rest is the scale's noise
    pooled = _std_h4(replace(fixed, shrinkage=1e12), data)
    to_pool = {
        name: np.abs(np.log(_std_h4(c, data) / pooled)).median()
        for name, c in (("fixed", fixed), ("estimate", estimate))
    }
    assert to_pool["estimate"] < 0.6 * to_pool["fixed"], to_pool  # 0.056 vs 0.110: most of it was noise


def test_estimated_credibility_keeps_a_real_difference_between_series():
    """Invariant: a half of the segment whose forecast errs 4x more than its history's scale keeps most of it."""
    cv, history = _static_cv()
    worse = cv["unique_id"].str[-1].isin(list("02468"))
    data = (cv.assign(y=np.where(worse, 4 * cv["y"] - 3 * cv["M"], cv["y"])), history)
    fixed = ErrorModelConfig(shrinkage=8.0, distribution="normal", calibrate=False)
    own = _std_h4(replace(fixed, shrinkage=0.0), data)
    est, pooled = _std_h4(replace(fixed, shrinkage="estimate"), data), _std_h4(replace(fixed, shrinkage=1e12), data)
    gap_est, gap_pool = (np.abs(np.log(x / own)).median() for x in (est, pooled))
    assert gap_est < 0.5 * gap_pool
    half = est.index.str[-1].isin(list("02468"))
    kept, pool_kept = (est[half] / own[half]).median(), (pooled[half] / own[half]).median()
    assert kept > pool_kept and kept > 0.85, (kept, pool_kept)  # the pool mixes both halves: 0.79


def test_fixed_shrinkage_is_unchanged_by_the_option():
    """Regression: ``shrinkage`` as a number keeps its raw-window weight (n - 1) / (n - 1 + k)."""
    data = _static_cv(n_series=6)
    cfg = ErrorModelConfig(distribution="normal", calibrate=False)
    own, pool, shrunk = (_std_h4(replace(cfg, shrinkage=k), data) ** 2 for k in (0.0, 1e12, 8.0))
    w = 15 / 23
    assert shrunk.to_numpy() == pytest.approx((w * own + (1 - w) * pool).to_numpy(), rel=1e-6)


@pytest.mark.parametrize("bad", ["auto", -1.0, None])
def test_bad_shrinkage_is_refused(bad):
    with pytest.raises(ValueError, match="shrinkage must be 'estimate' or >= 0 pseudo-windows"):
        ErrorModelConfig(shrinkage=bad)


def test_the_error_model_and_the_selector_share_one_credibility_default():
    """One default (ErrorModelConfig's, the estimate) for the plan's published quantiles and the selector's buffers."""
    assert ErrorModelConfig().shrinkage == "estimate" == SelectorConfig().shrinkage


def test_selector_credibility_is_checked_and_reaches_the_error_model():
    with pytest.raises(ValueError, match="shrinkage must be 'estimate' or >= 0 pseudo-windows, got 'fixed'"):
        SelectorConfig(shrinkage="fixed")
    cv, history = _static_cv(n_series=6)
    segments = pd.Series("smooth", index=sorted(cv["unique_id"].unique()))
    for k in (8.0, "estimate"):
        models = _error_models(cv, ["M"], SelectorConfig(shrinkage=k), segments, history)
        assert {m.config.shrinkage for m in models.values()} == {k}


def _sample_variances(heavy: bool, seed: int = 3, n_series: int = 200, windows: int = 16):
    """Errors with the same true variance in every series: normal, or a contaminated normal (5 % of the
    windows at 5x the spread: the occasional large order of sparse demand, excess kurtosis 17)."""
    rng = np.random.default_rng(seed)
    e = rng.standard_normal((n_series, windows, 1))
    if heavy:
        e = e * np.where(rng.random(e.shape) < 0.05, 5.0, 1.0)
    return e, e.var(axis=1, ddof=1)[:, 0]


def test_heavy_tailed_errors_are_pooled_more_since_their_sample_variances_are_noisier():
    """Planted: every series has the same true variance, so all the spread of the sample variances is
    noise. Under heavy tails a sample variance is noisier than the normal-theory 2 sigma^4 / nu, which
    reads the extra noise as a real difference (k about 4: each series keeps 80 % of its own); the
    distribution-free sampling variance from each series' fourth moment sees it as noise (k > 30). With
    normal errors and a real 3x spread both give about the true k = 10."""
    dof = np.full(200, 15.0)
    e, v = _sample_variances(heavy=True)
    z4 = series_fourth_moments(e)[:, 0]
    assert estimated_shrinkage(v, dof) < 6
    assert estimated_shrinkage(v, dof, z4) > 30
    e, _ = _sample_variances(heavy=False)
    e = e * np.repeat([1.0, np.sqrt(3.0)], 100)[:, None, None]  # a real difference: half the series 3x the variance
    v, z4 = e.var(axis=1, ddof=1)[:, 0], series_fourth_moments(e)[:, 0]
    assert 7 < estimated_shrinkage(v, dof) < 13 and 7 < estimated_shrinkage(v, dof, z4) < 13


def test_the_estimate_keeps_every_series_and_a_lone_series_keeps_its_own_variance():
    """Review fixes: a series too short for a fourth moment counts with the normal's (z4 = 3) instead of
    leaving the estimate; a series alone in its pool keeps its own variance (k = 0: the pool of one series
    would drop its overlap correction); with a fixed k the phased pool keeps the normal-theory noise."""
    e, _ = _sample_variances(heavy=False)
    v = (e * np.repeat([1.0, np.sqrt(3.0)], 100)[:, None, None]).var(axis=1, ddof=1)[:, 0]  # a real spread
    dof = np.full(len(v), 15.0)
    short = np.full(len(v), np.nan)  # e.g. fewer than 4 windows: no fourth moment
    k_short = estimated_shrinkage(v, dof, short)
    assert np.isfinite(k_short) and k_short == pytest.approx(estimated_shrinkage(v, dof, np.full(len(v), 3.0)))
    assert estimated_shrinkage(np.array([2.0]), np.array([5.0])) == 0.0
    assert estimated_shrinkage(np.array([2.0, np.nan]), np.array([5.0, 5.0]), np.array([4.0, 3.0])) == 0.0
    rng = np.random.default_rng(1)
    own_var, scale = rng.uniform(1, 10, (40, 2)), np.ones(40)
    n, seg, rel = np.full(40, 16), np.zeros(40, dtype=int), np.ones(40, dtype=bool)
    m4 = np.full((40, 2), 9.0)  # heavy tails everywhere
    fixed = ErrorModelConfig(shrinkage=8.0, phased_shrinkage="estimate")
    k_m4, _ = _credibility(fixed, np.zeros((40, 2)), own_var, scale, n, 1, seg, rel, m4)
    k_none, _ = _credibility(fixed, np.zeros((40, 2)), own_var, scale, n, 1, seg, rel, None)
    np.testing.assert_array_equal(k_m4, k_none)
    est, _ = _credibility(replace(fixed, shrinkage="estimate"), np.zeros((40, 2)), own_var, scale, n, 1, seg, rel, m4)
    assert (est >= k_none).all() and (est > k_none).any()  # the tails' noise pools more


def _overlapping_cv(heavy: bool, spread: bool, seed: int = 5, n_series: int = 200, windows: int = 16, horizon: int = 4):
    """The review's simulation: iid one-step errors around a flat forecast, 16 windows of 4 steps from
    cutoffs one period apart (each one-step error sits in up to 4 windows). ``heavy``: 5 % of the steps
    at 5x the spread (excess kurtosis 17); ``spread``: half the series with 3x the variance. Every
    series' history alternates 0 / 1, so the pooling scale is 1 and v is the own variance itself."""
    rng = np.random.default_rng(seed)
    steps = (windows - 1) + horizon
    e = rng.standard_normal((n_series, steps))
    if heavy:
        e = e * np.where(rng.random(e.shape) < 0.05, 5.0, 1.0)
    if spread:
        e = e * np.repeat([1.0, np.sqrt(3.0)], n_series // 2)[:, None]
    days = pd.date_range("2025-01-01", periods=steps + 1, freq="D")
    uid = np.repeat([f"S{i:03d}" for i in range(n_series)], windows * horizon)
    w, h = np.meshgrid(np.arange(windows), np.arange(1, horizon + 1), indexing="ij")
    at = np.tile((w + h).ravel(), n_series)  # the step each row forecasts: window w's cutoff is day w
    y = 100.0 + e[np.repeat(np.arange(n_series), windows * horizon), at - 1]
    cv = pd.DataFrame({"unique_id": uid, "ds": days[at], "cutoff": days[np.tile(w.ravel(), n_series)], "y": y})
    hist = pd.DataFrame({"unique_id": np.repeat(sorted(set(uid)), 10), "y": np.tile([0.0, 1.0], 5 * n_series)})
    return cv.assign(M=100.0), hist.assign(ds=np.tile(pd.date_range("2024-01-01", periods=10), n_series))


def _effective_k(data, horizon: int = 4, windows: int = 16) -> np.ndarray:
    """The estimated k per H in effective pseudo-windows, read from the fitted variances: the own weight
    w = (var - pooled) / (own - pooled) of each series is (n - 1) / (n - 1 + k) over the raw windows."""
    cv, history = data
    cfg = ErrorModelConfig(distribution="normal", calibrate=False)
    hs = list(range(1, horizon + 1))
    var = {
        name: ErrorModel(replace(cfg, shrinkage=k)).fit(cv, history=history).table(horizons=hs)
        for name, k in (("own", 0.0), ("pool", 1e12), ("est", "estimate"))
    }
    var = {name: t.pivot(index="unique_id", columns="H", values="std") ** 2 for name, t in var.items()}
    w = ((var["est"] - var["pool"]) / (var["own"] - var["pool"])).median().to_numpy()
    k_raw = (windows - 1) * (1 - w) / np.maximum(w, 1e-12)
    return k_raw * (effective_windows(np.array([windows]), horizon, 1)[0] - 1) / (windows - 1)


def test_overlapping_heavy_tailed_windows_are_pooled_at_every_horizon():
    """Planted (the review's simulation): the same heavy-tailed one-step errors in every series, so the
    true k is infinite. On windows one period apart a window's own z4 sees only part of the tails (k was
    106 / 15.5 / 8 / 6.1 at H = 1..4); the one-step kurtosis shared across H keeps k large at every H."""
    k = _effective_k(_overlapping_cv(heavy=True, spread=False))
    assert (k > 30).all(), k.round(1)


def test_a_real_spread_of_normal_errors_keeps_its_true_credibility_at_every_horizon():
    """Invariant: normal one-step errors, half the series with 3x the variance: the true k is
    2 (1 + 9) / 2 / 1 = 10 at H = 1 (9.3-9.8 at H = 2..4 by simulation); the correction must not read a
    real spread as noise on overlapping windows."""
    k = _effective_k(_overlapping_cv(heavy=False, spread=True))
    assert ((k > 6) & (k < 15)).all(), k.round(1)


def test_the_one_step_kurtosis_leaves_h1_spread_windows_and_short_series_as_they_were():
    """Regression: the overlap correction changes z4 only where windows overlap (step < H) and the series
    has a one-step z4; at H = 1, on windows H or more apart and without one-step windows it is its own z4."""
    m4 = np.array([[9.0, 4.0, 3.5, 3.2], [np.nan, 4.0, 3.5, 3.2], [9.0, 4.0, 3.5, 3.2]])
    out = overlap_fourth_moments(m4, np.array([16, 16, 16]), np.array([1, 1, 2]))
    np.testing.assert_array_equal(out[:, 0], m4[:, 0])
    np.testing.assert_array_equal(out[1], m4[1])  # no one-step z4: the window's own, as before
    assert out[2, 1] == 4.0 and (out[2, 2:] > m4[2, 2:]).all()  # two apart: H = 2 does not overlap, H = 3, 4 do
    assert (out[0, 1:] > m4[0, 1:]).all()  # the one-step tails the overlapping windows hid
    np.testing.assert_array_equal(overlap_fourth_moments(m4, np.full(3, 16), 4), m4)


def test_the_estimators_stay_importable_from_the_error_model():
    """Regression (split of error_model.py): the public names it held before are the moved functions."""
    from forecasting import credibility, error_model, family_choice, overlap

    for module, names in (
        (
            credibility,
            ["estimated_shrinkage", "estimated_mean_shrinkage", "series_fourth_moments", "overlap_fourth_moments"],
        ),
        (overlap, ["effective_windows"]),
        (family_choice, ["CHOICE_LEVELS"]),
    ):
        for name in names:
            assert getattr(error_model, name) is getattr(module, name), name
