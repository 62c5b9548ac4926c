"""End to end: ``stockwise train`` on a tiny demo with MLflow in a temporary store."""

from __future__ import annotations

import numpy as np
import pandas as pd
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.registry.tracking import get_alias_version, load_model_version
from pipelines.flows.retrain import EvalRequest
from pipelines.flows.train import TrainSettings, evaluate_version, run_train
from tests.policy_selector.conftest import FAST


def test_train_registers_the_selector_as_champion_and_writes_outputs(tiny_demo, tracking_uri, tmp_path):
    settings = TrainSettings(candidates=FAST, test_periods=10, n_windows=3, n_splits=2)
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.version == "1" and result.champion == "1"
    assert get_alias_version(settings.model_name, "champion", tracking_uri) == "1"
    selector = load_model_version(settings.model_name, "@champion", tracking_uri)
    assert set(selector.candidates_) == set(FAST)
    evaluation = pd.read_csv(result.paths["evaluation"])
    assert set(evaluation["method"]) == {"oracle", "classifier", "sbc_rule", "best_single"}
    assert set(evaluation["split"]) == {"held_out_items", "held_out_time"}
    ev = evaluation.set_index(["split", "method"])
    gap = ev.xs("sbc_rule", level="method")["total_cost"] - ev.xs("oracle", level="method")["total_cost"]
    assert np.allclose(ev.xs("sbc_rule", level="method")["regret"], gap)
    outcomes = pd.read_parquet(result.paths["outcomes"])
    assert set(outcomes["candidate"]) == set(FAST)
    # the retrain hook scores the registered version on a held-out window
    demand = tiny_demo.demand
    cut = pd.Timestamp(sorted(demand["ds"].unique())[-9])
    request = EvalRequest(demand[demand["ds"] <= cut], demand[demand["ds"] > cut], tiny_demo.items, cut,
                          settings.model_name, tracking_uri)
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

