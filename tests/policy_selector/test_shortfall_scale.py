"""Issue 13: service tuned inside the candidates (a candidate sized to a multiple of the item's shortfall)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pandas as pd
import pytest

from policy_selector import CandidateSpace, SelectorConfig
from policy_selector.candidates import DEFAULT_CANDIDATES, NO_STOCK, Candidate, shortfall_variant
from policy_selector.context import prepare_cutoff
from policy_selector.labels import label_candidates
from policy_selector.recommend import recommend_policies
from policy_selector.selector import FixedSelector
from policy_selector.shortfall_tuning import ShortfallTuned
from policy_selector.sizing import size_candidates


def _planted(n: int = 6, weeks: int = 80, service_type: str = "csl") -> tuple[pd.DataFrame, pd.DataFrame]:
    """Poisson demand (rate 4-9 a week), CSL target 0.9, no order cost, lead time 1, shortage cost ~0."""
    rng = np.random.default_rng(11)
    ids = [f"P{i}@S1" for i in range(n)]
    ds = pd.date_range("2023-01-02", periods=weeks, freq="W-MON")
    rate = np.linspace(4, 9, n)
    demand = pd.DataFrame(
        {"unique_id": np.repeat(ids, weeks), "ds": np.tile(ds, n), "y": rng.poisson(np.repeat(rate, weeks)) * 1.0}
    )
    items = pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": 10.0,
            "holding_rate": 0.25,
            "order_cost": 0.0,
            "shortage_cost": 0.01,  # below h alpha / (1 - alpha): the target prices the shortfall
            "service_target": 0.9,
            "service_type": service_type,
            "lead_time": 1,
            "review_period": 1,
        }
    )
    return demand, items


@pytest.fixture(scope="module")
def planted_sized():
    demand, items = _planted()
    base = CandidateSpace.from_names(["sba_basestock_poisson", "tsb_rss_negbin", "no_stock"])
    space = base.with_shortfall_scales([0.25, 4], ["sba_basestock_poisson", "tsb_rss_negbin"])
    config = SelectorConfig(space=space, n_windows=3, test_periods=10, quantile_points=100, label_paths=5)
    cutoff = pd.Timestamp(np.sort(demand["ds"].unique())[-11])
    data = prepare_cutoff(demand, items, cutoff, config)
    return demand, data, config, size_candidates(data, config)


def _levels(sized, name: str) -> pd.Series:
    t = sized.table[sized.table["candidate"] == name].set_index("unique_id")
    # the level the target sizes: s of (s, Q) and (R, s, S), S of base stock and (R, S)
    return t["reorder_point"].where(t["policy"].isin(["s_Q", "R_s_S"]), t["order_up_to"])


def test_a_smaller_shortfall_sizes_a_higher_level_on_a_planted_series(planted_sized):
    _, _, _, sized = planted_sized
    for base in ("sba_basestock_poisson", "tsb_rss_negbin"):
        low, mid, high = (_levels(sized, n) for n in (f"{base}_x4", base, f"{base}_x0.25"))
        assert (high >= mid).all() and (mid >= low).all(), (base, low.tolist(), mid.tolist(), high.tolist())
        assert high.sum() > mid.sum() > low.sum(), base
    # Poisson quantiles at 0.6 / 0.9 / 0.975 of a mean of 8-18 units over H = 2 weeks: whole units apart
    # (the negative binomial error model of 3 backtest windows caps some items' upper quantiles)
    low, mid, high = (
        _levels(sized, n) for n in ("sba_basestock_poisson_x4", "sba_basestock_poisson", "sba_basestock_poisson_x0.25")
    )
    assert (high > mid).all() and (mid > low).all(), (low.tolist(), mid.tolist(), high.tolist())
    table = sized.table.set_index(["candidate", "unique_id"])
    assert np.allclose(table.loc["sba_basestock_poisson_x0.25", "sized_level"], 0.975)
    assert np.allclose(table.loc["sba_basestock_poisson_x4", "sized_level"], 0.6)
    assert np.allclose(table.loc["sba_basestock_poisson", "sized_level"], 0.9)
    assert table.loc["sba_basestock_poisson_x0.25", "sizing_note"].str.contains("sized to csl 0.975, 0.25x").all()
    assert (table.loc["sba_basestock_poisson", "sizing_note"] == "").all()


def test_the_base_candidate_is_sized_as_without_its_variants(planted_sized):
    _, data, config, sized = planted_sized
    alone = size_candidates(data, dataclasses.replace(config, space=CandidateSpace.from_names(["tsb_rss_negbin"])))
    ours = sized.table[sized.table["candidate"] == "tsb_rss_negbin"].reset_index(drop=True)
    pd.testing.assert_frame_equal(ours, alone.table)


def test_labels_price_the_shortfall_at_the_items_own_target(planted_sized):
    demand, data, config, sized = planted_sized
    labels = label_candidates(data, sized, demand, config, np.random.default_rng(0))
    # the x4 variant (CSL 0.6) serves less and pays the penalty of the item's 0.9 target
    assert (labels.service["tsb_rss_negbin_x4"] <= labels.service["tsb_rss_negbin"]).all()
    assert labels.penalty["tsb_rss_negbin_x4"].sum() > labels.penalty["tsb_rss_negbin"].sum()
    assert set(labels.names) == set(config.space.names)


def test_names_unchanged_without_shifts():
    assert all(c.shortfall_scale == 1.0 for c in DEFAULT_CANDIDATES)
    assert CandidateSpace().with_shortfall_scales([1.0]).names == CandidateSpace().names
    assert shortfall_variant(DEFAULT_CANDIDATES[0], 1) is DEFAULT_CANDIDATES[0]
    assert CandidateSpace.from_names(["ets_sq_normal", "ets_sq_normal_x2"]).names == (
        "ets_sq_normal",
        "ets_sq_normal_x2",
    )
    assert CandidateSpace.from_names(["ets_sq_normal_x2"])["ets_sq_normal_x2"].shortfall_scale == 2.0


@pytest.mark.parametrize("scale", [0, -1, float("nan"), float("inf"), "2", True])
def test_an_invalid_scale_is_refused(scale):
    with pytest.raises(ValueError, match="shortfall scale must be a finite number > 0"):
        shortfall_variant(DEFAULT_CANDIDATES[0], scale)
    with pytest.raises(ValueError, match="shortfall_scale must be a finite number > 0"):
        Candidate("x", "AutoETS", "normal", "R_S", shortfall_scale=scale)


def test_unknown_or_malformed_variant_names_are_refused():
    with pytest.raises(ValueError, match=r"unknown candidate\(s\) \['nope_x2'\]"):
        CandidateSpace.from_names(["nope_x2"])
    with pytest.raises(ValueError, match="shortfall scale 'abc' is not a number"):
        CandidateSpace.from_names(["ets_sq_normal_xabc"])
    with pytest.raises(ValueError, match="shortfall scale must be a finite number > 0"):
        CandidateSpace.from_names(["ets_sq_normal_x0"])
    with pytest.raises(ValueError, match="write the scale as 'ets_sq_normal_x2'"):
        CandidateSpace.from_names(["ets_sq_normal_x2.0"])
    with pytest.raises(ValueError, match="no_stock sizes nothing"):
        dataclasses.replace(NO_STOCK, shortfall_scale=2.0)
    with pytest.raises(ValueError, match=r"cannot scale the shortfall of \['nope'\]"):
        CandidateSpace().with_shortfall_scales([2], ["nope"])
    with pytest.raises(ValueError, match="already a shortfall variant"):
        shortfall_variant(shortfall_variant(DEFAULT_CANDIDATES[0], 2), 2)


def test_recommend_says_which_level_a_shifted_candidate_sized_to():
    demand, items = _planted()
    space = CandidateSpace.from_names(["sba_basestock_poisson", "sba_basestock_poisson_x0.5", "no_stock"])
    config = SelectorConfig(space=space, n_windows=3, quantile_points=100, sim_paths=5, sim_periods=20)
    selector = FixedSelector("sba_basestock_poisson_x0.5").fit(None, None, pd.DataFrame(columns=list(space.names)))
    rec = recommend_policies(selector, demand, items, config, np.random.default_rng(0))
    assert set(rec["candidate"]) == {"sba_basestock_poisson_x0.5"}
    assert (
        rec["service_note"]
        .str.startswith(
            "sized to csl 0.95, 0.5x the shortfall of the target 0.9 (candidate sba_basestock_poisson_x0.5)"
        )
        .all()
    )
    assert (rec["service_target"] == 0.9).all()  # the item's own target is still what it is judged by
    assert rec["expected_csl"].mean() > 0.92


def _costs_with_variants() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Two segments of 40 rows: lumpy items pay least at x0.5 of ``a``, smooth items at ``a`` itself;
    ``b`` costs 1 more than ``a``'s best everywhere."""
    idx = [f"i{k}" for k in range(80)]
    lumpy = np.arange(80) < 40
    features = pd.DataFrame({"sbc_code": np.where(lumpy, 3.0, 0.0), "eoq_cover": 0.5}, index=idx)
    a = np.where(lumpy, 10.0, 5.0)
    a_half = np.where(lumpy, 8.0, 6.0)
    costs = pd.DataFrame({"a": a, "b": np.minimum(a, a_half) + 1, "a_x0.5": a_half}, index=idx)
    return features, costs


def test_tuning_chooses_the_scale_per_segment_and_says_why():
    features, costs = _costs_with_variants()
    sel = ShortfallTuned("best_single").fit(features, None, costs)
    assert sel.tuning_["a"] == {"lumpy|unit": "a_x0.5", "smooth|unit": "a"}
    assert sel.tuning_["b"] == {"lumpy|unit": "b", "smooth|unit": "b"}
    s = sel.select(features)
    assert (s.candidate[:40] == "a_x0.5").all() and (s.candidate[40:] == "a").all()
    assert (
        s.reasons.iloc[0].startswith("a_x0.5")
        and "in segment lumpy|unit (40 training rows) that level cost least" in s.reasons.iloc[0]
    )
    assert (s.confidence == 1.0).all()
    # without tuning the variants are ignored: a everywhere
    assert (ShortfallTuned("best_single", tune=False).fit(features, None, costs).predict(features) == "a").all()


def test_a_small_segment_takes_the_pooled_scale():
    features, costs = _costs_with_variants()
    sel = ShortfallTuned("best_single", min_rows=50).fit(features, None, costs)
    # pooled over 80 rows: a costs 600, a_x0.5 560
    assert sel.tuning_["a"] == {"lumpy|unit": "a_x0.5", "smooth|unit": "a_x0.5"}


def test_a_fixed_variant_path_loads_by_name_and_a_bad_scale_is_refused():
    from pipelines.data.config import ConfigError
    from pipelines.flows.plan import load_selector

    selector, name = load_selector("policy:tsb_rss_negbin_x0.5", None)
    assert selector.chosen_ == "tsb_rss_negbin_x0.5" and "tsb_rss_negbin_x0.5" in selector.candidates_
    with pytest.raises(ConfigError, match=r"unknown candidate 'tsb_rss_negbin_x0'.*finite number > 0"):
        load_selector("policy:tsb_rss_negbin_x0", None)


@pytest.mark.slow
def test_train_over_variants_replays_them_and_recommend_carries_the_shift(tiny_demo, tracking_uri, tmp_path):
    from pipelines.flows.train import TrainSettings, run_train
    from pipelines.registry.tracking import load_model_version
    from tests.policy_selector.conftest import FAST

    names = (*FAST, "tsb_rss_negbin_x0.5", "tsb_rss_negbin_x2")
    settings = TrainSettings(candidates=names, n_splits=2, label_paths=5, margin=0.99, gate_origins=1)
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.gate_basis == "replay"  # a variant best single is replayed as --selector policy:<variant>
    replay = pd.read_csv(result.paths["replay"]).set_index("path")
    assert (replay["n_items"] > 0).all()
    selector = load_model_version(settings.model_name, result.version, tracking_uri)
    assert set(selector.candidates_) == set(names)
    config = SelectorConfig(space=CandidateSpace.from_names(list(selector.candidates_)), n_windows=3, sim_paths=5)
    rec = recommend_policies(selector, tiny_demo.demand, tiny_demo.items, config, np.random.default_rng(0))
    scaled = rec["candidate"].str.contains("_x")
    assert scaled.any()
    assert (
        rec.loc[scaled, "service_note"].str.contains(r"sized to (csl|fill_rate) [0-9.]+, [0-9.]+x the shortfall").all()
    )
