"""Selectors: never outside the candidate set, rule fallback, unseen items, errors, explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.report.schema import conform_recommendations
from policy_selector import (
    EXTRA_COLUMNS,
    CandidateSpace,
    NotFittedError,
    PolicySelector,
    RuleSelector,
    recommend_policies,
)
from policy_selector.explain import sentence


def _synthetic(n: int = 300, seed: int = 0):
    """Features with a learnable rule: intermittent -> b, smooth -> a, dead -> c."""
    rng = np.random.default_rng(seed)
    adi = rng.uniform(1.0, 6.0, n)
    cv2 = rng.uniform(0.0, 1.0, n)
    f = pd.DataFrame({"n_periods": rng.integers(10, 100, n).astype(float), "adi": adi, "cv2": cv2,
                      "sbc_code": np.where(adi >= 1.32, 2.0, 0.0), "mean_demand": rng.uniform(0, 20, n),
                      "zero_share": 1 - 1 / adi, "lead_time": rng.integers(1, 6, n).astype(float),
                      "unit_cost": rng.lognormal(3, 1, n)}, index=[f"i{k}" for k in range(n)])
    cost = pd.DataFrame({"a": 10 + 5 * (adi > 2), "b": 10 + 5 * (adi <= 2), "c": 12.0 + rng.random(n)},
                        index=f.index).astype(float)
    labels = cost.idxmin(axis=1)
    return f, labels, cost


def test_classifier_learns_and_never_leaves_the_candidate_set():
    f, labels, cost = _synthetic()
    sel = PolicySelector(n_estimators=50).fit(f, labels, cost)
    assert (sel.predict(f) == labels).mean() > 0.9
    rng = np.random.default_rng(1)
    wild = pd.DataFrame(rng.normal(0, 1e6, size=f.shape), columns=f.columns, index=f.index)
    wild.iloc[::7, 3:] = np.nan
    assert sel.predict(wild).isin(cost.columns).all()
    proba = sel.predict_proba(f)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert list(proba.columns) == list(cost.columns)


def test_rare_labels_move_to_a_frequent_candidate():
    f, labels, cost = _synthetic()
    labels = labels.copy()
    labels.iloc[:2] = "c"  # "c" wins on two items only
    sel = PolicySelector(n_estimators=20, min_class_size=5).fit(f, labels, cost)
    assert "c" not in sel.classes_ and set(sel.classes_) <= set(cost.columns)


def test_missing_core_features_fall_back_to_the_rule():
    f, labels, cost = _synthetic()
    sel = PolicySelector(n_estimators=20).fit(f, labels, cost)
    partial = f.iloc[:5].copy()
    partial.loc[partial.index[0], "adi"] = np.nan
    sel.predict(partial)
    assert sel.selected_by_.iloc[0].startswith("rule fallback: adi")
    assert (sel.selected_by_.iloc[1:] == "classifier").all()
    sel.predict(f.drop(columns=["cv2"]).iloc[:3])
    assert sel.selected_by_.str.contains("missing").all()


def test_rule_follows_syntetos_boylan():
    cost = pd.DataFrame(columns=["ets_rs_normal", "sba_rs_negbin", "no_stock"])
    rule = RuleSelector().fit(None, None, cost)
    f = pd.DataFrame({"adi": [1.0, 1.1, 2.0, 3.0], "cv2": [0.1, 0.9, 0.1, 0.9]}, index=list("abcd"))
    assert rule.predict(f).tolist() == ["ets_rs_normal", "ets_rs_normal", "sba_rs_negbin", "sba_rs_negbin"]
    assert rule.explain(f)["c"].startswith("sba_rs_negbin by the Syntetos-Boylan rule (class intermittent)")


def test_predict_before_fit_says_call_fit():
    with pytest.raises(NotFittedError, match="call fit"):
        PolicySelector().predict(pd.DataFrame({"adi": [1.0]}))
    with pytest.raises(NotFittedError, match="call fit"):
        RuleSelector().predict(pd.DataFrame({"adi": [1.0]}))


def test_fit_rejects_labels_outside_the_candidates():
    f, labels, cost = _synthetic(50)
    with pytest.raises(ValueError, match="not columns of cost_matrix"):
        PolicySelector().fit(f, labels.replace("a", "zzz"), cost)
    with pytest.raises(ValueError, match="lack a label"):
        PolicySelector().fit(f, labels.iloc[:10], cost)
    with pytest.raises(TypeError, match="DataFrame"):
        PolicySelector().fit(f.to_numpy(), labels, cost)


def test_explanations_are_sentences_with_the_items_values():
    f, labels, cost = _synthetic()
    sel = PolicySelector(n_estimators=50, period_name="week").fit(f, labels, cost)
    text = sel.explain(f.iloc[:5])
    pred = sel.predict(f.iloc[:5])
    assert all(t.startswith(p + ":") for t, p in zip(text, pred))
    assert text.str.contains("week").any()


def test_sentence_golden():
    assert sentence("adi", 4.2, "week") == "intermittent: one demand every 4.2 weeks on average"
    assert sentence("lead_time", 6, "week") == "lead time 6 weeks"
    assert sentence("unit_cost", 2.0, "week", {"unit_cost": (5.0, 20.0)}).startswith("low unit cost")


def test_recommend_works_for_items_unseen_in_training(tiny_demo, tiny_config, labelled, cutoff):
    _, labels, features = labelled
    sel = PolicySelector(n_estimators=30, min_class_size=2).fit(features, labels.label, labels.decision_cost())
    rename = {u: f"NEW-{u}" for u in tiny_demo.items["unique_id"]}
    demand = tiny_demo.demand.assign(unique_id=tiny_demo.demand["unique_id"].map(rename))
    items = tiny_demo.items.assign(unique_id=tiny_demo.items["unique_id"].map(rename))
    recs = recommend_policies(sel, demand, items, tiny_config, np.random.default_rng(0), cutoff=cutoff)
    assert recs["unique_id"].str.startswith("NEW-").all()
    assert recs["candidate"].isin(tiny_config.space.names).all()
    assert (recs["order_up_to"] >= recs["reorder_point"]).all()
    assert recs["reasons"].str.len().gt(0).all()
    conform_recommendations(recs.drop(columns=list(EXTRA_COLUMNS)))


def test_recommend_without_a_model_uses_the_rule(tiny_demo, tiny_config, cutoff):
    recs = recommend_policies(None, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0),
                              cutoff=cutoff)
    assert recs["reasons"].str.contains("Syntetos-Boylan rule").all()


def test_recommend_rejects_a_selector_from_another_candidate_space(tiny_demo, tiny_config):
    f, labels, cost = _synthetic(60)
    sel = PolicySelector(n_estimators=5).fit(f, labels, cost)
    with pytest.raises(ValueError, match="config.space lacks"):
        recommend_policies(sel, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0))


def test_candidate_space_errors():
    with pytest.raises(ValueError, match="unknown candidate"):
        CandidateSpace.from_names(["ets_rs_normal", "bogus"])
    space = CandidateSpace.from_names(["ets_rs_normal"])
    with pytest.raises(ValueError, match="unique"):
        CandidateSpace(space.candidates * 2)
