"""Simulator: analytic answers, stockpyl agreement, conservation of units, errors."""

from __future__ import annotations

from dataclasses import fields

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from optimization.distributions import NormalDemand, poisson_demand
from optimization.events import simulate_events
from optimization.policies import (
    PolicyParams,
    base_stock_policy,
    mixed_policies,
    no_stock_policy,
    r_s_policy,
    r_s_s_policy,
    s_q_policy,
    stack_policies,
)
from optimization.simulator import CostParams, InitialState, sample_lead_times, simulate

# ----------------------------------------------------------------- analytic answers


def _exact_fill_rate(dist_lp1, dist_l, level, mean):
    """Backorder base-stock fill rate: 1 - (n_{L+1}(S) - n_L(S)) / mu (Zipkin 2000, sec. 6.2)."""
    return 1.0 - (dist_lp1.loss(level) - dist_l.loss(level)) / mean


def test_base_stock_normal_reaches_theoretical_csl_and_fill_rate():
    rng = np.random.default_rng(11)
    n, T, L, mu, sd = 200, 3000, 2, 100.0, 15.0
    demand = np.maximum(rng.normal(mu, sd, size=(n, T)), 0.0)  # P(D < 0) ~ 1e-11
    h = (L + 1) * np.ones(n)
    dist = NormalDemand(mu * h, sd * np.sqrt(h))
    S = dist.quantile(0.90)
    res = simulate(demand, base_stock_policy(S), L, warmup=10)
    csl_theory = 0.90
    fill_theory = _exact_fill_rate(dist, NormalDemand([mu * L], [sd * np.sqrt(L)]), S[0], mu)
    # stockouts are autocorrelated over L+1 periods: standard error ~ sqrt(p(1-p)(L+1)/N)
    se_csl = np.sqrt(0.9 * 0.1 * (L + 1) / (n * T))
    assert res.csl.mean() == pytest.approx(csl_theory, abs=5 * se_csl)
    assert res.fill_rate.mean() == pytest.approx(fill_theory, abs=0.002)


def test_base_stock_poisson_reaches_theoretical_csl_and_fill_rate():
    rng = np.random.default_rng(12)
    n, T, L, lam, S = 200, 3000, 1, 4.0, 11.0
    demand = rng.poisson(lam, size=(n, T)).astype(float)
    res = simulate(demand, base_stock_policy(np.full(n, S)), L, warmup=10)
    csl_theory = stats.poisson.cdf(S, lam * (L + 1))
    fill_theory = _exact_fill_rate(poisson_demand([lam * (L + 1)]), poisson_demand([lam * L]), S, lam)[0]
    se = np.sqrt(csl_theory * (1 - csl_theory) * (L + 1) / (n * T))
    assert res.csl.mean() == pytest.approx(csl_theory, abs=5 * se)
    assert res.fill_rate.mean() == pytest.approx(fill_theory, abs=0.002)
    # average on hand = E[(S - D_{L+1})^+] = S - mu_{L+1} + n_{L+1}(S)
    on_hand_theory = S - lam * (L + 1) + poisson_demand([lam * (L + 1)]).loss([S])[0]
    assert res.avg_on_hand.mean() == pytest.approx(on_hand_theory, rel=0.01)


def test_newsvendor_level_minimises_simulated_cost():
    """Base stock at the critical ratio b/(b+h) beats +-2 units in simulation (Snyder & Shen Thm 4.2)."""
    rng = np.random.default_rng(5)
    demand = rng.poisson(6.0, size=(4, 15_000)).astype(float)
    costs = CostParams(holding_cost=1.0, backorder_cost=4.0)
    levels = np.array([6.0, 7.0, 8.0, 9.0, 10.0])  # Example 4.7: S* = 8 for L = 0
    batch = stack_policies([base_stock_policy([s]) for s in levels])
    res = simulate(demand, batch, 0, costs=costs)
    total = (res.cost_holding + res.cost_shortage).mean(axis=1) / res.n_periods
    assert levels[total.argmin()] == 8.0
    assert total.min() == pytest.approx(3.5701069457709416, rel=0.02)


# ----------------------------------------------------------------- stockpyl agreement


@pytest.mark.parametrize(
    ("sp_policy", "ours", "initial"),
    [
        ({"policy_type": "BS", "base_stock_level": 14}, base_stock_policy([14.0]), 14.0),
        ({"policy_type": "sS", "reorder_point": 6, "order_up_to_level": 20}, r_s_s_policy(1, [6.0], [20.0]), 20.0),
        ({"policy_type": "rQ", "reorder_point": 6, "order_quantity": 12}, s_q_policy([6.0], [12.0]), 18.0),
    ],
)
@pytest.mark.parametrize("sp_lead", [1, 3])
def test_agrees_with_stockpyl_simulator(sp_policy, ours, initial, sp_lead):
    """Same demand path, same policy: identical inventory levels, costs and fill rate.

    stockpyl orders at the end of period t (after demand) with shipment lead time
    L_sp, usable in period t + L_sp; our decision at the start of t + 1 with lead time
    L_sp - 1 sees the same information and receives at the same time.
    """
    sim = pytest.importorskip("stockpyl.sim")
    from stockpyl.supply_chain_network import single_stage_system

    T = 150
    demand = np.random.default_rng(3).poisson(5, T).astype(float)
    net = single_stage_system(
        holding_cost=1.0,
        stockout_cost=4.0,
        demand_type="D",
        demand_list=list(demand),
        shipment_lead_time=sp_lead,
        initial_inventory_level=initial,
        **sp_policy,
    )
    sp_cost = sim.simulation(net, T, rand_seed=1, progress_bar=False)
    states = net.nodes[0].state_vars
    sp_level = np.array([states[t].inventory_level[-1000] for t in range(T)])

    start = InitialState(on_hand=[initial])
    events = simulate_events(demand[None, :], ours, sp_lead - 1, initial=start)
    res = simulate(
        demand[None, :], ours, sp_lead - 1, initial=start, costs=CostParams(holding_cost=1.0, backorder_cost=4.0)
    )
    np.testing.assert_allclose((events["on_hand"] - events["backlog"]).to_numpy(), sp_level)
    assert (res.cost_holding + res.cost_shortage)[0] == pytest.approx(sp_cost)
    assert res.fill_rate[0] == pytest.approx(states[T - 1].fill_rate[-1000])


# ----------------------------------------------------------------- conservation


def _random_case(seed: int):
    rng = np.random.default_rng(seed)
    n, T = 12, 80
    demand = rng.poisson(rng.uniform(0.3, 8.0, size=(n, 1)), size=(n, T)).astype(float)
    types = rng.choice(["s_Q", "R_S", "R_s_S", "base_stock", "no_stock"], size=n)
    policy = mixed_policies(
        types,
        review_period=rng.integers(1, 4, n),
        reorder_level=rng.uniform(0, 10, n),
        order_up_to=rng.uniform(10, 40, n),
        order_quantity=rng.uniform(1, 15, n),
        moq=rng.choice([0.0, 5.0], n),
        order_multiple=rng.choice([0.0, 4.0], n),
        lost_sales=rng.random(n) < 0.5,
    )
    lead = rng.integers(0, 4, n)
    initial = InitialState(
        on_hand=rng.uniform(0, 20, n), backlog=rng.uniform(0, 3, n), pipeline=rng.uniform(0, 5, (n, 2))
    )
    return demand, policy, lead, initial, rng


@pytest.mark.parametrize("seed", range(6))
@pytest.mark.parametrize("variant", ["fixed", "sampled_cross", "sampled_no_cross", "shelf_life"])
def test_every_unit_is_accounted_for(seed, variant):
    demand, policy, lead, initial, rng = _random_case(seed)
    kwargs = {}
    if variant.startswith("sampled"):
        kwargs["sampled_lead_times"] = sample_lead_times(2.0, 1.5, demand.shape, rng)
        kwargs["orders_cross"] = variant == "sampled_cross"
    if variant == "shelf_life":
        kwargs["shelf_life"] = rng.choice([0, 1, 3, 6], size=demand.shape[0])
    res = simulate(demand, policy, np.maximum(lead, 1), initial=initial, **kwargs)
    stock_in = res.initial_on_hand + res.received
    stock_out = res.served + res.backorders_filled + res.ending_on_hand + res.expired
    np.testing.assert_allclose(stock_in, stock_out, atol=1e-8)
    np.testing.assert_allclose(res.demand, res.served + res.lost + res.new_backorders, atol=1e-8)
    np.testing.assert_allclose(
        res.ending_backlog, res.initial_backlog + res.new_backorders - res.backorders_filled, atol=1e-8
    )
    np.testing.assert_allclose(res.initial_on_order + res.ordered, res.received + res.ending_on_order, atol=1e-8)
    assert (res.ending_on_hand >= -1e-9).all() and (res.ending_backlog >= -1e-9).all()
    if variant != "shelf_life":
        assert (res.expired == 0).all()


def test_shelf_life_expires_oldest_first():
    # 10 fresh units, shelf life 3, demand 2 then nothing: 8 expire at the end of period 2
    res = simulate(
        [[2.0, 0.0, 0.0, 0.0]],
        no_stock_policy(1),
        1,
        initial=InitialState(on_hand=[10.0]),
        shelf_life=[3],
        costs=CostParams(expiry_cost=1.5),
    )
    assert res.expired[0] == 8.0
    assert res.cost_expiration[0] == 12.0
    events = simulate_events(
        [[0.0, 0.0, 0.0, 4.0, 0.0]],
        base_stock_policy([6.0]),
        1,
        initial=InitialState(on_hand=[6.0], pipeline=[[0.0, 3.0]]),
        shelf_life=[3],
    )
    # lot of 6 (age 0 at t=0) expires at the end of t=2; the lot of 3 received at t=1 serves t=3
    assert events["expired"].tolist()[:3] == [0.0, 0.0, 6.0]
    assert events["served"].tolist()[3] == 3.0


def _perishable_case(seed: int):
    """A batch of 3 paths x 12 items of every policy type, a few with a shelf life (0: none)."""
    demand, policy, lead, initial, rng = _random_case(seed)
    paths = np.stack([demand, np.roll(demand, 5, axis=1), demand[::-1]])
    shelf = np.where(rng.random(demand.shape[0]) < 0.3, rng.integers(1, 8, demand.shape[0]), 0)
    kwargs = dict(
        initial=initial,
        sampled_lead_times=sample_lead_times(2.0, 1.5, paths.shape, rng),
        shelf_life=shelf,
        costs=CostParams(holding_cost=0.2, expiry_cost=1.5, shortage_cost=3.0),
    )
    return paths, policy, np.maximum(lead, 1), kwargs


@pytest.mark.parametrize("seed", range(4))
def test_lots_kept_for_perishable_items_only_give_the_whole_block_bookkeeping(seed, monkeypatch):
    """Only items with a shelf life carry lots by age; every result and event equals main's
    bookkeeping of every item's lots (benchmarks.policy_step.MainLots), bit for bit."""
    from benchmarks.policy_step import MainLots
    from optimization import sim_engine

    paths, policy, lead, kwargs = _perishable_case(seed)
    new, new_events = simulate(paths, policy, lead, **kwargs), simulate_events(paths, policy, lead, **kwargs)
    monkeypatch.setattr(sim_engine, "_Lots", MainLots)
    old, old_events = simulate(paths, policy, lead, **kwargs), simulate_events(paths, policy, lead, **kwargs)
    assert (old.expired > 0).any()  # the case exercises expiry
    for name in sim_engine._ARRAYS:
        np.testing.assert_array_equal(getattr(new, name), getattr(old, name), err_msg=name)
    pd.testing.assert_frame_equal(new_events, old_events, check_exact=True)


def test_a_perishable_items_outcome_does_not_depend_on_the_rest_of_its_block():
    paths, policy, lead, kwargs = _perishable_case(1)
    shelf = kwargs["shelf_life"]
    i = int(np.flatnonzero(shelf > 0)[0])
    alone = simulate(
        paths[:, i : i + 1],
        PolicyParams(**{f.name: np.asarray(getattr(policy, f.name))[i : i + 1] for f in fields(PolicyParams)}),
        lead[i : i + 1],
        initial=InitialState(**{k: v[i : i + 1] for k, v in vars(kwargs["initial"]).items()}),
        sampled_lead_times=kwargs["sampled_lead_times"][:, i : i + 1],
        shelf_life=shelf[i : i + 1],
        costs=kwargs["costs"],
    )
    together = simulate(paths, policy, lead, **kwargs)
    np.testing.assert_array_equal(alone.expired[:, 0], together.expired[:, i])
    np.testing.assert_array_equal(alone.cost_total[:, 0], together.cost_total[:, i])


def test_orders_cross_only_when_allowed():
    lt = np.array([[3, 0, 1, 1, 1, 1]])
    demand = np.array([[5.0, 4.0, 0.0, 0.0, 0.0, 0.0]])
    common = dict(initial=InitialState(on_hand=[0.0]), sampled_lead_times=lt)
    policy = base_stock_policy([5.0])
    cross = simulate_events(demand, policy, 3, orders_cross=True, **common)
    fifo = simulate_events(demand, policy, 3, orders_cross=False, **common)
    # t=0 orders 5 (lead 3) and backorders 5; t=1 orders 5 with lead 0:
    # crossing receives it at once, sequential delivery waits for t=3
    # (t=2 orders 4 with lead 1: due at t=3 either way)
    assert cross["received"].tolist()[:4] == [0.0, 5.0, 0.0, 9.0]
    assert fifo["received"].tolist()[:4] == [0.0, 0.0, 0.0, 14.0]


def test_moq_multiples_and_review_period():
    demand = np.full((1, 12), 3.0)
    ev = simulate_events(
        demand, r_s_policy(3, [20.0], moq=10.0, order_multiple=4.0), 1, initial=InitialState(on_hand=[12.0])
    )
    orders = ev["ordered"].to_numpy()
    assert (orders[np.arange(12) % 3 != 0] == 0).all()
    placed = orders[orders > 0]
    assert ((placed >= 10) & (placed % 4 == 0)).all()


def test_lost_sales_do_not_backlog():
    res = simulate([[5.0, 5.0, 5.0]], no_stock_policy(1, lost_sales=True), 1, costs=CostParams(shortage_cost=2.0))
    assert res.lost[0] == 15.0 and res.ending_backlog[0] == 0.0
    assert res.fill_rate[0] == 0.0 and res.cost_shortage[0] == 30.0 and res.n_orders[0] == 0


def test_make_to_order_ships_after_lead_time():
    ev = simulate_events([[4.0, 0.0, 0.0]], no_stock_policy(1), 2)
    assert ev["backorders_filled"].tolist() == [0.0, 0.0, 0.0]
    res = simulate([[4.0, 0.0, 0.0, 0.0]], no_stock_policy(1), 2)
    assert res.backorders_filled[0] == 4.0 and res.ending_backlog[0] == 0.0


def test_batch_axis_equals_separate_runs():
    demand, policy, lead, initial, _ = _random_case(0)
    other = mixed_policies(["R_S"] * demand.shape[0], review_period=2, order_up_to=15.0)
    batch = simulate(demand, stack_policies([policy, other]), lead, initial=initial)
    one = simulate(demand, other, lead, initial=initial)
    np.testing.assert_allclose(batch.avg_on_hand[1], one.avg_on_hand)
    np.testing.assert_allclose(batch.cost_total[1], one.cost_total)


def test_inputs_are_not_mutated():
    demand = np.ones((2, 5))
    before = demand.copy()
    simulate(demand, base_stock_policy([1.0, 2.0]), 1)
    np.testing.assert_array_equal(demand, before)


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"demand": [[1.0, np.nan]]}, ValueError, r"NaN/inf\) \(first in period 1\) for items at positions \[0\]"),
        (
            {"demand": [[1.0, -2.0]]},
            ValueError,
            r"demand must be >= 0 \(first in period 1\) for items at positions \[0\]",
        ),
        ({"demand": [1.0, 2.0]}, ValueError, r"shape \(\.\.\., n_items, n_periods\)"),
        ({"demand": np.ones((3, 4))}, ValueError, r"do not broadcast"),
        ({"lead_time": -1}, ValueError, r"lead_time must be >= 0"),
        ({"lead_time": 1.5}, ValueError, r"whole periods"),
        ({"warmup": 4}, ValueError, r"warmup must be in \[0, 4\)"),
        ({"policy": {"S": 1}}, TypeError, r"policy must be PolicyParams, got dict"),
        ({"costs": {"holding_cost": 1}}, TypeError, r"costs must be CostParams"),
        ({"sampled_lead_times": np.ones((2, 3), dtype=int)}, ValueError, r"last axis n_periods=4"),
    ],
)
def test_errors(kwargs, error, match):
    args = {"demand": np.ones((2, 4)), "policy": base_stock_policy([1.0, 2.0]), "lead_time": 1} | kwargs
    demand, policy, lead = args.pop("demand"), args.pop("policy"), args.pop("lead_time")
    with pytest.raises(error, match=match):
        simulate(demand, policy, lead, **args)


def test_negative_cost_rejected():
    with pytest.raises(ValueError, match=r"cost holding_cost must be finite and >= 0"):
        CostParams(holding_cost=-1.0)


@pytest.mark.parametrize("warmup", [0, 7])
def test_fast_path_equals_general_path(warmup):
    """The base-stock fast path and the general engine give the same result field by field."""
    from optimization.sim_engine import _run
    from optimization.simulator import _prepare

    rng = np.random.default_rng(8)
    n = 40_000  # more than one block of items
    demand = rng.poisson(rng.uniform(0.2, 6, size=(n, 1)), size=(n, 30)).astype(float)
    policy = base_stock_policy(rng.integers(0, 20, n).astype(float))
    initial = InitialState(
        on_hand=rng.uniform(0, 10, n), backlog=rng.uniform(0, 2, n), pipeline=rng.uniform(0, 3, (n, 3))
    )
    costs = CostParams(holding_cost=0.3, shortage_cost=2.0, backorder_cost=0.5, unit_cost=1.0)
    x = _prepare(demand, policy, 2, costs, initial, None, True, None, warmup)
    fast, general = _run(x, fast=True), _run(x, fast=False)
    for name in fast.__dataclass_fields__:
        np.testing.assert_allclose(getattr(fast, name), getattr(general, name), atol=1e-9, err_msg=name)


# ----------------------------------------------------------------- (s, S) and lead-time variability


def _period_cost(res):
    return (res.cost_holding + res.cost_shortage + res.cost_ordering).mean(axis=-1) / res.n_periods


def test_s_S_matches_zheng_federgruen_exact_cost():
    """Snyder & Shen (s, S) example (stockpyl ss.py doctest): Poisson(6), h=1, p=4, K=5:
    optimum (4, 10) with exact cost 8.0341 (Zheng & Federgruen 1991); neighbours cost more."""
    demand = np.random.default_rng(1).poisson(6, size=(1, 400, 800)).astype(float)
    batch = stack_policies(
        [
            r_s_s_policy(1, [4.0], [10.0]),
            r_s_s_policy(1, [3.0], [10.0]),
            r_s_s_policy(1, [4.0], [11.0]),
            r_s_s_policy(1, [5.0], [10.0]),
        ]
    )
    res = simulate(demand, batch, 0, costs=CostParams(holding_cost=1, backorder_cost=4, order_cost=5), warmup=20)
    cost = _period_cost(res)
    assert cost[0] == pytest.approx(8.034111561471642, rel=0.01)
    assert cost.argmin() == 0  # common random numbers make the comparison sharp


def test_power_approximation_checked_by_simulation():
    """Ehrhardt-Mosier (s, S) for Example 4.7's costs: the simulated cost equals the exact
    (Zheng-Federgruen, stockpyl s_s_cost_discrete with Poisson(50)) cost 6.8137 of that policy."""
    from optimization.sizing import power_approximation

    s, S = power_approximation(0.18, 0.70, 2.5, 50, 8)
    demand = np.random.default_rng(2).poisson(50, size=(300, 600)).astype(float)
    res = simulate(
        demand,
        r_s_s_policy(1, np.full(300, np.round(s)), np.full(300, np.round(S))),
        0,
        costs=CostParams(holding_cost=0.18, backorder_cost=0.70, order_cost=2.5),
        warmup=20,
    )
    assert _period_cost(res) == pytest.approx(6.813684992852914, rel=0.02)


def test_lead_time_variability_term_restores_service():
    """Sampled lead times N(4, 1): sizing with mu_d^2 sigma_L^2 lands near the 90% target,
    ignoring it misses badly; holds with and without order crossing."""
    rng = np.random.default_rng(9)
    n, T, mu, sd = 200, 1500, 20.0, 5.0
    demand = np.maximum(rng.normal(mu, sd, size=(n, T)), 0.0)
    lead = sample_lead_times(np.full(n, 4.0), np.full(n, 1.0), (n, T), rng)
    from optimization.distributions import horizon_normal

    with_term = horizon_normal(np.full(n, mu), np.full(n, sd), np.full(n, 5), lead_time_std=np.full(n, 1.0))
    without = horizon_normal(np.full(n, mu), np.full(n, sd), np.full(n, 5))
    for cross in (True, False):
        kw = dict(sampled_lead_times=lead, orders_cross=cross, warmup=50)
        good = simulate(demand, base_stock_policy(with_term.quantile(0.9)), 8, **kw)
        bad = simulate(demand, base_stock_policy(without.quantile(0.9)), 8, **kw)
        assert abs(good.csl.mean() - 0.9) < 0.05
        assert bad.csl.mean() < 0.8


@pytest.mark.parametrize("beta", [0.9, 0.95, 0.98])
def test_discrete_fill_rate_sizing_meets_target_where_normal_under_serves(beta):
    """Over-dispersed count demand (negative binomial per period, L = 2): sizing through the
    discrete NB loss reaches the fill-rate target in simulation; the normal loss falls short."""
    from optimization.distributions import NormalDemand, count_demand
    from optimization.sizing import level_for_fill_rate

    rng = np.random.default_rng(3)
    n, T, L = 300, 1500, 2
    mean = rng.uniform(0.5, 4, n)
    var = mean * rng.uniform(1.5, 4, n)
    demand = rng.negative_binomial(mean**2 / (var - mean), mean / var, size=(T, n)).T.astype(float)
    H = L + 1  # a sum of H iid NB(r, p) is NB(H r, p): mean and variance scale by H
    discrete = simulate(
        demand, base_stock_policy(level_for_fill_rate(count_demand(mean * H, var * H), beta, mean)), L, warmup=20
    )
    normal = simulate(
        demand,
        base_stock_policy(level_for_fill_rate(NormalDemand(mean * H, np.sqrt(var * H)), beta, mean)),
        L,
        warmup=20,
    )
    assert discrete.served.sum() / discrete.demand.sum() >= beta - 0.005
    assert normal.served.sum() / normal.demand.sum() < beta - 0.015


def test_eoq_cost_reproduced_by_simulation():
    """Deterministic demand 10/period, K = 50, h = 1, (s, Q) with s = 0, L = 0: the simulated cost per
    period is g(Q) = K lambda / Q + h Q / 2 minus h lambda / 2 (holding is charged on ending stock in
    discrete time), and the best Q on the grid is the one nearest the EOQ (31.6)."""
    from optimization.sizing import eoq, eoq_cost

    lam, K, h = 10.0, 50.0, 1.0
    grid = np.array([10.0, 20.0, 30.0, 40.0, 60.0])
    demand = np.full((1, 1, 600), lam)
    batch = stack_policies([s_q_policy([0.0], [q]) for q in grid])
    res = simulate(
        demand, batch, 0, costs=CostParams(holding_cost=h, order_cost=K), initial=InitialState(on_hand=[0.0])
    )
    per_period = (res.cost_holding + res.cost_ordering)[:, 0] / res.n_periods
    np.testing.assert_allclose(per_period, eoq_cost(K, h, lam, grid) - h * lam / 2, rtol=0.01)
    assert grid[per_period.argmin()] == 30.0 and abs(30.0 - eoq(K, h, lam)) < 5


# ------------------------------------------------ issue 10: absurd inputs are errors, named by id


def test_huge_order_up_to_no_longer_reports_full_csl_with_zero_fill():
    """S = 1e17 used to give CSL 1.0 with fill rate 0.0 (float64 lost the units)."""
    from optimization.policies import ItemValueError

    with pytest.raises(ItemValueError, match=r"order_up_to must be at most 1e\+15 units .*got 1e\+17"):
        r_s_policy(1, [1e17])
    res = simulate([[1.0, 2.0, 0.0, 3.0]], r_s_policy(1, [1e15]), 1)
    assert res.fill_rate.tolist() == [1.0] and res.csl.tolist() == [1.0]


@pytest.mark.parametrize(
    ("demand", "lead", "match"),
    [
        (
            [[1.0, 2.0], [1.0, np.nan]],
            1,
            r"demand must be finite \(no NaN/inf\) \(first in period 1\) for unique_id \['B'\]",
        ),
        ([[1.0, 2.0], [1.0, 1e300]], 1, r"demand must be at most 1e\+15 units per period .* for unique_id \['B'\]"),
        ([[1.0, 2.0], [-1.0, 1.0]], 1, r"demand must be >= 0 \(first in period 0\) for unique_id \['B'\]"),
        ([[1.0, 2.0], [1.0, 1.0]], [1, 1.5], r"lead_time must be whole periods for unique_id \['B'\] \(got 1.5\)"),
        ([[1.0, 2.0], [1.0, 1.0]], [1, -2], r"lead_time must be >= 0 for unique_id \['B'\] \(got -2\)"),
    ],
)
def test_simulator_input_errors_name_the_item(demand, lead, match):
    with pytest.raises(ValueError, match=match):
        simulate(np.array(demand), r_s_policy(1, [3.0, 3.0]), lead, ids=["A", "B"])


def test_without_ids_errors_name_the_position():
    with pytest.raises(ValueError, match=r"initial on_hand must be finite and >= 0 for items at positions \[1\]"):
        simulate([[1.0], [1.0]], r_s_policy(1, [3.0, 3.0]), 1, initial=InitialState(on_hand=[1.0, np.nan]))
