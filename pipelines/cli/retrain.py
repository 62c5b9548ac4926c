"""`stockwise retrain`: the command; the computation is in :mod:`pipelines.flows.retrain`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.flows import retrain as retrain_flow
from pipelines.flows.retrain import RetrainConfig, RetrainExit, load_run_data, run_retrain
from pipelines.flows.train import load_train_config


def retrain_command(
    config: Path = typer.Option(
        None,
        help="run config YAML (data folder, tracking_uri, freq, seed, service: the evaluation uses them); default: demo data",
    ),
    margin: float = typer.Option(RetrainConfig.margin, help="relative cost gain the challenger needs"),
    max_service_drop: float = typer.Option(RetrainConfig.max_service_drop, help="service the challenger may lose"),
    holdout: int = typer.Option(RetrainConfig.holdout_periods, help="latest periods held out for the comparison"),
    out: Path = typer.Option(RetrainConfig.out, help="folder of decision records"),
    model_name: str = typer.Option(RetrainConfig.model_name, help="registered model name"),
    tracking_uri: str = typer.Option(None, help="MLflow store; default from the config or STOCKWISE_TRACKING_URI"),
    only_triggered: bool = typer.Option(False, help="retrain only items with a demand-shift trigger"),
) -> None:
    """Train a challenger and promote it over the champion only if it wins.

    Exit codes: 0 promoted, 3 champion kept, 1 failed, 75 locked by another retrain.
    """
    try:
        demand, items, cfg = load_run_data(config)
        train_settings = load_train_config(config)[0] if config is not None else None
        settings = RetrainConfig(
            model_name=model_name,
            holdout_periods=holdout,
            margin=margin,
            max_service_drop=max_service_drop,
            out=out,
            tracking_uri=tracking_uri or cfg.tracking_uri,
            run=cfg,  # the challenger is judged with the run's own frequency, seed and service settings
            train_settings=train_settings,  # and trained with the config's train: settings (seed, freq: the run's)
        )
        train, evaluate = retrain_flow.default_steps()
    except ValueError as exc:
        typer.echo(f"FAILED: {exc}", err=True)
        raise typer.Exit(int(RetrainExit.FAILED)) from exc
    subset = None
    if only_triggered:
        from pipelines.flows.triggers import detect_triggers

        subset = detect_triggers(history=demand)["unique_id"].tolist()
        typer.echo(f"{len(subset)} item(s) triggered a refresh")
    raise typer.Exit(int(run_retrain(demand, items, train, evaluate, settings, subset, echo=typer.echo)))
