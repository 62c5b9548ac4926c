"""The policy step's cut hot path gives main's recommendations: only chosen candidates sized, lots of perishables only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.policy_step import main_path
from optimization import PolicyType
from policy_selector import CandidateSpace, SelectorConfig, recommend_policies
from policy_selector.candidates import Candidate, Distribution
from policy_selector.context import prepare_cutoff
from policy_selector.selector import Selection
from policy_selector.sizing import size_candidates
from tests.policy_selector.conftest import FAST

#: every policy type: (R, S), (R, s, S), base stock, no stock from the fast space, and an (s, Q)
SQ = Candidate("sba_sq_negbin", "CrostonSBA", Distribution.NEGBIN, PolicyType.S_Q)


class _Cycle:
    """Candidate i mod k for the i-th item: every candidate chosen for some items."""

    def __init__(self, names):
        self.candidates_ = tuple(names)

    def select(self, features: pd.DataFrame) -> Selection:
        ids = features.index
        chosen = pd.Series([self.candidates_[i % len(self.candidates_)] for i in range(len(ids))], index=ids)
        proba = pd.DataFrame(0.0, index=ids, columns=list(self.candidates_))
        for name in self.candidates_:
            proba.loc[chosen == name, name] = 1.0
        return Selection(
            candidate=chosen,
            proba=proba,
            selected_by=pd.Series("test", index=ids),
            reasons=chosen + ": cycled",
        )


@pytest.fixture(scope="module")
def setting(tiny_demo, tiny_config):
    space = CandidateSpace(tuple(CandidateSpace.from_names(FAST).candidates) + (SQ,))
    config = SelectorConfig(**{**vars(tiny_config), "space": space})
    items = tiny_demo.items.copy()
    items.loc[items.index % 3 == 0, "shelf_life"] = 6.0  # perishables among every policy type
    return tiny_demo.demand, items, config


def test_recommendations_equal_mains_with_every_policy_type(setting):
    demand, items, config = setting
    selector = _Cycle(config.space.names)
    new = recommend_policies(selector, demand, items, config, np.random.default_rng(4))
    with main_path():
        old = recommend_policies(selector, demand, items, config, np.random.default_rng(4))
    assert set(new["candidate"]) == set(config.space.names)
    assert {"R_S", "R_s_S", "base_stock", "s_Q", "no_stock"} <= set(new["policy"])
    assert (new["expected_expiry_cost"] > 0).any()  # the perishables' lots were exercised
    pd.testing.assert_frame_equal(new, old, check_exact=True)


def test_a_subset_of_candidates_is_sized_as_in_the_whole_space(setting):
    demand, items, config = setting
    data = prepare_cutoff(demand, items, demand["ds"].max(), config)
    whole = size_candidates(data, config)
    part = size_candidates(data, config, names=["sba_sq_negbin", "no_stock", "sba_rs_negbin"])
    assert part.names == ("sba_rs_negbin", "no_stock", "sba_sq_negbin")  # the space's order
    rows = whole.table[whole.table["candidate"].isin(part.names)].reset_index(drop=True)
    pd.testing.assert_frame_equal(part.table, rows, check_exact=True)
    at = [whole.names.index(n) for n in part.names]
    np.testing.assert_array_equal(part.policies.reorder_level, whole.policies.reorder_level[at])
    np.testing.assert_array_equal(part.policies.order_up_to, whole.policies.order_up_to[at])


def test_sizing_an_unknown_candidate_names_it_and_the_space(setting):
    demand, items, config = setting
    data = prepare_cutoff(demand, items, demand["ds"].max(), config)
    with pytest.raises(ValueError, match=r"cannot size candidate\(s\) \['ets_rs_normal'\]: not in the candidate space"):
        size_candidates(data, config, names=["ets_rs_normal"])
