"""Segment / portfolio targets: re-levelled recommendations on the tiny demo."""

import numpy as np
import pandas as pd
import pytest

from optimization import ServiceType
from policy_selector import recommend_policies
from policy_selector.portfolio import item_curves, portfolio_policy


@pytest.fixture(scope="module")
def recs(labelled, tiny_demo, tiny_config, cutoff):
    data = labelled[0]
    rec = recommend_policies(
        None, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0), cutoff=cutoff
    )
    return data, rec


def _service_at(curves, levels):
    """Weighted portfolio service of the curves at the given levels (levels are curve points)."""
    col = np.argmax(curves.level == levels[:, None], axis=1)
    s = curves.service[np.arange(len(levels)), col]
    return (curves.weight * s).sum() / curves.weight.sum()


@pytest.mark.parametrize("measure", ["csl", "fill_rate"])
def test_portfolio_target_is_met_on_the_sizing_distribution_and_value_rises(recs, tiny_config, measure):
    data, rec = recs
    values = []
    for target in (0.8, 0.9, 0.95, 0.98):
        out, alloc = portfolio_policy(data, rec, tiny_config, target, measure)
        stocked = out["service_mode"].eq("portfolio").to_numpy()
        assert stocked.sum() == rec["policy"].ne("no_stock").sum() > 0
        curves = item_curves(data, out, tiny_config, ServiceType(measure))
        assert alloc["all"].reached
        assert _service_at(curves, curves.current) >= target - 1e-9
        assert (out.loc[stocked, "service_target"] == target).all()
        assert (out.loc[stocked, "service_type"] == measure).all()
        values.append((curves.current * data.economics.unit_cost)[stocked].sum())
    assert np.all(np.diff(values) >= -1e-9)


def test_cheaper_than_per_item_levels_at_their_own_portfolio_service(recs, tiny_config):
    data, rec = recs
    curves = item_curves(data, rec, tiny_config, ServiceType.CSL)
    stocked = np.isfinite(curves.level).any(axis=1)
    per_item = _service_at(curves, np.where(stocked, curves.current, 0.0))
    out, alloc = portfolio_policy(data, rec, tiny_config, per_item)
    per_item_value = (curves.current * data.economics.unit_cost)[stocked].sum()
    step = np.nanmax(np.diff(curves.value, axis=1))  # the greedy may overshoot by one step at most
    assert alloc["all"].value <= per_item_value + step
    # levels move, policy types and order quantities do not
    assert (out["policy"] == rec["policy"]).all()
    pd.testing.assert_series_equal(out["order_quantity"], rec["order_quantity"])
    gap = (out["order_up_to"] - out["reorder_point"]).fillna(0)
    pd.testing.assert_series_equal(gap, (rec["order_up_to"] - rec["reorder_point"]).fillna(0))


def test_segment_target_is_met_in_every_segment(recs, tiny_config):
    data, rec = recs
    out, alloc = portfolio_policy(data, rec, tiny_config, 0.9, segment_by="sbc_class")
    assert set(alloc) == set(rec.loc[rec["policy"].ne("no_stock"), "sbc_class"])
    assert all(a.service >= 0.9 - 1e-9 for a in alloc.values())
    assert out.loc[rec["policy"].ne("no_stock"), "service_mode"].eq("segment:sbc_class").all()


def test_misaligned_rows_and_cost_measure_raise(recs, tiny_config):
    data, rec = recs
    with pytest.raises(ValueError, match="same cutoff, in its order"):
        portfolio_policy(data, rec.iloc[::-1], tiny_config, 0.9)
    with pytest.raises(ValueError, match="csl or fill_rate target"):
        portfolio_policy(data, rec, tiny_config, 0.9, measure="cost")
