"""Loaders: Willems chains and Stockwise network CSVs (errors name file, row, column)."""

from __future__ import annotations

import math

import pandas as pd
import pytest

from optimization import CycleError, Edge, Network, NetworkError, Stage, solve_gsm
from pipelines.data.network_io import (
    NetworkFileError,
    read_stockwise_network,
    read_willems_chain,
    write_stockwise_network,
)

# Chains whose stage times are all deterministic (SNC topology summary: no stochastic stage).
# Reference = SNC's unscaled GSM optimum to the cent (docs/methods/gsm-model.md: 27,188,806 / 139,919 / 3,108,718).
DETERMINISTIC = {2: 27_188_806.10, 4: 139_918.53, 17: 3_108_718.36}


@pytest.fixture
def willems(shared_data):
    return shared_data / "willems"


@pytest.mark.realdata
def test_chains_load_with_reported_counts(willems):
    table = pd.read_csv(willems / "reported_optimal_costs.csv")
    for row in table.itertuples():
        net = read_willems_chain(willems / row.file)
        assert (net.n_stages, net.n_edges) == (row.n_stages, row.n_edges)
        assert int(net.is_sink.sum()) == row.n_demand_stages
        assert net.is_tree is False


@pytest.mark.realdata
def test_holding_cost_is_rate_times_cumulative_cost(willems):
    net = read_willems_chain(willems / "chains/willems_01.csv", holding_rate=0.35)
    # Retail_0002 <- Manuf_0001 (39 + 12 + 5 + 9) and Manuf_0002 (36 + 26), added 0.
    assert net.holding_cost[net.index["Retail_0002"]] == pytest.approx(0.35 * (65 + 62))
    assert net.holding_cost[net.index["Part_0001"]] == pytest.approx(0.35 * 12)


@pytest.mark.realdata
@pytest.mark.parametrize("chain", [2, 4, 17])
def test_deterministic_chains_match_unscaled_optimum(willems, chain):
    net = read_willems_chain(willems / f"chains/willems_{chain:02d}.csv", holding_rate=1.0)
    result = solve_gsm(net)
    assert result.optimal
    assert result.total_cost == pytest.approx(DETERMINISTIC[chain], abs=0.01)


@pytest.mark.realdata
def test_chain_25_matches_reported_cost(willems):
    result = solve_gsm(read_willems_chain(willems / "chains/willems_25.csv"))
    assert result.optimal
    assert result.total_cost == pytest.approx(1_140_000, rel=0.01)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_willems_bad_number_names_row_and_column(tmp_path):
    header = (
        "stage_id,lead_time,max_s_time,cost_rate,risk_pool,ext_demand_mean,ext_demand_std,ext_demand_thres,up_stages\n"
    )
    path = write(tmp_path, "bad.csv", header + "A,2,,x,2,,,\nB,1,0,1,,5,1,1.645,A,1\n")
    with pytest.raises(NetworkFileError, match=r"bad.csv: row 2, column 'cost_rate': 'x' is not a number"):
        read_willems_chain(path)


def test_willems_fractional_times_are_kept(tmp_path):
    header = (
        "stage_id,lead_time,max_s_time,cost_rate,risk_pool,ext_demand_mean,ext_demand_std,ext_demand_thres,up_stages\n"
    )
    path = write(tmp_path, "frac.csv", header + "A,1.05,,2,2,,,\nB,0.5,0,1,,5,1,1.645,A,1\n")
    net = read_willems_chain(path, holding_rate=1.0)
    assert net.processing_time[net.index["A"]] == pytest.approx(1.05)
    assert net.holding_cost[net.index["B"]] == pytest.approx(3.0)


def test_willems_errors(tmp_path):
    with pytest.raises(NetworkFileError, match="file not found"):
        read_willems_chain(tmp_path / "missing.csv")
    path = write(tmp_path, "hdr.csv", "a,b,c\n")
    with pytest.raises(NetworkFileError, match="row 1 must be the header"):
        read_willems_chain(path)
    header = (
        "stage_id,lead_time,max_s_time,cost_rate,risk_pool,ext_demand_mean,ext_demand_std,ext_demand_thres,up_stages\n"
    )
    path = write(tmp_path, "cyc.csv", header + "A,1,,1,2,,,,B,1\nB,1,,1,2,,,,A,1\nC,1,0,1,,5,1,1,B,1\n")
    with pytest.raises(CycleError, match="cyc.csv: the network has a directed cycle"):
        read_willems_chain(path)
    with pytest.raises(ValueError, match="holding_rate must be > 0"):
        read_willems_chain(path, holding_rate=0.0)


def demo_network() -> Network:
    stages = [Stage("SKU1@CW", 5, 1.0), Stage("SKU1@DC1", 2, 1.5)]
    stages += [
        Stage(f"SKU1@S0{i}", 1, 2.0, 0.0, unique_id=f"SKU1@S0{i}", demand_mean=10.0 + i, demand_std=3.0) for i in (1, 2)
    ]
    edges = [Edge("SKU1@CW", "SKU1@DC1")] + [Edge("SKU1@DC1", f"SKU1@S0{i}") for i in (1, 2)]
    return Network(stages, edges)


def test_stockwise_round_trip(tmp_path):
    net = demo_network()
    write_stockwise_network(net, tmp_path / "stages.csv", tmp_path / "edges.csv")
    back = read_stockwise_network(tmp_path / "stages.csv", tmp_path / "edges.csv")
    assert back.stage_ids == net.stage_ids and back.n_edges == net.n_edges
    assert math.isinf(back.max_service_time[back.index["SKU1@CW"]])
    assert back.unique_ids[back.index["SKU1@S01"]] == "SKU1@S01"


def test_stockwise_errors_name_file_row_column(tmp_path):
    stages = write(
        tmp_path,
        "stages.csv",
        "stage_id,processing_time,holding_cost,max_service_time,unique_id\nA,2,1,,\nB,oops,1,0,B\n",
    )
    edges = write(tmp_path, "edges.csv", "upstream,downstream,quantity\nA,B,1\n")
    with pytest.raises(NetworkFileError, match=r"stages.csv: row 3, column 'processing_time': 'oops'"):
        read_stockwise_network(stages, edges)
    stages = write(tmp_path, "stages.csv", "stage_id,processing_time,holding_cost\nA,1,1\n")
    with pytest.raises(NetworkFileError, match=r"missing columns \['max_service_time', 'unique_id'\]"):
        read_stockwise_network(stages, edges)
    stages = write(
        tmp_path, "stages.csv", "stage_id,processing_time,holding_cost,max_service_time,unique_id\nA,2,1,,\nB,1,1,0,B\n"
    )
    edges = write(tmp_path, "edges.csv", "upstream,downstream,quantity\nA,Z,1\n")
    with pytest.raises(NetworkError, match=r"unknown stages \['Z'\]"):
        read_stockwise_network(stages, edges)
