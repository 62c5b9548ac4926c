"""``stockwise evaluate``: the decision backtest (recommend before an origin, replay on what happened)."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console

from forecasting.panel import DataValidationError
from pipelines.cli import options
from pipelines.data.config import ConfigError, load_config, service_override
from pipelines.data.io import InputFileError
from pipelines.flows.evaluate import EvaluateSettings, run_evaluate

__all__ = ["evaluate_command"]


def evaluate_command(
    data: Path = typer.Option(None, help="data folder: demand, items (as for recommend)"),
    demo: bool = typer.Option(False, "--demo", help="evaluate on the generated demo data (scored against its truth)"),
    holdout: int = typer.Option(..., min=1, help="periods replayed after each origin"),
    origins: int = typer.Option(1, min=1, help="rolling origins, `holdout` periods apart"),
    replan: int = typer.Option(None, min=1, help="recompute the levels every k periods (default: never)"),
    config: Path = typer.Option(None, help="YAML run config (see README)"),
    out: Path = typer.Option(None, help="folder for run outputs (default runs/)"),
    freq: str = typer.Option(None, help="period frequency, e.g. W-MON, MS"),
    service_target: float = typer.Option(None, help="one service target for every item (what-if)"),
    portfolio_target: float = options.PORTFOLIO_TARGET,
    segment_target: float = options.SEGMENT_TARGET,
    service_measure: str = options.SERVICE_MEASURE,
    tracking_uri: str = options.TRACKING_URI,
    selector: str = options.SELECTOR,
) -> None:
    """Replay the recommended policies on held-out demand against textbook, AutoETS and CrostonSBA baselines."""
    console = Console()
    if (data is None) == (not demo) and config is None:
        console.print("[bold red]ERROR[/] give --data FOLDER or --demo (not both)")
        raise typer.Exit(2)
    scenario = {"service_target": service_target} if service_target is not None else None
    try:
        service = service_override(portfolio_target, segment_target, service_measure)
        cfg = load_config(
            config,
            data=data,
            out=out,
            freq=freq,
            tracking_uri=tracking_uri,
            scenario=scenario,
            service=service,
            selector=selector,
        )
        settings = EvaluateSettings(holdout=holdout, origins=origins, replan=replan)
        with console.status("evaluate: starting") as status, warnings.catch_warnings():
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="statsforecast")
            result = run_evaluate(
                cfg, settings, progress=lambda msg: (status.update(f"evaluate: {msg}"), console.print(f"  - {msg}"))
            )
    except (ConfigError, InputFileError, DataValidationError) as exc:
        console.print(f"[bold red]ERROR[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    m = result.metrics
    console.print(
        f"[green]done[/]: {m['stockwise.n_items']:.0f} items; achieved CSL {m['stockwise.csl']:.3f}, "
        f"fill rate {m['stockwise.fill_rate']:.3f}; inventory value {m['stockwise.inventory_value']:,.0f}"
    )
    for measure in ("csl", "fill_rate"):
        ratio = m.get(f"ratio.{measure}")
        text = f"{ratio:.2f}x" if ratio is not None else "n/a (service outside the baselines' frontiers)"
        console.print(f"inventory vs the best baseline at equal achieved {measure}: {text}")
        static = m.get(f"static.ratio.{measure}")
        if static is not None:
            console.print(f"  the same plan with fixed (not time-phased) levels: {static:.2f}x")
    console.print(f"decision path: --selector {cfg.selector}")
    console.print(f"evaluation: {result.run_dir / 'evaluation.md'}")
    console.print(f"MLflow run: {result.run_id} in {result.tracking_uri} (experiment 'stockwise')")
