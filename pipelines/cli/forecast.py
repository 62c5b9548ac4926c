"""``stockwise forecast``: future forecasts with quantiles per series, from each series' chosen model."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console

from forecasting.panel import DataValidationError
from pipelines.cli import options
from pipelines.data.config import ConfigError, load_config
from pipelines.data.io import InputFileError
from pipelines.flows.forecast import DEFAULT_QUANTILES, run_forecast

__all__ = ["forecast_command"]


def _parse_quantiles(text: str | None) -> tuple[float, ...]:
    if not text:
        return DEFAULT_QUANTILES
    try:
        qs = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError as exc:
        raise ConfigError(f"--quantiles must be comma-separated numbers in (0, 1), got {text!r}") from exc
    if not qs or any(not 0 < q < 1 for q in qs):
        raise ConfigError(f"--quantiles must be in (0, 1), got {text!r}")
    return qs


def forecast_command(
    data: Path = typer.Option(None, help="data folder: demand, items (as for recommend); default the demo"),
    horizon: int = typer.Option(None, min=1, help="periods ahead (default: the longest L + R of the items)"),
    quantiles: str = typer.Option(None, help="comma-separated, default 0.05,0.1,0.25,0.5,0.75,0.9,0.95"),
    config: Path = typer.Option(None, help="YAML run config (see README)"),
    out: Path = typer.Option(None, help="folder for run outputs (default runs/)"),
    freq: str = typer.Option(None, help="period frequency, e.g. W-MON, MS"),
    tracking_uri: str = options.TRACKING_URI,
) -> None:
    """Forecast every series with the model its backtest chose; quantiles from its backtested errors (parquet)."""
    console = Console()
    try:
        qs = _parse_quantiles(quantiles)
        cfg = load_config(config, data=data, out=out, freq=freq, tracking_uri=tracking_uri)
        if horizon is not None:
            cfg = cfg.model_copy(update={"forecast": cfg.forecast.model_copy(update={"horizon": horizon})})
        with console.status("forecast: starting") as status, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="statsforecast")
            result = run_forecast(
                cfg, qs, progress=lambda msg: (status.update(f"forecast: {msg}"), console.print(f"  - {msg}"))
            )
    except (ConfigError, InputFileError, DataValidationError) as exc:
        console.print(f"[bold red]ERROR[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    console.print(
        f"[green]done[/]: {result.n_series} series forecast; {result.n_excluded} too short for the "
        f"backtest (listed in excluded.csv)"
    )
    console.print(f"forecast: {result.forecast}")
    console.print(f"MLflow run: {result.run_id} in {result.tracking_uri} (experiment 'stockwise')")
