"""``stockwise gsm``: optimal multi-echelon safety-stock placement (Guaranteed Service Model).

Input is either one Willems (2008) chain (``--willems FILE``) or the Stockwise
network pair (``--stages stages.csv --edges edges.csv``). The command prints a
summary (one JSON object with ``--json``: total_cost, n_stages, n_edges,
solve_seconds, optimal, gap, method, out) and writes the per-stage results
(stage_id, service_time, inbound_service_time, net_replenishment_time,
safety_stock, base_stock, holding_cost, binding flags) to ``--out`` (CSV, or
JSON records when the name ends in ``.json``).

Each invocation is an MLflow run ``gsm`` (``--no-track`` to skip): parameters,
the totals as metrics and the per-stage table as the ``gsm_stages.csv`` artifact.

Exit codes: 0 ok, 1 invalid input or not proven optimal with ``--require-optimal``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import typer

from optimization import (
    GSMConfig,
    GSMResult,
    Network,
    NetworkError,
    NormalDemandBound,
    TabulatedSafetyStock,
    bom_multipliers,
    solve_gsm,
)
from pipelines.network_io import read_stockwise_network, read_willems_chain
from pipelines.tracking import start_run

__all__ = [
    "error_model_buffers", "forecast_error_buffers", "gsm_command", "load_network", "log_gsm_run", "run_gsm", "stage_demand",
    "write_stage_results",
]


def load_network(
    willems: Path | None, stages: Path | None, edges: Path | None, holding_rate: float
) -> Network:
    """Read the network named by exactly one of ``willems`` or ``stages``+``edges``."""
    if willems is not None and (stages is not None or edges is not None):
        raise ValueError("give either --willems FILE or --stages/--edges, not both")
    if willems is not None:
        return read_willems_chain(willems, holding_rate=holding_rate)
    if stages is None or edges is None:
        raise ValueError("give --willems FILE, or both --stages stages.csv and --edges edges.csv")
    return read_stockwise_network(stages, edges)


def run_gsm(network: Network, config: GSMConfig, safety_factor: float | None = None) -> GSMResult:
    """Solve the GSM with the normal demand bound (``safety_factor`` fills stages without z)."""
    return solve_gsm(network, NormalDemandBound(network, safety_factor=safety_factor), config)


def stage_demand(network: Network, demand: pd.DataFrame) -> pd.DataFrame:
    """Demand each stage sees, long format with ``unique_id`` = stage id.

    Stage j's series is sum_k Phi_jk y_k over the demand stages k it serves
    (matched on the stages' ``unique_id``), so backtesting these series gives
    internal stages the errors of their *aggregated* demand, correlation included.

    Raises
    ------
    ValueError
        No demand stage of the network has a series in ``demand``.
    """
    wide = demand.pivot_table(index="ds", columns="unique_id", values="y", aggfunc="sum").sort_index()
    cols = [uid if uid in wide.columns else None for uid in network.unique_ids]
    if not any(c is not None for c in cols):
        raise ValueError("no stage unique_id appears in demand['unique_id']; link stages to demand series")
    external = np.column_stack([wide[c].to_numpy() if c is not None else np.zeros(len(wide)) for c in cols])
    seen = np.nan_to_num(external) @ bom_multipliers(network).T.toarray()
    out = pd.DataFrame(seen, index=wide.index, columns=list(network.stage_ids))
    out = out.loc[:, np.abs(out).sum(axis=0) > 0]
    return out.reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")[["unique_id", "ds", "y"]]


def error_model_buffers(
    network: Network, error_model, target: float, max_tau: int, model: str | None = None,
    demand_mean: np.ndarray | None = None,
) -> TabulatedSafetyStock:
    """Safety stock over tau = 0..max_tau from a fitted ``forecasting.ErrorModel``.

    ``error_model`` must be fitted on backtests of :func:`stage_demand` (ids =
    stage ids, horizon >= ``max_tau``); stage j's buffer for tau periods is
    max(0, p-quantile of its cumulative forecast error over tau). Stages
    without a fitted series (no demand) get zero.
    """
    fitted = set(np.asarray(getattr(error_model, "ids_", [])).tolist())
    taus = np.arange(max_tau + 1, dtype=float)
    table = np.zeros((network.n_stages, max_tau + 1))
    for j, sid in enumerate(network.stage_ids):
        if fitted and sid not in fitted:
            continue
        q = error_model.quantile(np.repeat(sid, max_tau), taus[1:], target, model=model)
        table[j, 1:] = np.maximum.accumulate(np.maximum(np.asarray(q, dtype=float), 0.0))
    mean = np.zeros(network.n_stages) if demand_mean is None else np.asarray(demand_mean, dtype=float)
    return TabulatedSafetyStock(taus, table, mean)


def forecast_error_buffers(network: Network, demand: pd.DataFrame, target: float, freq: str = "W-MON",
                           n_windows: int = 26, model: str = "WindowAverage") -> TabulatedSafetyStock:
    """Buffers from the forecasting layer for every stage of ``network``.

    Every stage's aggregated demand (:func:`stage_demand`) is backtested with
    ``model`` over ``n_windows`` rolling origins up to the longest inbound time,
    an ``ErrorModel`` is fitted on those errors and its ``target`` quantile over
    tau is the stage's buffer; base-stock levels use each stage's recent demand rate.
    """
    from forecasting import ErrorModel, ForecastConfig, Forecaster

    series = stage_demand(network, demand)
    max_tau = max(int(np.ceil(network.longest_inbound_time().max())), 1)
    periods = series["ds"].nunique()
    n_windows = max(2, min(n_windows, periods - max_tau - 2))
    forecaster = Forecaster(ForecastConfig(models=(model,), freq=freq, n_jobs=1))
    cv = forecaster.cross_validation(series, h=max_tau, n_windows=n_windows, step=1)
    em = ErrorModel().fit(cv, history=series)
    last = sorted(series["ds"].unique())[-13:]
    rate = series[series["ds"].isin(last)].groupby("unique_id")["y"].mean()
    return error_model_buffers(network, em, target, max_tau, model=model,
                               demand_mean=rate.reindex(list(network.stage_ids)).fillna(0.0).to_numpy())


def write_stage_results(result: GSMResult, path: Path) -> Path:
    """Write per-stage results atomically (CSV, or JSON records for ``*.json``)."""
    frame = result.to_frame()
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=path.suffix)
    os.close(fd)
    try:
        if path.suffix.lower() == ".json":
            frame.to_json(tmp, orient="records", indent=1)
        else:
            frame.to_csv(tmp, index=False)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def log_gsm_run(result: GSMResult, network: Network, params: dict, tracking_uri: str | None) -> str:
    """One MLflow run ``gsm``: parameters, totals as metrics, per-stage table as artifact; returns the run id."""
    frame = result.to_frame()
    summary = result.summary()
    with start_run("gsm", tracking_uri=tracking_uri) as run:
        run.log_params({**params, "n_stages": network.n_stages, "n_edges": network.n_edges,
                        "method": summary["method"]})
        run.log_fingerprints({"gsm_stages": frame})
        run.log_metrics({k: float(summary[k]) for k in
                         ("total_cost", "solve_seconds", "gap", "n_stocking_stages", "total_safety_stock")}
                        | {"optimal": float(summary["optimal"])})
        run.log_table(frame, "gsm_stages.csv")
        return run.run_id


def gsm_command(
    willems: Path = typer.Option(None, "--willems", help="Willems (2008) chain CSV (willems_NN.csv)."),
    stages: Path = typer.Option(None, "--stages", help="Stockwise stages.csv."),
    edges: Path = typer.Option(None, "--edges", help="Stockwise edges.csv."),
    holding_rate: float = typer.Option(0.35, "--holding-rate", help="Willems: holding cost = rate x cumulative cost."),
    safety_factor: float = typer.Option(None, "--safety-factor", help="z for demand stages without one."),
    method: str = typer.Option("auto", "--method", help="auto | tree_dp | milp."),
    time_limit: float = typer.Option(600.0, "--time-limit", help="MILP seconds before returning the best found."),
    out: Path = typer.Option(None, "--out", help="Per-stage results (.csv or .json)."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object."),
    require_optimal: bool = typer.Option(False, "--require-optimal", help="Exit 1 unless proven optimal."),
    track: bool = typer.Option(True, "--track/--no-track", help="Log the run to MLflow."),
    tracking_uri: str = typer.Option(None, "--tracking-uri", help="MLflow store, e.g. sqlite:///mlruns/mlflow.db"),
) -> None:
    """Optimal safety-stock placement in a multi-echelon network (Guaranteed Service Model)."""
    try:
        network = load_network(willems, stages, edges, holding_rate)
        result = run_gsm(network, GSMConfig(method=method, time_limit=time_limit), safety_factor)
    except (NetworkError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(code=1) from None
    summary = {**result.summary(), "n_edges": network.n_edges, "out": str(out) if out else None}
    if out is not None:
        write_stage_results(result, out)
    if track:
        params = {"source": str(willems or stages), "holding_rate": holding_rate, "safety_factor": safety_factor,
                  "time_limit": time_limit}
        summary["run_id"] = log_gsm_run(result, network, params, tracking_uri)
    if as_json:
        sys.stdout.write(json.dumps(summary) + "\n")
    else:
        typer.echo(
            f"GSM {summary['method']}: total cost {summary['total_cost']:,.2f} over {summary['n_stages']} stages "
            f"({summary['n_stocking_stages']} hold stock), optimal={summary['optimal']}, "
            f"gap={summary['gap']:.2e}, {summary['solve_seconds']:.2f}s"
            + (f"; per-stage results in {out}" if out else "")
        )
    if require_optimal and not result.optimal:
        raise typer.Exit(code=1)
