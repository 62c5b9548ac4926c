"""Segment / portfolio service targets through the config, the CLI and stockwise evaluate."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.data.config import ConfigError, ServiceSettings, load_config, service_override
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo


def test_service_settings_check_mode_and_target():
    assert ServiceSettings().mode == "item"
    with pytest.raises(ValueError, match="needs service.target"):
        ServiceSettings(mode="portfolio")
    with pytest.raises(ValueError, match="applies to mode segment or portfolio"):
        ServiceSettings(target=0.9)
    with pytest.raises(ConfigError, match="service.mode"):
        load_config(None, service={"mode": "everything", "target": 0.9})


def test_cli_override_builds_the_mode():
    assert service_override(None, None, None) is None
    assert service_override(0.95, None, "fill_rate") == {"mode": "portfolio", "target": 0.95, "measure": "fill_rate"}
    assert service_override(None, 0.9, None) == {"mode": "segment", "target": 0.9}
    with pytest.raises(ConfigError, match="not both"):
        service_override(0.9, 0.9, None)
    with pytest.raises(ConfigError, match="needs --portfolio-target"):
        service_override(None, None, "csl")


def test_evaluate_with_a_portfolio_target_says_which_mode_set_each_level(tmp_path, tracking_uri):
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=70, seed=3))
    write_demo(demo, tmp_path / "data")
    (tmp_path / "cfg.yaml").write_text("forecast:\n  models: [AutoETS, CrostonSBA]\n  n_windows: 3\n")
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--data",
            str(tmp_path / "data"),
            "--holdout",
            "8",
            "--config",
            str(tmp_path / "cfg.yaml"),
            "--portfolio-target",
            "0.9",
            "--out",
            str(tmp_path / "runs"),
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    items = pd.read_csv(run_dir / "evaluation_items.csv")
    stocked = items["policy"].ne("no_stock")
    assert stocked.any()
    assert items.loc[stocked, "service_mode"].eq("portfolio").all()
    assert items.loc[stocked, "service_target"].eq(0.9).all()
    assert items.loc[~stocked, "service_mode"].eq("item").all()


def test_recommend_with_a_portfolio_target_reports_its_exchange_curve(tmp_path, tracking_uri):
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=70, seed=3))
    write_demo(demo, tmp_path / "data")
    (tmp_path / "cfg.yaml").write_text("forecast:\n  models: [AutoETS, CrostonSBA]\n  n_windows: 3\n")
    args = ["recommend", "--data", str(tmp_path / "data"), "--config", str(tmp_path / "cfg.yaml")]
    args += ["--portfolio-target", "0.9", "--out", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, args + ["--tracking-uri", tracking_uri])
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp_path / "runs").iterdir()
    curve = pd.read_csv(run_dir / "exchange_curve.csv")
    assert list(curve.columns) == ["segment", "step", "inventory_value", "service", "chosen"]
    plan = curve[curve["chosen"]]
    assert len(plan) == 1 and plan["service"].iloc[0] >= 0.9 - 1e-9
    # the greedy only adds stock and service along the curve
    assert (curve["inventory_value"].diff().dropna() >= -1e-9).all() and (
        curve["service"].diff().dropna() >= -1e-9
    ).all()
    page = (run_dir / "report.html").read_text()
    assert 'id="exchange"' in page and "the plan: service" in page
    # the target was first backtested at an earlier origin (70 weeks: 17 held out); the chosen point meets the raise
    check = pd.read_csv(run_dir / "target_backtest.csv")
    assert check["origin"].notna().all() and (check["periods"] == 17).all() and (check["raise_by"] >= 0).all()
    raise_by = check.set_index("segment").loc["all", "raise_by"]
    assert plan["service"].iloc[0] >= min(0.9 + raise_by, 0.995) - 1e-9
    assert f"target raised by its backtest at {check['origin'].iloc[0]}" in result.output
