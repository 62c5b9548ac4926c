"""`stockwise compare`: the command; the computation is in :mod:`pipelines.flows.compare`."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import typer

from pipelines.flows.compare import compare_runs


def compare_command(
    config: list[Path] = typer.Option(..., "--config", help="a scenario config; give exactly two"),
    label: list[str] = typer.Option(None, "--label", help="scenario names, in config order"),
    out: Path = typer.Option(Path("runs"), help="parent folder of the comparison"),
) -> None:
    """Plan two scenarios and compare working capital, service and cost side by side."""
    from pipelines.cli.console import make_console

    console = make_console()
    try:
        folder = compare_runs(config, out, label or None, progress=lambda m: console.print(f"[cyan]{m}[/]"))
    except ValueError as exc:
        console.print(f"[bold red]ERROR[/] {exc}", soft_wrap=True)
        raise typer.Exit(1) from exc
    from rich.table import Table

    frame = pd.read_csv(folder / "comparison.csv")
    shown = Table(*frame.columns)
    for row in frame.itertuples(index=False):
        *values, pct = row[1:]
        shown.add_row(
            row[0],
            *(f"{v:,.3f}" if abs(v) < 10 and not float(v).is_integer() else f"{v:,.0f}" for v in values),
            f"{pct:+.1f}%",
        )
    console.print(shown)
    console.print(f"comparison written to {folder}")
