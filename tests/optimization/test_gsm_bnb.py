"""Min-marginals of the tree DP, reduced-cost fixing and the branch-and-bound (issue 15): equal to brute force / MILP."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import GSMConfig, NormalDemandBound, WillemsLikeConfig, solve_gsm, willems_like_network
from optimization.meio_bnb import _children, lagrangian_branch_and_bound
from optimization.meio_grid import build_grid
from optimization.meio_lagrange import (
    Relaxation,
    _spanning_forest,
    _tree_problem,
    repair_fast,
    spanning_tree_lagrangian,
)
from optimization.meio_milp import repair_service_times
from optimization.meio_tree import TreeDP
from tests.optimization.test_gsm import brute_force, random_dag


def _forest_dp(seed: int):
    rng = np.random.default_rng(seed)
    net = random_dag(rng)
    grid = build_grid(net, NormalDemandBound(net))
    forest, sub, _ = _tree_problem(net, grid, _spanning_forest(net))
    s_cost = [rng.normal(size=sub.s_max[k] + 1) for k in range(forest.n_stages)]
    si_cost = [rng.normal(size=sub.si_max[k] + 1) for k in range(forest.n_stages)]
    return forest, sub, s_cost, si_cost, rng


@pytest.mark.parametrize("seed", range(4))
def test_min_marginals_equal_the_dp_with_the_cell_forced(seed):
    forest, sub, s_cost, si_cost, rng = _forest_dp(300 + seed)
    value = TreeDP(forest, sub).solve(s_cost, si_cost)[2]
    marginals = dict(TreeDP(forest, sub).min_marginals(s_cost, si_cost))
    assert sorted(marginals) == list(range(forest.n_stages))
    for k, M in marginals.items():
        assert M.shape == (sub.s_max[k] + 1, sub.si_max[k] + 1)
        assert M.min() == pytest.approx(value, rel=1e-12, abs=1e-12)  # every stage sees the same optimum
        for _ in range(3):
            s, si = int(rng.integers(0, M.shape[0])), int(rng.integers(0, M.shape[1]))
            dp = TreeDP(forest, sub)
            others = np.ones(M.shape, dtype=bool)
            others[s, si] = False
            assert dp.ban(k, others) == others.sum()
            forced = dp.solve(s_cost, si_cost)[2]
            assert forced == pytest.approx(M[s, si], rel=1e-12) if np.isfinite(forced) else np.isinf(M[s, si])


def test_banned_cells_are_never_chosen_and_raise_the_optimum():
    forest, sub, s_cost, si_cost, _ = _forest_dp(310)
    dp = TreeDP(forest, sub)
    S, SI, value = dp.solve(s_cost, si_cost)
    k = int(np.argmax(sub.s_max))
    cell = np.zeros((sub.s_max[k] + 1, sub.si_max[k] + 1), dtype=bool)
    cell[S[k], SI[k]] = True
    assert dp.ban(k, cell) == 1 and dp.ban(k, cell) == 0  # banning twice counts once
    S2, SI2, value2 = dp.solve(s_cost, si_cost)
    assert (S2[k], SI2[k]) != (S[k], SI[k])
    assert value2 >= value - 1e-12


@pytest.mark.parametrize("seed", range(3))
def test_fixing_keeps_the_bound_valid(seed):
    """Fixing after every solve (gap below 100 %) bans cells and the bound stays <= the optimum."""
    net = willems_like_network(WillemsLikeConfig(30, 2.0, max_stage_time=10), np.random.default_rng(1 + 2 * seed))
    grid = build_grid(net, NormalDemandBound(net))
    out = spanning_tree_lagrangian(net, grid, max_iterations=60, fix_every=1, fix_below=1.0, rel_gap=0.0)
    optimum = solve_gsm(net, config=GSMConfig(method="milp", rel_gap=1e-7)).total_cost
    assert out.lower_bound <= optimum * (1 + 1e-7) <= out.upper_bound * (1 + 2e-7)
    assert out.fixes >= 1 and out.banned_cells > 0


def test_children_exclude_the_violating_plan_and_keep_every_feasible_pair():
    net = willems_like_network(WillemsLikeConfig(30, 2.0, max_stage_time=10), np.random.default_rng(1))
    rel = Relaxation.build(net, build_grid(net, NormalDemandBound(net)))
    i, k = int(rel.mult.up[0]), int(rel.mult.down[0])
    a, b = 7, 3  # the DP plan: S_i = 7 > SI_k = 3
    low, high = _children(rel, {}, i, k, (a + b) // 2)

    def inside(ranges, s_i, si_k):
        return ranges[i][0] <= s_i <= ranges[i][1] and ranges.get(k, [0, 99, 0, 99])[2] <= si_k

    assert not inside(low, a, b) and not inside(high, a, b)
    for s_i in range(rel.mult.grid.s_max[i] + 1):
        for si_k in range(s_i, rel.mult.grid.si_max[k] + 1):  # every pair a feasible plan can have
            assert inside(low, s_i, si_k) != inside(high, s_i, si_k)


@pytest.mark.parametrize("seed", range(5))
def test_branch_and_bound_matches_brute_force_on_small_dags(seed):
    net = random_dag(np.random.default_rng(400 + seed))
    res = solve_gsm(net, config=GSMConfig(method="bnb", rel_gap=1e-6))
    optimum = brute_force(net)
    assert res.optimal and res.gap <= 1e-6
    assert res.total_cost == pytest.approx(optimum, rel=1e-6, abs=1e-9)
    assert res.bound <= optimum * (1 + 1e-9) + 1e-9


@pytest.mark.parametrize(
    "seed, n, links, max_t",
    [  # seed 1: a duality gap of 3.6 % at the root; seed 5: ~550 nodes (~15 CPU s)
        (1, 30, 2.0, 10),
        (3, 30, 2.0, 10),
        pytest.param(5, 25, 2.5, 8, marks=pytest.mark.slow),
    ],
)
def test_branch_and_bound_equals_the_milp_on_generated_networks(seed, n, links, max_t):
    net = willems_like_network(WillemsLikeConfig(n, links, max_stage_time=max_t), np.random.default_rng(seed))
    grid = build_grid(net, NormalDemandBound(net))
    milp = solve_gsm(net, config=GSMConfig(method="milp", rel_gap=1e-6))
    out = lagrangian_branch_and_bound(net, grid, time_limit=120, rel_gap=1e-6)
    assert milp.optimal
    assert out.upper_bound == pytest.approx(milp.total_cost, rel=1e-5)
    assert out.lower_bound <= milp.total_cost * (1 + 1e-6)
    assert out.upper_bound - out.lower_bound <= 1e-6 * out.upper_bound


def test_branch_and_bound_reports_a_valid_bound_when_the_time_runs_out():
    net = willems_like_network(WillemsLikeConfig(30, 2.0, max_stage_time=10), np.random.default_rng(1))
    grid = build_grid(net, NormalDemandBound(net))
    optimum = solve_gsm(net, config=GSMConfig(method="milp", rel_gap=1e-6)).total_cost
    out = lagrangian_branch_and_bound(net, grid, time_limit=1e-3)
    assert out.nodes == 0 and out.iterations == 1
    assert out.lower_bound <= optimum <= out.upper_bound
    res = solve_gsm(net, config=GSMConfig(method="bnb", time_limit=1e-3))
    assert not res.optimal and res.gap == pytest.approx((res.total_cost - res.bound) / res.total_cost)


@pytest.mark.parametrize("seed", range(3))
def test_level_repair_equals_the_stage_by_stage_repair(seed):
    rng = np.random.default_rng(500 + seed)
    net = willems_like_network(WillemsLikeConfig(60, 2.0, max_stage_time=15), rng)
    grid = build_grid(net, NormalDemandBound(net))
    for _ in range(5):
        S = rng.integers(0, grid.s_max + 1)
        for got, want in zip(repair_fast(net, grid, S), repair_service_times(net, grid, S)):
            np.testing.assert_array_equal(got, want)
