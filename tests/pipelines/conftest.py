"""Fixtures and fakes shared by the pipelines tests (imported here, not from other test modules)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data.demo_data import DemoConfig, generate_demo
from pipelines.flows.retrain import RetrainConfig
from pipelines.registry.names import GATE_TAG, PATH_TAG
from pipelines.registry.tracking import get_version_tags, register_version, set_alias, start_run


@pytest.fixture
def store(tracking_uri, tmp_path) -> tuple[str, Path]:
    """A fresh (already-migrated, see tests/conftest.py) store and a decisions folder."""
    return tracking_uri, tmp_path / "decisions"


# --- retrain fakes: a version's 'quality' tag sets its simulated cost and service ----------------

ROOT = Path(__file__).resolve().parents[2]
MODEL = "test-selector"


def panel() -> pd.DataFrame:
    from tests.conftest import make_panel

    return make_panel(n_series=3, length=40, seed=1)


ITEMS = pd.DataFrame({"unique_id": ["S000", "S001", "S002"], "lead_time": [1, 2, 1]})


def fake_train(quality: float, service: float = 0.95, path: tuple[str, str] | None = None):
    """``path`` = (train's path, why): the version tags ``stockwise train`` sets on what it registers."""

    def train(request) -> str:
        assert pd.to_datetime(request.demand["ds"]).max() == request.cutoff  # never sees the holdout
        with start_run("train", request.tracking_uri) as run:
            run.log_dict({"quality": quality}, "model/model.json")
        tags = {"quality": quality, "service": service} | ({PATH_TAG: path[0], GATE_TAG: path[1]} if path else {})
        return register_version(request.model_name, run.run_id, "model", request.tracking_uri, tags)

    return train


def fake_evaluate(version: str, request) -> dict[str, float]:
    tags = get_version_tags(request.model_name, version, request.tracking_uri)
    assert len(request.holdout["ds"].unique()) == 5
    return {"total_cost": 1000.0 / float(tags["quality"]), "service": float(tags["service"]), "mae": 1.0}


def settings(tracking_uri: str, out: Path, **kw) -> RetrainConfig:
    return RetrainConfig(model_name=MODEL, holdout_periods=5, margin=0.02, out=out, tracking_uri=tracking_uri, **kw)


def with_champion(uri: str, out: Path, quality: float = 1.0) -> str:
    """What ``stockwise train`` does on first train: register a version, alias it champion."""
    from pipelines.flows.retrain import TrainRequest

    data = panel()
    req = TrainRequest(data, ITEMS, pd.to_datetime(data["ds"]).max(), MODEL, uri)
    version = fake_train(quality)(req)
    set_alias(MODEL, "champion", version, uri)
    return version


# --- a synthetic planning run for the report, compare and export tests --------------------------

POLICIES = ("R_S", "R_s_S", "s_Q", "base_stock", "no_stock")
EVIL_REASON = 'lead time <b>6</b> & "quoted" </script><script>window.__pwned=1</script>'


def synthetic_run(seed: int = 3) -> dict[str, pd.DataFrame]:
    """Demo data plus synthetic recommendations, forecasts, on-hand paths and a frontier."""
    demo = generate_demo(DemoConfig(seed=seed, n_items=8, n_stores=4, n_dcs=2, n_weeks=104, min_stores_per_item=2))
    rng = np.random.default_rng(seed)
    items = demo.items.reset_index(drop=True)
    stats = demo.demand.groupby("unique_id")["y"].agg(mu=lambda y: y.tail(26).mean(), sd=lambda y: y.tail(26).std())
    st = stats.reindex(items["unique_id"]).fillna(0.0).to_numpy()
    mu, sd = st[:, 0], st[:, 1]
    L, R = items["lead_time"].to_numpy(float), items["review_period"].to_numpy(float)
    ss = np.round(1.65 * sd * np.sqrt(L + R), 1)
    S = np.round(mu * (L + R) + ss, 1)
    s = np.round(S - mu * R, 1)
    unit = items["unit_cost"].to_numpy(float)
    on_hand = items["on_hand"].to_numpy(float)
    excess, short = np.maximum(on_hand - S, 0), np.maximum(s - on_hand, 0)
    hold = (ss + mu * R / 2) * unit * items["holding_rate"].to_numpy(float)
    n = len(items)
    recs = pd.DataFrame(
        {
            "unique_id": items["unique_id"],
            "item_id": items["item_id"],
            "location": items["location"],
            "abc": rng.choice(list("ABC"), n),
            "xyz": rng.choice(list("XYZ"), n),
            "sbc_class": rng.choice(["smooth", "erratic", "intermittent", "lumpy"], n),
            "forecaster": rng.choice(["AutoETS", "CrostonSBA"], n),
            "policy": [POLICIES[i % len(POLICIES)] for i in range(n)],
            "review_period": R,
            "lead_time": L,
            "reorder_point": s,
            "order_up_to": S,
            "order_quantity": np.round(mu * 4, 1),
            "safety_stock": ss,
            "safety_stock_value": ss * unit,
            "service_type": items["service_type"],
            "service_target": items["service_target"],
            "expected_csl": np.round(rng.uniform(0.85, 0.99, n), 3),
            "expected_fill_rate": np.round(rng.uniform(0.9, 0.999, n), 3),
            "expected_avg_on_hand": ss + mu * R / 2,
            "expected_holding_cost": hold,
            "expected_ordering_cost": items["order_cost"].to_numpy() * 13,
            "expected_shortage_cost": rng.uniform(0, 50, n),
            "on_hand": on_hand,
            "excess_units": excess,
            "shortfall_units": short,
            "excess_value": excess * unit,
            "shortfall_value": short * unit,
            "reasons": [EVIL_REASON if i == 0 else f"reason {i}: intermittent, low value" for i in range(n)],
            "run_id": "abc123",
        }
    )
    recs["expected_total_cost"] = recs[
        ["expected_holding_cost", "expected_ordering_cost", "expected_shortage_cost"]
    ].sum(axis=1)
    last = demo.demand["ds"].max()
    fds = pd.date_range(last, periods=13, freq="W-MON")[1:]
    fc = pd.DataFrame(
        {"unique_id": np.repeat(items["unique_id"], 12), "ds": np.tile(fds, n), "forecast": np.repeat(mu, 12)}
    )
    fc["lo"] = np.maximum(fc["forecast"] - 1.64 * np.repeat(sd, 12), 0)
    fc["hi"] = fc["forecast"] + 1.64 * np.repeat(sd, 12)
    sim = pd.DataFrame(
        {
            "unique_id": np.repeat(items["unique_id"], 12),
            "ds": np.tile(fds, n),
            "on_hand": np.repeat(S, 12) - np.tile(np.arange(12) % 4, n) * np.repeat(mu, 12) / 2,
        }
    )
    frontier = pd.DataFrame(
        {
            "service": np.linspace(0.85, 0.99, 6),
            "inventory_value": np.linspace(1000, 4000, 6) ** 1.1,
            "cost": np.linspace(900, 1500, 6),
            "chosen": [False, False, False, True, False, False],
        }
    )
    return {
        "recommendations": recs,
        "history": demo.demand,
        "forecasts": fc,
        "sim_paths": sim,
        "frontier": frontier,
        "items": items,
    }
