"""End to end: ``stockwise train`` on a tiny demo with MLflow in a temporary store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.flows.plan import load_champion
from pipelines.flows.retrain import EvalRequest
from pipelines.flows.train import TrainSettings, evaluate_version, run_train
from pipelines.registry.tracking import get_alias_version, load_model_version
from policy_selector import FixedSelector, gate
from tests.policy_selector.conftest import FAST


def test_train_registers_the_selector_gates_the_champion_and_writes_outputs(tiny_demo, tracking_uri, tmp_path):
    # margin 0: the gate promotes whenever the classifier is no worse than the default path
    settings = TrainSettings(
        candidates=FAST, test_periods=10, n_windows=3, n_splits=2, label_paths=5, margin=0.0, max_service_drop=0.99
    )
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.version == "1"
    assert "test windows of 10" in result.plan and "chose extra_train_cutoffs" in result.plan
    selector = load_model_version(settings.model_name, "1", tracking_uri)
    assert set(selector.candidates_) == set(FAST)
    action, _ = gate(result.evaluation, settings.margin, settings.max_service_drop)
    champion = get_alias_version(settings.model_name, "champion", tracking_uri)
    assert (champion == "1") == (action == "promote") and result.champion == champion
    evaluation = pd.read_csv(result.paths["evaluation"])
    assert set(evaluation["method"]) == {"oracle", "classifier", "sbc_rule", "best_single", "default"}
    assert set(evaluation["split"]) == {"held_out_items", "held_out_time"}
    ev = evaluation.set_index(["split", "method"])
    gap = ev.xs("sbc_rule", level="method")["total_cost"] - ev.xs("oracle", level="method")["total_cost"]
    assert np.allclose(ev.xs("sbc_rule", level="method")["regret"], gap)
    outcomes = pd.read_parquet(result.paths["outcomes"])
    assert set(outcomes["candidate"]) == set(FAST)
    # the retrain hook scores the registered version on a held-out window
    demand = tiny_demo.demand
    cut = pd.Timestamp(sorted(demand["ds"].unique())[-9])
    request = EvalRequest(
        demand[demand["ds"] <= cut], demand[demand["ds"] > cut], tiny_demo.items, cut, settings.model_name, tracking_uri
    )
    scores = evaluate_version(result.version, request)
    assert scores["total_cost"] > 0 and 0 <= scores["service"] <= 1


def test_train_cli_needs_exactly_one_data_source(tmp_path):
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "exactly one of --data FOLDER or --demo" in result.output


def test_train_cli_reports_a_bad_config(tmp_path):
    bad = tmp_path / "train.yaml"
    bad.write_text("train:\n  test_periods: 0\n")
    result = CliRunner().invoke(app, ["train", "--demo", "--config", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "test_periods" in result.output


def test_a_first_model_that_does_not_beat_the_default_is_registered_but_not_champion(tiny_demo, tracking_uri, tmp_path):
    settings = TrainSettings(candidates=FAST, n_splits=2, label_paths=5, margin=0.99)  # unreachable margin
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.version is not None and result.champion is None
    assert get_alias_version(settings.model_name, "champion", tracking_uri) is None
    assert "not champion" in result.decision and "does not beat the default path by the 99.0% margin" in result.decision
    assert result.default in FAST and f"default path {result.default!r}" in result.decision
    selector, name = load_champion(tracking_uri)
    assert isinstance(selector, FixedSelector) and selector.candidate == result.default
    assert "default path" in name


def test_train_fits_a_short_history_and_says_how(tiny_demo, tracking_uri, tmp_path):
    dates = sorted(tiny_demo.demand["ds"].unique())
    short = tiny_demo.demand[tiny_demo.demand["ds"] > dates[-39]]  # 38 weeks: the old defaults needed 60
    settings = TrainSettings(candidates=FAST, n_splits=2, label_paths=3)
    result = run_train(short, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.plan.startswith("38 periods: chose test_periods=9")
    with pytest.raises(ValueError, match="nothing can be learned"):
        run_train(
            tiny_demo.demand[tiny_demo.demand["ds"] > dates[-11]],
            tiny_demo.items,
            "W-MON",
            settings,
            tmp_path / "out2",
            tracking_uri,
        )


def test_train_backtests_as_recommend_does():
    """The trained selector must see the error features recommend computes: train's backtest
    re-estimates AutoETS as often as recommend's (``selector_refit_every``), by default by each
    series' history (``auto``)."""
    from pipelines.data.config import RunConfig
    from pipelines.flows.train import selector_config

    assert TrainSettings().refit_every == RunConfig().selector_refit_every == "auto"
    assert selector_config(TrainSettings(), "W-MON").refit_every == "auto"
    assert selector_config(TrainSettings(refit_every=4), "W-MON").refit_every == 4
    for bad in (0, "sometimes"):
        with pytest.raises(ValueError, match="refit_every"):
            TrainSettings(refit_every=bad)
