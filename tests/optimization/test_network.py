"""Network construction, validation errors and flat arrays."""

from __future__ import annotations

import math

import numpy as np
import pytest

from optimization import CycleError, Edge, Network, NetworkError, Stage, UnknownStageError, bom_multipliers


def demand_stage(sid, t=1.0, h=1.0, smax=0.0, mu=10.0, sd=2.0, z=1.645):
    return Stage(sid, t, h, smax, demand_mean=mu, demand_std=sd, safety_factor=z)


def small_dag() -> Network:
    # A feeds B and C, both feed D (undirected cycle), D is the customer-facing stage.
    return Network(
        [demand_stage("D"), Stage("C", 2, 1.0), Stage("B", 3, 1.0), Stage("A", 1, 0.5)],
        [Edge("A", "B"), Edge("A", "C", 2.0), Edge("B", "D"), Edge("C", "D")],
    )


def test_topological_order_and_csr():
    net = small_dag()
    assert net.stage_ids.index("A") < net.stage_ids.index("B") < net.stage_ids.index("D")
    d = net.index["D"]
    assert sorted(net.stage_ids[i] for i in net.predecessors(d)) == ["B", "C"]
    assert sorted(net.stage_ids[i] for i in net.successors(net.index["A"])) == ["B", "C"]
    assert net.n_stages == 4 and net.n_edges == 4 and not net.is_tree
    assert net.is_sink.tolist() == [s == "D" for s in net.stage_ids]


def test_arrays_are_read_only():
    net = small_dag()
    with pytest.raises(ValueError, match="read-only"):
        net.processing_time[0] = 99.0


def test_bom_multipliers_count_every_path():
    net = small_dag()
    phi = bom_multipliers(net).toarray()
    a, d = net.index["A"], net.index["D"]
    assert phi[a, d] == pytest.approx(3.0)  # 1 via B + 2 via C


def test_longest_inbound_time_and_cumulative():
    net = small_dag()
    M = net.longest_inbound_time()
    assert M[net.index["D"]] == pytest.approx(1 + 3 + 1)
    c = net.cumulative(np.ones(4))
    assert c[net.index["D"]] == pytest.approx(1 + (1 + 1) + (1 + 2 * 1))


def test_is_tree_for_distribution_tree():
    net = Network([Stage("W", 2, 1.0), demand_stage("R1"), demand_stage("R2")], [Edge("W", "R1"), Edge("W", "R2")])
    assert net.is_tree


def test_cycle_is_named():
    with pytest.raises(CycleError, match="A -> B -> C -> A|B -> C -> A -> B|C -> A -> B -> C"):
        Network(
            [Stage("A", 1, 1), Stage("B", 1, 1), Stage("C", 1, 1), demand_stage("D")],
            [Edge("A", "B"), Edge("B", "C"), Edge("C", "A"), Edge("C", "D")],
        )


def test_self_loop():
    with pytest.raises(CycleError, match="self-loop on stage 'A'"):
        Network([demand_stage("A")], [Edge("A", "A")])


def test_unknown_stage_in_edge():
    with pytest.raises(UnknownStageError, match=r"unknown stages \['X'\]"):
        Network([demand_stage("A")], [Edge("X", "A")])


def test_duplicate_stage():
    with pytest.raises(NetworkError, match=r"duplicate stage ids \['A'\]"):
        Network([demand_stage("A"), demand_stage("A")], [])


def test_duplicate_edge():
    with pytest.raises(NetworkError, match="duplicate edge 'A' -> 'B'"):
        Network([Stage("A", 1, 1), demand_stage("B")], [Edge("A", "B"), Edge("A", "B")])


@pytest.mark.parametrize(
    ("field", "value", "match"),
    [
        ("processing_time", -1.0, "processing_time must be finite and >= 0"),
        ("holding_cost", -0.5, "holding_cost must be finite and >= 0"),
        ("holding_cost", math.nan, "holding_cost must be finite and >= 0"),
        ("max_service_time", -2.0, "max_service_time must be >= 0"),
        ("demand_std", -1.0, "demand_std must be finite and >= 0"),
    ],
)
def test_negative_values(field, value, match):
    kwargs = dict(
        stage_id="A",
        processing_time=1.0,
        holding_cost=1.0,
        max_service_time=0.0,
        demand_mean=1.0,
        demand_std=1.0,
        safety_factor=1.0,
    )
    kwargs[field] = value
    with pytest.raises(NetworkError, match=f"stage 'A': {match}"):
        Network([Stage(**kwargs)], [])


def test_negative_quantity():
    with pytest.raises(NetworkError, match="quantity must be > 0"):
        Network([Stage("A", 1, 1), demand_stage("B")], [Edge("A", "B", -1.0)])


def test_sink_without_demand():
    with pytest.raises(NetworkError, match=r"sink\) stages without demand \['B'\]"):
        Network([Stage("A", 1, 1), Stage("B", 1, 1)], [Edge("A", "B")])


def test_empty_network():
    with pytest.raises(NetworkError, match="no stages"):
        Network([], [])


def test_with_stages_changes_copy_only():
    net = small_dag()
    net2 = net.with_stages(A={"processing_time": 5.0})
    assert net2.processing_time[net2.index["A"]] == 5.0
    assert net.processing_time[net.index["A"]] == 1.0
    with pytest.raises(UnknownStageError, match=r"unknown stage ids \['Z'\]"):
        net.with_stages(Z={"processing_time": 1.0})


def test_time_denominator():
    net = Network([Stage("A", 1.05, 1.0), demand_stage("B", t=0.5)], [Edge("A", "B")])
    assert net.time_denominator() == 20
    coarse = Network([Stage("A", 1.0 / 3.0 + 1e-4, 1.0), demand_stage("B")], [Edge("A", "B")])
    with pytest.raises(ValueError, match="not a multiple of 1/100"):
        coarse.time_denominator()
