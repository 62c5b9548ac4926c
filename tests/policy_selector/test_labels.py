"""Labels by simulation: reproducibility and cost-matrix / regret invariants."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policy_selector import evaluate_choices, make_labels
from policy_selector.labels import COST_TYPES, block_bootstrap


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


def test_label_is_the_least_expected_cost_and_the_oracle_the_least_realised(labelled):
    _, labels, _ = labelled
    np.testing.assert_array_equal(labels.label, labels.expected.idxmin(axis=1))
    np.testing.assert_array_equal(labels.oracle, labels.priced.idxmin(axis=1))
    assert (labels.penalty.to_numpy() >= 0).all()
    np.testing.assert_allclose(
        labels.outcomes["priced_cost"], labels.outcomes["total_cost"] + labels.outcomes["penalty"]
    )
    # expected cost averages many paths, not the realised one: the two matrices differ
    assert not np.allclose(labels.expected.to_numpy(), labels.priced.to_numpy())


def test_regret_is_nonnegative_and_zero_for_the_oracle(labelled):
    _, labels, _ = labelled
    for name in labels.names:
        assert (labels.regret(pd.Series(name, index=labels.cost.index)) >= -1e-9).all()
    np.testing.assert_allclose(labels.regret(labels.oracle), 0.0)


def test_shortage_below_the_target_implied_cost_is_priced(tiny_demo, tiny_config, cutoff):
    items = tiny_demo.items.assign(shortage_cost=1e-6, service_target=0.95, service_type="csl")
    _, labels = make_labels(tiny_demo.demand, items, cutoff, tiny_config, np.random.default_rng(0))
    short = labels.outcomes["cost_shortage"] > 0
    assert short.any() and (labels.outcomes.loc[short, "penalty"] > 0).all()
    # with a near-free shortage "don't stock" wins unpriced; priced through the target it wins less often
    unpriced = (labels.cost.idxmin(axis=1) == "no_stock").sum()
    assert unpriced > (labels.oracle == "no_stock").sum() and unpriced > (labels.label == "no_stock").sum()


def test_block_bootstrap_keeps_blocks_of_the_source():
    src = np.array([[0.0, 1.0, 2.0, 3.0, 4.0, 5.0], [7.0, np.nan, 7.0, 7.0, np.nan, np.nan], [np.nan] * 6])
    paths = block_bootstrap(src, 50, 8, 3, np.random.default_rng(0))
    assert paths.shape == (50, 3, 8)
    steps = np.diff(paths[:, 0, :3], axis=1)  # first block: consecutive source values
    assert (steps == 1).all()
    assert (paths[:, 1] == 7).all() and (paths[:, 2] == 0).all()


def test_evaluation_rows_agree_with_the_cost_matrix(labelled):
    _, labels, _ = labelled
    single = pd.Series(labels.names[0], index=labels.cost.index)
    table = evaluate_choices(labels, {"single": single}).set_index("method")
    assert table.loc["single", "total_cost"] == pytest.approx(labels.priced.iloc[:, 0].sum())
    assert table.loc["oracle", "regret"] == 0 and table.loc["single", "regret"] >= 0
    by_label = evaluate_choices(labels, {"label": labels.label}).set_index("method")
    assert by_label.loc["label", "expected_regret_pct"] == 0 and table.loc["single", "expected_regret_pct"] >= 0
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
        make_labels(
            tiny_demo.demand, tiny_demo.items, last - pd.Timedelta(weeks=3), tiny_config, np.random.default_rng(0)
        )


def test_rng_must_be_a_generator(tiny_demo, tiny_config, cutoff):
    with pytest.raises(TypeError, match="numpy Generator"):
        make_labels(tiny_demo.demand, tiny_demo.items, cutoff, tiny_config, 0)


def test_no_policy_costs_less_than_buying_the_demand(tiny_demo, tiny_config, cutoff):
    # lost-sales items whose margin is below the unit cost: a lost sale must not earn c - b
    items = tiny_demo.items.assign(lost_sales=True, shortage_cost=tiny_demo.items["unit_cost"] * 0.3)
    _, labels = make_labels(tiny_demo.demand, items, cutoff, tiny_config, np.random.default_rng(0))
    assert (labels.outcomes["cost_shortage"] > 0).any()
    floor = labels.baseline.to_numpy()[:, None]
    assert (labels.priced.to_numpy() >= floor - 1e-6).all() and (labels.expected.to_numpy() >= 0).all()
