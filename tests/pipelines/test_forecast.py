"""End to end: stockwise forecast on a tiny demo panel."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.data.config import load_config
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.flows.plan import load_data
from pipelines.flows.plan_steps import backtest_step

QS = (0.1, 0.5, 0.9, 0.99)


@pytest.fixture(scope="module")
def cli_run(tmp_path_factory, new_store):
    tmp = tmp_path_factory.mktemp("forecast")
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=70, seed=3))
    write_demo(demo, tmp / "data")
    (tmp / "cfg.yaml").write_text("forecast:\n  models: [AutoETS, CrostonSBA, SeasonalNaive]\n  n_windows: 4\n")
    uri = new_store(tmp / "mlruns" / "mlflow.db")
    result = CliRunner().invoke(
        app,
        [
            "forecast",
            "--data",
            str(tmp / "data"),
            "--config",
            str(tmp / "cfg.yaml"),
            "--horizon",
            "3",
            "--quantiles",
            ",".join(map(str, QS)),
            "--out",
            str(tmp / "runs"),
            "--tracking-uri",
            uri,
        ],
    )
    return result, tmp


def test_one_row_per_series_and_step_with_monotone_quantiles(cli_run):
    result, tmp = cli_run
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp / "runs").iterdir()
    fc = pd.read_parquet(run_dir / "forecast.parquet")
    cols = [f"q{q:g}" for q in QS]
    assert list(fc.columns) == ["unique_id", "ds", "model", "mean", *cols]
    assert not fc.duplicated(["unique_id", "ds"]).any()
    assert (fc.groupby("unique_id").size() == 3).all()
    assert fc["ds"].nunique() == 3
    q = fc[cols].to_numpy()
    assert (np.diff(q, axis=1) >= 0).all() and (q >= 0).all()
    assert (fc["q0.99"] > fc["q0.1"]).mean() > 0.5  # bands have width, not a point forecast repeated
    excluded = pd.read_csv(run_dir / "excluded.csv")
    cfg = load_config(tmp / "cfg.yaml", data=tmp / "data")
    data = load_data(cfg, tmp / "reload")
    assert fc["unique_id"].nunique() + len(excluded) == data.demand["unique_id"].nunique()


def test_model_column_is_the_backtest_choice(cli_run):
    _, tmp = cli_run
    (run_dir,) = (tmp / "runs").iterdir()
    fc = pd.read_parquet(run_dir / "forecast.parquet")
    cfg = load_config(tmp / "cfg.yaml", data=tmp / "data")
    cfg = cfg.model_copy(update={"forecast": cfg.forecast.model_copy(update={"horizon": 3})})
    data = load_data(cfg, tmp / "reload2")
    bt = backtest_step(data.demand, data.items, cfg, data.freq)
    chosen = bt.choice.set_index("unique_id")["model"]
    assert set(fc["model"]) <= {"AutoETS", "CrostonSBA", "SeasonalNaive"}
    pd.testing.assert_series_equal(
        fc.drop_duplicates("unique_id").set_index("unique_id")["model"].sort_index(),
        chosen.sort_index(),
        check_names=False,
    )


def test_bad_quantiles_exit_1_with_a_message(tmp_path):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = CliRunner().invoke(
        app, ["forecast", "--quantiles", "0.5,1.2", "--out", str(tmp_path), "--tracking-uri", uri]
    )
    assert result.exit_code == 1
    assert "quantiles must be in (0, 1)" in " ".join(result.output.split())
    assert not (tmp_path / "mlflow.db").exists()  # refused before any work
