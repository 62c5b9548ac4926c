"""End to end: ``stockwise backtest`` on a tiny panel with MLflow in a temporary store."""

from __future__ import annotations

import mlflow
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from tests.conftest import make_panel


@pytest.fixture
def demand_file(tmp_path):
    smooth = make_panel(n_series=3, length=50, kind="smooth", seed=21)
    sparse = make_panel(n_series=3, length=50, kind="intermittent", seed=22)
    sparse["unique_id"] = "I" + sparse["unique_id"]
    path = tmp_path / "demand.csv"
    pd.concat([smooth, sparse]).to_csv(path, index=False)
    return path


def test_backtest_command_writes_outputs_and_one_run(tmp_path, demand_file, tracking_uri):
    out = tmp_path / "out"
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--demand",
            str(demand_file),
            "--freq",
            "W-MON",
            "--horizon",
            "3",
            "--out",
            str(out),
            "--models",
            "Naive,CrostonSBA",
            "--models",
            "LightGBM",
            "--n-windows",
            "4",
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    metrics = pd.read_csv(out / "metrics.csv")
    assert list(metrics.columns[:5]) == ["model", "MASE", "RMSSE", "bias", "n_series"]
    assert set(metrics["model"]) == {"Naive", "CrostonSBA", "LightGBM"}
    assert (metrics["n_series"] == 6).all()
    cv = pd.read_parquet(out / "cv.parquet")
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "Naive", "CrostonSBA", "LightGBM"]
    quantiles = pd.read_parquet(out / "error_quantiles.parquet")
    assert len(quantiles) == 6 * 3 * 3 and {"q0.95", "distribution"} <= set(quantiles.columns)
    assert not any(p.name.endswith(".tmp") for p in out.iterdir())

    mlflow.set_tracking_uri(tracking_uri)
    runs = mlflow.search_runs(experiment_names=["stockwise"])
    assert len(runs) == 1
    run = runs.iloc[0]
    assert run["params.horizon"] == "3" and run["params.models"] == "Naive,CrostonSBA,LightGBM"
    assert run["metrics.CrostonSBA.MASE"] == pytest.approx(metrics.set_index("model").loc["CrostonSBA", "MASE"])
    artifacts = {a.path for a in mlflow.MlflowClient().list_artifacts(run["run_id"])}
    assert {"metrics.csv", "cv.parquet", "error_quantiles.parquet"} <= artifacts
    logged = mlflow.search_logged_models(experiment_ids=[run["experiment_id"]], output_format="list")
    assert [m.name for m in logged] == ["lightgbm_forecaster"]


def test_backtest_bad_input_exits_1(tmp_path, tracking_uri):
    bad = tmp_path / "bad.csv"
    pd.DataFrame({"item": ["A"], "date": ["2024-01-01"], "qty": [1]}).to_csv(bad, index=False)
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--demand",
            str(bad),
            "--freq",
            "W-MON",
            "--horizon",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert result.exit_code == 1
    assert "missing required column" in result.output


def test_backtest_unknown_model_exits_1(tmp_path, demand_file, tracking_uri):
    result = CliRunner().invoke(
        app,
        [
            "backtest",
            "--demand",
            str(demand_file),
            "--freq",
            "W-MON",
            "--horizon",
            "2",
            "--out",
            str(tmp_path / "o"),
            "--models",
            "Prophet",
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert result.exit_code == 1
    assert "unknown model" in result.output
