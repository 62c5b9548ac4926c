"""`stockwise backtest`: the command; the computation is in :mod:`pipelines.flows.backtest`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import typer

from forecasting.config import STAT_MODELS
from forecasting.panel import DataValidationError
from pipelines.data.config import ConfigError, load_config
from pipelines.data.io import InputFileError, read_table
from pipelines.flows.backtest import DEFAULT_MODELS, run_backtest


def _parse_models(models: list[str] | None) -> tuple[str, ...]:
    if not models:
        return DEFAULT_MODELS
    names = tuple(n.strip() for item in models for n in item.split(",") if n.strip())
    return names


def backtest_command(
    demand: Path = typer.Option(..., "--demand", help="demand file (CSV or Parquet): unique_id, ds, y"),
    freq: str = typer.Option(..., "--freq", help="period frequency, e.g. W-MON, D, MS"),
    horizon: int = typer.Option(..., "--horizon", min=1, help="backtest horizon H in periods"),
    out: Path = typer.Option(..., "--out", help="output folder"),
    models: list[str] = typer.Option(
        None, "--models", help=f"model names, comma-separated or repeated; from {', '.join(STAT_MODELS)}, LightGBM"
    ),
    n_windows: int = typer.Option(6, "--n-windows", min=1, help="rolling-origin cutoffs"),
    step: int = typer.Option(1, "--step", min=1, help="periods between cutoffs"),
    season_length: int = typer.Option(None, "--season-length", help="default by frequency"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store, e.g. sqlite:///mlruns/mlflow.db"),
    config: Path = typer.Option(
        None,
        "--config",
        help="YAML run config (stockwise.yaml): its error_model section sets the error quantiles' credibility; "
        "the other settings come from these options",
    ),
) -> None:
    """Backtest forecasting models on a demand file; exit 0 ok, 1 bad input."""
    try:
        error_model = load_config(config).error_model.config()
        result = run_backtest(
            read_table(demand),
            freq=freq,
            horizon=horizon,
            out=out,
            models=_parse_models(models),
            n_windows=n_windows,
            step=step,
            season_length=season_length,
            tracking_uri=tracking_uri,
            source=demand.name,
            error_model=error_model,
        )
    except (ConfigError, InputFileError, DataValidationError, ValueError, TypeError) as exc:
        typer.echo(f"ERROR {exc}", err=True)
        raise typer.Exit(1) from exc
    shown = result.metrics[["model", "MASE", "RMSSE", "bias", "n_series"]]
    typer.echo(shown.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    typer.echo(f"{len(result.fallbacks)} fallback(s); {result.validation.n_excluded_rows} row(s) excluded")
    typer.echo(f"outputs in {out} (MLflow run {result.run_id})")
    if not np.isfinite(result.metrics["MASE"]).any():
        typer.echo("warning: no model has a finite MASE (constant histories?)", err=True)
