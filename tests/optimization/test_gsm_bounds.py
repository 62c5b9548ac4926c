"""Spanning-tree Lagrangian (issue 15): the DP's extra stage costs, valid bounds, results equal to the MILP."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest

from optimization import (
    Edge,
    GSMConfig,
    Network,
    NormalDemandBound,
    Stage,
    WillemsLikeConfig,
    evaluate_service_times,
    solve_gsm,
    willems_like_network,
)
from optimization.meio_grid import build_grid
from optimization.meio_lagrange import local_search, polish_plan, spanning_tree_lagrangian
from optimization.meio_tree import solve_tree_dp
from tests.optimization.test_gsm import brute_force, random_dag


def chain() -> Network:
    return Network(
        [
            Stage("A", 2, 1.0),
            Stage("B", 1, 1.5),
            Stage("C", 1, 2.0, 1.0, demand_mean=10.0, demand_std=3.0, safety_factor=1.645),
        ],
        [Edge("A", "B"), Edge("B", "C")],
    )


def test_tree_dp_linear_terms_match_enumeration():
    net = chain()
    grid = build_grid(net, NormalDemandBound(net))
    s_w, si_w = np.array([-0.7, 0.4, -0.2]), np.array([0.0, -0.9, 0.3])
    best = np.inf
    ranges = [range(grid.s_max[j] + 1) for j in range(3)] + [range(grid.si_max[j] + 1) for j in (1, 2)]
    for sa, sb, sc, sib, sic in itertools.product(*ranges):
        S, SI = np.array([sa, sb, sc]), np.array([0, sib, sic])
        tau = SI + grid.T - S
        if sib < sa or sic < sb or np.any(tau < 0):
            continue
        value = grid.cost[grid.offset[:-1] + tau].sum() + s_w @ S + si_w @ SI
        best = min(best, value)
    s_cost = [s_w[k] * np.arange(grid.s_max[k] + 1) for k in range(3)]
    si_cost = [si_w[k] * np.arange(grid.si_max[k] + 1) for k in range(3)]
    assert solve_tree_dp(net, grid, s_cost, si_cost)[2] == pytest.approx(best, rel=1e-12)
    assert solve_tree_dp(net, grid)[2] == pytest.approx(solve_gsm(net).total_cost, rel=1e-12)


@pytest.mark.parametrize("seed", range(4))
def test_lagrangian_bounds_bracket_the_optimum(seed):
    net = random_dag(np.random.default_rng(100 + seed))
    grid = build_grid(net, NormalDemandBound(net))
    out = spanning_tree_lagrangian(net, grid, max_iterations=60)
    optimum = brute_force(net)
    assert out.lower_bound <= optimum * (1 + 1e-9) + 1e-9
    assert out.upper_bound >= optimum * (1 - 1e-9)
    assert evaluate_service_times(net, out.S / grid.d).total_cost == pytest.approx(out.upper_bound, rel=1e-9)


def test_lagrangian_is_exact_on_a_tree():
    net = chain()
    out = spanning_tree_lagrangian(net, build_grid(net, NormalDemandBound(net)))
    assert out.iterations == 1
    assert out.lower_bound == pytest.approx(solve_gsm(net).total_cost, rel=1e-12)
    assert out.upper_bound == pytest.approx(out.lower_bound, rel=1e-12)


@pytest.mark.parametrize("improve", [local_search, polish_plan])
@pytest.mark.parametrize("seed", range(4))
def test_local_search_never_raises_the_exact_cost_and_returns_a_consistent_plan(seed, improve):
    rng = np.random.default_rng(200 + seed)
    net = random_dag(rng)
    grid = build_grid(net, NormalDemandBound(net))
    optimum = brute_force(net)
    for _ in range(5):
        start = rng.integers(0, grid.s_max + 1)
        before = evaluate_service_times(net, start / grid.d)
        S, cost = improve(net, grid, start)
        after = evaluate_service_times(net, S / grid.d)
        np.testing.assert_array_equal(after.service_time * grid.d, S)  # feasible as returned: nothing clipped
        assert cost == pytest.approx(after.total_cost, rel=1e-12)
        assert optimum * (1 - 1e-9) <= cost <= before.total_cost * (1 + 1e-12)


def test_local_search_moves_a_poor_plan_to_the_chain_optimum():
    net = chain()
    grid = build_grid(net, NormalDemandBound(net))
    zero = evaluate_service_times(net, np.zeros(3)).total_cost
    S, cost = local_search(net, grid, np.zeros(3, dtype=np.int64))
    assert cost < zero
    assert cost == pytest.approx(solve_gsm(net).total_cost, rel=1e-12)


def test_polish_lowers_an_inbound_time_that_two_suppliers_hold_up():
    """A and B both quote 2 to C: moving either alone saves nothing; lowering both together does."""
    net = Network(
        [
            Stage("A", 2, 0.1),
            Stage("B", 2, 0.1),
            Stage("C", 2, 5.0, 0.0, demand_mean=10.0, demand_std=3.0, safety_factor=2.0),
        ],
        [Edge("A", "C"), Edge("B", "C")],
    )
    grid = build_grid(net, NormalDemandBound(net))
    start = np.array([2, 2, 0]) * grid.d
    S, stuck = local_search(net, grid, start.copy())
    np.testing.assert_array_equal(S, start)  # no single move helps
    S, cost = polish_plan(net, grid, start.copy())
    assert cost < stuck
    assert cost == pytest.approx(brute_force(net), rel=1e-9)


# ------------------------------------------------- auto = Lagrangian, branch-and-bound, then the MILP
@pytest.mark.parametrize("seed", range(4))
def test_auto_matches_brute_force_on_small_dags(seed):
    net = random_dag(np.random.default_rng(100 + seed))
    optimum = brute_force(net)
    auto = solve_gsm(net)
    assert auto.optimal and auto.method in {"tree_dp", "lagrangian", "lagrangian+bnb"}
    assert auto.total_cost == pytest.approx(optimum, rel=1e-4)
    assert auto.bound <= optimum * (1 + 1e-9) + 1e-9
    lag = solve_gsm(net, config=GSMConfig(method="lagrangian"))
    assert lag.bound <= optimum * (1 + 1e-9) + 1e-9 <= lag.total_cost * (1 + 2e-9) + 2e-9
    assert lag.optimal == (lag.gap <= 1e-4)


@pytest.mark.parametrize("seed, n, links, max_t", [(0, 20, 1.5, 12), (2, 40, 1.4, 20)])
def test_lagrangian_equals_milp_on_generated_networks(seed, n, links, max_t):
    net = willems_like_network(WillemsLikeConfig(n, links, max_stage_time=max_t), np.random.default_rng(seed))
    milp = solve_gsm(net, config=GSMConfig(method="milp", rel_gap=1e-6))
    lag = solve_gsm(net, config=GSMConfig(method="lagrangian"))
    assert milp.optimal and lag.optimal
    assert lag.total_cost == pytest.approx(milp.total_cost, rel=1e-4)
    assert lag.bound <= milp.total_cost * (1 + 1e-6)
    assert lag.gap <= 1e-4 and lag.summary()["method"] == "lagrangian"


def test_duality_gap_is_reported_and_auto_closes_it_by_branching():
    """On this 30-stage network the Lagrangian dual stays ~3.6 % below the optimum; the B&B closes it."""
    net = willems_like_network(WillemsLikeConfig(30, 2.0, max_stage_time=10), np.random.default_rng(1))
    milp = solve_gsm(net, config=GSMConfig(method="milp", rel_gap=1e-6))
    lag = solve_gsm(net, config=GSMConfig(method="lagrangian"))
    assert not lag.optimal and lag.gap > 0.01
    assert lag.bound < milp.total_cost < lag.total_cost
    assert lag.gap == pytest.approx((lag.total_cost - lag.bound) / lag.total_cost)
    auto = solve_gsm(net)
    assert auto.optimal and auto.method == "lagrangian+bnb"
    assert auto.total_cost == pytest.approx(milp.total_cost, rel=1e-4)
    assert milp.total_cost * (1 - 1e-4) <= auto.bound <= milp.total_cost * (1 + 1e-6)


@pytest.mark.parametrize("chain", [2, 4, 17])
def test_auto_proves_the_shared_chains_and_equals_the_milp(shared_data, chain):
    from pipelines.data.network_io import read_willems_chain

    ref = pd.read_csv(shared_data / "willems" / "reported_optimal_costs.csv").set_index("chain")
    net = read_willems_chain(shared_data / "willems" / ref.at[chain, "file"], holding_rate=0.35)
    auto = solve_gsm(net, config=GSMConfig(time_limit=60))
    milp = solve_gsm(net, config=GSMConfig(method="milp", time_limit=60))
    assert auto.optimal and auto.method in {"lagrangian", "lagrangian+bnb"} and milp.optimal
    assert auto.total_cost == pytest.approx(milp.total_cost, rel=1e-4)
    assert auto.total_cost == pytest.approx(ref.at[chain, "reported_optimal_cost"], rel=0.005)
