"""Issue 12: every stocked item's expected service is within 1 point of its target or says why.

On the demo and a carparts sample (fast) and all of carparts (slow): the recommendation's
own expected CSL, from its simulation on demand of the sizing's own model
(:mod:`policy_selector.outcomes`), is compared with the target; items more than a point
away carry a ``service_note`` naming a real cause (never "the two demand models
disagree"), and the notes that quote numbers are checked against those numbers.
"""

from __future__ import annotations

import re
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import SelectorConfig
from policy_selector.recommend import recommend_policies
from policy_selector.sizing import MAX_LEVEL_MULTIPLE, largest_demand
from policy_selector.sizing_choice import with_sizing_choice

CARPARTS = Path(__file__).resolve().parents[2].parent / "shared" / "data" / "carparts" / "carparts.parquet"
_WHOLE = re.compile(r"level of (\S+) gives CSL ([0-9.]+) and (\S+) gives ([0-9.]+)")


def _recommend(demand: pd.DataFrame, items: pd.DataFrame, freq: str) -> pd.DataFrame:
    """The default path as ``recommend`` runs it: the packaged default with its sizing chosen per segment."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        selector, config, _ = with_sizing_choice(None, demand, items, SelectorConfig(freq=freq))
        return recommend_policies(selector, demand, items, config, np.random.default_rng(3))


def _check(rec: pd.DataFrame, demand: pd.DataFrame, stopped: frozenset = frozenset()) -> None:
    """``stopped``: items known to have stopped selling (the demo's planted dead items), left out of the mean
    gap: the simulation resamples the sales of last year that the forecast rightly no longer expects."""
    rec = rec.set_index("unique_id")
    note = rec["service_note"].fillna("")
    stocked = rec["policy"].ne("no_stock").to_numpy()
    csl = rec["service_type"].eq("csl").to_numpy()
    gap = (rec["expected_csl"] - rec["service_target"]).abs().to_numpy()
    off = stocked & csl & (gap > 0.01)
    assert (note[off] != "").all(), rec.loc[off & (note == "").to_numpy(), ["expected_csl", "order_up_to"]]
    assert not note.str.contains("last year").any()  # one demand model: the sizing's
    # a base-stock level without MOQ, lost sales or lead-time spread is within a point or whole units apart
    plain = off & rec["policy"].eq("base_stock").to_numpy() & ~note.str.contains("MOQ|lost sales|lead time").to_numpy()
    plain &= ~rec["candidate"].astype(str).str.contains("_sq_").to_numpy()  # (s, Q = 1) shown as base stock
    assert note[plain].str.contains("whole units|history|calibration|capped|level 0").all(), note[plain]
    # the sizing's own expectation reaches the target on average (issue 12: 0.80 and 0.90-0.92 before)
    alive = ~rec.index.isin(list(stopped))
    mean_gap = (rec["expected_csl"] - rec["service_target"])[stocked & csl & alive].mean()
    assert mean_gap >= -0.01, mean_gap
    # whole-unit notes quote the two levels around the target; the target lies between them
    for text, target in zip(
        note[note.str.startswith("whole units")], rec.loc[note.str.startswith("whole units"), "service_target"]
    ):
        lo, hi = (float(x) for x in _WHOLE.search(text).group(2, 4))
        assert lo < target - 0.01 and hi > target + 0.01, text
    wide = demand.pivot(index="unique_id", columns="ds", values="y").reindex(rec.index).to_numpy(dtype=float)
    H = (rec["lead_time"] + rec["review_period"]).to_numpy(dtype=int)
    level = rec["reorder_point"].fillna(0).to_numpy()
    # the cap is on the sized reorder level s; an (s, Q) with Q = 1 is shown as base stock S = s + 1
    from_sq = (rec["candidate"].astype(str).str.contains("_sq_") & rec["policy"].eq("base_stock")).to_numpy()
    level = level - from_sq
    too_high = stocked & (level > MAX_LEVEL_MULTIPLE * largest_demand(wide, H) + 1e-9)
    zero = stocked & (rec["order_up_to"].fillna(0).to_numpy() <= 0) & (np.nansum(wide, axis=1) > 0)
    assert not too_high.any(), rec.loc[too_high, ["reorder_point"]]
    assert (note[zero] != "").all()


def test_demo_items_meet_their_target_or_say_why():
    demo = generate_demo(DemoConfig(n_items=10, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=104, seed=3))
    rec = _recommend(demo.demand, demo.items, "W-MON")
    _check(rec, demo.demand, frozenset(demo.truth.loc[demo.truth["process"].eq("dead"), "unique_id"]))


def _carparts(sample: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Complete carparts series (all, or a seeded sample) with the issue-12 item master."""
    if not CARPARTS.exists():
        pytest.skip(f"carparts not found at {CARPARTS}")
    df = pd.read_parquet(CARPARTS)
    complete = df.groupby("unique_id")["y"].transform(lambda s: s.notna().all())
    demand = df[complete].reset_index(drop=True)
    ids = np.sort(demand["unique_id"].unique())
    if sample:
        ids = np.sort(np.random.default_rng(0).choice(ids, sample, replace=False))
        demand = demand[demand["unique_id"].isin(ids)].reset_index(drop=True)
    items = pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": 1.0,
            "holding_rate": 0.25,
            "order_cost": 0.0,
            "service_target": 0.95,
            "service_type": "csl",
            "lead_time": 1,
            "review_period": 1,
        }
    )
    return demand, items


def test_carparts_sample_items_meet_their_target_or_say_why():
    demand, items = _carparts(60)
    rec = _recommend(demand, items, "MS")
    assert len(rec) == 60
    _check(rec, demand)


@pytest.mark.slow
def test_carparts_items_meet_their_target_or_say_why():
    demand, items = _carparts(0)
    rec = _recommend(demand, items, "MS")
    assert len(rec) == 2509
    _check(rec, demand)
