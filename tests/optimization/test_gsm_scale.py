"""GSM at scale: the Willems-like generator, named errors for extreme inputs, bounds in the result."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import (
    Edge,
    GridTooLargeError,
    GSMConfig,
    GSMTimeLimitError,
    Network,
    NonFiniteCostError,
    NormalDemandBound,
    Stage,
    WillemsLikeConfig,
    solve_gsm,
    willems_like_network,
)


def two_stages(t_a: float = 3.0, **demand) -> Network:
    kw = {"demand_mean": 10.0, "demand_std": 2.0, "safety_factor": 1.645} | demand
    return Network([Stage("A", t_a, 1.0), Stage("B", 1, 2.0, 0.0, **kw)], [Edge("A", "B")])


def three_stages(t_a: float) -> Network:
    """A -> B -> C: B's DP table is (S_B range) x (SI_B range), both ~ t_a."""
    return Network(
        [
            Stage("A", t_a, 1.0),
            Stage("B", 1, 1.5),
            Stage("C", 1, 2.0, 0.0, demand_mean=10.0, demand_std=2.0, safety_factor=1.645),
        ],
        [Edge("A", "B"), Edge("B", "C")],
    )


# ------------------------------------------------------------------ generator
@pytest.mark.parametrize("n, links", [(10, 1.0), (150, 1.7), (500, 1.95), (1400, 1.35), (2000, 3.5)])
def test_generator_shape(n, links):
    net = willems_like_network(WillemsLikeConfig(n, links), np.random.default_rng(n))
    assert net.n_stages == n
    assert abs(net.n_edges / n - links) <= 0.02 + 1 / n
    sinks = np.flatnonzero(net.is_sink)
    # Willems' data: demand stages are exactly the sinks and exactly those with a max service time.
    assert np.all(~np.isnan(net.demand_mean[sinks])) and np.all(np.isnan(net.demand_mean[~net.is_sink]))
    assert np.all(np.isfinite(net.max_service_time[sinks])) and np.all(np.isinf(net.max_service_time[~net.is_sink]))
    assert 1 <= net.processing_time.min() and net.processing_time.max() <= 100
    assert all(s.split("_")[0] in {"Part", "Manuf", "Dist", "Retail"} for s in net.stage_ids)
    if n >= 150:
        assert len(set(net.safety_factor[sinks])) == 3
        assert not net.is_tree


def test_generator_is_seeded_and_validates():
    cfg = WillemsLikeConfig(60, 2.0, max_stage_time=40)
    a = willems_like_network(cfg, np.random.default_rng(7))
    b = willems_like_network(cfg, np.random.default_rng(7))
    assert a.edges == b.edges and a.stages == b.stages
    assert a.processing_time.max() <= 40
    with pytest.raises(ValueError, match=r"links_per_stage must be in \[1, 3.5\], got 4"):
        WillemsLikeConfig(100, 4)
    with pytest.raises(ValueError, match="n_stages must be >= 5"):
        WillemsLikeConfig(3)


def test_generated_network_solves_with_bound():
    net = willems_like_network(WillemsLikeConfig(12, 1.3, max_stage_time=8), np.random.default_rng(3))
    result = solve_gsm(net, config=GSMConfig(method="milp"))
    assert result.optimal
    assert result.bound <= result.total_cost * (1 + 1e-9)
    assert result.total_cost - result.bound <= 1e-4 * result.total_cost
    summary = result.summary()
    assert summary["bound"] == pytest.approx(result.bound) and summary["gap"] == result.gap


def test_tree_dp_bound_is_its_cost():
    result = solve_gsm(two_stages())
    assert result.optimal and result.bound == result.total_cost


# --------------------------------------------------------- robustness (issue 10)
def test_huge_processing_time_is_refused_before_allocating():
    """Issue 10 row 4: processing_time 1e6 used to allocate 7.28 TiB in the tree DP."""
    with pytest.raises(GridTooLargeError, match=r"stage 'C' has a longest inbound path of 1e\+06 periods"):
        solve_gsm(three_stages(1e6 - 2))
    with pytest.raises(GridTooLargeError, match="1e\\+12 cells"):
        solve_gsm(three_stages(1e6 - 2), config=GSMConfig(method="milp"))
    # Memory that does not grow with the square of the grid passes: 2 stages, S_B fixed at 0.
    assert solve_gsm(two_stages(t_a=1e6 - 1)).optimal


def test_grid_limit_is_configurable():
    """Issue 10 row 4: 20,000 periods on 3 stages used 10 GB."""
    with pytest.raises(GridTooLargeError, match=r"4e\+08 cells \(limit 20,000,000\).*coarser unit"):
        solve_gsm(three_stages(20_000))
    with pytest.raises(GridTooLargeError, match=r"limit 1,000"):
        solve_gsm(three_stages(200), config=GSMConfig(max_grid_cells=1_000))
    assert solve_gsm(three_stages(200)).optimal


def test_negative_safety_factor_is_rejected():
    """Issue 10 row 8: z = -3 was silently used as +3 (the pooling takes |z sigma|)."""
    net = two_stages(safety_factor=None)
    with pytest.raises(ValueError, match="safety_factor must be a finite number >= 0.*got -3"):
        NormalDemandBound(net, safety_factor=-3.0)
    assert NormalDemandBound(net, safety_factor=3.0).excess_factor[1] == pytest.approx(6.0)


@pytest.mark.parametrize("field", ["demand_std", "demand_mean"])
def test_overflowing_results_are_a_named_error(field):
    """Issue 10 row 7: demand 1e300 printed "total_cost": Infinity (invalid JSON)."""
    net = two_stages(**{field: 1e308})
    with pytest.raises(
        NonFiniteCostError, match=r"is not finite at stages \['[AB]'.*check their demand_mean, demand_std"
    ):
        solve_gsm(net)


def test_time_limit_without_a_plan_is_named():
    net = willems_like_network(WillemsLikeConfig(400, 2.0), np.random.default_rng(1))
    with pytest.raises(GSMTimeLimitError, match=r"no feasible plan within time_limit=0.001 s"):
        solve_gsm(net, config=GSMConfig(method="milp", time_limit=0.001))


def test_generator_tree_option_gives_a_forest_the_dp_solves():
    net = willems_like_network(WillemsLikeConfig(40, tree=True, max_stage_time=6), np.random.default_rng(5))
    assert net.is_tree and net.n_edges == net.n_stages - net.n_components
    dp = solve_gsm(net, config=GSMConfig(method="tree_dp"))
    mip = solve_gsm(net, config=GSMConfig(method="milp"))
    assert dp.optimal and mip.optimal
    assert dp.total_cost == pytest.approx(mip.total_cost, rel=1e-4)
