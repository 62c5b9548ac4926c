"""``stockwise triggers``: list the items whose policy needs review, with the reasons.

Reads the data named by a run config (or the demo), optionally the
recommendations in force, realised service and realised forecasts, runs
:func:`pipelines.flows.triggers.detect_triggers` and writes ``triggers.csv``
atomically. Exit 0 when it ran (flagged or not), 1 on bad input.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from pipelines.data.io import InputFileError, read_table, write_table_atomic
from pipelines.flows.triggers import TriggerConfig, detect_triggers

__all__ = ["triggers_command"]


def _optional(path: Path | None) -> pd.DataFrame | None:
    if path is None:
        return None
    frame = read_table(path)
    if "ds" in frame.columns:
        frame["ds"] = pd.to_datetime(frame["ds"])
    return frame


def triggers_command(
    config: Path = typer.Option(None, help="run config YAML (its data folder); default: demo data"),
    recommendations: Path = typer.Option(None, help="recommendations in force (lead time and service targets)"),
    realised: Path = typer.Option(None, help="realised service per period: unique_id, ds, y, served"),
    forecast_errors: Path = typer.Option(None, help="realised forecasts: unique_id, ds, y, forecast"),
    backtest_errors: Path = typer.Option(None, help="backtest MAE per item: unique_id, mae"),
    recent: int = typer.Option(TriggerConfig.recent, help="recent periods tested"),
    out: Path = typer.Option(Path("runs/triggers.csv"), help="where to write the flagged items"),
) -> None:
    """List items whose demand level, forecast error, lead time or service moved; exit 0 ok, 1 bad input."""
    from pipelines.flows.retrain import load_run_data

    try:
        demand, items, _ = load_run_data(config)
        flagged = detect_triggers(
            TriggerConfig(recent=recent),
            history=demand,
            items=items if recommendations else None,
            recommendations=_optional(recommendations),
            realised=_optional(realised),
            forecast_errors=_optional(forecast_errors),
            backtest_errors=_optional(backtest_errors),
        )
    except (ValueError, InputFileError) as exc:
        typer.echo(f"ERROR: {exc}", err=True)
        raise typer.Exit(1) from exc
    write_table_atomic(flagged, out)
    detectors = ", ".join(flagged.attrs.get("detectors", []))
    typer.echo(f"{len(flagged)} of {demand['unique_id'].nunique()} item(s) flagged ({detectors}); written to {out}")
    for row in flagged.head(20).itertuples(index=False):
        typer.echo(f"  {row.unique_id}: {row.reasons}")
