"""GSM solvers: textbook answers, stockpyl's tree DP, brute force, invariants, errors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from optimization import (
    Edge,
    GSMConfig,
    Network,
    NetworkError,
    NormalDemandBound,
    Stage,
    TabulatedSafetyStock,
    evaluate_service_times,
    solve_gsm,
)

stockpyl = pytest.importorskip("stockpyl")
from stockpyl.gsm_tree import optimize_committed_service_times  # noqa: E402
from stockpyl.instances import load_instance  # noqa: E402

from benchmarks.gsm_willems import stockpyl_network  # noqa: E402

Z95 = 1.6448536269514722
METHODS = ["tree_dp", "milp"]


def from_stockpyl(tree) -> Network:
    """A stockpyl GSM tree as a Network (sinks carry demand, z and max service time)."""
    stages, edges = [], []
    for node in tree.nodes:
        sink = not node.successor_indices()
        ds = node.demand_source
        stages.append(
            Stage(
                stage_id=str(node.index),
                processing_time=float(node.processing_time),
                holding_cost=float(node.local_holding_cost),
                max_service_time=float(node.external_outbound_cst)
                if sink and node.external_outbound_cst is not None
                else math.inf,
                demand_mean=float(ds.mean or 0.0) if sink else None,
                demand_std=float(ds.standard_deviation) if sink else None,
                safety_factor=float(node.demand_bound_constant) if sink else None,
                external_inbound_service_time=float(node.external_inbound_cst or 0.0),
            )
        )
        edges += [Edge(str(node.index), str(s)) for s in node.successor_indices()]
    return Network(stages, edges)


def service_times(result) -> dict[int, float]:
    return {int(s): float(v) for s, v in zip(result.stage_ids, result.service_time)}


# --------------------------------------------------------------------- golden
@pytest.mark.parametrize("method", METHODS)
def test_snyder_shen_example_6_5(method):
    """Snyder & Shen (2019) Example 6.5: S = (0,0,0,1), cost 2*sqrt(2) + sqrt(6) + 3."""
    result = solve_gsm(from_stockpyl(load_instance("example_6_5")), config=GSMConfig(method=method))
    assert result.total_cost == pytest.approx(2 * math.sqrt(2) + math.sqrt(6) + 3.0)
    assert service_times(result) == {1: 0, 2: 0, 3: 0, 4: 1}
    assert result.optimal


@pytest.mark.parametrize("method", METHODS)
def test_graves_willems_camera_figure_6_14(method):
    """Graves & Willems (2000) digital camera (Snyder & Shen Fig. 6.14)."""
    result = solve_gsm(from_stockpyl(load_instance("figure_6_14")), config=GSMConfig(method=method))
    expected = (
        Z95
        * 10
        * (0.01 * math.sqrt(2) + 0.13 * math.sqrt(10) + 0.2 * math.sqrt(6) + 0.08 * math.sqrt(4) + 0.04 * math.sqrt(3))
    )
    assert result.total_cost == pytest.approx(expected)
    assert service_times(result) == {1: 0, 2: 3, 3: 5, 4: 4, 5: 7, 6: 0, 7: 0, 8: 0, 9: 0, 10: 2}


@pytest.mark.parametrize("name", ["example_6_3", "problem_6_7", "problem_6_8", "problem_6_9"])
@pytest.mark.parametrize("method", METHODS)
def test_matches_stockpyl_on_textbook_instances(name, method):
    tree = load_instance(name)
    _, expected = optimize_committed_service_times(tree)
    result = solve_gsm(from_stockpyl(tree), config=GSMConfig(method=method))
    assert result.total_cost == pytest.approx(expected, rel=1e-9)


def random_tree(rng: np.random.Generator, n: int) -> Network:
    """Random spanning tree: arcs point either way, sinks get demand."""
    stages = [f"s{i}" for i in range(n)]
    edges = []
    for i in range(1, n):
        j = int(rng.integers(0, i))
        edges.append(Edge(stages[j], stages[i]) if rng.random() < 0.6 else Edge(stages[i], stages[j]))
    sinks = set(stages) - {e.upstream for e in edges}
    objs = [
        Stage(
            s,
            float(rng.integers(0, 5)),
            float(rng.uniform(0.1, 3)),
            float(rng.integers(0, 3)) if s in sinks else math.inf,
            demand_mean=float(rng.uniform(5, 20)) if s in sinks else None,
            demand_std=float(rng.uniform(1, 5)) if s in sinks else None,
            safety_factor=1.645 if s in sinks else None,
        )
        for s in stages
    ]
    return Network(objs, edges)


@pytest.mark.parametrize("seed", range(6))
def test_tree_dp_and_milp_match_stockpyl_on_random_trees(seed):
    net = random_tree(np.random.default_rng(seed), 9)
    _, expected = optimize_committed_service_times(stockpyl_network(net))
    dp = solve_gsm(net, config=GSMConfig(method="tree_dp"))
    mip = solve_gsm(net, config=GSMConfig(method="milp"))
    assert dp.total_cost == pytest.approx(expected, rel=1e-9)
    assert mip.total_cost == pytest.approx(expected, rel=1e-9)


def brute_force(net: Network) -> float:
    """Enumerate every integer S vector (tiny networks only)."""
    M = net.longest_inbound_time().astype(int)
    ranges = [range(0, int(min(M[j], net.max_service_time[j])) + 1) for j in range(net.n_stages)]
    best = math.inf
    for S in itertools.product(*ranges):
        r = evaluate_service_times(net, np.array(S, dtype=float))
        if np.allclose(r.service_time, S):  # feasible as given (no clipping)
            best = min(best, r.total_cost)
    return best


def random_dag(rng: np.random.Generator, n: int = 6) -> Network:
    ids = [f"n{i}" for i in range(n)]
    edges = {(ids[i], ids[j]) for j in range(1, n) for i in range(j) if rng.random() < 0.45}
    edges |= {(ids[int(rng.integers(0, j))], ids[j]) for j in range(1, n) if not any(e[1] == ids[j] for e in edges)}
    sinks = set(ids) - {u for u, _ in edges}
    stages = [
        Stage(
            s,
            float(rng.integers(0, 3)),
            float(rng.uniform(0.1, 2)),
            float(rng.integers(0, 2)) if s in sinks else math.inf,
            demand_mean=5.0 if s in sinks else None,
            demand_std=float(rng.uniform(1, 4)) if s in sinks else None,
            safety_factor=2.0 if s in sinks else None,
        )
        for s in ids
    ]
    return Network(stages, [Edge(u, d) for u, d in sorted(edges)])


@pytest.mark.parametrize("seed", range(5))
def test_milp_matches_brute_force_on_small_dags(seed):
    net = random_dag(np.random.default_rng(100 + seed))
    result = solve_gsm(net, config=GSMConfig(method="milp"))
    assert result.optimal
    assert result.total_cost == pytest.approx(brute_force(net), rel=1e-9, abs=1e-9)


def test_fractional_times_use_a_fine_grid():
    net = Network(
        [Stage("A", 1.5, 1.0), Stage("B", 0.25, 2.0, 0.0, demand_mean=10, demand_std=2, safety_factor=1.645)],
        [Edge("A", "B")],
    )
    result = solve_gsm(net)
    # Only two candidate vertices: stock at A and B (S_A=0) or only at B (S_A=1.5).
    k = 1.645 * 2
    expected = min(1.0 * k * math.sqrt(1.5) + 2.0 * k * math.sqrt(0.25), 2.0 * k * math.sqrt(1.75))
    assert result.total_cost == pytest.approx(expected)
    assert set(result.net_replenishment_time) <= {0.0, 0.25, 1.5, 1.75}


# ------------------------------------------------------------------ invariants
def test_zero_std_network_holds_no_safety_stock():
    net = random_dag(np.random.default_rng(7))
    flat = Network(
        [s if s.demand_std is None else Stage(**{**vars(s), "demand_std": 0.0}) for s in net.stages], net.edges
    )
    result = solve_gsm(flat)
    assert result.total_cost == 0.0
    assert np.all(result.safety_stock == 0.0)


@pytest.mark.parametrize("seed", range(3))
def test_higher_service_target_never_lowers_cost(seed):
    net = random_dag(np.random.default_rng(200 + seed), 7)
    costs = [
        solve_gsm(
            net,
            NormalDemandBound(
                net.with_stages(**{s: {"safety_factor": z} for s, sink in zip(net.stage_ids, net.is_sink) if sink})
            ),
        ).total_cost
        for z in (0.5, 1.0, 1.645, 2.33)
    ]
    assert np.all(np.diff(costs) >= -1e-9)


def test_tighter_max_service_never_lowers_cost():
    net = random_tree(np.random.default_rng(3), 8)
    loose = solve_gsm(net).total_cost
    tight = solve_gsm(
        net.with_stages(**{s: {"max_service_time": 0.0} for s, sink in zip(net.stage_ids, net.is_sink) if sink})
    ).total_cost
    assert tight >= loose - 1e-9


def test_result_frame_and_constraints():
    net = from_stockpyl(load_instance("figure_6_14"))
    result = solve_gsm(net)
    frame = result.to_frame()
    assert list(frame.columns[:4]) == ["stage_id", "service_time", "inbound_service_time", "net_replenishment_time"]
    tau = frame.inbound_service_time + net.processing_time - frame.service_time
    assert np.allclose(frame.net_replenishment_time, tau) and (tau >= 0).all()
    assert frame.loc[frame.stage_id == "10", "max_service_binding"].item()
    assert result.holding_cost.sum() == pytest.approx(result.total_cost)
    assert result.summary()["n_stages"] == 10


def test_tabulated_model_reproduces_normal_bound():
    net = random_tree(np.random.default_rng(11), 7)
    normal = NormalDemandBound(net)
    taus = np.arange(0, 41, dtype=float)
    table = normal.excess_factor[:, None] * np.sqrt(taus)[None, :]
    tab = TabulatedSafetyStock(taus, table, normal.demand_mean)
    assert solve_gsm(net, tab).total_cost == pytest.approx(solve_gsm(net, normal).total_cost)


# ---------------------------------------------------------------------- errors
def test_tree_dp_refuses_general_networks():
    diamond = Network(
        [
            Stage("A", 1, 1.0),
            Stage("B", 1, 1.0),
            Stage("C", 1, 1.0),
            Stage("D", 1, 1.0, 0.0, demand_mean=5, demand_std=1, safety_factor=2),
        ],
        [Edge("A", "B"), Edge("A", "C"), Edge("B", "D"), Edge("C", "D")],
    )
    with pytest.raises(ValueError, match="tree DP needs a spanning tree"):
        solve_gsm(diamond, config=GSMConfig(method="tree_dp"))


def test_missing_demand_data_is_named():
    net = Network([Stage("A", 1, 1.0), Stage("B", 1, 1.0, 0.0, unique_id="SKU1@S1")], [Edge("A", "B")])
    with pytest.raises(NetworkError, match=r"demand stages \['B'\] lack demand_mean"):
        solve_gsm(net)


def test_bad_config_values():
    with pytest.raises(ValueError, match="time_limit must be > 0"):
        GSMConfig(time_limit=0)
    with pytest.raises(ValueError, match="method must be one of auto, tree_dp, milp, lagrangian, bnb; got 'simplex'"):
        GSMConfig(method="simplex")


def test_tabulated_model_validates():
    with pytest.raises(ValueError, match="taus must be increasing, start at 0"):
        TabulatedSafetyStock(np.array([1.0, 2.0]), np.zeros((1, 2)), np.zeros(1))
    with pytest.raises(ValueError, match=r"table must have shape \(2, 2\)"):
        TabulatedSafetyStock(np.array([0.0, 2.0]), np.zeros((1, 2)), np.zeros(2))


@pytest.mark.parametrize("seed", range(3))
def test_staircase_formulation_matches_brute_force(seed):
    """Parts feeding zero-service products (Willems chain 34's shape) use exact staircases."""
    from optimization.meio_demand import NormalDemandBound
    from optimization.meio_grid import build_grid
    from optimization.meio_milp import staircase_stages

    rng = np.random.default_rng(300 + seed)
    parts = [Stage(f"P{i}", float(rng.integers(1, 5)), float(rng.uniform(0.2, 2))) for i in range(4)]
    products = [
        Stage(
            f"F{k}",
            float(rng.integers(0, 3)),
            float(rng.uniform(1, 4)),
            0.0,
            demand_mean=10.0,
            demand_std=float(rng.uniform(1, 5)),
            safety_factor=1.645,
        )
        for k in range(2)
    ]
    edges = [Edge(p.stage_id, f.stage_id) for p in parts for f in products if rng.random() < 0.7]
    used = {e.upstream for e in edges}
    edges += [Edge(p.stage_id, "F0") for p in parts if p.stage_id not in used]
    net = Network(parts + products, edges)
    a_use, b_use = staircase_stages(net, build_grid(net, NormalDemandBound(net)))
    assert a_use.sum() == 4 and b_use.sum() == 2
    result = solve_gsm(net, config=GSMConfig(method="milp", rel_gap=1e-9))
    assert result.total_cost == pytest.approx(brute_force(net), rel=1e-9)
