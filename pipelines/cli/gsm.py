"""`stockwise gsm`: the command; the computation is in :mod:`pipelines.flows.gsm`."""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path

import typer

from optimization import GSMConfig, GSMMethod, GSMTimeLimitError, NetworkError
from pipelines.flows.gsm import (
    check_out_path,
    demand_from_series,
    load_network,
    log_gsm_run,
    run_gsm,
    write_stage_results,
)

METHODS = " | ".join(m.value for m in GSMMethod)


def gsm_command(
    willems: Path = typer.Option(None, "--willems", help="Willems (2008) chain CSV (willems_NN.csv)."),
    stages: Path = typer.Option(None, "--stages", help="Stockwise stages.csv."),
    edges: Path = typer.Option(None, "--edges", help="Stockwise edges.csv."),
    demand: Path = typer.Option(
        None,
        "--demand",
        help="Demand history (unique_id, ds, y): fills demand_mean/std "
        "of demand stages that lack them (e.g. the demo's demand.csv).",
    ),
    holding_rate: float = typer.Option(0.35, "--holding-rate", help="Willems: holding cost = rate x cumulative cost."),
    safety_factor: float = typer.Option(None, "--safety-factor", help="z for demand stages without one."),
    method: str = typer.Option("auto", "--method", help=METHODS + "."),
    time_limit: float = typer.Option(
        600.0, "--time-limit", help="MILP seconds before returning the best found (an error if none was found)."
    ),
    workers: int = typer.Option(
        None,
        "--workers",
        help="Processes for the branch-and-bound of general networks (default: the machine's cores; 1 = serial). "
        "The answer does not depend on it.",
    ),
    out: Path = typer.Option(None, "--out", help="Per-stage results (.csv or .json)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    require_optimal: bool = typer.Option(False, "--require-optimal", help="Exit 1 unless proven optimal."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the run to MLflow."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store, e.g. sqlite:///mlruns/mlflow.db"),
) -> None:
    """Optimal safety-stock placement in a multi-echelon network (Guaranteed Service Model)."""
    try:
        check_out_path(out)
        network = load_network(willems, stages, edges, holding_rate)
        if demand is not None:
            network = demand_from_series(network, demand)
        config = GSMConfig(
            method=method, time_limit=time_limit, workers=(os.cpu_count() or 1) if workers is None else workers
        )
        result = run_gsm(network, config, safety_factor)
    except (NetworkError, ValueError, GSMTimeLimitError) as exc:
        hint = (
            "; pass --demand demand.csv (and --safety-factor) to take them from the demand history"
            if "lack demand_mean" in str(exc) and demand is None
            else ""
        )
        typer.echo(f"error: {type(exc).__name__}: {exc}{hint}", err=True)
        raise typer.Exit(code=1) from None
    summary = {**result.summary(), "n_edges": network.n_edges, "out": str(out) if out else None}
    if out is not None:
        write_stage_results(result, out)
    if track:
        params = {
            "source": str(willems or stages),
            "holding_rate": holding_rate,
            "safety_factor": safety_factor,
            "time_limit": time_limit,
            "workers": config.workers,
            "demand": str(demand) if demand else None,
        }
        summary["run_id"] = log_gsm_run(result, network, params, tracking_uri)
    if as_json:
        sys.stdout.write(json.dumps(summary, allow_nan=False) + "\n")
    else:
        typer.echo(
            f"GSM {summary['method']}: total cost {summary['total_cost']:,.2f} over {summary['n_stages']} stages "
            f"({summary['n_stocking_stages']} hold stock), optimal={summary['optimal']}, "
            f"gap={summary['gap']:.2e}, bound {summary['bound']:,.2f}, {summary['solve_seconds']:.2f}s"
            + (f"; per-stage results in {out}" if out else "")
        )
    if require_optimal and not result.optimal:
        raise typer.Exit(code=1)
