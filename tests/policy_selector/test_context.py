"""prepare_cutoff on ragged panels: forecasts are aligned by step ahead, not by date."""

import numpy as np
import pandas as pd
import pytest

from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import CandidateSpace, SelectorConfig, prepare_cutoff
from policy_selector.economics import periods_per_year


def test_series_that_end_early_keep_their_whole_forecast():
    ds = pd.date_range("2023-01-02", periods=60, freq="W-MON")
    demand = pd.concat(
        [
            pd.DataFrame({"unique_id": "A", "ds": ds, "y": 10.0}),
            pd.DataFrame({"unique_id": "B", "ds": ds[:57], "y": 10.0}),
        ]
    )
    items = (
        generate_demo(DemoConfig(n_items=8, n_weeks=70, seed=1))
        .items.iloc[:2]
        .assign(unique_id=["A", "B"], lead_time=2, review_period=1, lead_time_std=0.0)
    )
    cfg = SelectorConfig(space=CandidateSpace.from_names(["adida_rs_normal"]), n_windows=2, test_periods=4)
    data = prepare_cutoff(demand, items, ds[-1], cfg)
    cum = data.cum_forecast["ADIDA"]
    # a flat 10 per week forecasts 10 per step for both series, whatever their last date
    np.testing.assert_allclose(cum[:, :3], [[10, 20, 30], [10, 20, 30]], rtol=1e-6)


def test_periods_per_year_honours_the_multiplier():
    assert periods_per_year("W-MON") == 52 and periods_per_year("2W-MON") == 26
    assert periods_per_year("MS") == 12 and periods_per_year("QS") == 4


def _ets_demand(n_series=3, n_weeks=60):
    ds = pd.date_range("2023-01-02", periods=n_weeks, freq="W-MON")
    rng = np.random.default_rng(5)
    demand = pd.concat(
        [pd.DataFrame({"unique_id": f"S{i}", "ds": ds, "y": rng.poisson(20 + 5 * i, n_weeks)}) for i in range(n_series)]
    )
    items = (
        generate_demo(DemoConfig(n_items=8, n_weeks=70, seed=1))
        .items.iloc[:n_series]
        .assign(unique_id=[f"S{i}" for i in range(n_series)], lead_time=2, review_period=1, lead_time_std=0.0)
    )
    return demand, items, ds[-1]


def test_refit_every_re_estimates_autoets_every_k_windows(monkeypatch):
    """The policy step's backtest fits AutoETS once per series per k windows (statsforecast's refit)."""
    from statsforecast.models import AutoETS

    demand, items, cutoff = _ets_demand()
    fits, fit = [], AutoETS.fit
    monkeypatch.setattr(AutoETS, "fit", lambda self, *a, **k: fits.append(1) or fit(self, *a, **k))
    space = CandidateSpace.from_names(["ets_sq_normal"])
    tables = {}
    for every, expected in [(1, 0), (4, 3 * 2), (8, 3), (30, 3)]:  # 1: forecast() per window, no fit()
        fits.clear()
        cfg = SelectorConfig(space=space, n_windows=8, test_periods=4, refit_every=every)
        tables[every] = prepare_cutoff(demand, items, cutoff, cfg).cv
        assert len(fits) == expected, every
    # fit once (8 and 30 >= n_windows): the same table; the first window is fitted in every mode
    pd.testing.assert_frame_equal(tables[8], tables[30])
    first = tables[1]["cutoff"] == tables[1]["cutoff"].min()
    np.testing.assert_allclose(tables[4].loc[first, "AutoETS"], tables[1].loc[first, "AutoETS"], rtol=1e-9)
    assert not np.allclose(tables[8]["AutoETS"], tables[1]["AutoETS"])


def test_refit_every_one_is_statsforecasts_plain_cross_validation():
    """The default backtest is statsforecast's own, every model refit at every window (with the
    windows one period apart: the spread windows of season-blind smooth series off)."""
    from statsforecast import StatsForecast
    from statsforecast.models import AutoETS, CrostonSBA

    demand, items, cutoff = _ets_demand()
    space = CandidateSpace.from_names(["ets_sq_normal", "sba_rs_negbin"])
    cfg = SelectorConfig(space=space, n_windows=5, spread_season_blind=False)
    data = prepare_cutoff(demand, items, cutoff, cfg)
    ref = StatsForecast(models=[AutoETS(season_length=1), CrostonSBA()], freq="W-MON", n_jobs=1).cross_validation(
        df=demand.assign(y=demand["y"].astype(float)), h=data.horizon, n_windows=5, step_size=1
    )
    got = data.cv.sort_values(["unique_id", "cutoff", "ds"]).reset_index(drop=True)
    ref = ref.sort_values(["unique_id", "cutoff", "ds"]).reset_index(drop=True)
    np.testing.assert_allclose(got[["AutoETS", "CrostonSBA"]], ref[["AutoETS", "CrostonSBA"]], rtol=1e-9)


@pytest.mark.parametrize("bad", [0, -3, "every", "16"])
def test_refit_every_must_be_positive_or_auto(bad):
    with pytest.raises(ValueError, match="refit_every must be an integer >= 1 or 'auto'"):
        SelectorConfig(refit_every=bad)


def test_auto_refit_fits_long_histories_once_and_short_ones_every_window():
    """refit_every="auto": per series, AutoETS once when the history before the first cutoff is
    >= 5 x the windows' span (here 5 x 7 = 35 periods), at every window below; rows in the usual order."""
    demand, items, cutoff = _ets_demand(n_series=4, n_weeks=60)
    # S1 and S3 start 30 weeks in: 30 periods, 30 - 3 (horizon) - 7 = 20 before the first cutoff
    short = demand["unique_id"].isin(["S1", "S3"]) & (demand["ds"] < demand["ds"].min() + pd.Timedelta(weeks=30))
    demand = demand[~short]
    space = CandidateSpace.from_names(["ets_sq_normal", "sba_rs_negbin"])
    tables = {
        every: prepare_cutoff(
            demand,
            items,
            cutoff,
            SelectorConfig(space=space, n_windows=8, test_periods=4, refit_every=every, spread_season_blind=False),
        ).cv
        for every in (1, 8, "auto")
    }
    auto, every_window, once = tables["auto"], tables[1], tables[8]
    assert auto["unique_id"].nunique() == 4
    is_long = auto["unique_id"].isin(["S0", "S2"]).to_numpy()
    pd.testing.assert_frame_equal(auto[["unique_id", "ds", "cutoff"]], every_window[["unique_id", "ds", "cutoff"]])
    np.testing.assert_allclose(auto.loc[is_long, "AutoETS"], once.loc[is_long, "AutoETS"], rtol=1e-12)
    np.testing.assert_allclose(auto.loc[~is_long, "AutoETS"], every_window.loc[~is_long, "AutoETS"], rtol=1e-12)
    assert not np.allclose(auto.loc[is_long, "AutoETS"], every_window.loc[is_long, "AutoETS"])
    np.testing.assert_allclose(auto["CrostonSBA"], every_window["CrostonSBA"], rtol=1e-12)


def test_auto_refit_threshold_is_five_spans_of_the_windows():
    cfg = SelectorConfig(refit_every="auto")  # 16 windows, step 1: span 15, threshold 75
    assert cfg.refit_per_series([20, 74, 75, 130]).tolist() == [1, 1, 16, 16]
    assert SelectorConfig(refit_every="auto", n_windows=8, step=2).refit_per_series([69, 70]).tolist() == [1, 8]
    assert SelectorConfig(refit_every=40).refit_per_series([10]).tolist() == [16]
