"""``stockwise validate``: check a data folder or a demand file, print the report."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console

from forecasting.panel import DataValidationError, ValidationReport
from pipelines.cli.console import make_console
from pipelines.data.io import InputFileError, write_table_atomic
from pipelines.data.validation import validate_path

__all__ = ["validate_command"]

_STYLE = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def _print(report: ValidationReport, console: Console) -> None:
    if not report.issues:
        console.print("[green]OK[/green]: no problems found")
        return
    for issue in report.issues:
        console.print(
            f"[{_STYLE[issue.severity]}]{issue.severity.upper():7s}[/] {issue.check} "
            f"({issue.source}{', ' + issue.column if issue.column else ''}): {issue.message}",
            soft_wrap=True,
        )
    console.print(
        f"{len(report.errors)} error(s), {len(report.warnings)} warning(s), "
        f"{report.n_excluded_rows} row(s)/series excluded"
    )


def validate_command(
    path: Path = typer.Argument(..., help="data folder (demand, items[, stages, edges]) or a demand file"),
    items: Path = typer.Option(None, help="item master to cross-check a demand file against"),
    freq: str = typer.Option(None, help="period frequency, e.g. W-MON, D, MS (inferred if omitted)"),
    min_length: int = typer.Option(8, min=0, help="series with fewer periods are reported as too short"),
    fill_gaps: bool = typer.Option(False, help="zero-fill missing periods instead of excluding"),
    report: Path = typer.Option(None, help="also write the findings to this CSV file"),
) -> None:
    """Validate input data; exit 0 when there is no error, 1 otherwise."""
    console = make_console()
    try:
        result = validate_path(path, items, freq, min_length, fill_gaps)
    except (InputFileError, DataValidationError) as exc:
        result = exc.report if isinstance(exc, DataValidationError) else None
        if result is None:
            console.print(f"[bold red]ERROR[/] {exc}", soft_wrap=True)
            raise typer.Exit(1) from exc
    _print(result, console)
    if report is not None:
        write_table_atomic(result.to_frame(), report)
        console.print(f"report written to {report}")
    raise typer.Exit(0 if result.ok else 1)
