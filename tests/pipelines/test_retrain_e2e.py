"""End to end on a tiny demo: train -> recommend -> retrain promoting a better challenger ->
recommend with the new champion -> retrain rejecting a deliberately degraded one (champion
unchanged). Real selector, judged by the real decision replay on the held-out periods."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.data.config import ForecastSettings, RunConfig
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.flows.plan import run_plan
from pipelines.flows.retrain import DECISION_FILE, RetrainConfig, retrain
from pipelines.registry.tracking import get_alias_version, get_version_tags, set_alias, start_run
from policy_selector import FixedSelector
from policy_selector.candidates import CandidateSpace

train_module = pytest.importorskip(
    "pipelines.flows.train", reason="pipelines.flows.train (stockwise train) not available"
)


def register_constant(uri: str, candidate: str = "no_stock") -> str:
    """A deliberately bad selector: the same candidate for every item (by default: stock nothing)."""
    with start_run("degraded", uri) as run:
        return str(
            run.log_model(
                FixedSelector(candidate).fit(None, None, pd.DataFrame(columns=list(CandidateSpace().names))),
                "policy_selector",
                flavor="sklearn",
                registered_name=train_module.MODEL_NAME,
                serialization_format="cloudpickle",
            )
        )


def _recommend_selector(folder, tracking_uri, out) -> set[str]:
    cfg = RunConfig(
        data=folder,
        out=out,
        tracking_uri=tracking_uri,
        forecast=ForecastSettings(models=("SeasonalNaive", "CrostonSBA"), n_windows=3),
    )
    return set(pd.read_csv(run_plan(cfg).recommendations)["selector"])


def test_train_then_retrain_promotes_better_and_rejects_degraded(tracking_uri, tmp_path):
    demo = generate_demo(DemoConfig(seed=3, n_items=8, n_stores=2, n_dcs=1, n_weeks=96, min_stores_per_item=1))
    write_demo(demo, tmp_path / "data")
    settings = train_module.TrainSettings(n_windows=3, test_periods=13, n_splits=2, label_paths=5, replay=False)
    first = train_module.run_train(demo.demand, demo.items, "W-MON", settings, tmp_path / "train", tracking_uri)
    assert first.version is not None and first.decision  # registered, with its gate decision
    # the first-champion gate is tested in tests/policy_selector/test_train.py; this test is about retrain
    set_alias(train_module.MODEL_NAME, "champion", first.version, tracking_uri)
    name = train_module.MODEL_NAME
    assert _recommend_selector(tmp_path / "data", tracking_uri, tmp_path / "r1") == {f"{name} v{first.version}"}
    cfg = RetrainConfig(
        model_name=train_module.MODEL_NAME,
        holdout_periods=13,
        margin=0.02,
        out=tmp_path / "decisions",
        tracking_uri=tracking_uri,
    )

    # the champion has gone stale: a constant "don't stock" model holds the alias
    stale = register_constant(tracking_uri)
    set_alias(train_module.MODEL_NAME, "champion", stale, tracking_uri)
    better = retrain(demo.demand, demo.items, train_module.train_challenger, train_module.evaluate_version, cfg)
    assert better.action == "promote", better.reason
    assert better.scores["challenger"]["total_cost"] < better.scores["champion"]["total_cost"]
    assert get_alias_version(train_module.MODEL_NAME, "champion", tracking_uri) == better.challenger
    # recommend follows the alias to the promoted challenger
    assert _recommend_selector(tmp_path / "data", tracking_uri, tmp_path / "r2") == {f"{name} v{better.challenger}"}

    degraded = retrain(
        demo.demand,
        demo.items,
        lambda request: register_constant(request.tracking_uri),
        train_module.evaluate_version,
        cfg,
    )
    assert degraded.action == "keep", degraded.reason
    assert get_alias_version(train_module.MODEL_NAME, "champion", tracking_uri) == better.challenger
    assert (
        get_version_tags(train_module.MODEL_NAME, degraded.challenger, tracking_uri)["stockwise.status"] == "rejected"
    )
    records = sorted((tmp_path / "decisions").glob(f"*/{DECISION_FILE}"))
    assert [json.loads(p.read_text())["action"] for p in records] == ["promote", "keep"]
