"""Sizing chosen per segment by replayed service at an earlier origin (issue 12, item 2)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from policy_selector import CandidateSpace, SelectorConfig, recommend_policies
from policy_selector.candidates import Candidate, Distribution
from policy_selector.context import prepare_cutoff
from policy_selector.decision_eval import replay_table
from policy_selector.selector import FixedSelector, RuleSelector
from policy_selector.sizing_choice import (
    MARGIN,
    MIN_ITEMS,
    TOLERANCE,
    SizingChoiceSelector,
    _decide,
    _value_at,
    allowed_options,
    choose_sizing,
    history_band,
    sizing_options,
    with_sizing_choice,
)

SPACE = ("sba_rs_negbin", "tsb_rss_negbin", "adida_rs_normal", "no_stock")


def _evidence(rows, segment="lumpy|long", target=0.95):
    """Planted per-option evidence of one segment: (option, achieved, value, ratio to the yardstick)."""
    return pd.DataFrame(
        {
            "segment": segment,
            "option": [r[0] for r in rows],
            "items": 50,
            "sold": 40,
            "target": target,
            "achieved": [r[1] for r in rows],
            "inventory_value": [r[2] for r in rows],
            "ratio": [r[3] for r in rows],
        }
    )


def _one(rows, rule="yardstick", **kw):
    seg = _evidence(rows, **kw)
    return _decide(pd.concat([seg, seg.assign(segment="all")]), {"lumpy|long": 40, "all": 40}, rule)


def test_target_rule_least_stock_among_options_reaching_the_target():
    rows = [("normal", 0.93, 90.0, 0.9), ("negbin", 0.955, 100.0, 1.0), ("empirical", 0.99, 150.0, 0.95)]
    chosen, table = _one(rows, rule="target")
    # 0.93 is more than TOLERANCE short of 0.95; of the two that reach it negbin needs less stock
    assert chosen == {"lumpy|long": "negbin"}
    assert table["reason"].str.contains("least stock among 2 option").all()
    # within the tolerance counts as reaching: then the cheaper normal wins
    chosen, _ = _one([("normal", 0.95 - TOLERANCE / 2, 90.0, 1.0), ("negbin", 0.955, 100.0, 1.0)], rule="target")
    assert chosen == {"lumpy|long": "normal"}
    # none reaching: the best served, or less stock within a point of it
    chosen, table = _one([("normal", 0.80, 90.0, 1.0), ("negbin", 0.90, 120.0, 1.0), ("e", 0.85, 80.0, 1.0)], "target")
    assert chosen == {"lumpy|long": "negbin"}
    assert table["reason"].str.contains(r"least stock among 1 within 0.01 of the best served \(0.900\)").all()
    rows = [("normal", 0.923, 40.0, 1.5), ("negbin", 0.933, 67.0, 2.2), ("sba", 0.924, 39.0, 1.4)]  # demo's lumpy
    assert _one(rows, "target")[0] == {"lumpy|long": "sba"}


def test_yardstick_rule_least_stock_for_its_service_among_options_serving_as_well():
    # normal is the default; empirical serves more but holds more for its service than negbin
    chosen, table = _one(
        [("normal", 0.93, 90.0, 1.05), ("negbin", 0.955, 100.0, 0.95), ("empirical", 0.99, 150.0, 0.98)]
    )
    assert chosen == {"lumpy|long": "negbin"}
    assert table.loc[table["chosen"], "option"].tolist() == ["negbin", "negbin"]
    assert table["reason"].str.contains(r"\(0.950x; default 1.050x\) among 3 option").all()
    # an option more than TOLERANCE below both the default's service and the target is never chosen,
    # however little it holds for its service
    chosen, _ = _one([("normal", 0.95, 90.0, 1.0), ("sba", 0.95 - 1.5 * TOLERANCE, 60.0, 0.5)])
    assert chosen == {"lumpy|long": "normal"}
    # within the tolerance of the lower of the two it is eligible
    chosen, _ = _one([("normal", 0.95, 90.0, 1.0), ("sba", 0.95 - 0.5 * TOLERANCE, 60.0, 0.5)])
    assert chosen == {"lumpy|long": "sba"}
    # a default below target: the floor is the default's service less the tolerance
    chosen, _ = _one([("normal", 0.90, 90.0, 1.0), ("sba", 0.895, 60.0, 0.8), ("tsb", 0.88, 50.0, 0.7)])
    assert chosen == {"lumpy|long": "sba"}


def test_yardstick_rule_keeps_the_default_without_a_clear_margin_or_a_yardstick():
    # 3 % less stock for its service is within the noise of one replay: the default stays
    rows = [("normal", 0.95, 90.0, 1.0), ("sba", 0.95, 80.0, 1.0 - 0.6 * MARGIN)]
    chosen, table = _one(rows)
    assert chosen == {"lumpy|long": "normal"}
    assert table["reason"].str.contains(r"no option serving at least 0.940 holds 5% less for its service").all()
    assert _one([("normal", 0.95, 90.0, 1.0), ("sba", 0.95, 80.0, 1.0 - 1.2 * MARGIN)])[0] == {"lumpy|long": "sba"}
    # the default's service outside the yardstick's frontier: nothing to compare with, the default
    chosen, table = _one([("normal", 0.99, 90.0, np.nan), ("negbin", 0.995, 80.0, 0.5)])
    assert chosen == {"lumpy|long": "normal"}
    assert table["reason"].str.contains("outside the yardstick's frontier").all()


def test_small_segment_takes_the_pooled_choice_and_says_why():
    small = _evidence([("normal", 0.96, 90.0, 1.0), ("negbin", 0.96, 50.0, 0.6)], segment="smooth|short")
    big = _evidence([("normal", 0.96, 90.0, 1.0), ("negbin", 0.90, 50.0, 0.6)], segment="intermittent|long")
    pooled = _evidence([("normal", 0.96, 180.0, 1.0), ("negbin", 0.91, 100.0, 0.6)], segment="all")
    counts = {"smooth|short": MIN_ITEMS - 1, "intermittent|long": MIN_ITEMS, "all": 2 * MIN_ITEMS - 1}
    chosen, table = _decide(pd.concat([small, big, pooled]), counts, "yardstick")
    # on its own the small segment would take negbin (same service, less stock); it has too few items
    assert chosen == {"smooth|short": "normal", "intermittent|long": "normal"}
    why = table.set_index("segment")["reason"]
    assert why["smooth|short"].iloc[0].startswith(f"pooled: {MIN_ITEMS - 1} items with demand < {MIN_ITEMS}")
    assert not why["intermittent|long"].iloc[0].startswith("pooled")


def test_smooth_and_erratic_segments_keep_the_default_forecaster():
    default = Candidate("ets_sq_normal", "AutoETS", Distribution.NORMAL, "s_Q")
    options = sizing_options(default)
    assert allowed_options("smooth|long", options) == ["ets_sq_normal", "ets_sq_empirical", "ets_sq_negbin"]
    assert allowed_options("erratic|short", options) == allowed_options("smooth|long", options)
    assert allowed_options("lumpy|long", options) == allowed_options("all", options) == [o.name for o in options]
    # a small smooth segment pools with all items, but only among its own options
    rows = [
        ("ets_sq_normal", 0.95, 100.0, 1.0),
        ("ets_sq_empirical", 0.96, 120.0, 1.0),
        ("ets_sq_negbin", 0.95, 100.0, 1.0),
        ("sba_sq_normal", 0.95, 50.0, 1.0),
    ]
    small, pooled = _evidence(rows, segment="smooth|long"), _evidence(rows, segment="all")
    allowed = {"smooth|long": allowed_options("smooth|long", options), "all": allowed_options("all", options)}
    chosen, table = _decide(pd.concat([small, pooled]), {"smooth|long": 5, "all": 40}, "target", allowed)
    assert chosen == {"smooth|long": "ets_sq_normal"}
    assert table.loc[table["segment"].eq("all") & table["chosen"], "option"].tolist() == ["sba_sq_normal"]
    assert table.loc[table["segment"].eq("smooth|long"), "reason"].str.contains("the default forecaster's, 3").all()


def test_yardstick_value_is_read_off_its_frontier():
    service, value = np.array([0.8, 0.9, 0.95, 0.94, 0.99]), np.array([10.0, 20.0, 30.0, 40.0, 50.0])
    # the dip at 0.94 is noise: its service reads as 0.95 (the running maximum), as evaluate reads it
    got = _value_at(service, value, np.array([0.8, 0.85, 0.95, 0.97, 0.70, 0.995]))
    np.testing.assert_allclose(got[:4], [10.0, 15.0, 30.0, 45.0])
    assert np.isnan(got[4]) and np.isnan(got[5])


def test_options_keep_the_default_policy_and_lead_with_it():
    default = Candidate("ets_sq_normal", "AutoETS", Distribution.NORMAL, "s_Q")
    options = sizing_options(default)
    assert options[0] == default and len({o.name for o in options}) == len(options) == 9
    assert {o.policy for o in options} == {default.policy}
    assert {(o.forecaster, o.distribution) for o in options} == {
        (f, d)
        for f in ("AutoETS", "CrostonSBA", "TSB")
        for d in (Distribution.NORMAL, Distribution.EMPIRICAL, Distribution.NEGBIN)
    }
    assert history_band(np.array([10, 103, 104]), 52.0).tolist() == ["short", "short", "long"]


@pytest.fixture(scope="module")
def planted():
    """90 monthly count series, negative binomial (heavy over-dispersion), every target 0.95."""
    rng = np.random.default_rng(1)
    n, T = 90, 60
    mu = rng.uniform(1, 4, n)
    y = rng.negative_binomial(0.5, 0.5 / (0.5 + mu[:, None]), size=(n, T)).astype(float)
    return monthly_panel(y, "i", "2020-01-01", SPACE)


def monthly_panel(y: np.ndarray, prefix: str, start: str, space) -> tuple[pd.DataFrame, pd.DataFrame, SelectorConfig]:
    """Monthly demand of the (n, T) array ``y``, an item master (L = R = 1, no order cost, CSL 0.95) and a
    selector config over the candidates ``space`` with 8 backtest windows."""
    n, T = y.shape
    ids = [f"{prefix}{i:03d}" for i in range(n)]
    ds = pd.date_range(start, periods=T, freq="MS")
    demand = pd.DataFrame({"unique_id": np.repeat(ids, T), "ds": np.tile(ds, n), "y": y.ravel()})
    items = pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": 10.0,
            "holding_rate": 0.25,
            "lead_time": 1,
            "lead_time_std": 0.0,
            "review_period": 1,
            "order_cost": 0.0,
            "service_target": 0.95,
            "service_type": "csl",
        }
    )
    return demand, items, SelectorConfig(space=CandidateSpace.from_names(space), freq="MS", n_windows=8)


def test_replayed_service_is_a_hand_replay_of_each_option(planted):
    demand, items, config = planted
    default = config.space["tsb_rss_negbin"]
    choice = choose_sizing(demand, items, config, default, periods=12)
    dates = np.sort(demand["ds"].unique())
    assert choice.reason is None and choice.origin == pd.Timestamp(dates[-13])
    table = choice.table.set_index(["segment", "option"])
    # every option, and the replay-corrected ones (rows of the segments whose choice missed its target)
    options = set(table.index.get_level_values("option"))
    assert options - set(choice.corrections) == {o.name for o in sizing_options(default)}
    # every segment chose exactly one option, the one its reason names by rule
    assert (choice.table.groupby("segment")["chosen"].sum() == 1).all()
    # the pooled row's service for the negbin option = stockwise evaluate's CSL of a hand replay
    space = CandidateSpace(sizing_options(default))
    cfg = SelectorConfig(space=space, freq="MS", n_windows=8)
    sel = FixedSelector("sba_rss_negbin").fit(None, None, pd.DataFrame(columns=list(space.names)))
    origin = choice.origin
    data = prepare_cutoff(demand, items, origin, cfg)
    rec = recommend_policies(sel, demand, items, cfg, np.random.default_rng(0), cutoff=origin, data=data)
    actual = demand[demand["ds"] > origin].pivot(index="unique_id", columns="ds", values="y").reindex(data.ids)
    kpis = replay_table(actual.fillna(0.0).to_numpy(), [rec], data.economics)
    sold = (kpis["demand"] > 0).to_numpy()
    assert table.loc[("all", "sba_rss_negbin"), "achieved"] == pytest.approx(kpis.loc[sold, "csl"].mean())
    assert table.loc[("all", "sba_rss_negbin"), "inventory_value"] == pytest.approx(kpis["inventory_value"].sum())
    # and its ratio is that value over the textbook formula's at the same service on the same periods
    assert ((choice.table["ratio"] > 0.3) & (choice.table["ratio"] < 3)).all()
    # judged on a portfolio fill-rate target: the segment's service is served / demand of the same replay
    by_fill = choose_sizing(demand, items, config, default, periods=12, measure="fill_rate", target=0.9)
    fill = by_fill.table.set_index(["segment", "option"])
    assert fill.loc[("all", "sba_rss_negbin"), "achieved"] == pytest.approx(
        kpis.loc[sold, "served"].sum() / kpis.loc[sold, "demand"].sum()
    )
    assert by_fill.table["target"].to_numpy() == pytest.approx(0.9)
    plain = [(g, o) for g, o in table.index if o not in choice.corrections]  # the corrections differ by measure
    assert fill.loc[plain, "inventory_value"].to_numpy() == pytest.approx(
        table.loc[plain, "inventory_value"].to_numpy()
    )
    assert not np.allclose(fill.loc[plain, "achieved"].to_numpy(), table.loc[plain, "achieved"].to_numpy())


def test_default_path_applies_the_choice_and_a_rule_is_left_alone(planted):
    demand, items, config = planted
    selector, cfg, choice = with_sizing_choice(None, demand, items, config)
    assert isinstance(selector, SizingChoiceSelector) and choice is not None
    rec = recommend_policies(selector, demand, items, cfg, np.random.default_rng(0))
    swapped = rec["selected_by"].eq("sizing choice")
    chosen = set(choice.chosen.values()) - {"tsb_rss_negbin"}
    assert set(rec.loc[swapped, "candidate"]) == chosen  # every item of a re-sized segment, nothing else
    assert rec.loc[swapped, "reasons"].str.contains("by replayed service after").all()
    rule = RuleSelector().fit(None, None, pd.DataFrame(columns=list(config.space.names)))
    same, same_cfg, none = with_sizing_choice(rule, demand, items, config)
    assert same is rule and same_cfg is config and none is None


def test_unknown_rule_is_refused(planted):
    demand, items, config = planted
    with pytest.raises(ValueError, match=r"unknown sizing-choice rule 'best'; use one of \['yardstick', 'target'\]"):
        choose_sizing(demand, items, config, config.space["tsb_rss_negbin"], rule="best")


def test_too_short_history_gives_a_reason_and_no_choice(planted):
    demand, items, config = planted
    n = demand["ds"].nunique()
    choice = choose_sizing(demand, items, config, config.space["tsb_rss_negbin"], periods=n)
    assert choice.origin is None and choice.chosen == {}
    assert "leave none before an earlier origin" in choice.reason
    frame = choice.frame()
    assert len(frame) == 1 and frame["why_not"].iloc[0] == choice.reason
