"""``stockwise retrain`` as a scheduler sees it: exit codes 0 / 3 / 1 / 75."""

from __future__ import annotations

import json

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import pipelines.flows.retrain as retrain_module
from pipelines.cli.retrain import retrain_command
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.flows.retrain import RetrainExit, lock_path_for
from pipelines.registry.lock import exclusive_lock
from pipelines.registry.tracking import get_alias_version
from tests.pipelines.conftest import MODEL, fake_evaluate, fake_train

app = typer.Typer()
app.command()(retrain_command)


@pytest.fixture
def setup(tmp_path, store, monkeypatch):
    tracking_uri = store[0]
    data = tmp_path / "data"
    write_demo(
        generate_demo(DemoConfig(seed=2, n_items=8, n_stores=3, n_dcs=1, n_weeks=80, min_stores_per_item=1)), data
    )
    config = tmp_path / "run.yaml"
    config.write_text(f"data: {data}\ntracking_uri: {tracking_uri}\n")
    qualities = iter([1.0, 1.5, 0.5])
    monkeypatch.setattr(
        retrain_module, "default_steps", lambda: (lambda req: fake_train(next(qualities))(req), fake_evaluate)
    )
    args = ["--config", str(config), "--holdout", "5", "--model-name", MODEL, "--out", str(tmp_path / "dec")]
    return args, tracking_uri


def test_exit_codes_promote_then_promote_then_keep(setup):
    args, uri = setup
    runner = CliRunner()
    codes = [runner.invoke(app, args).exit_code for _ in range(3)]
    assert codes == [RetrainExit.PROMOTED, RetrainExit.PROMOTED, RetrainExit.KEPT]
    assert get_alias_version(MODEL, "champion", uri) == "2"


def test_locked_store_exits_75(setup):
    args, uri = setup
    with exclusive_lock(lock_path_for(uri)):
        result = CliRunner().invoke(app, args)
    assert result.exit_code == RetrainExit.LOCKED and "LOCKED" in result.output


def test_missing_train_step_and_bad_config_exit_1(setup, tmp_path, monkeypatch):
    args, _ = setup
    monkeypatch.undo()
    monkeypatch.setitem(__import__("sys").modules, "pipelines.flows.train", None)
    result = CliRunner().invoke(app, args)
    assert result.exit_code == RetrainExit.FAILED and "pipelines.flows.train" in result.output
    bad = tmp_path / "bad.yaml"
    bad.write_text("margin_of_error: 3\n")
    result = CliRunner().invoke(app, ["--config", str(bad)])
    assert result.exit_code == RetrainExit.FAILED and "margin_of_error" in result.output


def test_only_triggered_limits_training_to_flagged_items(setup, tmp_path, monkeypatch):
    args, _ = setup
    data = tmp_path / "data" / "demand.csv"
    demand = pd.read_csv(data)
    shifted = demand["unique_id"].iloc[0]
    last = demand.groupby("unique_id").cumcount(ascending=False) < 13
    demand.loc[last & (demand["unique_id"] == shifted), "y"] += 60.0
    demand.to_csv(data, index=False)
    seen = []

    def train(request):
        seen.append(request.items_subset)
        return fake_train(1.0)(request)

    monkeypatch.setattr(retrain_module, "default_steps", lambda: (train, fake_evaluate))
    result = CliRunner().invoke(app, [*args, "--only-triggered"])
    assert result.exit_code == RetrainExit.PROMOTED, result.output
    assert seen[0] is not None and shifted in seen[0]
    record = json.loads(next((tmp_path / "dec").glob("*/decision.json")).read_text())
    assert record["items_subset"] == list(seen[0])


def test_the_evaluation_gets_the_run_settings_of_the_config(setup, tmp_path, monkeypatch):
    args, _ = setup
    config = tmp_path / "run.yaml"
    config.write_text(config.read_text() + "seed: 13\nservice:\n  mode: portfolio\n  target: 0.9\n")
    seen = []

    def evaluate(version, request):
        seen.append(request.run_config)
        return fake_evaluate(version, request)

    monkeypatch.setattr(retrain_module, "default_steps", lambda: (fake_train(1.0), evaluate))
    assert CliRunner().invoke(app, args).exit_code == RetrainExit.PROMOTED
    assert seen and seen[0].seed == 13 and seen[0].service.mode == "portfolio" and seen[0].service.target == 0.9
    record = json.loads(next((tmp_path / "dec").glob("*/decision.json")).read_text())
    assert record["run_settings"]["seed"] == 13 and record["run_settings"]["service"]["target"] == 0.9
    assert record["reason"].startswith("unjudged (the evaluate step cannot judge the packaged default)")
