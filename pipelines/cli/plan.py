"""``stockwise demo`` and ``stockwise recommend``: the end-to-end planning flow."""

from __future__ import annotations

import warnings
from pathlib import Path

import typer
from rich.console import Console

from forecasting.panel import DataValidationError
from pipelines.cli import options
from pipelines.cli.console import make_console
from pipelines.data.config import ConfigError, load_config, service_override
from pipelines.data.demo_data import DemoConfig, generate_demo
from pipelines.data.io import InputFileError
from pipelines.flows.plan import PlanResult, run_plan
from pipelines.flows.train import TrainSettings, run_train
from pipelines.registry.names import CHAMPION_ALIAS, MODEL_NAME
from pipelines.registry.tracking import get_alias_version

__all__ = ["demo_command", "recommend_command"]


def _run(console: Console, command: str, **overrides) -> PlanResult:
    config = overrides.pop("config", None)
    try:
        cfg = load_config(config, **overrides)
        with console.status(f"{command}: starting") as status, warnings.catch_warnings():
            # statsforecast's ETS divides by zero degrees of freedom on very short fits and says so
            # once per series; the fit is still valid, and the noise hides the progress lines
            warnings.filterwarnings("ignore", category=RuntimeWarning, module="statsforecast")
            result = run_plan(
                cfg,
                command=command,
                progress=lambda msg: (status.update(f"{command}: {msg}"), console.print(f"  - {msg}")),
            )
    except (ConfigError, InputFileError, DataValidationError) as exc:
        console.print(f"[bold red]ERROR[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    k = result.kpis
    console.print(
        f"[green]done[/]: {result.n_items} items; mean expected CSL {k['mean_expected_csl']:.3f}, "
        f"fill rate {k['mean_expected_fill_rate']:.3f}; safety stock value "
        f"{k['safety_stock_value']:,.0f}; stranded (excess) value {k['excess_value']:,.0f}"
    )
    if result.excluded:
        top = ", ".join(f"{n} {check}" for check, n in list(result.excluded.items())[:5])
        console.print(
            f"[yellow]excluded[/]: {sum(result.excluded.values())} item(s)/series ({top}); "
            f"each one with its reason in {result.validation_report}"
        )
    for note in result.notes:
        console.print(f"[yellow]{note}[/]")
    console.print(f"recommendations: {result.recommendations}")
    console.print(
        f"time-phased plan: {result.run_dir / 'plan.parquet'} "
        f"({result.kpis.get('n_phased', 0):.0f} items with a trend or season follow their forecast)"
    )
    console.print(f"planner report: {result.run_dir / 'report.html'}")
    console.print(f"validation report: {result.validation_report}")
    console.print(f"MLflow run: {result.run_id} in {result.tracking_uri} (experiment 'stockwise')")
    return result


def demo_command(
    out: Path = typer.Option(Path("runs"), help="folder for run outputs"),
    seed: int = typer.Option(7, help="seed of the generated demo network"),
    items: int = typer.Option(None, help="number of demo items (default 45, ~280 item-locations)"),
    weeks: int = typer.Option(None, help="weeks of demo history (default 182)"),
    models: str = typer.Option(None, help="comma-separated forecasters, e.g. AutoETS,CrostonSBA"),
    train: bool = typer.Option(True, help="train the policy selector first when none is registered"),
    tracking_uri: str = typer.Option(None, help="MLflow store (default sqlite:///mlruns/mlflow.db)"),
) -> None:
    """Generate the demo network, train the policy selector (once), recommend a policy per item."""
    console = make_console()
    if train and get_alias_version(MODEL_NAME, CHAMPION_ALIAS, tracking_uri) is None:
        _train_demo(console, out, seed, items, weeks, tracking_uri)
    forecast = {"models": tuple(m.strip() for m in models.split(","))} if models else None
    _run(
        console,
        "demo",
        out=out,
        seed=seed,
        demo_items=items,
        demo_weeks=weeks,
        forecast=forecast,
        tracking_uri=tracking_uri,
    )


def _train_demo(
    console: Console, out: Path, seed: int, items: int | None, weeks: int | None, tracking_uri: str | None
) -> None:
    """Label the demo by simulation and register the first champion policy selector."""
    settings = TrainSettings(seed=seed, **{k: v for k, v in (("demo_items", items), ("demo_weeks", weeks)) if v})
    demo = generate_demo(DemoConfig(seed=seed, n_items=settings.demo_items, n_weeks=settings.demo_weeks))
    with console.status("training the policy selector (labels by simulation; first demo run only)"):
        result = run_train(demo.demand, demo.items, "W-MON", settings, out / "train-demo", tracking_uri)
    console.print(
        f"  - trained {MODEL_NAME} version {result.version} (champion {result.champion}); "
        f"evaluation in {result.paths['evaluation']}"
    )


def recommend_command(
    data: Path = typer.Option(None, help="data folder: demand, items[, stages, edges]"),
    config: Path = typer.Option(None, help="YAML run config (docs/guide/configuration.md)"),
    out: Path = typer.Option(None, help="folder for run outputs (default runs/)"),
    freq: str = typer.Option(None, help="period frequency, e.g. W-MON, MS"),
    strict: bool = typer.Option(None, help="stop on validation errors instead of excluding rows"),
    portfolio_target: float = options.PORTFOLIO_TARGET,
    segment_target: float = options.SEGMENT_TARGET,
    service_measure: str = options.SERVICE_MEASURE,
    tracking_uri: str = options.TRACKING_URI,
    engine: str = typer.Option(None, help="per-series steps on 'local' processes (default), 'dask' or 'spark'"),
    scheduler: str = typer.Option(
        None,
        help="Dask scheduler address (default: a LocalCluster for the run); for spark the master URL, "
        "e.g. spark://host:7077 (default: local[<workers>])",
    ),
    block_size: int = typer.Option(None, help="series per block (default 2000)"),
    workers: int = typer.Option(None, help="local processes / LocalCluster workers (default: all cores)"),
    selector: str = options.SELECTOR,
) -> None:
    """Recommend a policy per item for a data folder (validate, backtest, size, simulate)."""
    console = make_console()
    try:
        service = service_override(portfolio_target, segment_target, service_measure)
    except ConfigError as exc:
        console.print(f"[bold red]ERROR[/] {exc}")
        raise typer.Exit(2) from exc
    _run(
        console,
        "recommend",
        config=config,
        data=data,
        out=out,
        freq=freq,
        strict=strict,
        tracking_uri=tracking_uri,
        engine=engine,
        scheduler=scheduler,
        block_size=block_size,
        workers=workers,
        service=service,
        selector=selector,
    )
