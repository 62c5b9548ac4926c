"""Spanning-tree Lagrangian bounds (issue 15): the DP's linear terms and the bounds' validity."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from optimization import Edge, Network, NormalDemandBound, Stage, evaluate_service_times, solve_gsm
from optimization.meio_grid import build_grid
from optimization.meio_lagrange import spanning_tree_lagrangian
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
