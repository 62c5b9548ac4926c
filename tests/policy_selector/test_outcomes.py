"""Expected outcomes in the sizing's own demand model (issue 12, item 2).

The paths of :func:`sizing_paths` make every H consecutive periods sum to a quantile of the
distribution that sized the level, so a base-stock level S has expected CSL P(D_H <= S) of
that distribution exactly, and an (s, Q) with Q = 1 on whole units has P(D_H <= s + 1)
(an order lifts the position to s + 1).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from optimization import base_stock_policy, s_q_policy
from policy_selector.outcomes import simulated_outcomes, sizing_paths
from policy_selector.sizing import exposure


def _plain(data):
    """The cutoff with backorders, no MOQ / multiples / shelf life / lead-time spread."""
    econ = data.economics
    n = len(data.ids)
    econ = dataclasses.replace(
        econ,
        moq=np.zeros(n),
        order_multiple=np.zeros(n),
        shelf_life=np.zeros(n, dtype=int),
        lost_sales=np.zeros(n, dtype=bool),
        lead_time_std=np.zeros(n),
    )
    return dataclasses.replace(data, economics=econ)


@pytest.fixture(scope="module")
def paths(labelled, tiny_config):
    data = _plain(labelled[0])
    name = "sba_basestock_poisson"
    chosen = np.full(len(data.ids), name, dtype=object)
    chosen[-1] = "no_stock"
    p, totals = sizing_paths(data, chosen, tiny_config, 24, np.random.default_rng(1))
    cand = tiny_config.space[name]
    H = exposure(cand, data.economics.lead_time, data.economics.review_period)
    return data, p, totals, H


def test_every_window_of_every_path_sums_to_its_grid_quantile(paths, tiny_config):
    data, p, totals, H = paths
    assert p.shape == (tiny_config.quantile_points, len(data.ids), 24)
    assert np.isnan(totals[-1]).all() and np.isfinite(totals[:-1]).all()
    for i in range(len(data.ids) - 1):
        h = int(H[i])
        csum = np.concatenate([np.zeros((p.shape[0], 1)), np.cumsum(p[:, i], axis=1)], axis=1)
        windows = csum[:, h:] - csum[:, :-h]
        np.testing.assert_allclose(windows, np.repeat(totals[i][:, None], windows.shape[1], axis=1), atol=1e-9)
    assert (p >= 0).all() and (p == np.round(p)).all()  # the demo is count data: whole units per period
    # the paths follow the grid, sorted, one path per grid point
    assert (np.diff(totals[:-1], axis=1) >= 0).all()


def test_base_stock_csl_is_the_sizing_cdf_at_s(paths, tiny_config):
    data, p, totals, _ = paths
    rows = np.arange(len(data.ids) - 1)
    S = np.array([np.quantile(totals[i], q) for i, q in zip(rows, np.linspace(0.5, 0.97, len(rows)))] + [0.0])
    S = np.ceil(S)
    out = simulated_outcomes(data, base_stock_policy(S), p, np.random.default_rng(0))
    want = (totals[rows] <= S[rows, None]).mean(axis=1)
    np.testing.assert_allclose(out["expected_csl"].to_numpy()[rows], want, atol=1e-9)


def test_sq_with_one_unit_orders_serves_the_cdf_at_s_plus_one(paths, tiny_config):
    data, p, totals, _ = paths
    rows = np.arange(len(data.ids) - 1)
    s = np.ceil(np.append(np.quantile(totals[rows], 0.8, axis=1), 0.0))
    out = simulated_outcomes(data, s_q_policy(s, np.ones_like(s)), p, np.random.default_rng(0))
    np.testing.assert_allclose(
        out["expected_csl"].to_numpy()[rows], (totals[rows] <= s[rows, None] + 1).mean(axis=1), atol=1e-9
    )


def test_fill_rate_is_units_served_over_units_demanded(paths, tiny_config):
    data, p, totals, _ = paths
    S = np.zeros(len(data.ids))  # nothing stocked: only what arrives in the period it is ordered is served
    out = simulated_outcomes(data, base_stock_policy(S), p, np.random.default_rng(0))
    assert ((out["expected_fill_rate"] >= 0) & (out["expected_fill_rate"] <= 1)).all()
    assert out["expected_fill_rate"].iloc[:-1].max() < 0.5
    assert set(out.columns) >= {"expected_csl", "expected_fill_rate", "expected_total_cost", "expected_avg_on_hand"}
