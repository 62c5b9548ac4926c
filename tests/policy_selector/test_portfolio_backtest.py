"""Portfolio targets raised by the allocation's held-out shortfall at an earlier origin."""

import numpy as np
import pandas as pd
import pytest

from optimization import ServiceType
from policy_selector import recommend_policies
from policy_selector.decision_eval import replay_table
from policy_selector.portfolio import MAX_TARGET, portfolio_policy
from policy_selector.service_curves import calibration_groups, group_scale, item_curves
from policy_selector.service_target import (
    MIN_BACKTEST_ITEMS,
    _backtest_table,
    _calibration,
    backtest_target,
    recommend_with_target,
)


@pytest.fixture(scope="module")
def recs(labelled, tiny_demo, tiny_config, cutoff):
    rec = recommend_policies(
        None, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0), cutoff=cutoff
    )
    return labelled[0], rec


def _model_service(data, out, config, measure="csl"):
    curves = item_curves(data, out, config, ServiceType(measure))
    col = np.argmax(curves.level == curves.current[:, None], axis=1)
    s = curves.service[np.arange(len(col)), col]
    ok = np.isfinite(s)
    return (curves.weight[ok] * s[ok]).sum() / curves.weight[ok].sum()


def test_raised_target_is_met_in_the_allocations_model_and_capped(recs, tiny_config):
    data, rec = recs
    plain, a0 = portfolio_policy(data, rec, tiny_config, 0.85)
    raised, a1 = portfolio_policy(data, rec, tiny_config, 0.85, raise_by={"all": 0.07})
    assert a0["all"].service >= 0.85 - 1e-9 and a1["all"].service >= 0.92 - 1e-9
    assert _model_service(data, raised, tiny_config) == pytest.approx(a1["all"].service, abs=1e-9)
    assert a1["all"].value > a0["all"].value
    moved = raised["service_mode"].eq("portfolio")
    assert (raised.loc[moved, "service_target"] == 0.85).all()  # the user's target, not the raised one
    capped, a2 = portfolio_policy(data, rec, tiny_config, 0.85, raise_by={"all": 0.5})
    top, a3 = portfolio_policy(data, rec, tiny_config, MAX_TARGET)
    assert a2["all"].value == pytest.approx(a3["all"].value)  # 1.35 is asked as MAX_TARGET


def test_raise_is_the_first_grid_target_whose_replay_reaches_the_target():
    grid = np.array([0.95, 0.96, 0.97, 0.98])
    achieved = {
        "short": [0.92, 0.94, 0.96, 0.97],  # reaches 0.95 halfway from 0.96 to 0.97
        "over": [0.97, 0.98, 0.99, 0.99],  # served above the target already: never lowered
        "never": [0.80, 0.82, 0.85, 0.86],  # the whole grid
        "small": [0.50, 0.60, 0.70, 0.80],  # too few items: the pooled raise
        "all": [0.93, 0.95, 0.96, 0.97],
    }
    n = MIN_BACKTEST_ITEMS
    count = {"short": n, "over": n, "never": n, "small": n - 1, "all": 4 * n}
    model = dict.fromkeys(achieved, 0.95)
    table = _backtest_table(grid, model, achieved, count, 0.95).set_index("segment")
    assert table.loc["short", "raise_by"] == pytest.approx(0.015)
    assert table.loc["short", "shortfall"] == pytest.approx(0.03)
    assert table.loc["over", "raise_by"] == 0.0 and table.loc["over", "shortfall"] == pytest.approx(-0.02)
    assert table.loc["never", "raise_by"] == pytest.approx(0.03)
    assert table.loc["small", "raise_by"] == pytest.approx(0.01) == table.loc["all", "raise_by"]
    assert table.loc["small", "achieved"] == 0.5


def _surged(demand, periods, factor):
    dates = np.sort(demand["ds"].unique())
    late = demand["ds"].isin(dates[-periods:])
    return demand.assign(y=np.where(late, np.round(demand["y"] * factor), demand["y"]))


def test_backtest_finds_the_shortfall_of_a_planted_surge_and_replays_it(tiny_demo, tiny_config):
    """Demand that surges after the earlier origin: the allocation promised 0.9 in its model and the replay
    of the same levels on the actual demand gives far less; the measured shortfall says so."""
    periods = 12
    dates = np.sort(tiny_demo.demand["ds"].unique())
    rows = {}
    for factor in (1.0, 3.0):
        demand = _surged(tiny_demo.demand, periods, factor)
        check = backtest_target(
            None, demand, tiny_demo.items, tiny_config, np.random.default_rng(0), 0.9, periods=periods, calibrate=False
        )
        assert check.reason is None and check.origin == pd.Timestamp(dates[-periods - 1])
        assert check.calibration is None and check.factors is None
        rows[factor] = check.table.set_index("segment").loc["all"]
    steady, surge = rows[1.0], rows[3.0]
    assert steady["model"] == pytest.approx(0.9, abs=0.02) == surge["model"]
    assert surge["achieved"] < steady["achieved"] - 0.1
    assert surge["shortfall"] > 0.1 and surge["raise_by"] > steady["raise_by"]
    # the replayed service is what a hand replay of the earlier allocation on the surged periods gives
    demand = _surged(tiny_demo.demand, periods, 3.0)
    origin = pd.Timestamp(dates[-periods - 1])
    from policy_selector.context import prepare_cutoff

    data = prepare_cutoff(demand, tiny_demo.items, origin, tiny_config)
    rec = recommend_policies(None, demand, tiny_demo.items, tiny_config, np.random.default_rng(0), cutoff=origin)
    out, _ = portfolio_policy(data, rec, tiny_config, 0.9)
    actual = demand[demand["ds"] > origin].pivot(index="unique_id", columns="ds", values="y").reindex(data.ids)
    kpis = replay_table(actual.fillna(0.0).to_numpy(), [out], data.economics)
    sold = (kpis["demand"] > 0).to_numpy() & out["service_mode"].eq("portfolio").to_numpy()
    assert surge["achieved"] == pytest.approx(kpis.loc[sold, "csl"].mean())
    # a CSL target is not calibrated; a fill-rate target replays the uncorrected allocation first:
    # demand that tripled gives a pooled demand scale well above 1
    rng = np.random.default_rng(0)
    assert backtest_target(None, demand, tiny_demo.items, tiny_config, rng, 0.9, periods=periods).calibration is None
    kw = dict(periods=periods, measure="fill_rate")
    plain = backtest_target(None, demand, tiny_demo.items, tiny_config, rng, 0.9, calibrate=False, **kw)
    check = backtest_target(None, demand, tiny_demo.items, tiny_config, rng, 0.9, **kw)
    out, _ = portfolio_policy(data, rec, tiny_config, 0.9, "fill_rate")
    kpis = replay_table(actual.fillna(0.0).to_numpy(), [out], data.economics)
    moved = out["service_mode"].eq("portfolio").to_numpy()
    pooled = check.calibration.set_index("group").loc["all"]
    assert pooled["achieved"] == pytest.approx(kpis.loc[moved, "served"].sum() / kpis.loc[moved, "demand"].sum())
    assert pooled["model"] == pytest.approx(plain.table.set_index("segment").loc["all", "model"])
    assert pooled["model"] > pooled["achieved"] + 0.1 and pooled["factor"] > 1.5
    assert check.factors["all"] == pooled["factor"]
    # the corrected allocation at the same target holds more where the model was optimistic and serves more
    before, after = plain.table.set_index("segment").loc["all"], check.table.set_index("segment").loc["all"]
    assert after["achieved"] > before["achieved"] + 0.02 and after["raise_by"] <= before["raise_by"]


def test_too_short_history_gives_a_reason_and_no_raise(tiny_demo, tiny_config):
    n = tiny_demo.demand["ds"].nunique()
    check = backtest_target(
        None, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0), 0.9, periods=n
    )
    assert check.origin is None and check.raise_by == {}
    assert check.reason == f"{n} periods of history leave none before an earlier origin"
    check = backtest_target(
        None, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0), 0.9, periods=n - 3
    )
    assert check.raise_by == {} and "no series has history for a forecast backtest" in check.reason


def test_recommend_with_target_allocates_to_the_raised_target(tiny_demo, tiny_config):
    demand = _surged(tiny_demo.demand, 12, 2.0)
    out, alloc = recommend_with_target(None, demand, tiny_demo.items, tiny_config, np.random.default_rng(0), 0.85)
    bt = out.attrs["target_backtest"]
    raise_by = dict(zip(bt["segment"], bt["raise_by"]))["all"]
    assert bt["origin"][0] is not None and raise_by > 0
    assert alloc["all"].service >= min(0.85 + raise_by, MAX_TARGET) - 1e-9
    plain, a0 = recommend_with_target(
        None, demand, tiny_demo.items, tiny_config, np.random.default_rng(0), 0.85, backtest=False
    )
    assert "target_backtest" not in plain.attrs and a0["all"].value < alloc["all"].value


@pytest.mark.parametrize("measure", ["csl", "fill_rate"])
def test_scaled_demand_lowers_the_curves_and_the_target_is_met_in_the_corrected_model(recs, tiny_config, measure):
    data, rec = recs
    groups = calibration_groups(rec)
    assert list(groups) == [f"{c}|{b}" for c, b in zip(rec["candidate"], rec["sbc_class"])]
    assert group_scale(groups, None) is None
    g0 = groups[rec["policy"].ne("no_stock").to_numpy()][0]
    scale = group_scale(groups, {g0: 3.0, "all": 1.5})
    assert np.all(scale == np.where(groups == g0, 3.0, 1.5))  # a group without its own factor: the pooled one
    base = item_curves(data, rec, tiny_config, ServiceType(measure))
    stocked = np.isfinite(base.level).any(axis=1)
    col = np.argmax(base.level == base.current[:, None], axis=1)
    at_level, values = {}, {}
    for m in (0.7, 1.0, 2.0):
        curves = item_curves(data, rec, tiny_config, ServiceType(measure), np.full(len(rec), m))
        c = np.argmax(curves.level == curves.current[:, None], axis=1)
        at_level[m] = curves.service[np.arange(len(rec)), c][stocked]  # the per-item level is a point of every curve
        if measure == "fill_rate":  # a group whose demand runs higher weighs more in the portfolio fill rate
            assert curves.weight[stocked] == pytest.approx(m * base.weight[stocked])
        out, alloc = portfolio_policy(data, rec, tiny_config, 0.9, measure, factors={"all": m})
        assert alloc["all"].reached and alloc["all"].service >= 0.9 - 1e-9
        values[m] = alloc["all"].value
    assert at_level[1.0] == pytest.approx(base.service[np.arange(len(rec)), col][stocked])
    assert np.all(at_level[0.7] >= at_level[1.0] - 1e-9) and np.all(at_level[2.0] <= at_level[1.0] + 1e-9)
    assert (at_level[2.0] < at_level[1.0] - 1e-6).any()
    assert values[0.7] <= values[1.0] < values[2.0]  # demand running higher than modelled costs stock


def test_calibration_reads_the_demand_scale_at_which_the_model_serves_the_replay(recs, tiny_config):
    data, rec = recs
    out, _ = portfolio_policy(data, rec, tiny_config, 0.9, "fill_rate")
    moved = out["service_mode"].ne("item").to_numpy()
    groups = np.where(np.arange(len(rec)) % 2 == 0, "even", "odd").astype(object)
    # a replay that served exactly what the model serves with 1.6x the demand
    curves = item_curves(data, out, tiny_config, ServiceType.FILL_RATE, np.full(len(rec), 1.6))
    col = np.argmax(curves.level == curves.current[:, None], axis=1)
    fill = np.nan_to_num(curves.service[np.arange(len(rec)), col])
    demand = np.where(moved, curves.weight, 0.0)
    kpis = pd.DataFrame({"demand": demand, "served": fill * demand, "csl": 1.0})
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr("policy_selector.service_target.MIN_BACKTEST_ITEMS", 1)
        table = _calibration(data, out, tiny_config, kpis, groups, ServiceType.FILL_RATE).set_index("group")
    assert table["factor"].to_numpy() == pytest.approx(1.6, abs=1e-6)
    assert (table["model"] > table["achieved"]).all()
    # a replay that served more than the model: the curves are kept (a factor never below 1)
    better = _calibration(data, out, tiny_config, kpis.assign(served=demand), groups, ServiceType.FILL_RATE)
    assert (better["factor"] == 1.0).all() and (better["achieved"] == 1.0).all()
    # too few items with demand: the pooled factor
    small = _calibration(data, out, tiny_config, kpis, groups, ServiceType.FILL_RATE).set_index("group")
    assert small.loc["all", "factor"] == pytest.approx(1.6, abs=1e-6)
    few = small["items"] < MIN_BACKTEST_ITEMS
    assert few.any() and (small.loc[few, "factor"] == small.loc["all", "factor"]).all()
