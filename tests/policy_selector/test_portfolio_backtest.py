"""Portfolio targets raised by the allocation's held-out shortfall at an earlier origin."""

import numpy as np
import pandas as pd
import pytest

from optimization import ServiceType
from policy_selector import recommend_policies
from policy_selector.decision_eval import replay_table
from policy_selector.portfolio import (
    FACTOR_BOUNDS,
    MAX_TARGET,
    MIN_BACKTEST_ITEMS,
    ItemCurves,
    _backtest_table,
    _calibration,
    allocate_levels,
    backtest_target,
    calibrate_curves,
    calibration_groups,
    item_curves,
    portfolio_policy,
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
    # with the curve calibration (the default) the same uncorrected allocation is replayed first:
    # its pooled factor is the ratio of the replayed to the modelled shortfall from full service
    check = backtest_target(None, demand, tiny_demo.items, tiny_config, np.random.default_rng(0), 0.9, periods=periods)
    pooled = check.calibration.set_index("group").loc["all"]
    assert pooled["achieved"] == pytest.approx(kpis.loc[sold, "csl"].mean())
    assert pooled["model"] == pytest.approx(surge["model"])
    assert pooled["factor"] == pytest.approx(np.clip((1 - pooled["achieved"]) / (1 - pooled["model"]), *FACTOR_BOUNDS))
    assert pooled["factor"] > 1.5 and check.factors["all"] == pooled["factor"]
    # the corrected allocation at the same target holds more where the model was optimistic and serves more
    corrected = check.table.set_index("segment").loc["all"]
    assert corrected["achieved"] > surge["achieved"] + 0.02 and corrected["raise_by"] <= surge["raise_by"]


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


def _hull(value, service):
    from optimization.allocation import concave_hull

    return [concave_hull(v, sv).tolist() for v, sv in zip(value, service)]


@pytest.mark.parametrize("measure", ["csl", "fill_rate"])
def test_calibrated_curves_keep_their_shape_and_the_target_is_met_in_the_corrected_model(recs, tiny_config, measure):
    data, rec = recs
    curves = item_curves(data, rec, tiny_config, ServiceType(measure))
    groups = calibration_groups(rec)
    assert list(groups) == [f"{c}|{b}" for c, b in zip(rec["candidate"], rec["sbc_class"])]
    assert calibrate_curves(curves, groups, None) is curves
    stocked = np.isfinite(curves.level).any(axis=1)
    values = {}
    for k in (0.5, 1.0, 2.0):
        cal = calibrate_curves(curves, groups, {"all": k})
        assert np.allclose(cal.service[stocked], 1 - k * (1 - curves.service[stocked]), equal_nan=True)
        assert _hull(cal.value[stocked], cal.service[stocked]) == _hull(curves.value[stocked], curves.service[stocked])
        out, alloc = portfolio_policy(data, rec, tiny_config, 0.9, measure, factors={"all": k})
        levels, _ = allocate_levels(cal, 0.9)
        assert np.allclose(
            out["reorder_point"].where(stocked),
            rec["reorder_point"].where(stocked) + np.nan_to_num(levels - curves.current),
            equal_nan=True,
        )
        assert alloc["all"].reached and alloc["all"].service >= 0.9 - 1e-9
        values[k] = alloc["all"].value
    assert values[0.5] <= values[1.0] <= values[2.0]  # a more optimistic model costs more to correct
    # a group's own factor moves that group's curves only; the others take the pooled one
    g0 = groups[stocked][0]
    cal = calibrate_curves(curves, groups, {g0: 3.0, "all": 1.0})
    mine = stocked & (groups == g0)
    assert np.allclose(cal.service[mine], 1 - 3 * (1 - curves.service[mine]))
    assert np.allclose(cal.service[stocked & ~mine], curves.service[stocked & ~mine])


def test_calibration_factor_is_the_ratio_of_shortfalls_pooled_for_small_groups():
    n_big, n_small = MIN_BACKTEST_ITEMS + 10, 5
    n = 2 * n_big + n_small
    groups = np.array(["a"] * n_big + ["b"] * n_big + ["c"] * n_small, dtype=object)
    level = np.tile(np.array([0.0, 1.0, 2.0]), (n, 1))
    service = np.tile(np.array([0.5, 0.9, 1.0]), (n, 1))
    curves = ItemCurves(np.arange(n).astype(str), level, service, level * 2.0, np.ones(n), np.ones(n))
    levels = np.ones(n)  # every item at the model's 0.9
    csl = np.where(groups == "a", 0.7, np.where(groups == "b", 0.95, 0.0))  # a: 3x the shortfall, b: half
    kpis = pd.DataFrame({"csl": csl, "demand": 1.0, "served": 1.0})
    table = _calibration(curves, levels, kpis, groups, ServiceType.CSL).set_index("group")
    assert table.loc["a", "model"] == pytest.approx(0.9) and table.loc["a", "achieved"] == pytest.approx(0.7)
    assert table.loc["a", "factor"] == pytest.approx(3.0)
    assert table.loc["b", "factor"] == pytest.approx(FACTOR_BOUNDS[0])  # 0.5: the lower bound itself
    pooled = (1 - csl.mean()) / 0.1
    assert table.loc["all", "factor"] == pytest.approx(pooled)
    assert table.loc["c", "items"] == n_small and table.loc["c", "factor"] == pytest.approx(pooled)
    kpis = kpis.assign(csl=0.0)  # a shortfall ten times the model's is bounded
    assert _calibration(curves, levels, kpis, groups, ServiceType.CSL)["factor"].max() == FACTOR_BOUNDS[1]
