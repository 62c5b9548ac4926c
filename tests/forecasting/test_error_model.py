"""Error model: monotone quantiles, calibration on a known process, lead time, errors."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting import ErrorModel, ErrorModelConfig, ForecastConfig, Forecaster, lead_time_pmf, split_cv
from forecasting.overlap import _mean_windows, effective_windows
from tests.conftest import make_panel

MODELS = ("HistoricAverage", "CrostonSBA", "Naive")


@pytest.fixture(scope="module")
def poisson_cv():
    """Backtest of 80 Poisson series (levels 10..405), 40 windows of 4 weeks."""
    demand = make_panel(n_series=80, length=90, kind="smooth", seed=3)
    cfg = ForecastConfig(models=MODELS, freq="W-MON", n_jobs=1)
    return demand, Forecaster(cfg).cross_validation(demand, h=4, n_windows=40)


@pytest.fixture(scope="module")
def intermittent_cv():
    demand = make_panel(n_series=12, length=70, kind="intermittent", seed=5)
    cfg = ForecastConfig(models=("CrostonSBA", "TSB"), freq="W-MON", n_jobs=1)
    return demand, Forecaster(cfg).cross_validation(demand, h=6, n_windows=10)


@pytest.mark.parametrize("distribution", ["auto", "normal", "negbin", "empirical"])
def test_quantiles_monotone_in_p_and_h(intermittent_cv, distribution):
    demand, cv = intermittent_cv
    em = ErrorModel(ErrorModelConfig(distribution=distribution, min_empirical=5)).fit(cv, history=demand)
    ids = em.ids_
    p = np.array([0.5, 0.6, 0.8, 0.9, 0.95, 0.99])
    H = np.linspace(0.25, 6, 24)
    for model in em.models_:
        q = em.quantile(ids[:, None, None], H[None, :, None], p[None, None, :], model=model)
        assert q.shape == (len(ids), len(H), len(p))
        assert (np.diff(q, axis=2) >= -1e-9).all(), "not monotone in p"
        assert (np.diff(q[:, 3:, :], axis=1) >= -1e-9).all(), "decreasing in H for p >= 0.5"
    low = em.quantile(ids[:, None], np.arange(1, 7)[None, :], 0.1, model="TSB")
    assert (np.diff(low, axis=1) <= 1e-9).all(), "lower quantiles must not rise with H"


def test_table_is_tidy_and_consistent(intermittent_cv):
    demand, cv = intermittent_cv
    em = ErrorModel().fit(cv, history=demand)
    table = em.table(quantiles=(0.5, 0.9, 0.95))
    assert list(table.columns) == [
        "unique_id",
        "model",
        "H",
        "mean",
        "std",
        "q0.5",
        "q0.9",
        "q0.95",
        "distribution",
        "n_samples",
        "segment",
    ]
    assert len(table) == 12 * 2 * 6
    assert set(table["distribution"]) <= {"normal", "negbin"}
    row = table.iloc[7]
    assert row["q0.9"] == pytest.approx(float(em.quantile(row["unique_id"], row["H"], 0.9, model=row["model"])))


def test_calibration_on_known_poisson_process(poisson_cv):
    demand, cv = poisson_cv
    fit, holdout = split_cv(cv, n_holdout=20)
    em = ErrorModel().fit(fit, history=demand)
    report = em.calibration(holdout, levels=(0.9, 0.95))
    assert set(report["model"]) == set(MODELS)
    assert (report["n"] == 80 * 20 * 4).all()
    assert (report["gap"].abs() <= 0.03).all(), report.to_string()


def test_normal_family_matches_sample_moments_without_shrinkage(poisson_cv):
    demand, cv = poisson_cv
    em = ErrorModel(ErrorModelConfig(shrinkage=0, distribution="normal", calibrate=False)).fit(
        cv[cv["unique_id"] == "S002"], history=demand
    )
    one = cv[(cv["unique_id"] == "S002")].sort_values(["cutoff", "ds"])
    err = (one["y"] - one["Naive"]).to_numpy().reshape(-1, 4)[:, 0]
    expected = err.mean() + err.std(ddof=1) * 1.6448536269514722
    assert float(em.quantile("S002", 1, 0.95, model="Naive")) == pytest.approx(expected, rel=1e-6)


def test_fractional_h_interpolates(intermittent_cv):
    demand, cv = intermittent_cv
    em = ErrorModel().fit(cv, history=demand)
    q2, q3, q25 = (float(em.quantile("S001", h, 0.9, model="TSB")) for h in (2, 3, 2.5))
    assert q25 == pytest.approx((q2 + q3) / 2)


def test_lead_time_variability_widens_upper_quantile(poisson_cv):
    demand, cv = poisson_cv
    em = ErrorModel(ErrorModelConfig(distribution="normal", calibrate=False)).fit(cv, history=demand)
    fixed = float(em.quantile("S004", 3, 0.95, model="Naive"))
    spread = float(em.quantile("S004", 3, 0.95, model="Naive", lead_time_std=1.0))
    assert spread > fixed
    mu = em.mean_demand_["S004"]
    base = em.table(horizons=[3]).query("unique_id == 'S004' and model == 'Naive'").iloc[0]
    assert spread == pytest.approx(base["mean"] + 1.6448536 * np.sqrt(base["std"] ** 2 + mu**2), rel=1e-5)


def test_mixture_with_point_mass_equals_fixed_horizon(poisson_cv):
    demand, cv = poisson_cv
    em = ErrorModel().fit(cv, history=demand)
    h, w = lead_time_pmf(mean=3, std=0)
    mixed = em.quantile_mixture(["S001", "S010"], h, w, 0.9, model="CrostonSBA")
    fixed = em.quantile(["S001", "S010"], 3, 0.9, model="CrostonSBA")
    np.testing.assert_allclose(mixed, fixed, atol=1e-4)
    h, w = lead_time_pmf(mean=2, std=0.8, max_h=4)
    assert w.sum() == pytest.approx(1.0) and h.min() >= 1 and h.max() <= 4
    spread = em.quantile_mixture("S001", h, w, 0.95, model="CrostonSBA")
    assert float(spread) > float(em.quantile("S001", 2, 0.95, model="CrostonSBA"))


def test_shrinkage_pulls_few_sample_series_toward_pool(intermittent_cv):
    demand, cv = intermittent_cv
    last3 = cv.groupby("unique_id")["cutoff"].rank(method="dense", ascending=False) <= 3
    few = cv[(cv["unique_id"] != "S000") | last3]

    def std(k):
        em = ErrorModel(ErrorModelConfig(shrinkage=k, distribution="normal")).fit(few, history=demand)
        return em.table(horizons=[2]).query("unique_id == 'S000' and model == 'TSB'")["std"].iloc[0]

    own, shrunk, pool = std(0), std(8), std(1e9)
    assert own != pytest.approx(pool)
    assert min(own, pool) < shrunk < max(own, pool)
    assert abs(shrunk - pool) < abs(shrunk - own)  # 3 windows vs 8 pseudo-windows: mostly the pool


def test_errors_name_the_problem(intermittent_cv):
    demand, cv = intermittent_cv
    em = ErrorModel().fit(cv, history=demand)
    with pytest.raises(ValueError, match=r"unknown series \['NOPE'\]"):
        em.quantile("NOPE", 2, 0.9, model="TSB")
    with pytest.raises(ValueError, match="several models fitted"):
        em.quantile("S001", 2, 0.9)
    with pytest.raises(ValueError, match=r"H must lie in \(0, 6\]"):
        em.quantile("S001", 7, 0.9, model="TSB")
    with pytest.raises(ValueError, match=r"p must lie in \(0, 1\)"):
        em.quantile("S001", 2, 1.0, model="TSB")
    with pytest.raises(ValueError, match="unknown model"):
        em.quantile("S001", 2, 0.9, model="ARIMA")
    with pytest.raises(ValueError, match="distribution 'gamma' unknown"):
        ErrorModelConfig(distribution="gamma")
    with pytest.raises(ValueError, match="different lengths"):
        ErrorModel().fit(cv.iloc[1:])
    with pytest.raises(ValueError, match="segments lack series"):
        ErrorModel().fit(cv, segments=pd.Series({"S000": "smooth"}))
    with pytest.raises(ValueError, match="beyond the backtest horizon"):
        lead_time_pmf(mean=5, std=2, max_h=6)
    with pytest.raises(ValueError, match="call fit"):
        ErrorModel().quantile("S001", 1, 0.9)


@pytest.fixture(scope="module")
def lumpy_cv():
    """60 lumpy series (15 % occurrence, lognormal sizes): 8 windows to fit, 20 later ones held out."""
    rng = np.random.default_rng(11)
    ds = pd.date_range("2022-01-03", periods=70, freq="W-MON")
    demand = pd.concat(
        [
            pd.DataFrame(
                {
                    "unique_id": f"L{i:03d}",
                    "ds": ds,
                    "y": (rng.random(70) < 0.15) * np.ceil(rng.lognormal(1 + 0.02 * i, 1.0, 70)),
                }
            )
            for i in range(60)
        ],
        ignore_index=True,
    )
    cv = Forecaster(ForecastConfig(models=("CrostonSBA",), freq="W-MON")).cross_validation(demand, h=2, n_windows=28)
    fit, holdout = split_cv(cv, n_holdout=20)
    return demand, fit, holdout


def test_recalibration_restores_held_out_coverage_on_lumpy_demand(lumpy_cv):
    demand, fit, holdout = lumpy_cv
    assumed = ErrorModel(ErrorModelConfig(calibrate=False)).fit(fit, history=demand)
    calibrated = ErrorModel().fit(fit, history=demand)
    before = assumed.calibration(holdout, levels=(0.9, 0.95), horizons=[2])
    after = calibrated.calibration(holdout, levels=(0.9, 0.95), horizons=[2])
    assert (assumed.family_["CrostonSBA"] == "negbin").all()  # the log-likelihood choice under-covers
    assert (before["gap"] < -0.03).all(), before.to_string()
    assert (after["gap"].abs() < 0.02).all(), after.to_string()
    # the calibrated choice is one family for the whole segment, picked on held-out stock
    assert calibrated.family_["CrostonSBA"].nunique() == 1


def test_calibrated_levels_are_monotone_and_capped(lumpy_cv):
    demand, fit, _ = lumpy_cv
    em = ErrorModel(ErrorModelConfig(distribution="empirical", min_empirical=5)).fit(fit, history=demand)
    p = np.linspace(0.05, 0.995, 40)
    q = em.quantile(np.full(len(p), "L000"), 2, p, model="CrostonSBA")
    assert (np.diff(q) >= -1e-9).all()
    # 8 own windows cannot promise a 0.995 quantile: the series is flagged, a 0.5 one is not
    assert em.capped(["L000"], 0.995, "CrostonSBA").all()
    assert not em.capped(["L000"], 0.5, "CrostonSBA").any()


def _holiday_cv(n_series: int = 30, peak: float = 3.0, seed: int = 4) -> tuple[pd.DataFrame, pd.DataFrame]:
    """16 weekly windows of 4 steps; the last 7 forecast a holiday peak ``peak`` x the level mu_i.

    Demand is the forecast times (1 + 0.2 eps) step by step, so the cumulative error over H has sd
    0.2 f sqrt(H): 0.4 mu at H = 4 and the level mu the buffer is held at after the peak.
    Returns the backtest table and the reference (cumulative forecast from the cutoff at mu).
    """
    rng = np.random.default_rng(seed)
    cutoffs = pd.date_range("2025-09-15", periods=16, freq="W-MON")
    rows, ref = [], {}
    for i in range(n_series):
        uid, mu = f"P{i:02d}", 20.0 + 2.0 * i
        for w, cut in enumerate(cutoffs):
            f = mu * (peak if w >= 9 else 1.0)
            ds = pd.date_range(cut + pd.Timedelta(weeks=1), periods=4, freq="W-MON")
            y = f * (1 + 0.2 * rng.standard_normal(4))
            rows.append(pd.DataFrame({"unique_id": uid, "ds": ds, "cutoff": cut, "y": y, "M": f}))
        ref[uid] = mu * np.arange(1, 5)
    cv = pd.concat(rows, ignore_index=True)
    return cv, pd.DataFrame.from_dict(ref, orient="index", columns=range(1, 5))


def _std_h4(em: ErrorModel) -> pd.Series:
    return em.table(horizons=[4]).set_index("unique_id")["std"]


def test_relative_errors_size_a_holiday_backtest_to_the_level_held_after_it():
    """Planted: windows at a 3x holiday peak; relative errors give the buffer of the level held after it."""
    cv, ref = _holiday_cv()
    flags = pd.Series(True, index=ref.index)
    cfg = ErrorModelConfig(shrinkage=0.0, distribution="normal", calibrate=False, phased_shrinkage=0.0)
    absolute = ErrorModel(cfg).fit(cv, phased=flags)
    relative = ErrorModel(replace(cfg, relative_phased=True)).fit(cv, phased=flags, reference={"M": ref})
    truth = 0.4 * ref[4] / 4  # 0.2 mu sqrt(4)
    assert (_std_h4(relative) / truth).median() == pytest.approx(1.0, abs=0.15)
    assert (_std_h4(absolute) / truth).median() > 1.8  # the holiday windows' absolute errors: ~2.1x
    # the normal's upper quantile is centred on the reference level, not on the windows'
    q_rel = relative.quantile(ref.index, 4.0, 0.95, model="M")
    assert np.median(q_rel / (1.645 * truth)) == pytest.approx(1.0, abs=0.2)
    assert relative.phased_.all() and relative.segment_.str.endswith("(phased)").all()


def test_phased_series_shrink_toward_their_pool_with_the_weight_of_effective_windows():
    """Invariant: shrunk variance = w own + (1 - w) pool with w = (n_eff - 1) / (n_eff - 1 + k)."""
    cv, ref = _holiday_cv(peak=1.0, seed=9)
    noisy = cv["unique_id"].eq("P05")
    cv.loc[noisy, "y"] = cv.loc[noisy, "M"] + (cv.loc[noisy, "y"] - cv.loc[noisy, "M"]) * 4.0
    flags = pd.Series(True, index=ref.index)

    def var(k):
        cfg = ErrorModelConfig(distribution="normal", calibrate=False, phased_shrinkage=k)
        return _std_h4(ErrorModel(cfg).fit(cv, phased=flags))["P05"] ** 2

    own, pool, shrunk = var(0.0), var(1e12), var(8.0)
    n_eff = effective_windows(np.array([16]), 4, 1)[0, -1]
    w = (n_eff - 1) / (n_eff - 1 + 8.0)
    assert own > 1.5 * pool  # the planted noisy item (its pooling scale grows with its noise too)
    assert shrunk == pytest.approx(w * own + (1 - w) * pool, rel=1e-6)
    assert w < 15 / 23  # harder than 16 windows counted as independent


def test_estimated_credibility_pools_sampling_noise_and_keeps_real_differences():
    """Planted: equal scale-free variances -> the pooled one for all (k = inf); a half whose forecast
    errs 4x more than its history's scale keeps most of its own."""
    cv, ref = _holiday_cv(peak=1.0, seed=9)
    history = cv[["unique_id", "ds", "y"]]  # the pooling scale: the same for both halves
    flags = pd.Series(True, index=ref.index)
    cfg = ErrorModelConfig(distribution="normal", calibrate=False)  # phased_shrinkage="estimate"
    pool = replace(cfg, phased_shrinkage=1e12)

    def std(c, table):
        return _std_h4(ErrorModel(c).fit(table, phased=flags, history=history))

    assert std(cfg, cv).to_numpy() == pytest.approx(std(pool, cv).to_numpy(), rel=1e-6)
    worse = cv.assign(y=lambda t: np.where(t["unique_id"].str[-1].isin(list("02468")), 4 * t["y"] - 3 * t["M"], t["y"]))
    est, own, pooled = std(cfg, worse), std(replace(cfg, phased_shrinkage=0.0), worse), std(pool, worse)
    gap_est, gap_pool = (np.abs(np.log(x / own)).median() for x in (est, pooled))
    assert gap_est < 0.5 * gap_pool  # the real 4x difference in sd survives the estimated credibility


def test_a_phased_items_bias_is_pooled_only_as_far_as_the_biases_differ_by_noise():
    """Regression (review): the variances' estimated k also pooled the bias, so an item forecast at half its
    demand kept ~4 % of its own mean error. The bias has its own credibility (Buhlmann on the scale-free
    means, over the mean's effective windows): a planted real bias is kept, noise-only biases are pooled."""
    cv, ref = _holiday_cv(peak=1.0, seed=9)
    flags = pd.Series(True, index=ref.index)
    cfg = ErrorModelConfig(distribution="normal", calibrate=False)  # phased_shrinkage="estimate"

    def mean_h4(c, table):
        return ErrorModel(c).fit(table, phased=flags).table(horizons=[4]).set_index("unique_id")["mean"]

    pooled = replace(cfg, phased_shrinkage=1e12)
    assert mean_h4(cfg, cv).to_numpy() == pytest.approx(mean_h4(pooled, cv).to_numpy(), rel=1e-9)  # noise only
    biased = cv.assign(y=np.where(cv["unique_id"].eq("P05"), 2.0 * cv["y"], cv["y"]))  # forecast = half of it
    own = mean_h4(replace(cfg, shrinkage=0.0, phased_shrinkage=0.0), biased)["P05"]
    assert mean_h4(cfg, biased)["P05"] > 0.7 * own  # the raw k = 8 of the other series: 0.69
    assert mean_h4(pooled, biased)["P05"] < 0.2 * own  # what the variances' k did to it


def test_the_mean_windows_of_overlapping_sums_are_fewer_than_the_variances():
    assert _mean_windows(np.array([16]), 1, 1)[0, 0] == pytest.approx(16.0)
    mean_w, var_w = _mean_windows(np.array([16]), 4, 1)[0], effective_windows(np.array([16]), 4, 1)[0]
    assert (np.diff(mean_w) < 0).all() and (mean_w[1:] < var_w[1:]).all()


def test_phased_settings_name_what_is_wrong():
    cv, ref = _holiday_cv(n_series=3)
    flags = pd.Series(True, index=ref.index)
    with pytest.raises(ValueError, match="relative_phased errors need reference="):
        ErrorModel(ErrorModelConfig(relative_phased=True)).fit(cv, phased=flags)
    with pytest.raises(ValueError, match=r"phased lacks series \['P02'\]"):
        ErrorModel().fit(cv, phased=flags.iloc[:2])
    for bad in ("auto", -1.0, None):
        with pytest.raises(ValueError, match="phased_shrinkage must be 'estimate' or >= 0"):
            ErrorModelConfig(phased_shrinkage=bad)
