"""Selectors: never outside the candidate set, rule fallback, unseen items, errors, explanations."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.report.schema import conform_recommendations
from policy_selector import (
    EXTRA_COLUMNS,
    CandidateSpace,
    FixedSelector,
    NotFittedError,
    PolicySelector,
    RuleSelector,
    recommend_policies,
)
from policy_selector.explain import sentence
from policy_selector.selector import PACKAGED_DEFAULT


def _synthetic(n: int = 300, seed: int = 0):
    """Features with a learnable rule: intermittent -> b, smooth -> a, dead -> c."""
    rng = np.random.default_rng(seed)
    adi = rng.uniform(1.0, 6.0, n)
    cv2 = rng.uniform(0.0, 1.0, n)
    f = pd.DataFrame(
        {
            "n_periods": rng.integers(10, 100, n).astype(float),
            "adi": adi,
            "cv2": cv2,
            "sbc_code": np.where(adi >= 1.32, 2.0, 0.0),
            "mean_demand": rng.uniform(0, 20, n),
            "zero_share": 1 - 1 / adi,
            "lead_time": rng.integers(1, 6, n).astype(float),
            "unit_cost": rng.lognormal(3, 1, n),
        },
        index=[f"i{k}" for k in range(n)],
    )
    cost = pd.DataFrame(
        {"a": 10 + 5 * (adi > 2), "b": 10 + 5 * (adi <= 2), "c": 12.0 + rng.random(n)}, index=f.index
    ).astype(float)
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
    selected_by = sel.select(partial).selected_by
    assert selected_by.iloc[0].startswith("rule fallback: adi")
    assert (selected_by.iloc[1:] == "classifier").all()
    assert sel.select(f.drop(columns=["cv2"]).iloc[:3]).selected_by.str.contains("missing").all()


def test_select_is_pure_and_its_reasons_name_the_chosen_candidate():
    f, _, _ = _synthetic()
    # 'a' and 'c' win at random and are ruinous when wrong; the hedge 'b' is never best, never bad:
    # the Bayes rule picks 'b' where the argmax of the probabilities picks 'a' or 'c'
    coin = np.random.default_rng(3).random(len(f)) < 0.5
    cost = pd.DataFrame({"a": np.where(coin, 10.0, 40.0), "b": 11.0, "c": np.where(coin, 40.0, 10.0)}, index=f.index)
    sel = PolicySelector(n_estimators=30).fit(f, cost.idxmin(axis=1), cost)
    before = set(vars(sel))
    s = sel.select(f)
    assert set(vars(sel)) == before  # nothing written on the estimator
    assert (s.candidate == "b").mean() > 0.9 and (s.proba.idxmax(axis=1) != "b").all()
    assert s.candidate.equals(sel.predict(f))
    assert s.reasons.equals(sel.explain(f))
    assert all(
        r.startswith(f"{c}:") or r.startswith(f"{c} by the Syntetos-Boylan rule")
        for r, c in zip(s.reasons, s.candidate)
    )
    np.testing.assert_allclose(s.proba.to_numpy(), sel.predict_proba(f).to_numpy())
    assert s.confidence.between(0, 1).all()
    wild = f.copy()
    wild.iloc[::3, wild.columns.get_loc("adi")] = np.nan
    s = sel.select(wild)
    rule_rows = s.selected_by != "classifier"
    assert rule_rows.sum() == len(f.iloc[::3])
    assert all(
        r.startswith(f"{c} by the Syntetos-Boylan rule") for r, c in zip(s.reasons[rule_rows], s.candidate[rule_rows])
    )


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
    assert all(r.startswith(c) for r, c in zip(recs["reasons"], recs["candidate"]))  # explains the choice
    conform_recommendations(recs.drop(columns=list(EXTRA_COLUMNS)))


def test_recommend_without_a_model_uses_the_packaged_default(tiny_demo, tiny_config, cutoff):
    recs = recommend_policies(
        None, tiny_demo.demand, tiny_demo.items, tiny_config, np.random.default_rng(0), cutoff=cutoff
    )
    first = next(c for c in PACKAGED_DEFAULT if c in tiny_config.space.names)  # FAST has no AutoETS candidate
    assert (recs["candidate"] == first).all() and (recs["selected_by"] == "default").all()
    assert recs["reasons"].str.startswith(f"{first}: the default policy").all()


def test_default_not_in_the_space_falls_back_to_the_rule_and_says_so():
    sel = FixedSelector("bogus").fit(None, None, pd.DataFrame(columns=["ets_rs_normal", "sba_rs_negbin"]))
    s = sel.select(pd.DataFrame({"adi": [1.0, 3.0], "cv2": [0.1, 0.1]}, index=["a", "b"]))
    assert s.candidate.tolist() == ["ets_rs_normal", "sba_rs_negbin"]
    assert s.selected_by.str.contains("default 'bogus' is not a candidate").all()


def test_s_q_rows_show_s_plus_q_and_unit_lots_without_order_cost_are_base_stock():
    from optimization import PolicyParams
    from optimization.policies import POLICY_CODES, PolicyType
    from policy_selector.recommend import presented_policy

    code = POLICY_CODES[PolicyType.S_Q]
    policy = PolicyParams(
        policy_type=np.full(3, code),
        review_period=np.ones(3),
        reorder_level=np.full(3, 4.0),
        order_up_to=np.full(3, 4.0),
        order_quantity=np.array([10.0, 1.0, 1.0]),
        moq=np.zeros(3),
        order_multiple=np.ones(3),
        lost_sales=np.zeros(3, bool),
    )
    shown = presented_policy(np.array(["s_Q"] * 3, dtype=object), policy, np.array([0.0, 0.0, 5.0]))
    assert shown["policy"].tolist() == ["s_Q", "base_stock", "s_Q"]
    assert shown["order_up_to"].tolist() == [14.0, 5.0, 5.0]
    assert shown["reorder_point"].tolist() == [4.0, 5.0, 4.0]
    assert np.isnan(shown["order_quantity"][1]) and shown["order_quantity"][[0, 2]].tolist() == [10.0, 1.0]


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


def test_regression_decision_picks_the_least_predicted_cost_and_explains_it():
    f, _, _ = _synthetic()
    # smooth items: 'a' or 'c' at random (ruinous when wrong), the hedge 'b' is the least expected cost;
    # intermittent items: 'c' always
    coin = np.random.default_rng(3).random(len(f)) < 0.5
    smooth = (f["adi"] < 3.5).to_numpy()
    cost = pd.DataFrame(
        {
            "a": np.where(smooth & coin, 10.0, 40.0),
            "b": np.where(smooth, 11.0, 30.0),
            "c": np.where(smooth & coin, 40.0, 10.0),
        },
        index=f.index,
    )
    sel = PolicySelector(n_estimators=40, decision="regression").fit(f, cost.idxmin(axis=1), cost)
    s = sel.select(f)
    assert (s.candidate[smooth] == "b").mean() > 0.9 and (s.candidate[~smooth] == "c").mean() > 0.9
    assert all(r.startswith(f"{c}:") for r, c in zip(s.reasons, s.candidate))


def test_abstaining_keeps_the_learnable_switches_and_drops_the_noise():
    f, labels, cost = _synthetic()
    # a learnable rule: the margin keeps it (the switches paid off out of fold)
    sel = PolicySelector(n_estimators=30, abstain=True).fit(f, labels, cost)
    assert sel.default_ == str(cost.sum().idxmin()) and np.isfinite(sel.margin_) and sel.margin_ >= 0
    assert (sel.predict(f) == labels).mean() > 0.9
    # noise: which of a / b wins is a coin unrelated to the features; a wins more often (the default)
    coin = np.random.default_rng(5).random(len(f)) < 0.4
    noise = pd.DataFrame({"a": np.where(coin, 12.0, 10.0), "b": np.where(coin, 10.0, 12.0), "c": 13.0}, index=f.index)
    plain = PolicySelector(n_estimators=30).fit(f, noise.idxmin(axis=1), noise)
    held = PolicySelector(n_estimators=30, abstain=True).fit(f, noise.idxmin(axis=1), noise)
    assert held.default_ == "a" and plain.margin_ is None
    assert (held.predict(f) == "a").mean() >= (plain.predict(f) == "a").mean()
    assert (held.predict(f) == "a").mean() > 0.9
    # the decision only ever leaves the default for a saving above the margin
    expected, use = held._expected_regret(f)
    d = list(held.candidates_).index("a")
    saving = expected[:, d] - expected.min(axis=1)
    moved = (held.predict(f) != "a").to_numpy()[use]
    assert (saving[moved] > held.margin_).all()
