"""Forecast-error-driven buffers and the guaranteed-service replay."""

from __future__ import annotations

import numpy as np
import pytest

from optimization import Edge, Network, NormalDemandBound, Stage, TabulatedSafetyStock, solve_gsm
from optimization.meio_demand import error_quantile_table
from optimization.meio_sim import replay_guaranteed_service


def two_store_tree(std: float = 3.0) -> Network:
    stores = [
        Stage(f"S{i}", 1, 2.0, 0.0, unique_id=f"S{i}", demand_mean=10.0, demand_std=std, safety_factor=1.645)
        for i in (1, 2)
    ]
    return Network(
        [Stage("CW", 4, 1.0), Stage("DC", 1, 1.5)] + stores, [Edge("CW", "DC"), Edge("DC", "S1"), Edge("DC", "S2")]
    )


def test_replay_hits_target_on_normal_demand():
    net = two_store_tree()
    result = solve_gsm(net)
    rng = np.random.default_rng(0)
    demand = np.zeros((20_000, net.n_stages))
    demand[:, net.is_sink] = rng.normal(10.0, 3.0, size=(20_000, 2))
    replay = replay_guaranteed_service(net, result, np.clip(demand, 0, None))
    csl = replay.loc[replay.is_customer_facing, "csl"]
    assert np.all(np.abs(csl - 0.95) < 0.01)


def test_replay_constant_demand_never_short():
    net = two_store_tree(std=0.0)
    result = solve_gsm(net)
    demand = np.zeros((60, net.n_stages))
    demand[:, net.is_sink] = 10.0
    replay = replay_guaranteed_service(net, result, demand)
    assert (replay.csl == 1.0).all() and (replay.fill_rate == 1.0).all()
    with pytest.raises(ValueError, match="demand must have shape"):
        replay_guaranteed_service(net, result, demand[:, :2])


def test_error_quantiles_capture_correlation():
    net = two_store_tree()
    rng = np.random.default_rng(1)
    common = rng.normal(0, 3.0, size=5000)
    errors = np.zeros((5000, net.n_stages))
    errors[:, net.is_sink] = np.column_stack([common, common])  # perfectly correlated stores
    table = error_quantile_table(net, errors, 0.95, max_tau=6)
    dc = net.index["DC"]
    # Correlated: DC needs ~2 x a store's buffer, not sqrt(2) x as independence would say.
    ratio = table.table[dc, 4] / table.table[net.index["S1"], 4]
    assert ratio == pytest.approx(2.0, rel=0.02)
    independent = NormalDemandBound(net)
    assert independent.excess_factor[dc] / independent.excess_factor[net.index["S1"]] == pytest.approx(np.sqrt(2))
    assert solve_gsm(net, table).total_cost > 0


def test_error_quantile_table_errors():
    net = two_store_tree()
    with pytest.raises(ValueError, match="quantile must be in"):
        error_quantile_table(net, np.zeros((50, net.n_stages)), 1.5, 5)
    with pytest.raises(ValueError, match="need more than max_tau=60"):
        error_quantile_table(net, np.zeros((50, net.n_stages)), 0.9, 60)
    with pytest.raises(ValueError, match="non-decreasing in tau"):
        TabulatedSafetyStock(np.array([0.0, 1.0, 2.0]), np.array([[0.0, 2.0, 1.0]]), np.zeros(1))


def test_network_simulation_constant_demand_is_always_on_time():
    from optimization.meio_sim import simulate_base_stock_network

    net = two_store_tree(std=0.0)
    demand = np.zeros((80, net.n_stages))
    demand[:, net.is_sink] = 10.0
    sim = simulate_base_stock_network(net, solve_gsm(net), demand)
    assert (sim.on_time == 1.0).all() and (sim.fill_rate == 1.0).all()


def test_network_simulation_propagates_upstream_shortage():
    from optimization import evaluate_service_times
    from optimization.meio_sim import simulate_base_stock_network

    net = two_store_tree(std=0.0)
    demand = np.zeros((80, net.n_stages))
    demand[:, net.is_sink] = 10.0
    demand[40, net.index["S1"]] = 60.0  # one spike beyond every buffer
    plan = evaluate_service_times(net, np.zeros(net.n_stages))  # node-by-node: CW promises S = 0
    sim = simulate_base_stock_network(net, plan, demand).set_index("stage_id")
    # The CW cannot cover the spike; both stores see late lots although only S1 had the spike.
    assert sim.loc["CW", "on_time"] < 1.0
    assert sim.loc["S2", "on_time"] < 1.0
    with pytest.raises(ValueError, match="measure_from must be in"):
        simulate_base_stock_network(net, plan, demand, measure_from=80)
