"""Features use only data up to the cutoff: a planted future change must not move them."""

from __future__ import annotations

import numpy as np
import pandas as pd

from policy_selector import make_labels, prepare_cutoff
from policy_selector.features import CORE_FEATURES, FEATURE_GROUPS, build_features


def _plant_future_change(demand: pd.DataFrame, cutoff: pd.Timestamp) -> pd.DataFrame:
    """Demand after the cutoff x 10 plus a spike: a regime change the features must not see."""
    out = demand.copy()
    after = out["ds"] > cutoff
    out.loc[after, "y"] = out.loc[after, "y"] * 10 + 50
    return out


def test_no_leakage_features_ignore_a_planted_future_change(tiny_demo, tiny_config, cutoff, labelled):
    data, labels, features = labelled
    changed = _plant_future_change(tiny_demo.demand, cutoff)
    again = build_features(prepare_cutoff(changed, tiny_demo.items, cutoff, tiny_config)).loc[features.index]
    pd.testing.assert_frame_equal(features, again)
    # ... while the labels, which replay the future, do see it
    _, new_labels = make_labels(changed, tiny_demo.items, cutoff, tiny_config, np.random.default_rng(0))
    assert not np.allclose(new_labels.cost.to_numpy(), labels.cost.to_numpy())


def test_cutoff_data_ends_at_the_cutoff(labelled, cutoff):
    data, _, _ = labelled
    assert data.cutoff == cutoff
    assert data.cv.empty or (pd.to_datetime(data.cv["ds"]) <= cutoff).all()


def test_feature_groups_present_and_core_features_known(labelled):
    _, _, features = labelled
    for group in FEATURE_GROUPS.values():
        assert set(group) <= set(features.columns)
    assert features[list(CORE_FEATURES)].notna().all().all()
    assert any(c.startswith("smae_") for c in features.columns)


def test_intermittent_items_have_larger_adi(labelled, tiny_demo):
    _, _, features = labelled
    truth = tiny_demo.truth.set_index("unique_id").reindex(features.index)
    inter = features.loc[truth["process"].isin(["intermittent", "lumpy"]).to_numpy(), "adi"]
    smooth = features.loc[truth["process"].isin(["smooth", "seasonal"]).to_numpy(), "adi"]
    if len(inter) and len(smooth):
        assert inter.median() > smooth.median()
