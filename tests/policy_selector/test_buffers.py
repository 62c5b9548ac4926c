"""Forecast-error buffers for the GSM: launch-aware rates, per-stage model choice, rolling re-plans."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from optimization import Edge, Network, Stage, evaluate_service_times, solve_gsm
from optimization.meio_demand import TabulatedSafetyStock
from optimization.meio_sim import replay_guaranteed_service, replay_rolling_plans
from policy_selector.buffers import active_periods, forecast_error_buffers, peak_rate, recent_rate


def small_tree() -> Network:
    stores = [Stage(f"X@S{i}", 1, 2.0, 0.0, unique_id=f"X@S{i}") for i in (1, 2)]
    return Network([Stage("X@CW", 3, 1.0)] + stores, [Edge("X@CW", "X@S1"), Edge("X@CW", "X@S2")])


def long(values: dict[str, list[float]]) -> pd.DataFrame:
    n = len(next(iter(values.values())))
    ds = pd.date_range("2024-01-01", periods=n, freq="W-MON")
    return pd.concat(
        [pd.DataFrame({"unique_id": k, "ds": ds, "y": np.asarray(v, float)}) for k, v in values.items()],
        ignore_index=True,
    )


def test_recent_rate_ignores_weeks_before_launch():
    series = long({"A": [0, 0, 0, 0, 6, 3], "B": [1, 2, 3, 4, 5, 6], "Z": [0] * 6})
    assert recent_rate(series, ["A", "B", "Z", "missing"], window=3).tolist() == [4.5, 5.0, 0.0, 0.0]
    assert active_periods(series, ["A", "B", "Z"]).tolist() == [2, 6, 0]
    with pytest.raises(ValueError, match="window must be >= 1"):
        recent_rate(series, ["A"], window=0)


def test_peak_rate_takes_the_highest_exposure_window_in_the_plan_life():
    forecast = np.array([[1.0, 1.0, 5.0, 9.0, 1.0], [2.0, 2.0, 2.0, 2.0, 2.0]])
    # row 0: 2-period windows starting at 0..2 -> means 1, 3, 7; row 1 flat.
    assert peak_rate(forecast, np.array([2, 1]), plan_periods=3).tolist() == [7.0, 2.0]
    assert peak_rate(forecast, np.array([2, 1]), plan_periods=1).tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="need plan_periods"):
        peak_rate(forecast, np.array([3, 1]), plan_periods=4)


def test_forecast_error_buffers_pick_seasonal_naive_only_for_seasonal_demand():
    rng = np.random.default_rng(3)
    t = np.arange(156)
    demand = long({"X@S1": rng.poisson(20 * (1 + 0.6 * np.sin(2 * np.pi * t / 52))), "X@S2": rng.poisson(20, 156)})
    net = small_tree()
    auto = forecast_error_buffers(net, demand, 0.95, n_windows=20, plan_periods=4)
    flat = forecast_error_buffers(net, demand, 0.95, n_windows=20, model="WindowAverage")
    s1, s2 = net.stage_ids.index("X@S1"), net.stage_ids.index("X@S2")
    # the seasonal store gets a seasonal rate (not its 13-week mean), the flat store keeps the moving average
    assert auto.demand_mean[s1] != pytest.approx(flat.demand_mean[s1])
    assert auto.demand_mean[s2] == pytest.approx(flat.demand_mean[s2])
    assert auto.table[s1, -1] < flat.table[s1, -1]  # seasonal model leaves smaller errors


def test_rolling_replay_with_one_plan_is_the_static_replay():
    net = small_tree()
    rng = np.random.default_rng(0)
    demand = np.column_stack([np.zeros(40), rng.poisson(5, 40), rng.poisson(8, 40)]).astype(float)
    buffers = TabulatedSafetyStock(
        np.arange(6.0), np.outer([3.0, 2.0, 2.0], np.sqrt(np.arange(6.0))), np.array([13.0, 5.0, 8.0])
    )
    for plan in (solve_gsm(net, buffers), evaluate_service_times(net, np.zeros(3), buffers)):
        static = replay_guaranteed_service(net, plan, demand)
        rolled = replay_rolling_plans(net, [plan], [0], demand)
        pd.testing.assert_frame_equal(static, rolled)


def test_rolling_replay_raised_level_takes_effect_after_the_lead_time():
    net = Network([Stage("A", 2, 1.0, 0.0, unique_id="A")], [])
    demand = np.full((12, 1), 10.0)
    low = TabulatedSafetyStock(np.arange(4.0), np.zeros((1, 4)), np.array([5.0]))  # B = 10 < 20 needed
    high = TabulatedSafetyStock(np.arange(4.0), np.zeros((1, 4)), np.array([10.0]))  # B = 20
    plans = [evaluate_service_times(net, np.zeros(1), m) for m in (low, high)]
    out = replay_rolling_plans(net, plans, [0, 6], demand, measure_from=6)
    # weeks 6..11: short until the order placed at week 6 has arrived (tau = 2): weeks 8..11 fine.
    assert out.periods.iloc[0] == 6 and out.csl.iloc[0] == pytest.approx(4 / 6)
    with pytest.raises(ValueError, match="strictly increasing"):
        replay_rolling_plans(net, plans, [6, 0], demand)
