"""Metrics (hand-computed goldens), model choice guard, and demand characterisation."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import characterise, evaluate, rank_models, sbc_class, select_models, summarise


@pytest.fixture
def tiny_cv():
    """One series, history 2 4 6 8 (naive MAE 2, naive MSE 4); two windows of 2 steps."""
    history = pd.DataFrame(
        {
            "unique_id": "A",
            "ds": pd.date_range("2024-01-01", periods=6, freq="W-MON"),
            "y": [2.0, 4.0, 6.0, 8.0, 10.0, 12.0],
        }
    )
    ds = history["ds"]
    cv = pd.DataFrame(
        {
            "unique_id": "A",
            "ds": [ds[3], ds[4], ds[4], ds[5]],
            "cutoff": [ds[2], ds[2], ds[3], ds[3]],
            "y": [8.0, 10.0, 10.0, 12.0],
            "Flat": [6.0, 6.0, 8.0, 8.0],
            "Perfect": [8.0, 10.0, 10.0, 12.0],
        }
    )
    return history, cv


def test_metrics_hand_computed(tiny_cv):
    history, cv = tiny_cv
    scores = evaluate(cv, history).set_index("model")
    flat = scores.loc["Flat"]
    # window 1 errors 2, 4 -> MAE 3, RMSE sqrt(10); window 2 errors 2, 4 -> same. Naive scale 2 (MSE 4).
    assert flat["n_windows"] == 2
    assert flat["mae"] == pytest.approx(3.0)
    assert flat["rmse"] == pytest.approx(np.sqrt(10.0))
    assert flat["mase"] == pytest.approx(1.5)
    assert flat["rmsse"] == pytest.approx(np.sqrt(10.0 / 4.0))
    assert flat["scaled_bias"] == pytest.approx(-1.5)  # under-forecast by 3 per period on scale 2
    assert scores.loc["Perfect", ["mae", "mase", "scaled_bias"]].tolist() == [0.0, 0.0, 0.0]


def test_summary_and_ranking(tiny_cv):
    history, cv = tiny_cv
    ranked = rank_models(summarise(evaluate(cv, history)), metric="mase")
    assert ranked["model"].tolist() == ["Perfect", "Flat"]
    assert ranked["rank"].tolist() == [1, 2]
    with pytest.raises(ValueError, match="unknown metric"):
        rank_models(ranked, metric="smape")


def _scores(rows):
    return pd.DataFrame(rows, columns=["unique_id", "model", "n_windows", "mase"]).assign(
        mae=0.0, rmse=0.0, rmsse=0.0, scaled_bias=0.0
    )


def test_selection_guard_needs_windows_and_margin():
    scores = _scores(
        [
            ("A", "Croston", 8, 1.00),
            ("A", "ETS", 8, 0.80),  # wins by 20 % with 8 windows: switch
            ("B", "Croston", 8, 1.00),
            ("B", "ETS", 8, 0.95),  # wins by 5 % only: stay
            ("C", "Croston", 2, 1.00),
            ("C", "ETS", 2, 0.50),  # big win on 2 windows: stay
            ("D", "Croston", 8, 0.50),
            ("D", "ETS", 8, 3.00),
        ]
    )
    chosen = select_models(scores, min_windows=4, margin=0.1).set_index("unique_id")
    assert (chosen["segment_best"] == "Croston").all()
    assert chosen["model"].to_dict() == {"A": "ETS", "B": "Croston", "C": "Croston", "D": "Croston"}
    assert chosen.loc["C", "reason"] == "fewer than 4 windows"
    with pytest.raises(ValueError, match="margin"):
        select_models(scores, margin=1.5)


def test_a_segment_of_dead_series_still_gets_a_model():
    """All-zero histories have no MASE; their segment used to get model NaN (issue 10, row 1)."""
    scores = _scores(
        [("A", "Croston", 8, 1.0), ("A", "ETS", 8, 0.8), ("Z", "Croston", 8, np.nan), ("Z", "ETS", 8, np.nan)]
    )
    chosen = select_models(scores, segments=pd.Series({"A": "smooth", "Z": "no_demand"})).set_index("unique_id")
    assert chosen["model"].to_dict() == {"A": "ETS", "Z": "ETS"}
    assert chosen.loc["Z", "reason"] == "metric undefined on the whole segment (constant histories); ETS used"


def test_no_finite_metric_anywhere_picks_the_first_model_not_nan():
    scores = _scores(
        [("Z1", "Croston", 8, np.nan), ("Z1", "ETS", 8, np.nan), ("Z2", "Croston", 8, np.nan), ("Z2", "ETS", 8, np.nan)]
    )
    chosen = select_models(scores)
    assert chosen["model"].tolist() == ["Croston", "Croston"]


def test_sbc_cutoffs():
    adi = np.array([1.31, 1.32, 1.31, 1.32, np.inf])
    cv2 = np.array([0.48, 0.48, 0.49, 0.49, np.nan])
    assert sbc_class(adi, cv2).tolist() == ["smooth", "intermittent", "erratic", "lumpy", "no_demand"]


def test_characterise_features():
    ds = pd.date_range("2024-01-01", periods=8, freq="W-MON")
    demand = pd.concat(
        [
            pd.DataFrame({"unique_id": "A", "ds": ds, "y": [0, 4, 0, 0, 2, 0, 0, 0.0]}),
            pd.DataFrame({"unique_id": "B", "ds": ds, "y": [5.0] * 8}),
            pd.DataFrame({"unique_id": "C", "ds": ds, "y": [1.0] * 7 + [np.nan]}),
        ]
    )
    out = characterise(demand, unit_value=pd.Series({"A": 100.0, "B": 1.0, "C": 1.0})).set_index("unique_id")
    assert out.loc["A", "adi"] == 4.0 and out.loc["A", "cv2"] == pytest.approx((1 / 3) ** 2)
    assert out.loc["A", "zero_share"] == 0.75 and out.loc["A", "last_demand_date"] == ds[4]
    assert out.loc["C", "n_periods"] == 7  # NaN is unknown, not zero
    assert out["sbc_class"].to_dict() == {"A": "intermittent", "B": "smooth", "C": "smooth"}
    assert out["abc"].to_dict() == {"A": "A", "B": "B", "C": "C"}  # 600, 40, 7 by value
    with pytest.raises(ValueError, match="unit_value lacks 1 series"):
        characterise(demand, unit_value=pd.Series({"A": 1.0, "B": 1.0}))


def test_trend_and_seasonal_strength_separate_patterns():
    t = np.arange(156)
    ds = pd.date_range("2022-01-03", periods=156, freq="W-MON")
    rng = np.random.default_rng(0)
    demand = pd.concat(
        [
            pd.DataFrame({"unique_id": "trend", "ds": ds, "y": 10 + 0.5 * t + rng.normal(0, 1, 156)}),
            pd.DataFrame(
                {"unique_id": "season", "ds": ds, "y": 50 + 20 * np.sin(2 * np.pi * t / 52) + rng.normal(0, 1, 156)}
            ),
        ]
    )
    out = characterise(demand, season_length=52).set_index("unique_id")
    assert out.loc["trend", "trend_strength"] > 0.9
    assert out.loc["season", "seasonal_strength"] > 0.9
    # with only ~2 values per season position, noise alone scores about 0.5 (estimator bias)
    assert out.loc["season", "seasonal_strength"] > out.loc["trend", "seasonal_strength"] + 0.3
    short = characterise(demand[demand["ds"] < ds[100]], season_length=52)
    assert short["seasonal_strength"].isna().all()


def test_xyz_by_forecast_error(tiny_cv):
    history, cv = tiny_cv
    out = characterise(history, cv=cv, xyz_model="Perfect")
    assert out.loc[0, "xyz"] == "X" and out.loc[0, "error_cv"] == 0.0
    with pytest.raises(ValueError, match="not a forecast column"):
        characterise(history, cv=cv, xyz_model="ETS")


@pytest.mark.realdata
def test_carparts_sbc_classes_match_published_counts(shared_data):
    demand = pd.read_parquet(shared_data / "carparts" / "carparts.parquet")
    counts = characterise(demand)["sbc_class"].value_counts().to_dict()
    # carparts README: population std of non-zero sizes on observed months.
    assert counts == {"intermittent": 2324, "lumpy": 347, "smooth": 3}
