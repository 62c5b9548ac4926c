"""``stockwise train --config stockwise.yaml``: the run's settings reach train's replay gate and
``retrain``'s challenger training (issue 13); a train.yaml of its own still reads as before."""

from __future__ import annotations

from types import SimpleNamespace

import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

import pipelines.cli.train as train_cli
import pipelines.flows.retrain as retrain_module
from pipelines.cli.retrain import retrain_command
from pipelines.data.config import RunConfig
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.flows import train as train_flow
from pipelines.flows.retrain import RetrainExit, TrainRequest
from pipelines.flows.train import TrainSettings, load_train_config, load_train_settings
from pipelines.registry.names import GATE_TAG, PATH_TAG
from tests.pipelines.conftest import MODEL, fake_evaluate, fake_train


def test_a_train_yaml_reads_as_before(tmp_path):
    top = tmp_path / "train.yaml"
    top.write_text("seed: 3\nlabel_paths: 5\n")
    assert load_train_config(top) == (TrainSettings(seed=3, label_paths=5), None)
    section = tmp_path / "section.yaml"
    section.write_text("train:\n  test_periods: 4\n")
    assert load_train_config(section) == (TrainSettings(test_periods=4), None)
    assert load_train_settings(section) == TrainSettings(test_periods=4)


def test_a_run_config_sets_the_run_and_the_train_settings_follow_it(tmp_path):
    path = tmp_path / "stockwise.yaml"
    path.write_text(
        "freq: W-MON\nseed: 11\nselector_refit_every: 4\nservice:\n  mode: portfolio\n  target: 0.9\n"
        "train:\n  label_paths: 3\n  gate_origins: 2\n"
    )
    settings, run = load_train_config(path)
    assert run.seed == 11 and run.service.mode == "portfolio" and run.service.target == 0.9
    assert (settings.seed, settings.freq, settings.refit_every) == (11, "W-MON", 4)  # follow the run
    assert (settings.label_paths, settings.gate_origins) == (3, 2)
    path.write_text("seed: 11\ntrain:\n  seed: 5\n")  # a train: value wins over the run's
    assert load_train_config(path)[0].seed == 5 and load_train_config(path)[1].seed == 11
    path.write_text("data: somewhere\nlabel_paths: 3\n")
    with pytest.raises(ValueError, match=r"train settings \['label_paths'\] at the top level.*under `train:`"):
        load_train_config(path)
    path.write_text("train:\n  label_paths: -1\n")
    with pytest.raises(ValueError, match="stockwise.yaml: invalid train settings: label_paths"):
        load_train_config(path)
    path.write_text("seed: 3\ntrain: [label_paths]\n")
    with pytest.raises(ValueError, match="`train:` must be a mapping of train settings"):
        load_train_config(path)


def test_train_cli_passes_the_run_config_to_the_gate(tmp_path, monkeypatch):
    data = tmp_path / "data"
    write_demo(
        generate_demo(DemoConfig(seed=2, n_items=8, n_stores=3, n_dcs=1, n_weeks=60, min_stores_per_item=1)), data
    )
    path = tmp_path / "stockwise.yaml"
    path.write_text(
        f"data: {data}\nseed: 11\ntracking_uri: sqlite:///{tmp_path}/m.db\nservice:\n  sizing_choice: target\n"
    )
    seen = {}

    def run_train(demand, items, freq, settings, out, uri, run_config=None):
        seen.update(settings=settings, uri=uri, run=run_config, n=demand["unique_id"].nunique(), freq=freq)
        return SimpleNamespace(
            model_name=settings.model_name,
            plan="p",
            evaluation=pd.DataFrame(
                columns=[
                    "split",
                    "method",
                    "total_cost",
                    "controllable_regret_pct",
                    "regret_pct",
                    "service_met",
                    "accuracy",
                ]
            ),
            replay=None,
            decision="d",
            version="1",
            champion=None,
            run_id="r",
        )

    monkeypatch.setattr(train_cli, "run_train", run_train)
    app = typer.Typer()
    app.command()(train_cli.train_command)
    result = CliRunner().invoke(app, ["--config", str(path), "--gate-origins", "2", "--out", str(tmp_path / "o")])
    assert result.exit_code == 0, result.output
    assert seen["run"].seed == 11 and seen["run"].service.sizing_choice == "target"  # the gate replays with them
    assert seen["settings"].seed == 11 and seen["settings"].gate_origins == 2
    assert seen["uri"] == f"sqlite:///{tmp_path}/m.db"
    assert seen["n"] == pd.read_csv(data / "demand.csv")["unique_id"].nunique()  # the config's data folder
    assert seen["freq"] == "W-MON"


def test_the_challenger_trains_with_the_run_seed_and_train_settings(monkeypatch, tmp_path):
    seen = []

    def run_train(demand, items, freq, settings, out, uri, register=True, run_config=None, choose=False):
        seen.append((freq, settings, run_config, register, choose))
        return SimpleNamespace(run_id="r")

    monkeypatch.setattr(train_flow, "run_train", run_train)
    monkeypatch.setattr(train_flow, "register_version", lambda *a: "7")
    demand = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=40, freq="W-MON"), "y": 1.0})
    uri = f"sqlite:///{tmp_path}/m.db"
    base = TrainRequest(demand, pd.DataFrame(), demand["ds"].max(), "m", uri)
    assert train_flow.train_challenger(base) == "7"
    assert seen[-1][1] == TrainSettings(model_name="m") and seen[-1][2] is None  # as before: the defaults
    assert not seen[-1][4]  # no gate without shortfall_scales: the plain classifier
    run = RunConfig(seed=13, freq="W-MON")
    train_flow.train_challenger(TrainRequest(demand, pd.DataFrame(), demand["ds"].max(), "m", uri, None, run))
    freq, settings, run_config, register, _ = seen[-1]
    assert settings.seed == 13 and freq == "W-MON" and run_config is run and not register
    given = TrainSettings(seed=5, label_paths=3, model_name="other")
    train_flow.train_challenger(TrainRequest(demand, pd.DataFrame(), demand["ds"].max(), "m", uri, None, run, given))
    assert seen[-1][1] == given.model_copy(update={"model_name": "m"})


def test_with_shortfall_scales_the_challenger_is_the_path_trains_gate_chose(monkeypatch, tmp_path):
    seen, registered = [], []
    why = "train's gate chose classifier_tuned: decision replay (...): classifier_tuned promoted: ..."

    def run_train(demand, items, freq, settings, out, uri, register=True, run_config=None, choose=False):
        seen.append((register, choose))
        return SimpleNamespace(run_id="r", winner=("classifier_tuned", "policy_selector_tuned"), decision=why)

    monkeypatch.setattr(train_flow, "run_train", run_train)
    monkeypatch.setattr(train_flow, "register_version", lambda *a: registered.append(a) or "8")
    demand = pd.DataFrame({"unique_id": "a", "ds": pd.date_range("2024-01-01", periods=40, freq="W-MON"), "y": 1.0})
    tuned = TrainSettings(shortfall_scales=(0.5, 2))
    request = TrainRequest(
        demand, pd.DataFrame(), demand["ds"].max(), "m", f"sqlite:///{tmp_path}/m.db", None, None, tuned
    )
    assert train_flow.train_challenger(request) == "8"
    assert seen == [(False, True)]  # the gate judges the paths, moves no alias
    name, run_id, artifact, _, tags = registered[0]
    assert (name, run_id, artifact) == ("m", "r", "policy_selector_tuned")
    assert tags == {PATH_TAG: "classifier_tuned", GATE_TAG: why}


def test_retrain_cli_gives_the_train_section_to_the_challenger(tmp_path, store, monkeypatch):
    data = tmp_path / "data"
    write_demo(
        generate_demo(DemoConfig(seed=2, n_items=8, n_stores=3, n_dcs=1, n_weeks=80, min_stores_per_item=1)), data
    )
    path = tmp_path / "stockwise.yaml"
    path.write_text(f"data: {data}\ntracking_uri: {store[0]}\nseed: 13\ntrain:\n  label_paths: 3\n")
    seen = []

    def train(request):
        seen.append(request)
        return fake_train(1.0)(request)

    monkeypatch.setattr(retrain_module, "default_steps", lambda: (train, fake_evaluate))
    app = typer.Typer()
    app.command()(retrain_command)
    args = ["--config", str(path), "--holdout", "5", "--model-name", MODEL, "--out", str(tmp_path / "dec")]
    assert CliRunner().invoke(app, args).exit_code == RetrainExit.PROMOTED
    assert seen[0].run_config.seed == 13
    assert (seen[0].train_settings.seed, seen[0].train_settings.label_paths) == (13, 3)


def test_train_says_the_model_name_it_registered_under(capsys, tmp_path):
    """The last line names the settings' model (``model_name``), not the default name."""
    cols = ["split", "method", "total_cost", "controllable_regret_pct", "regret_pct", "service_met", "accuracy"]
    result = train_flow.TrainResult(
        run_id="r1", version="3", champion=None, evaluation=pd.DataFrame(columns=cols), model_name="my-selector"
    )
    train_cli._echo_result(result, tmp_path)
    assert "model my-selector: version 3 (champion: None); run r1" in capsys.readouterr().out
