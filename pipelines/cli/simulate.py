"""`stockwise simulate`: the command; the computation is in :mod:`pipelines.flows.simulate`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.data.io import InputFileError, read_table
from pipelines.flows.simulate import run_simulation


def simulate_command(
    demand: Path = typer.Option(..., "--demand", help="demand file (CSV or Parquet): unique_id, ds, y"),
    policies: Path = typer.Option(..., "--policies", help="policy table, one row per unique_id"),
    out: Path = typer.Option(..., "--out", help="output folder for kpis.csv and kpis_total.csv"),
    warmup: int = typer.Option(0, "--warmup", min=0, help="periods excluded from KPIs"),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store, e.g. sqlite:///mlruns/mlflow.db"),
) -> None:
    """Simulate a policy table on demand and write per-item and total KPIs; exit 0 ok, 1 bad input."""
    try:
        result = run_simulation(
            read_table(demand),
            read_table(policies),
            out,
            warmup=warmup,
            demand_source=str(demand),
            policy_source=str(policies),
            tracking_uri=tracking_uri,
        )
    except (InputFileError, ValueError, TypeError) as exc:
        typer.echo(f"ERROR {exc}", err=True)
        raise typer.Exit(1) from exc
    t = result.total.iloc[0]
    reasons = result.excluded["reason"].str.replace(r" in \d+ of \d+ periods", "", regex=True).value_counts()
    typer.echo(
        f"{len(result.kpis)} item(s) simulated; {len(result.excluded)} series excluded (excluded.csv): "
        + (", ".join(f"{n} {r}" for r, n in reasons.items()) or "none")
    )
    typer.echo(
        f"CSL {t['csl']:.3f}  fill rate {t['fill_rate']:.3f}  avg on-hand {t['avg_on_hand']:.1f}  "
        f"total cost {t['cost_total']:.2f}"
    )
    typer.echo(f"outputs in {out} (MLflow run {result.run_id})")
