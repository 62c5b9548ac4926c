"""Backtest windows spread over a season for season-blind smooth series (SelectorConfig.spread_season_blind).

Issue 12: on the store proxy, season-blind smooth items sized from 16 windows one week apart just
before a February origin carried a holiday peak's errors into a buffer held through Feb-Oct.
"""

import numpy as np
import pandas as pd
import pytest

from forecasting.overlap import _overlap_correction
from forecasting.windows import cumulative_windows
from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import CandidateSpace, SelectorConfig, context, prepare_cutoff
from policy_selector.candidates import Distribution

SPACE = CandidateSpace.from_names(["ets_sq_normal", "sba_rs_negbin"])


def _items(ids):
    return (
        generate_demo(DemoConfig(n_items=max(8, len(ids)), n_weeks=70, seed=1))
        .items.iloc[: len(ids)]
        .assign(unique_id=list(ids), lead_time=2, review_period=1, lead_time_std=0.0)
    )


def _panel(freq="W-FRI", periods=120, start="2010-02-05", peak=None, n_smooth=3, n_lumpy=2, seed=3):
    """Smooth Poisson series around 40 (``peak``: multiplier per period) and lumpy series."""
    ds = pd.date_range(start, periods=periods, freq=freq)
    rng = np.random.default_rng(seed)
    level = 40.0 * (np.ones(periods) if peak is None else peak)
    rows = [pd.DataFrame({"unique_id": f"smooth{i}", "ds": ds, "y": rng.poisson(level)}) for i in range(n_smooth)]
    for i in range(n_lumpy):
        y = np.where(rng.random(periods) < 0.2, rng.poisson(30, periods) + 1, 0)
        rows.append(pd.DataFrame({"unique_id": f"lumpy{i}", "ds": ds, "y": y}))
    demand = pd.concat(rows, ignore_index=True).astype({"y": float})
    return demand, _items(demand["unique_id"].unique()), ds[-1]


def _cutoffs(cv, uid):
    return np.sort(pd.to_datetime(cv.loc[cv["unique_id"] == uid, "cutoff"].unique()))


def test_season_step_spreads_the_windows_over_one_season_and_leaves_monthly_alone():
    assert SelectorConfig().season_step(52) == 3  # 16 windows over 45 + H weeks
    assert SelectorConfig().season_step(12) == 1  # 16 months already span a year
    assert SelectorConfig().season_step(4) == 1
    assert SelectorConfig(n_windows=8, step=2).season_step(52) == 6
    assert SelectorConfig(step=5).season_step(52) == 5  # never closer than the configured step


def test_smooth_season_blind_series_get_spread_windows_and_the_rest_recent_ones():
    demand, items, cutoff = _panel()
    cfg = SelectorConfig(space=SPACE, freq="W-FRI", test_periods=4)
    data = prepare_cutoff(demand, items, cutoff, cfg)
    recent = prepare_cutoff(
        demand, items, cutoff, SelectorConfig(space=SPACE, freq="W-FRI", test_periods=4, spread_season_blind=False)
    )
    last = cutoff - pd.Timedelta(weeks=data.horizon)  # statsforecast's last cutoff: h periods before the end
    for uid in ("smooth0", "smooth1", "smooth2"):
        got = _cutoffs(data.cv, uid)
        assert len(got) == 16 and got[-1] == last and got[0] == last - pd.Timedelta(weeks=45)
        assert (np.diff(got) == pd.Timedelta(weeks=3)).all()
        assert data.window_step[uid] == 3
    for uid in ("lumpy0", "lumpy1"):
        got = _cutoffs(data.cv, uid)
        assert len(got) == 16 and got[-1] == last and got[0] == last - pd.Timedelta(weeks=15)
        assert data.window_step[uid] == 1
    # the lumpy series' backtest is the one of the recent windows, unchanged
    lumpy = lambda cv: cv[cv["unique_id"].str.startswith("lumpy")].reset_index(drop=True)  # noqa: E731
    pd.testing.assert_frame_equal(lumpy(data.cv), lumpy(recent.cv))
    assert (recent.window_step == 1).all()
    # rows stay in statsforecast's id order
    assert data.cv["unique_id"].tolist() == sorted(data.cv["unique_id"].tolist())


def test_seasonal_forecaster_series_keep_the_recent_windows():
    """A strong, clean 52-week season passes the seasonal gate and MSTL wins its backtest: its
    level is time-phased, so its errors come from the recent windows (step 1)."""
    t = np.arange(160)
    peak = 1.0 + 0.8 * np.sin(2 * np.pi * t / 52)
    demand, items, cutoff = _panel(periods=160, peak=peak, n_smooth=2, n_lumpy=1)
    data = prepare_cutoff(demand, items, cutoff, SelectorConfig(space=SPACE, freq="W-FRI", test_periods=4))
    swapped = data.seasonal.set_index("unique_id")["seasonal"]
    assert swapped[["smooth0", "smooth1"]].all(), data.seasonal["reason"].tolist()
    for uid in ("smooth0", "smooth1"):
        assert data.window_step[uid] == 1
        assert (np.diff(_cutoffs(data.cv, uid)) == pd.Timedelta(weeks=1)).all()


def test_monthly_series_keep_their_windows():
    """Monthly data: 16 windows already span a year, so the rule leaves the backtest as it was
    (carparts cannot move)."""
    demand, items, cutoff = _panel(freq="MS", periods=60, start="2010-01-01")
    on = prepare_cutoff(demand, items, cutoff, SelectorConfig(space=SPACE, freq="MS", test_periods=4))
    off = prepare_cutoff(
        demand, items, cutoff, SelectorConfig(space=SPACE, freq="MS", test_periods=4, spread_season_blind=False)
    )
    pd.testing.assert_frame_equal(on.cv, off.cv)
    assert (on.window_step == 1).all() and len(on.window_step) == 5


def test_short_smooth_series_keep_the_recent_windows():
    """45 weeks cannot hold 16 windows 3 weeks apart (45 + H + 1 periods); the series keeps step 1."""
    demand, items, cutoff = _panel(periods=45, n_lumpy=1)
    data = prepare_cutoff(demand, items, cutoff, SelectorConfig(space=SPACE, freq="W-FRI", test_periods=4))
    assert (data.window_step == 1).all() and data.cv["unique_id"].nunique() == 4


def test_overlap_correction_per_group():
    """Bartlett's factor with each series' own spacing: 16 windows, H = 4. Step 1: rho_k = 1 - k/4
    for k = 1..3, 1 / (1 - 2/15 (15/16 .75 + 14/16 .5 + 13/16 .25)); step 3: only rho_1 = 1/4 at
    H = 4, 1 / (1 - 2/15 . 15/16 . 1/4); step 3 at H <= 3 and step 4: no overlap."""
    n = np.array([16, 16, 16])
    got = _overlap_correction(n, 4, np.array([1, 3, 4]))
    assert got[0, 3] == pytest.approx(1 / (1 - 2 / 15 * (15 / 16 * 0.75 + 14 / 16 * 0.5 + 13 / 16 * 0.25)))
    assert got[1, 3] == pytest.approx(1 / (1 - 2 / 15 * 15 / 16 * 0.25))
    np.testing.assert_allclose(got[1, :3], 1.0)
    np.testing.assert_allclose(got[2], 1.0)
    # one spacing for all series is the same as that spacing given per series
    np.testing.assert_allclose(_overlap_correction(n, 4, 1), _overlap_correction(n, 4, np.ones(3, dtype=int)))


def test_windows_carry_each_series_own_step():
    demand, items, cutoff = _panel(n_smooth=1, n_lumpy=1)
    data = prepare_cutoff(demand, items, cutoff, SelectorConfig(space=SPACE, freq="W-FRI", test_periods=4))
    win = cumulative_windows(data.cv, ["AutoETS"])
    assert dict(zip(win.ids, win.step.tolist())) == {"lumpy0": 1, "smooth0": 3}


def test_a_holiday_peak_before_the_origin_no_longer_sets_a_season_blind_buffer():
    """Smooth series at 40 a week with a 2x holiday peak over the 5 weeks ending 6 weeks before the
    cutoff (as the store proxy's February origin), forecast season-blind: sized from the recent
    windows the 95 % error quantile over L + R = 3 covers the peak's ramps in 8 of 16 windows;
    spread over the year, in 2-3 of them, and the buffer is smaller."""
    peak = np.ones(120)
    peak[-11:-6] = 2.0
    peak[-63:-58] = 2.0  # the year before, too
    demand, items, cutoff = _panel(peak=peak, n_smooth=6, n_lumpy=0)
    ids = [f"smooth{i}" for i in range(6)]

    def buffer(spread):
        cfg = SelectorConfig(
            space=SPACE, freq="W-FRI", test_periods=4, seasonal_model=False, spread_season_blind=spread
        )
        data = prepare_cutoff(demand, items, cutoff, cfg)
        return data.error_models[Distribution.NORMAL].quantile(ids, H=3, p=0.95, model="AutoETS")

    recent, spread = buffer(False), buffer(True)
    assert (spread < recent).all(), (spread, recent)
    assert np.median(recent) > 1.3 * np.median(spread)  # seen: 115 against 74


def test_spread_windows_keep_the_recent_windows_refit_rule(monkeypatch):
    """Over the spread windows AutoETS is fitted once where the recent windows' threshold (75 periods at
    the defaults) precedes the first spread window, else at every window."""
    calls = _record_backtests(monkeypatch)
    long_demand, _, _ = _panel(periods=140, n_smooth=1, n_lumpy=0)
    mid_demand, _, _ = _panel(periods=110, n_smooth=1, n_lumpy=0, seed=5)
    short_demand, _, _ = _panel(periods=90, n_smooth=1, n_lumpy=0, seed=4)
    demand = pd.concat(
        [long_demand, mid_demand.assign(unique_id="mid"), short_demand.assign(unique_id="short")], ignore_index=True
    )
    cfg = SelectorConfig(space=SPACE, freq="W-FRI", refit_every="auto")
    context._backtest(demand, cfg, None, 4, spread=pd.Index(["smooth0", "mid", "short"]))
    # periods before the first spread window (45 before the last) against the recent windows' 75:
    # 140 - 4 - 45 = 91: one fit (the spread windows' own 5 x 45 = 225 would refit it at every window);
    # 110 - 49 = 61 and 90 - 49 = 41: every window
    assert sorted(calls) == [(["mid", "short"], 3, True), (["smooth0"], 3, cfg.n_windows)]


def test_no_spread_when_the_forecasters_model_the_season_and_a_too_short_series_keeps_recent_windows(monkeypatch):
    demand, _, _ = _panel(periods=120, n_smooth=2, n_lumpy=0)
    segments = pd.Series("smooth", index=pd.Index(["smooth0", "smooth1"]))
    seasonal = SelectorConfig(space=SPACE, freq="W-FRI", season_length=52)
    assert len(context._spread_candidates(demand, segments, seasonal, 4)) == 0
    plain = SelectorConfig(space=SPACE, freq="W-FRI")
    assert list(context._spread_candidates(demand, segments, plain, 4)) == ["smooth0", "smooth1"]

    calls = _record_backtests(monkeypatch)
    short, _, _ = _panel(periods=40, n_smooth=1, n_lumpy=0, seed=6)  # 40 < 4 + 45 + 1: too short to spread
    both = pd.concat([demand, short.assign(unique_id="short")], ignore_index=True)
    context._backtest(both, plain, None, 4, spread=pd.Index(["smooth0", "short"]))
    assert sorted(c[:2] for c in calls) == [(["short", "smooth1"], 1), (["smooth0"], 3)]  # short is not dropped


def _record_backtests(monkeypatch) -> list:
    """Replace the selector backtest's forecaster by one that records (ids, step, refit) of each call."""
    calls = []

    class Recording:
        fallbacks_ = pd.DataFrame(columns=["unique_id", "step", "reason"])

        def __init__(self, _cfg):
            pass

        def cross_validation(self, part, h, n_windows, step, refit):
            calls.append((sorted(part["unique_id"].unique()), step, refit))
            return pd.DataFrame({"unique_id": part["unique_id"].unique()})

    monkeypatch.setattr(context, "Forecaster", Recording)
    return calls
