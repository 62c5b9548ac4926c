"""`stockwise train`: the command; the computation is in :mod:`pipelines.flows.train`."""

from __future__ import annotations

import typer
from pathlib import Path
from pipelines.registry.names import MODEL_NAME
from pipelines.flows.train import load_train_inputs, load_train_settings, run_train


def train_command(
    data: Path = typer.Option(None, help="data folder with demand and items"),
    demo: bool = typer.Option(False, "--demo", help="train on the generated demo data"),
    config: Path = typer.Option(None, help="YAML with train settings (top level or under 'train:')"),
    tracking_uri: str = typer.Option(None, help="MLflow store (default sqlite:///mlruns/mlflow.db)"),
    out: Path = typer.Option(Path("runs/train"), help="folder for labels, cost matrix, evaluation"),
) -> None:
    """Label policies by simulation, train the policy selector, evaluate it and register it."""
    try:
        settings = load_train_settings(config)
        demand, items, freq = load_train_inputs(data, demo, settings)
        result = run_train(demand, items, settings.freq or freq, settings, out, tracking_uri)
    except (ValueError, TypeError, OSError) as exc:
        typer.echo(f"train failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    cols = ["split", "method", "total_cost", "controllable_regret_pct", "regret_pct", "service_met", "accuracy"]
    typer.echo(result.evaluation[cols].round(3).to_string(index=False))
    typer.echo(f"model {MODEL_NAME} version {result.version} (champion: {result.champion}); "
               f"run {result.run_id}; outputs in {out}")
