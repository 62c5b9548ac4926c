"""Tiny demo data and one labelled cutoff shared by the policy-selector tests."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import CandidateSpace, SelectorConfig, make_labels
from policy_selector.features import build_features

#: Fast candidates (no AutoETS): intermittent, min-max, base stock, smooth, don't stock.
FAST = ("sba_rs_negbin", "tsb_rss_negbin", "sba_basestock_poisson", "adida_rs_normal", "no_stock")


@pytest.fixture(scope="session")
def tiny_demo():
    """8 items x 4 stores, 70 weeks of the seeded demo network."""
    return generate_demo(DemoConfig(seed=3, n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=70))


@pytest.fixture(scope="session")
def tiny_config() -> SelectorConfig:
    return SelectorConfig(
        space=CandidateSpace.from_names(FAST),
        n_windows=3,
        test_periods=10,
        quantile_points=100,
        sim_paths=5,
        sim_periods=20,
    )


@pytest.fixture(scope="session")
def cutoff(tiny_demo) -> pd.Timestamp:
    dates = np.sort(tiny_demo.demand["ds"].unique())
    return pd.Timestamp(dates[-11])


@pytest.fixture(scope="session")
def labelled(tiny_demo, tiny_config, cutoff):
    """(CutoffData, LabelSet, features) at the cutoff with seed 0."""
    data, labels = make_labels(tiny_demo.demand, tiny_demo.items, cutoff, tiny_config, np.random.default_rng(0))
    return data, labels, build_features(data).loc[labels.cost.index]
