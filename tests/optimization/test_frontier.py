"""Efficient frontier: monotone service/investment, aggregation, errors."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.distributions import horizon_normal
from optimization.frontier import efficient_frontier, summarise_frontier
from optimization.simulator import CostParams
from optimization.sizing import ServiceTarget, size_policy


@pytest.fixture
def frontier():
    rng = np.random.default_rng(4)
    n, T, L = 6, 400, 1
    rate = rng.uniform(2, 10, n)
    demand = rng.poisson(rate[:, None], size=(n, T)).astype(float)
    dist = horizon_normal(rate, np.sqrt(rate), np.full(n, L + 1))

    def size(target):
        return size_policy("base_stock", dist, ServiceTarget("csl", target), demand_rate=rate)

    costs = CostParams(unit_cost=rng.uniform(1, 5, n), holding_cost=0.05, shortage_cost=1.0)
    return efficient_frontier(
        demand, size, [0.7, 0.85, 0.95, 0.99], L, costs=costs, segment=["A", "A", "B", "B", "B", "C"], warmup=5
    )


def test_more_service_needs_more_inventory(frontier):
    total = summarise_frontier(frontier, by=None)
    assert total["inventory_value"].is_monotonic_increasing
    assert total["fill_rate"].is_monotonic_increasing
    assert total["csl"].is_monotonic_increasing


def test_segments_add_up_to_total(frontier):
    seg = summarise_frontier(frontier)
    total = summarise_frontier(frontier, by=None)
    by_target = seg.groupby("target")[["inventory_value", "cost_total", "demand"]].sum().reset_index()
    np.testing.assert_allclose(by_target["inventory_value"], total["inventory_value"])
    np.testing.assert_allclose(by_target["cost_total"], total["cost_total"])
    assert set(seg["segment"]) == {"A", "B", "C"}
    assert len(frontier) == 4 * 6


def test_cost_columns_sum(frontier):
    parts = frontier[["cost_purchasing", "cost_ordering", "cost_holding", "cost_shortage", "cost_expiration"]]
    np.testing.assert_allclose(parts.sum(axis=1), frontier["cost_total"])


def test_errors():
    with pytest.raises(ValueError, match="non-empty 1-D sequence"):
        efficient_frontier(np.ones((1, 3)), lambda t: None, [], 1)
    with pytest.raises(ValueError, match=r"need 1 labels, got 2 and 1"):
        efficient_frontier(np.ones((1, 3)), lambda t: None, [0.9], 1, unique_id=["a", "b"])
    with pytest.raises(ValueError, match=r"lacks columns"):
        import pandas as pd

        summarise_frontier(pd.DataFrame({"target": [0.9]}))
