"""The run config's ``error_model.shrinkage``: one credibility for the published quantiles and the buffers.

Every error model a command fits is recorded (the function that fitted it and its credibility), so a
front door that dropped the setting, or fitted with a default of its own, fails here.
"""

from __future__ import annotations

import sys

import mlflow
import pytest
from typer.testing import CliRunner

from forecasting import ErrorModel, ErrorModelConfig
from pipelines.cli import app
from pipelines.data.config import ConfigError, ForecastSettings, RunConfig, ServiceSettings, load_config
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.flows.evaluate import EvaluateSettings, run_evaluate
from pipelines.flows.forecast import run_forecast
from pipelines.flows.plan import run_plan
from pipelines.flows.train import TrainSettings, selector_config, settings_from_run
from pipelines.flows.train_gate import replay_run_config
from tests.conftest import make_panel

K = 3.0  # neither the default ("estimate") nor the old fixed default (8)
FAST = ForecastSettings(models=("SeasonalNaive", "CrostonSBA"), n_windows=4)


@pytest.fixture
def fitted(monkeypatch) -> list[tuple[str, float | str]]:
    """(caller, shrinkage) of every ErrorModel.fit while the test runs."""
    calls: list[tuple[str, float | str]] = []
    fit = ErrorModel.fit

    def spy(self, *args, **kwargs):
        calls.append((sys._getframe(1).f_code.co_name, (self.config or ErrorModelConfig()).shrinkage))
        return fit(self, *args, **kwargs)

    monkeypatch.setattr(ErrorModel, "fit", spy)
    return calls


@pytest.fixture(scope="module")
def demo_data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("credibility")
    write_demo(
        generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=70, seed=3)), tmp
    )
    return tmp


@pytest.mark.parametrize(
    "text, bad",
    [
        ("error_model:\n  shrinkage: fixed\n", "'fixed'"),
        ("error_model:\n  shrinkage: -1\n", "-1.0"),
        ("error_model:\n  shrinkage: true\n", "True"),  # not read as 1 pseudo-window
    ],
)
def test_a_bad_credibility_is_refused_naming_the_file_and_key(tmp_path, text, bad):
    path = tmp_path / "stockwise.yaml"
    path.write_text(text)
    with pytest.raises(
        ConfigError,
        match=r"stockwise\.yaml: invalid configuration: error_model\.shrinkage: .*"
        rf"must be 'estimate' or a number of pseudo-windows >= 0 \(e\.g\. 8\), got {bad}",
    ):
        load_config(path)


def test_the_run_configs_default_is_the_error_models():
    assert RunConfig().error_model.shrinkage == ErrorModelConfig().shrinkage == "estimate"
    assert RunConfig(error_model={"shrinkage": 8}).error_model.config() == ErrorModelConfig(shrinkage=8.0)


def test_the_plan_publishes_the_quantiles_of_the_credibility_its_policy_step_sizes_with(
    demo_data, tmp_path, new_store, fitted
):
    uri = new_store(tmp_path / "mlflow.db")
    cfg = RunConfig(
        data=demo_data, out=tmp_path / "runs", tracking_uri=uri, forecast=FAST, error_model={"shrinkage": K}
    )
    run_plan(cfg, command="recommend")
    callers = {caller for caller, _ in fitted}
    assert {"error_step", "_error_models", "forecast_error_buffers"} <= callers  # quantiles, policy step, MEIO
    assert {k for _, k in fitted} == {K}


def test_forecast_quantiles_follow_the_run_config(demo_data, tmp_path, new_store, fitted):
    uri = new_store(tmp_path / "mlflow.db")
    cfg = RunConfig(
        data=demo_data, out=tmp_path / "runs", tracking_uri=uri, forecast=FAST, error_model={"shrinkage": K}
    )
    run_forecast(cfg)
    assert fitted and set(fitted) == {("quantile_forecast", K)}


def test_backtest_reads_the_credibility_of_its_config_file(tmp_path, tracking_uri, fitted):
    demand = make_panel(n_series=4, length=40, kind="intermittent", seed=5)
    demand.to_csv(tmp_path / "demand.csv", index=False)
    (tmp_path / "stockwise.yaml").write_text(f"error_model:\n  shrinkage: {K}\n")
    args = ["backtest", "--demand", str(tmp_path / "demand.csv"), "--freq", "W-MON", "--horizon", "2"]
    args += ["--out", str(tmp_path / "out"), "--models", "CrostonSBA", "--n-windows", "8"]
    result = CliRunner().invoke(
        app, [*args, "--tracking-uri", tracking_uri, "--config", str(tmp_path / "stockwise.yaml")]
    )
    assert result.exit_code == 0, result.output
    assert set(fitted) == {("run_backtest", K), ("_calibration", K)}  # the published table and its held-out check
    mlflow.set_tracking_uri(tracking_uri)
    assert mlflow.search_runs(experiment_names=["stockwise"]).iloc[0]["params.shrinkage"] == str(K)


def test_train_follows_the_run_configs_credibility():
    run = RunConfig(error_model={"shrinkage": K})
    assert selector_config(settings_from_run(run), "W-MON").shrinkage == K
    assert selector_config(settings_from_run(run, {"shrinkage": "estimate"}), "W-MON").shrinkage == "estimate"
    assert TrainSettings().shrinkage == ErrorModelConfig().shrinkage


def test_trains_replay_gate_sizes_with_the_studys_credibility_when_there_is_no_run_config():
    """A train.yaml of its own (no run config): the gate's replay takes the train settings' credibility and
    refit rule, so the paths are judged with the buffers the study labelled them with."""
    settings = TrainSettings(seed=5, shrinkage=K, refit_every=2)
    cfg = replay_run_config(None, "W-MON", "sqlite:///x.db", settings)
    assert (cfg.seed, cfg.error_model.shrinkage, cfg.selector_refit_every, cfg.freq) == (5, K, 2, "W-MON")
    run = RunConfig(seed=9, error_model={"shrinkage": "estimate"})
    assert replay_run_config(run, "W-MON", None, settings).error_model.shrinkage == "estimate"  # the run's own


def test_evaluate_and_a_portfolio_plan_size_with_the_run_configs_credibility(demo_data, tmp_path, new_store, fitted):
    """The two policy-step paths the item-mode plan does not take: evaluate's replayed plans and the
    segment / portfolio allocation (``select_step`` outside blocks)."""
    uri = new_store(tmp_path / "mlflow.db")
    cfg = RunConfig(
        data=demo_data, out=tmp_path / "runs", tracking_uri=uri, forecast=FAST, error_model={"shrinkage": K}
    )
    run_evaluate(cfg, EvaluateSettings(holdout=6))
    assert "_error_models" in {caller for caller, _ in fitted} and {k for _, k in fitted} == {K}
    fitted.clear()
    portfolio = ServiceSettings(mode="portfolio", target=0.9, backtest=False)
    run_plan(cfg.model_copy(update={"service": portfolio}), command="recommend")
    assert "_error_models" in {caller for caller, _ in fitted} and {k for _, k in fitted} == {K}
