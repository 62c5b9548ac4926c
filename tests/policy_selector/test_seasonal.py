"""Seasonal forecaster of the default path (issue 12): which series get MSTL, and what follows from it."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastConfig, Forecaster
from forecasting.models import models_season
from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import CandidateSpace, SelectorConfig, prepare_cutoff
from policy_selector.candidates import Distribution
from policy_selector.phased import (
    SEASONAL_MODEL,
    forecast_paths,
    phased_items,
    phased_plan,
    seasonal_gate,
    stl_noise_threshold,
    stl_seasonal_strength,
)

M = 52


def _season(n: int, amplitude: float = 0.5) -> np.ndarray:
    return 1 + amplitude * np.sin(2 * np.pi * np.arange(n) / M)


def test_gate_takes_a_planted_season_from_two_seasons_on_and_leaves_noise_intermittent_and_short():
    rng = np.random.default_rng(3)
    n = 2 * M  # exactly two seasons: the store-department panel's history at its cutoff
    rows = {
        "season": rng.poisson(20 * _season(n)),
        "noise": rng.poisson(20, n),
        "lumpy_season": rng.poisson(20 * _season(n)) * (rng.random(n) < 0.3),
        "short_season": np.r_[np.full(n - 90, np.nan), rng.poisson(20 * _season(90))],
    }
    history = np.vstack(list(rows.values())).astype(float)
    sbc = np.array(["smooth", "smooth", "lumpy", "smooth"])
    gate = seasonal_gate(history, list(rows), M, sbc).set_index("unique_id")
    assert gate["seasonal"].to_dict() == {"season": True, "noise": False, "lumpy_season": False, "short_season": False}
    assert gate.loc["season", "seasonal_strength"] > gate.loc["season", "threshold"] > 0.5
    assert gate.loc["lumpy_season", "reason"] == "lumpy demand keeps its forecaster"
    assert gate.loc["short_season", "reason"].startswith("90 periods")
    assert not seasonal_gate(history, list(rows), 1, sbc)["seasonal"].any()  # no season length: gate off


def test_white_noise_rarely_passes_and_its_level_falls_with_more_seasons():
    assert stl_noise_threshold(2 * M, M) > stl_noise_threshold(3 * M, M) > stl_noise_threshold(4 * M, M)
    rng = np.random.default_rng(11)
    noise = rng.poisson(15, size=(40, 3 * M)).astype(float)
    gate = seasonal_gate(noise, [f"n{i}" for i in range(40)], M, np.full(40, "smooth"))
    assert gate["seasonal"].sum() <= 4  # the 95th percentile of noise: ~2 of 40 expected
    with pytest.raises(ValueError, match=r"gap-free series of >= 104 periods, got 60"):
        stl_seasonal_strength(np.ones(60), M)


def test_mstl_is_a_seasonal_model_that_needs_a_season_length():
    assert models_season("MSTL", ForecastConfig(freq="W-MON")) and models_season("MSTL", ForecastConfig(freq="MS"))
    with pytest.raises(ValueError, match="MSTL decomposes a season and needs season_length >= 2, got 1"):
        ForecastConfig(models=("MSTL",), freq="W-MON", season_length=1)


def _panel(n: int = 3 * M + 10):
    rng = np.random.default_rng(8)
    ds = pd.date_range("2022-01-03", periods=n, freq="W-MON")
    t = np.arange(n)
    rates = {
        "season": 30 * _season(n, 0.6),
        "peak": 20 * np.where((t % M >= 20) & (t % M < 28), 3.0, 1.0),  # an 8-week peak season
        "flat": np.full(n, 30.0),
        "sparse": 3 * _season(n) * (rng.random(n) < 0.2),
    }
    demand = pd.concat(
        [pd.DataFrame({"unique_id": k, "ds": ds, "y": rng.poisson(v).astype(float)}) for k, v in rates.items()]
    )
    items = (
        generate_demo(DemoConfig(n_items=8, n_weeks=70, seed=1))
        .items.iloc[:4]
        .assign(unique_id=list(rates), lead_time=2, review_period=1, lead_time_std=0.0)
    )
    return demand, items, ds


def test_a_seasonal_series_is_forecast_and_backtested_by_mstl_and_the_others_keep_autoets():
    demand, items, ds = _panel()
    space = CandidateSpace.from_names(["ets_sq_normal"])
    on = prepare_cutoff(demand, items, ds[-1], SelectorConfig(space=space, n_windows=8, test_periods=4))
    off = prepare_cutoff(
        demand, items, ds[-1], SelectorConfig(space=space, n_windows=8, test_periods=4, seasonal_model=False)
    )
    swapped = {"flat": "AutoETS", "peak": "MSTL", "season": "MSTL", "sparse": "AutoETS"}
    assert dict(zip(on.ids, on.forecaster_names("AutoETS"))) == swapped
    assert on.seasonal.set_index("unique_id")["seasonal"].to_dict() == {k: v == "MSTL" for k, v in swapped.items()}
    assert "backtest MAE over 3 periods" in on.seasonal.set_index("unique_id").loc["peak", "reason"]
    assert off.forecaster_names("AutoETS").tolist() == ["AutoETS"] * 4
    ids = list(on.ids)
    # the seasonal series' forecast is MSTL's; the flat one's is unchanged
    mstl = Forecaster(ForecastConfig(models=("MSTL",), freq="W-MON", n_jobs=1)).forecast(
        demand[demand["unique_id"] == "peak"], h=on.horizon
    )
    np.testing.assert_allclose(
        on.cum_forecast["AutoETS"][ids.index("peak")], np.cumsum(mstl["MSTL"].clip(lower=0)), rtol=1e-9
    )
    np.testing.assert_allclose(
        on.cum_forecast["AutoETS"][ids.index("flat")], off.cum_forecast["AutoETS"][ids.index("flat")]
    )

    # ... and so are the backtest errors that size its buffer: smaller than the season-blind ones
    def mae(data, uid):
        cv = data.cv[data.cv["unique_id"] == uid]
        return float(np.mean(np.abs(cv["y"] - cv["AutoETS"])))

    assert mae(on, "peak") < mae(off, "peak")
    assert mae(on, "flat") == pytest.approx(mae(off, "flat"))


def test_the_plan_of_a_seasonal_item_follows_its_season_and_a_flat_one_stays_put():
    demand, _, ds = _panel()
    rec = pd.DataFrame(
        {
            "unique_id": ["season", "flat"],
            "policy": ["s_Q", "s_Q"],
            "lead_time": [2, 2],
            "review_period": [1, 1],
            "reorder_point": [100.0, 100.0],
            "order_up_to": [150.0, 150.0],
        }
    )
    forecaster = pd.Series({"season": SEASONAL_MODEL, "flat": "AutoETS"})
    features = pd.DataFrame({"unique_id": ["season", "flat"], "trend_strength": 0.0, "seasonal_strength": np.nan})
    flags = phased_items(features, M, forecaster=forecaster).set_index("unique_id")
    assert flags["phased"].to_dict() == {"season": True, "flat": False}
    assert flags.loc["season", "phase_reason"].startswith("seasonal forecaster MSTL")
    dates = pd.date_range(ds[-1] + pd.Timedelta(weeks=1), periods=M, freq="W-MON")
    paths = forecast_paths(demand, forecaster, "W-MON", M + 2, season_length=1)  # MSTL keeps its 52
    plan = phased_plan(rec, paths, flags.reset_index(), dates)
    season = plan[plan["unique_id"] == "season"]
    planted = 3 * 30 * _season(3 * M + 10 + M + 2, 0.6)[3 * M + 10 :][:M]  # demand over L + 1 = 3 weeks, roughly
    assert np.corrcoef(season["order_up_to"], planted)[0, 1] > 0.8
    assert season["order_up_to"].max() - season["order_up_to"].min() > 40  # moves with a +-60 % season
    flat = plan[plan["unique_id"] == "flat"]
    assert flat["order_up_to"].eq(150.0).all() and flat["reorder_point"].eq(100.0).all()


@pytest.mark.parametrize("refit_every, mstl_refit", [("auto", 8), (1, True)])
def test_the_seasonal_backtest_follows_the_refit_rule(refit_every, mstl_refit):
    """MSTL's backtest of a gated series is fitted as the rule says: once for a long history (166
    weeks: 156 periods before the first of 8 cutoffs, >= 5 x 7), at every window with refit 1."""
    demand, items, ds = _panel()
    space = CandidateSpace.from_names(["ets_sq_normal"])
    cfg = SelectorConfig(space=space, n_windows=8, test_periods=4, refit_every=refit_every)
    data = prepare_cutoff(demand, items, ds[-1], cfg)
    assert data.forecaster_names("AutoETS")[list(data.ids).index("peak")] == "MSTL"
    peak = demand[demand["unique_id"] == "peak"]
    direct = Forecaster(ForecastConfig(models=("MSTL",), freq="W-MON", n_jobs=1)).cross_validation(
        peak, h=data.horizon, n_windows=8, refit=mstl_refit
    )
    got = data.cv[data.cv["unique_id"] == "peak"]
    np.testing.assert_allclose(got["AutoETS"].to_numpy(), direct["MSTL"].to_numpy(), rtol=1e-9)


def test_the_seasonal_series_errors_are_pooled_apart_with_an_estimated_credibility():
    """The MSTL (time-phased) series are their own pool; phased_shrinkage=None keeps them in their segment."""
    demand, items, ds = _panel()
    space = CandidateSpace.from_names(["ets_sq_normal"])
    cfg = SelectorConfig(space=space, n_windows=8, test_periods=4)
    on = prepare_cutoff(demand, items, ds[-1], cfg)
    off = prepare_cutoff(demand, items, ds[-1], replace(cfg, phased_shrinkage=None))
    swapped = dict(zip(on.ids, on.forecaster_names("AutoETS") == "MSTL"))
    assert sum(swapped.values()) == 2
    for em in on.error_models.values():
        assert em.phased_.to_dict() == {k: swapped[k] for k in em.ids_}
        assert em.segment_.str.endswith("(phased)").to_dict() == em.phased_.to_dict()
    for em in off.error_models.values():
        assert not em.phased_.any()
    q_on, q_off = (d.error_models[Distribution.NORMAL].quantile("peak", 3.0, 0.95, model="AutoETS") for d in (on, off))
    assert q_on != pytest.approx(q_off, rel=0.01)
    with pytest.raises(ValueError, match="phased_shrinkage must be 'estimate', >= 0 pseudo-windows or None"):
        SelectorConfig(phased_shrinkage="pool")
