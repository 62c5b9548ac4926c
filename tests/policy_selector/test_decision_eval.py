"""Decision backtest harness: agrees with a hand-written replay; frontier and ratio invariants."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastConfig, Forecaster
from policy_selector.decision_eval import (
    Z_GRID,
    baseline_levels,
    baseline_rows,
    cumulative_backtest,
    equal_service,
    forecast_baseline_inputs,
    forecast_levels,
    phased_baseline_levels,
    phased_baseline_rows,
    policies_from_table,
    replay,
    replay_phased_table,
    replay_table,
    summarise,
    textbook_levels,
)
from policy_selector.economics import Economics

IDS = ["A", "B", "C", "D", "E"]
POLICIES = pd.DataFrame(
    {
        "unique_id": IDS,
        "policy": ["R_S", "R_S", "R_s_S", "s_Q", "base_stock"],
        "review_period": [1, 2, 1, 1, 1],
        "reorder_point": [np.nan, np.nan, 3.0, 4.0, np.nan],
        "order_up_to": [6.0, 9.0, 8.0, np.nan, 5.0],
        "order_quantity": [np.nan, np.nan, np.nan, 5.0, np.nan],
    }
)
ITEMS = pd.DataFrame(
    {
        "unique_id": IDS,
        "unit_cost": [2.0, 5.0, 1.0, 3.0, 4.0],
        "holding_rate": 0.24,
        "order_cost": [0.0, 10.0, 2.0, 1.0, 0.0],
        "shortage_cost": [1.0, 2.0, 0.5, 3.0, 1.5],
        "service_target": 0.95,
        "lead_time": [1, 2, 0, 1, 3],
        "review_period": POLICIES["review_period"],
    }
)


def hand_replay(demand, ptype, R, s, S, Q, L, h, k, b, levels_by_period=None):
    """Plain-Python periodic review with backorders: receive, decide, serve, close (one item)."""
    on_hand, backlog, arrivals = S if ptype != "s_Q" else s + Q, 0.0, {}
    cycles = stockout_cycles = 0
    flag = False
    served_total = oh_total = cost = 0.0
    T = len(demand)
    for t in range(T):
        if levels_by_period is not None:
            s, S = levels_by_period[t]
        on_hand += arrivals.pop(t, 0.0)
        fill = min(on_hand, backlog)
        on_hand -= fill
        backlog -= fill
        if t % R == 0:
            ip = on_hand - backlog + sum(arrivals.values())
            q = 0.0
            if ip <= s:
                q = S - ip if ptype != "s_Q" else Q * (math.floor((s - ip) / Q) + 1)
            if q > 0:
                cost += k
                if L == 0:
                    on_hand += q
                    fill = min(on_hand, backlog)
                    on_hand -= fill
                    backlog -= fill
                else:
                    arrivals[t + L] = arrivals.get(t + L, 0.0) + q
        served = min(demand[t], on_hand)
        on_hand -= served
        backlog += demand[t] - served
        served_total += served
        cost += h * on_hand + b * (demand[t] - served)
        oh_total += on_hand
        flag = flag or backlog > 1e-9
        if (t + 1) % R == 0 or t == T - 1:
            cycles += 1
            stockout_cycles += flag
            flag = False
    d = sum(demand)
    return {
        "csl": 1 - stockout_cycles / cycles,
        "fill_rate": served_total / d if d else float("nan"),
        "avg_on_hand": oh_total / T,
        "cost": cost,
    }


@pytest.fixture
def econ():
    return Economics.from_items(ITEMS, IDS, "MS")


@pytest.fixture
def actual():
    return np.random.default_rng(3).poisson([[3.0], [4.0], [2.0], [2.5], [1.5]], size=(5, 12)).astype(float)


def test_replay_matches_hand_written_loop(econ, actual):
    got = replay_table(actual, [POLICIES], econ).set_index("unique_id")
    for i, r in POLICIES.iterrows():
        s = r["order_up_to"] if r["policy"] in ("R_S", "base_stock") else r["reorder_point"]
        want = hand_replay(
            list(actual[i]),
            r["policy"],
            int(r["review_period"]),
            s,
            r["order_up_to"],
            r["order_quantity"],
            int(econ.lead_time[i]),
            econ.holding_cost[i],
            econ.order_cost[i],
            econ.shortage_cost[i],
        )
        for kpi, value in want.items():
            assert got.loc[r["unique_id"], kpi] == pytest.approx(value, abs=1e-9), (r["unique_id"], kpi)
    assert got["inventory_value"].to_numpy() == pytest.approx(got["avg_on_hand"] * econ.unit_cost)


def test_replan_carries_stock_state_like_one_continuous_loop(econ, actual):
    """Levels switched every 4 periods (state carried over) = one loop whose levels change at those periods."""
    up = POLICIES[POLICIES["policy"].isin(["R_S", "R_s_S"])].reset_index(drop=True)
    sub = Economics.from_items(ITEMS, up["unique_id"], "MS")
    d = actual[: len(up)]
    blocks = [
        up.assign(order_up_to=up["order_up_to"] + shift, reorder_point=up["reorder_point"] + shift)
        for shift in (0.0, 3.0, -2.0)
    ]
    got = replay_table(d, blocks, sub, replan=4).set_index("unique_id")
    for i, r in up.iterrows():
        ptype = "R_S" if r["policy"] == "R_S" else "R_s_S"
        levels = [
            ((b.loc[i, "order_up_to"] if ptype == "R_S" else b.loc[i, "reorder_point"]), b.loc[i, "order_up_to"])
            for b in blocks
            for _ in range(4)
        ]
        want = hand_replay(
            list(d[i]),
            ptype,
            int(r["review_period"]),
            *levels[0],
            None,
            int(sub.lead_time[i]),
            sub.holding_cost[i],
            sub.order_cost[i],
            sub.shortage_cost[i],
            levels_by_period=levels,
        )
        for kpi, value in want.items():
            assert got.loc[r["unique_id"], kpi] == pytest.approx(value, abs=1e-9), (r["unique_id"], kpi)


def _shifted(table: pd.DataFrame, shift: float) -> pd.DataFrame:
    return table.assign(order_up_to=table["order_up_to"] + shift, reorder_point=table["reorder_point"] + shift)


def test_time_phased_replay_matches_hand_written_loop_with_levels_changing_every_period(econ, actual):
    """Levels of every period (R = 1 and 2, L = 0..3: blocks shorter than the lead time carry orders in transit)."""
    shifts = [0.0, 2.0, -1.0, 3.0, 1.0, 0.0, -2.0, 4.0, 2.0, 1.0, 0.0, 3.0]
    tables = [_shifted(POLICIES, x) for x in shifts]
    got = replay_phased_table(actual, tables, econ).set_index("unique_id")
    for i, r in POLICIES.iterrows():
        up_to = r["policy"] in ("R_S", "base_stock")
        levels = [
            (t.loc[i, "order_up_to"] if up_to else t.loc[i, "reorder_point"], t.loc[i, "order_up_to"]) for t in tables
        ]
        want = hand_replay(
            list(actual[i]),
            r["policy"],
            int(r["review_period"]),
            *levels[0],
            r["order_quantity"],
            int(econ.lead_time[i]),
            econ.holding_cost[i],
            econ.order_cost[i],
            econ.shortage_cost[i],
            levels_by_period=levels,
        )
        for kpi, value in want.items():
            assert got.loc[r["unique_id"], kpi] == pytest.approx(value, abs=1e-9), (r["unique_id"], kpi)


@pytest.mark.parametrize("replan", [2, 4])
def test_replan_shorter_than_the_lead_time_keeps_orders_in_transit(econ, actual, replan):
    """Unchanged levels replayed in blocks (multiples of every R) = one continuous replay; base stock has L = 3,
    so with blocks of 2 periods its orders are still in transit at the end of a block."""
    blocks = [POLICIES] * len(range(0, actual.shape[1], replan))
    pd.testing.assert_frame_equal(replay_table(actual, blocks, econ, replan), replay_table(actual, [POLICIES], econ))
    phased = replay_phased_table(actual, [POLICIES] * actual.shape[1], econ)
    pd.testing.assert_frame_equal(phased, replay_table(actual, [POLICIES], econ))


def test_time_phased_replay_needs_the_levels_of_every_period(econ, actual):
    with pytest.raises(ValueError, match="11 plans for 12 periods"):
        replay_phased_table(actual, [POLICIES] * 11, econ)


def test_phased_baseline_with_a_flat_forecast_is_the_static_baseline(econ, actual):
    point, rmse = np.array([6.0, 9.5, 2.2, 5.0, 4.1]), np.array([1.0, 2.0, 0.5, 1.5, 1.0])
    static = forecast_levels(point, rmse)
    phased = phased_baseline_levels(np.repeat(point[:, None], actual.shape[1], axis=1), rmse)
    assert phased.shape == (len(Z_GRID), actual.shape[1], len(IDS))
    np.testing.assert_array_equal(phased, np.repeat(static[:, None, :], actual.shape[1], axis=1))
    want = baseline_rows(actual, [{"AutoETS": static}], econ)
    got = phased_baseline_rows(actual, phased, econ)
    assert set(got["method"]) == {"AutoETS_phased"}
    np.testing.assert_allclose(got["csl"], want["csl"])
    np.testing.assert_allclose(got["inventory_value"], want["inventory_value"])


def test_replay_needs_one_plan_per_block(econ, actual):
    with pytest.raises(ValueError, match="2 plans for 3 blocks"):
        replay(actual, [policies_from_table(POLICIES, econ)] * 2, econ, replan=4)


def test_policy_table_missing_item_is_named(econ):
    with pytest.raises(ValueError, match=r"1 items have no policy row, e.g. \['E'\]"):
        policies_from_table(POLICIES[POLICIES["unique_id"] != "E"], econ)


def test_textbook_and_forecast_levels():
    # mean 2, std 1 (ddof 1) over H = 4: S = 8 + z * 2
    assert textbook_levels([[1.0, 2.0, 3.0, np.nan]], [4], [0.0, 1.0, -5.0]).ravel().tolist() == [8.0, 10.0, 0.0]
    assert forecast_levels([3.0], [0.5], [0.0, 0.5]).ravel().tolist() == [3.0, 4.0]


def test_cumulative_backtest_sums_the_first_h_steps():
    cv = pd.DataFrame(
        {
            "unique_id": ["A"] * 4,
            "cutoff": [1, 1, 2, 2],
            "ds": [2, 3, 3, 4],
            "y": [1.0, 2.0, 0.0, 4.0],
            "M": [1.5, 1.5, 1.0, 1.0],
        }
    )
    rmse = cumulative_backtest(cv, "M", pd.Series({"A": 2}))
    assert rmse["A"] == pytest.approx(math.sqrt((0.0**2 + 2.0**2) / 2))
    assert cumulative_backtest(cv, "M", pd.Series({"A": 1}))["A"] == pytest.approx(math.sqrt((0.25 + 1) / 2))


def _panel(seed=0, n=40, T=36, hold=12):
    rng = np.random.default_rng(seed)
    rate = rng.uniform(0.3, 6.0, n)
    y = rng.poisson(rate[:, None] * (rng.random((n, T)) < rng.uniform(0.3, 1.0, n)[:, None]))
    ids = [f"I{i:02d}" for i in range(n)]
    items = pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": rng.uniform(1, 50, n),
            "holding_rate": 0.25,
            "order_cost": 0.0,
            "service_target": 0.95,
            "lead_time": 1,
            "review_period": 1,
        }
    )
    return y[:, : T - hold].astype(float), y[:, T - hold :].astype(float), ids, items


def test_frontier_is_monotone_in_z_and_ratio_is_one_on_a_baseline_point():
    history, actual, ids, items = _panel()
    econ = Economics.from_items(items, ids, "MS")
    levels = {
        "textbook": textbook_levels(history, econ.lead_time + econ.review_period),
        "mean_only": forecast_levels(history.mean(axis=1) * 2, np.full(len(ids), 1.0), Z_GRID),
    }
    rows = baseline_rows(actual, [levels], econ).assign(origin=0)
    z0 = Z_GRID.index(1.5)
    plan = pd.DataFrame(
        {
            "unique_id": ids,
            "policy": "R_S",
            "review_period": 1,
            "reorder_point": np.nan,
            "order_up_to": levels["textbook"][z0],
            "order_quantity": np.nan,
        }
    )
    mine = replay_table(actual, [plan], econ).assign(method="stockwise", z=np.nan, origin=0)
    segments = pd.DataFrame({"unique_id": ids, "abc": np.where(np.arange(len(ids)) < 10, "A", "C")})
    summary = summarise(pd.concat([rows, mine], ignore_index=True), segments)
    for (_, _, _), f in summary[summary["method"] != "stockwise"].groupby(["method", "segment_kind", "segment"]):
        f = f.sort_values("z")
        for col in ("csl", "fill_rate", "inventory_value"):
            assert (np.diff(f[col].to_numpy()) >= -1e-12).all(), col
    ratios = equal_service(summary)
    overall = ratios[ratios["segment_kind"] == "all"].set_index("measure")
    # Stockwise holds exactly the textbook's z = 1.5 levels: same service, same value
    assert overall.loc["csl", "ratio_textbook"] == pytest.approx(1.0)
    assert overall.loc["fill_rate", "ratio_textbook"] == pytest.approx(1.0)
    assert overall.loc["csl", "ratio"] == pytest.approx(
        overall.loc["csl", "inventory_value"] / overall.loc["csl", ["value_textbook", "value_mean_only"]].min()
    )


def test_baseline_levels_from_statsforecast_with_counted_fallback():
    history, _, ids, items = _panel(n=6, T=30, hold=0)
    ds = pd.date_range("2020-01-01", periods=30, freq="MS")
    long = pd.DataFrame({"unique_id": np.repeat(ids, 30), "ds": np.tile(ds, 6), "y": history.ravel()})
    long = long[~((long["unique_id"] == "I05") & (long["ds"] < ds[26]))]  # 4 periods: too short to backtest
    econ = Economics.from_items(items, ids, "MS")
    levels, inputs = baseline_levels(long, econ, "MS", z_grid=(0.0, 2.0), n_windows=4)
    assert set(levels) == {"textbook", "AutoETS", "CrostonSBA"}
    assert all(v.shape == (2, 6) for v in levels.values())
    short = inputs.set_index(["model", "unique_id"])["rmse_source"]
    assert short.loc[("AutoETS", "I05")].startswith("history std")
    assert (short.drop("I05", level="unique_id") == "backtest").all()
    assert (levels["CrostonSBA"][1] >= levels["CrostonSBA"][0]).all()


def test_backtest_is_reused_when_it_holds_the_models():
    history, _, ids, items = _panel(n=5, T=30, hold=0)
    ds = pd.date_range("2020-01-01", periods=30, freq="MS")
    long = pd.DataFrame({"unique_id": np.repeat(ids, 30), "ds": np.tile(ds, 5), "y": history.ravel()})
    econ = Economics.from_items(items, ids, "MS")
    cv = Forecaster(ForecastConfig(models=("AutoETS", "CrostonSBA", "Naive"), freq="MS")).cross_validation(
        long, h=2, n_windows=5
    )
    fresh = forecast_baseline_inputs(long, econ, "MS", n_windows=5)
    reused = forecast_baseline_inputs(long, econ, "MS", n_windows=5, cv=cv)
    pd.testing.assert_frame_equal(fresh, reused)
    other = forecast_baseline_inputs(long, econ, "MS", n_windows=5, cv=cv.assign(CrostonSBA=0.0))
    assert not np.allclose(other.query("model == 'CrostonSBA'")["rmse"], fresh.query("model == 'CrostonSBA'")["rmse"])


def test_replay_of_sampled_paths_equals_replay_path_by_path(econ, actual):
    paths = np.stack([actual, actual[:, ::-1], np.roll(actual, 3, axis=1)])
    policies = [policies_from_table(POLICIES, econ)] * 3
    batch = replay(paths, policies, econ, replan=4)
    for p in range(3):
        one = replay(paths[p], policies, econ, replan=4)
        for kpi in ("csl", "fill_rate", "avg_on_hand", "cost"):
            assert batch[kpi][p] == pytest.approx(one[kpi], nan_ok=True)


def test_value_at_the_top_of_a_frontier_reads_its_top_point():
    from policy_selector.decision_eval import _value_at

    frontier = pd.DataFrame({"z": [0.0, 1.0, 2.0], "csl": [0.8, 0.9, 0.95], "inventory_value": [10.0, 20.0, 40.0]})
    # a service equal to the top up to rounding crashed with IndexError (searchsorted past the end)
    assert _value_at(frontier, "csl", 0.95 + 5e-13) == 40.0
    assert _value_at(frontier, "csl", 0.925) == pytest.approx(30.0)
    assert np.isnan(_value_at(frontier, "csl", 0.96))
