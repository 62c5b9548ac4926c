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
from optimization.meio_tree import TreeDP, _backtrack
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


def _full_dp(dp: TreeDP, s_cost, si_cost, ranges: dict):
    """The full-table pass (every (S, SI) cell scanned), node ranges as infinite extra costs: the reference."""
    s_cost, si_cost = [np.array(v, dtype=float) for v in s_cost], [np.array(v, dtype=float) for v in si_cost]
    for k, (s_lo, s_hi, si_lo, si_hi) in ranges.items():
        s, si = np.arange(s_cost[k].size), np.arange(si_cost[k].size)
        s_cost[k][(s < s_lo) | (s > s_hi)] = np.inf
        si_cost[k][(si < si_lo) | (si > si_hi)] = np.inf
    tables, roots = dp._build_tables((s_cost, si_cost))
    S, SI = _backtrack(dp.order, dp.children, dp._up, tables, roots)
    return S, SI, float(sum(r[0] for r in roots.values()))


@pytest.mark.parametrize("seed", range(6))
def test_compact_dp_equals_the_full_dp_with_bans_and_ranges(seed):
    """A solve scans only each stage's live box cut to the node ranges: same plan and value as the full tables."""
    forest, sub, s_cost, si_cost, rng = _forest_dp(600 + seed)
    dp = TreeDP(forest, sub)
    for k in range(forest.n_stages):  # ban most cells of most stages, as reduced-cost fixing does
        shape = (sub.s_max[k] + 1, sub.si_max[k] + 1)
        dp.ban(k, rng.random(shape) < rng.choice([0.0, 0.5, 0.9]))
    live = dp.live_cells()
    assert live < float(np.sum((sub.s_max + 1) * (sub.si_max + 1)))  # the boxes shrank
    for trial in range(4):
        ranges = {}
        for k in rng.choice(forest.n_stages, size=2, replace=False).tolist():
            s_lo = int(rng.integers(0, sub.s_max[k] + 1))
            si_lo = int(rng.integers(0, sub.si_max[k] + 1))
            ranges[k] = [s_lo, int(rng.integers(s_lo, sub.s_max[k] + 1)), si_lo, int(sub.si_max[k])]
        ranges = {} if trial == 0 else ranges
        S, SI, value = dp.solve(s_cost, si_cost, ranges=ranges)
        S_ref, SI_ref, ref = _full_dp(dp, s_cost, si_cost, ranges)
        if np.isinf(ref):
            assert np.isinf(value)
            continue
        assert value == pytest.approx(ref, rel=1e-12, abs=1e-12)
        np.testing.assert_array_equal(S, S_ref)
        np.testing.assert_array_equal(SI, SI_ref)
        for k, (s_lo, s_hi, si_lo, si_hi) in ranges.items():
            assert s_lo <= S[k] <= s_hi and si_lo <= SI[k] <= si_hi


def test_a_node_with_no_cell_left_has_no_plan():
    forest, sub, s_cost, si_cost, _ = _forest_dp(620)
    dp = TreeDP(forest, sub)
    k = int(np.argmax(sub.s_max))
    dp.ban(k, np.ones((sub.s_max[k] + 1, sub.si_max[k] + 1), dtype=bool))
    assert np.isinf(dp.solve(s_cost, si_cost)[2])
    assert np.isinf(TreeDP(forest, sub).solve(s_cost, si_cost, ranges={k: [1, 0, 0, 5]})[2])


@pytest.mark.parametrize("seed, n, links, max_t", [(1, 30, 2.0, 10), (5, 25, 2.5, 8)])
def test_parallel_branch_and_bound_gives_the_serial_answer(seed, n, links, max_t):
    """Two processes bound the children of each node: the same plan, bounds, nodes and DP solves as one."""
    net = willems_like_network(WillemsLikeConfig(n, links, max_stage_time=max_t), np.random.default_rng(seed))
    grid = build_grid(net, NormalDemandBound(net))
    serial = lagrangian_branch_and_bound(net, grid, time_limit=120, workers=1)
    parallel = lagrangian_branch_and_bound(net, grid, time_limit=120, workers=2)
    assert serial.nodes > 10  # it branched
    assert (parallel.lower_bound, parallel.upper_bound) == (serial.lower_bound, serial.upper_bound)
    assert (parallel.nodes, parallel.iterations) == (serial.nodes, serial.iterations)
    np.testing.assert_array_equal(parallel.S, serial.S)
    milp = solve_gsm(net, config=GSMConfig(method="milp", rel_gap=1e-6))
    assert serial.upper_bound - serial.lower_bound <= 1e-4 * serial.upper_bound
    assert serial.lower_bound <= milp.total_cost * (1 + 1e-6) and serial.upper_bound >= milp.bound * (1 - 1e-6)
    res = solve_gsm(net, config=GSMConfig(workers=2))
    assert res.optimal and res.total_cost == pytest.approx(serial.upper_bound, rel=1e-12)


@pytest.mark.parametrize("workers", [0, -1, 1.5, True])
def test_workers_must_be_a_positive_integer(workers):
    with pytest.raises(ValueError, match="workers must be an integer >= 1"):
        GSMConfig(workers=workers)
