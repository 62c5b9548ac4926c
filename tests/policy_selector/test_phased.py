"""Time-phased levels: flat forecasts give the static levels, a trend moves them, which items are phased."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import characterise
from policy_selector.phased import (
    PLAN_COLUMNS,
    SEASONAL_STRENGTH_MIN,
    TREND_STRENGTH_MIN,
    TREND_STRENGTH_MIN_SHORT,
    exposure_forecasts,
    forecast_paths,
    phase_shift,
    phased_items,
    phased_plan,
    policy_exposure,
    seasonal_forecasters,
    seasonal_threshold,
)

REC = pd.DataFrame(
    {
        "unique_id": ["rs", "rss", "sq", "bs", "none"],
        "policy": ["R_S", "R_s_S", "s_Q", "base_stock", "no_stock"],
        "lead_time": [2, 1, 3, 0, 1],
        "review_period": [2, 1, 1, 1, 1],
        "reorder_point": [12.0, 5.0, 7.0, 4.0, 0.0],
        "order_up_to": [12.0, 9.0, 10.0, 4.0, 0.0],
    }
)
DATES = pd.date_range("2025-01-06", periods=10, freq="W-MON")


def _paths(values: np.ndarray) -> pd.DataFrame:
    return pd.DataFrame(values, index=REC["unique_id"][: len(values)], columns=range(1, values.shape[1] + 1))


def _all_phased() -> pd.DataFrame:
    return pd.DataFrame({"unique_id": REC["unique_id"], "phased": True, "phase_reason": "test"})


def test_exposure_of_the_sizing():
    # (s, Q) and base stock are reviewed every period: L + 1; periodic policies: L + R
    assert policy_exposure(REC["policy"], REC["lead_time"], REC["review_period"]).tolist() == [4, 2, 4, 1, 2]


def test_exposure_forecast_sums_the_next_h_steps():
    path = np.array([[1.0, 2.0, 3.0, 4.0, 5.0], [10.0, 0.0, 10.0, 0.0, 10.0]])
    F = exposure_forecasts(path, [2, 3], 3)
    assert F.tolist() == [[3.0, 5.0, 7.0], [20.0, 10.0, 20.0]]
    with pytest.raises(ValueError, match="forecast path has 5 steps; 4 periods with H up to 3 need 6"):
        exposure_forecasts(path, [2, 3], 4)


@pytest.mark.parametrize("level", [0.0, 0.37, 2.5, 40.0])
def test_flat_forecast_gives_the_static_levels_in_every_period(level):
    """Invariant: without trend or season in the forecast the phased plan is the recommendation."""
    paths = _paths(np.full((len(REC), 30), level))
    plan = phased_plan(REC, paths, _all_phased(), DATES)
    assert list(plan.columns) == list(PLAN_COLUMNS)
    assert len(plan) == len(REC) * len(DATES)
    for uid, g in plan.groupby("unique_id"):
        r = REC.set_index("unique_id").loc[uid]
        assert (g["reorder_point"] == r["reorder_point"]).all()
        assert (g["order_up_to"] == r["order_up_to"]).all()
        assert g["ds"].tolist() == list(DATES)


def test_a_trend_moves_reorder_point_and_order_up_to_by_the_change_of_the_exposure_forecast():
    slope = 0.5
    path = 3.0 + slope * np.arange(1, 31)[None, :].repeat(len(REC), axis=0)
    plan = phased_plan(REC, _paths(path), _all_phased(), DATES).set_index(["unique_id", "step"])
    H = policy_exposure(REC["policy"], REC["lead_time"], REC["review_period"])
    for i, r in REC.iterrows():
        for t in range(1, len(DATES) + 1):
            shift = np.floor(slope * (t - 1) * H[i] + 0.5)  # F_t(H) - F_1(H), whole units
            row = plan.loc[(r["unique_id"], t)]
            assert row["reorder_point"] == r["reorder_point"] + shift
            assert row["order_up_to"] - row["reorder_point"] == r["order_up_to"] - r["reorder_point"]  # S - s, Q kept
            assert row["forecast"] == pytest.approx(path[i, t - 1])
            assert row["exposure_forecast"] == pytest.approx(path[i, t - 1 : t - 1 + H[i]].sum())
    # safety stock: the sizing's buffer over the exposure, the same in every period up to whole units
    ss = plan.loc["sq", "safety_stock"]
    assert ss.max() - ss.min() <= 1.0


def test_a_falling_forecast_never_takes_a_level_below_zero_and_unphased_items_keep_theirs():
    path = np.maximum(20.0 - 2.0 * np.arange(1, 31), 0.0)[None, :].repeat(len(REC), axis=0)
    flags = _all_phased().assign(phased=[True, True, True, False, False])
    plan = phased_plan(REC, _paths(path), flags, DATES).set_index("unique_id")
    assert (plan["reorder_point"] >= 0).all() and (plan["order_up_to"] >= plan["reorder_point"]).all()
    assert plan.loc["rs", "order_up_to"].iloc[-1] < REC.loc[0, "order_up_to"]
    assert (plan.loc["bs", "order_up_to"] == 4.0).all() and not plan.loc["bs", "phased"].any()


def test_a_negative_reorder_point_of_an_unphased_item_is_kept():
    """An (s, Q) may be sized with s = -1 (order only once a backlog is waiting): never changed unless phased."""
    rec = REC.assign(reorder_point=[12.0, 5.0, -1.0, 4.0, 0.0], order_up_to=[12.0, 9.0, 88.0, 4.0, 0.0])
    flags = _all_phased().assign(phased=[True, True, False, True, False])
    path = np.linspace(10.0, 1.0, 30)[None, :].repeat(len(REC), axis=0)
    plan = phased_plan(rec, _paths(path), flags, DATES).set_index("unique_id")
    assert (plan.loc["sq", "reorder_point"] == -1.0).all() and (plan.loc["sq", "order_up_to"] == 88.0).all()


def test_fractional_demand_moves_levels_by_the_exact_change():
    path = np.linspace(1.0, 4.0, 30)[None, :].repeat(len(REC), axis=0)
    delta, F = phase_shift(path, [2] * len(REC), 5, integral=False)
    np.testing.assert_allclose(delta, F - F[:, :1])
    assert delta[:, 0].tolist() == [0.0] * len(REC)


def test_an_item_without_a_forecast_path_keeps_its_levels():
    paths = _paths(np.full((2, 30), 5.0) + np.arange(30))  # only the first two items have a path
    plan = phased_plan(REC, paths, _all_phased(), DATES).set_index("unique_id")
    assert not plan.loc["sq", "phased"].any() and plan.loc["sq", "forecast"].isna().all()
    assert (plan.loc["sq", "reorder_point"] == 7.0).all()
    assert plan.loc["rs", "phased"].all()


def test_which_items_are_phased_and_why():
    f = pd.DataFrame(
        {
            "unique_id": ["trend", "season", "flat", "short_noise", "short_trend", "nan"],
            "trend_strength": [TREND_STRENGTH_MIN, 0.0, 0.1, 0.4, TREND_STRENGTH_MIN_SHORT, np.nan],
            "seasonal_strength": [0.3, SEASONAL_STRENGTH_MIN, 0.4, np.nan, np.nan, np.nan],
        }
    )
    out = phased_items(f).set_index("unique_id")
    assert out["phased"].to_dict() == {
        "trend": True,
        "season": True,
        "flat": False,
        "short_noise": False,  # 3-period moving average: white noise alone gives ~1/3
        "short_trend": True,
        "nan": False,
    }
    assert out.loc["season", "phase_reason"].startswith("seasonal strength 0.60")
    assert out.loc["flat", "phase_reason"].startswith("no trend or season")
    with pytest.raises(ValueError, match=r"lack column\(s\) \['seasonal_strength'\]"):
        phased_items(f.drop(columns="seasonal_strength"))


def test_planted_trend_and_season_are_detected_and_noise_is_not():
    rng = np.random.default_rng(5)
    t = np.arange(156)
    rates = {
        "noise": np.full(156, 20.0),
        "trend": 20.0 * (1 + 0.5 * (t - 78) / 52),
        "season": 20.0 * (1 + 0.5 * np.sin(2 * np.pi * t / 52)),
    }
    ds = pd.date_range("2022-01-03", periods=156, freq="W-MON")
    demand = pd.concat(
        [pd.DataFrame({"unique_id": k, "ds": ds, "y": rng.poisson(v).astype(float)}) for k, v in rates.items()]
    )
    features = characterise(demand, season_length=52)
    out = phased_items(features, season_length=52).set_index("unique_id")["phased"]
    assert out.to_dict() == {"noise": False, "season": True, "trend": True}


def test_seasonal_threshold_rises_above_the_noise_of_short_histories():
    """White noise has seasonal strength ~ m / (n - m): 0.5 with three seasons (40 seeds: 0.37-0.61)."""
    assert seasonal_threshold([156, 169, 39, 10_000], 52)[:2] == pytest.approx([0.7, 52 / 117 + 0.2])
    assert seasonal_threshold([39], 12) == pytest.approx(12 / 27 + 0.2)
    assert seasonal_threshold([10_000, 30], 1).tolist() == [SEASONAL_STRENGTH_MIN] * 2
    assert seasonal_threshold([10_000], 12)[0] == SEASONAL_STRENGTH_MIN
    rng = np.random.default_rng(0)
    ds = pd.date_range("2022-01-03", periods=156, freq="W-MON")
    noise = pd.concat(
        [pd.DataFrame({"unique_id": f"n{i}", "ds": ds, "y": rng.poisson(20.0, 156).astype(float)}) for i in range(30)]
    )
    assert not phased_items(characterise(noise, season_length=52), season_length=52)["phased"].any()


def test_forecast_paths_use_each_items_own_forecaster_and_reuse_a_known_forecast():
    ds = pd.date_range("2024-01-01", periods=40, freq="MS")
    demand = pd.concat(
        [
            pd.DataFrame({"unique_id": "up", "ds": ds, "y": np.arange(40, dtype=float) * 2 + 5}),
            pd.DataFrame({"unique_id": "flat", "ds": ds, "y": np.tile([4.0, 6.0], 20)}),
            pd.DataFrame({"unique_id": "gone", "ds": ds, "y": 0.0}),
        ]
    )
    which = pd.Series({"up": "AutoETS", "flat": "HistoricAverage", "gone": "none"})
    paths = forecast_paths(demand, which, "MS", 6)
    assert sorted(paths.index) == ["flat", "up"] and list(paths.columns) == list(range(1, 7))
    assert paths.loc["flat"].to_numpy() == pytest.approx(5.0)
    assert (np.diff(paths.loc["up"].to_numpy()) > 0).all()  # the trend carries on
    known = pd.DataFrame({"unique_id": "up", "ds": pd.date_range("2027-05-01", periods=6, freq="MS"), "AutoETS": 1.0})
    reused = forecast_paths(demand, which, "MS", 6, known=known)
    assert reused.loc["up"].tolist() == [1.0] * 6


def test_a_season_alone_phases_only_items_whose_forecaster_models_it():
    f = pd.DataFrame(
        {"unique_id": ["season", "both", "flat"], "trend_strength": [0.0, 0.5, 0.0], "seasonal_strength": [0.9] * 3}
    )
    which = pd.Series({"season": "AutoETS", "both": "AutoETS", "flat": "none"})
    weekly = seasonal_forecasters(which, "W-MON")  # AutoETS has no 52-period seasonal state
    assert weekly.to_dict() == {"season": False, "both": False, "flat": False}
    assert seasonal_forecasters(which, "MS").to_dict() == {"season": True, "both": True, "flat": False}
    out = phased_items(f, seasonal_forecaster=weekly).set_index("unique_id")
    assert out["phased"].to_dict() == {"season": False, "both": True, "flat": False}
    assert "does not model the season" in out.loc["season", "phase_reason"]
    with pytest.raises(ValueError, match="unknown model 'Prophet'"):
        seasonal_forecasters(pd.Series({"a": "Prophet"}), "MS")


def test_a_buffer_of_relative_errors_scales_with_the_forecast_it_is_held_through():
    """Planted: the exposure forecast doubles over the plan; a proportional item's buffer doubles with it."""
    path = np.concatenate([np.full(5, 10.0), np.full(25, 20.0)])[None, :].repeat(len(REC), axis=0)
    flags = pd.Series([True, False, True, True, False], index=REC["unique_id"])
    plan = phased_plan(REC, _paths(path), _all_phased(), DATES, proportional=flags).set_index(["unique_id", "step"])
    H = policy_exposure(REC["policy"], REC["lead_time"], REC["review_period"])
    for i, r in REC.iterrows():
        level = r["reorder_point"] if r["policy"] != "R_S" else r["order_up_to"]
        F = exposure_forecasts(path[i : i + 1], H[i : i + 1], len(DATES))[0]
        b = level - F[0]
        for t in (1, 6, 10):
            row = plan.loc[(r["unique_id"], t)]
            want = F[t - 1] + (b * F[t - 1] / F[0] if flags.iloc[i] and F[0] > 0 else b)
            assert row["reorder_point"] == np.floor(want + 0.5 + 1e-9)
    # the sq item (L + 1 = 4): buffer 7 - 40 < 0 stays proportional: the level doubles with the forecast
    assert plan.loc[("sq", 10), "reorder_point"] == 2 * REC.loc[2, "reorder_point"]
    # by default (PROPORTIONAL_MODELS empty) every buffer is kept: the level moves by F_t - F_1 only
    rec = REC.assign(forecaster=["MSTL", "AutoETS", "MSTL", "MSTL", "none"])
    default = phased_plan(rec, _paths(path), _all_phased(), DATES)
    np.testing.assert_array_equal(
        default["reorder_point"],
        phased_plan(REC, _paths(path), _all_phased(), DATES, proportional=False)["reorder_point"],
    )
    with pytest.raises(ValueError, match=r"proportional lacks items \['bs', 'none'\]"):
        phased_plan(REC, _paths(path), _all_phased(), DATES, proportional=flags.iloc[:3])
