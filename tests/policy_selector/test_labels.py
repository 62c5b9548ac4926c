"""Labels by simulation: reproducibility and cost-matrix / regret invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policy_selector import evaluate_choices, make_labels
from policy_selector.labels import COST_TYPES


def test_labels_reproducible_for_a_fixed_seed(tiny_demo, tiny_config, cutoff, labelled):
    _, first, _ = labelled
    _, again = make_labels(tiny_demo.demand, tiny_demo.items, cutoff, tiny_config, np.random.default_rng(0))
    pd.testing.assert_frame_equal(first.cost, again.cost)
    pd.testing.assert_series_equal(first.label, again.label)


def test_lead_time_sampling_uses_the_rng(tiny_demo, tiny_config, cutoff, labelled):
    _, first, _ = labelled
    assert (tiny_demo.items["lead_time_std"] > 0).any()
    _, other = make_labels(tiny_demo.demand, tiny_demo.items, cutoff, tiny_config, np.random.default_rng(99))
    assert not np.allclose(first.cost.to_numpy(), other.cost.to_numpy())


def test_cost_matrix_is_complete_finite_and_sums_its_parts(labelled, tiny_config):
    _, labels, _ = labelled
    assert list(labels.cost.columns) == list(tiny_config.space.names)
    assert np.isfinite(labels.cost.to_numpy()).all() and (labels.cost.to_numpy() >= 0).all()
    parts = labels.outcomes[[f"cost_{k}" for k in COST_TYPES]].sum(axis=1)
    np.testing.assert_allclose(parts, labels.outcomes["total_cost"])
    wide = labels.outcomes.pivot(index="unique_id", columns="candidate", values="total_cost")
    np.testing.assert_allclose(wide.loc[labels.cost.index, labels.cost.columns], labels.cost)


def test_label_is_the_cheapest_feasible_candidate(labelled):
    _, labels, _ = labelled
    cost, feasible = labels.cost.to_numpy(), labels.feasible.to_numpy()
    some = feasible.any(axis=1)
    best = np.where(feasible, cost, np.inf).min(axis=1)
    np.testing.assert_allclose(labels.cost_of(labels.label)[some], best[some])
    assert labels.feasible_of(labels.label)[some].all()


def test_regret_is_nonnegative_for_feasible_choices(labelled):
    _, labels, _ = labelled
    for name in labels.names:
        choice = pd.Series(name, index=labels.cost.index)
        ok = labels.feasible_of(choice) & labels.feasible_of(labels.label)
        assert (labels.regret(choice)[ok] >= -1e-9).all()


def test_evaluation_rows_agree_with_the_cost_matrix(labelled):
    _, labels, _ = labelled
    single = pd.Series(labels.names[0], index=labels.cost.index)
    table = evaluate_choices(labels, {"single": single}).set_index("method")
    assert table.loc["single", "total_cost"] == pytest.approx(labels.cost.iloc[:, 0].sum())
    assert table.loc["single", "total_cost"] >= table.loc["oracle", "total_cost"] - table.loc["single", "regret"]


def test_no_stock_costs_nothing_to_hold(labelled):
    _, labels, _ = labelled
    out = labels.outcomes[labels.outcomes["candidate"] == "no_stock"]
    assert (out["cost_holding"] == 0).all() and (out["avg_on_hand"] == 0).all()


def test_regret_rejects_choices_outside_the_candidate_set(labelled):
    _, labels, _ = labelled
    with pytest.raises(ValueError, match="not candidates"):
        labels.regret(pd.Series("magic_policy", index=labels.cost.index))


def test_too_few_held_out_periods_is_an_error(tiny_demo, tiny_config):
    last = pd.Timestamp(tiny_demo.demand["ds"].max())
    with pytest.raises(ValueError, match="test_periods=10"):
        make_labels(tiny_demo.demand, tiny_demo.items, last - pd.Timedelta(weeks=3), tiny_config,
                    np.random.default_rng(0))


def test_rng_must_be_a_generator(tiny_demo, tiny_config, cutoff):
    with pytest.raises(TypeError, match="numpy Generator"):
        make_labels(tiny_demo.demand, tiny_demo.items, cutoff, tiny_config, 0)
