"""``stockwise gsm``: optimal multi-echelon safety-stock placement (Guaranteed Service Model).

Input is either one Willems (2008) chain (``--willems FILE``) or the Stockwise
network pair (``--stages stages.csv --edges edges.csv``); demand stages without
demand_mean/demand_std take them from their series in ``--demand`` (e.g. the
demo's ``demand.csv``). The command prints a summary (one JSON object with
``--json``: total_cost, n_stages, n_edges, solve_seconds, optimal, gap, bound,
method, out) and writes the per-stage results (stage_id, service_time,
inbound_service_time, net_replenishment_time, safety_stock, base_stock,
holding_cost, binding flags) to ``--out`` (``.csv``, or JSON records for ``.json``).

Each invocation is an MLflow run ``gsm`` (``--no-track`` to skip): parameters,
the totals as metrics and the per-stage table as the ``gsm_stages.csv`` artifact.

Exit codes: 0 ok, 1 invalid input or not proven optimal with ``--require-optimal``.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from forecasting.panel import validate_demand
from optimization import (
    GSMConfig,
    GSMResult,
    Network,
    NormalDemandBound,
    solve_gsm,
)
from pipelines.data.io import atomic_path, read_table, write_text_atomic
from pipelines.data.network_io import (
    NetworkFileError,
    read_stockwise_network,
    read_willems_chain,
)
from pipelines.registry.tracking import start_run

__all__ = [
    "OUT_SUFFIXES",
    "check_out_path",
    "demand_from_series",
    "load_network",
    "log_gsm_run",
    "run_gsm",
    "write_stage_results",
]

OUT_SUFFIXES = (".csv", ".json")


def load_network(willems: Path | None, stages: Path | None, edges: Path | None, holding_rate: float) -> Network:
    """Read the network named by exactly one of ``willems`` or ``stages``+``edges``."""
    if willems is not None and (stages is not None or edges is not None):
        raise ValueError("give either --willems FILE or --stages/--edges, not both")
    if willems is not None:
        return read_willems_chain(willems, holding_rate=holding_rate)
    if stages is None or edges is None:
        raise ValueError("give --willems FILE, or both --stages stages.csv and --edges edges.csv")
    return read_stockwise_network(stages, edges)


def check_out_path(path: Path | None) -> None:
    """Refuse an output name whose format we would not write (``x.txt`` used to get CSV silently)."""
    if path is not None and path.suffix.lower() not in OUT_SUFFIXES:
        raise ValueError(f"--out {path}: unknown format {path.suffix or '(none)'!r}; name it .csv or .json")


def demand_from_series(network: Network, demand_path: Path) -> Network:
    """Fill demand_mean / demand_std of linked demand stages from their history in ``demand_path``.

    Per period mean and standard deviation of ``y`` over each series (the
    ``unique_id`` of the stage); values already on a stage are kept. The panel
    goes through the one demand validator; excluded rows are not used.

    Raises
    ------
    NetworkFileError
        A demand stage's ``unique_id`` has no usable series (ids named).
    """
    clean, report = validate_demand(read_table(demand_path), source=str(demand_path), min_length=2)
    stats = clean.groupby("unique_id")["y"].agg(["mean", "std"])
    need = [s for s in network.stages if s.unique_id is not None and (s.demand_mean is None or s.demand_std is None)]
    missing = [s.stage_id for s in need if s.unique_id not in stats.index]
    if missing:
        raise NetworkFileError(
            f"{demand_path}: no usable series (>= 2 periods) for demand stages {missing[:10]}"
            f"{f' ({len(missing)} in all)' if len(missing) > 10 else ''}; "
            f"{report.n_excluded_rows} rows were excluded -- run `stockwise validate` on the file to see why"
        )
    filled = {}
    for s in need:
        mean, std = stats.at[s.unique_id, "mean"], stats.at[s.unique_id, "std"]
        filled[s.stage_id] = replace(
            s,
            demand_mean=float(mean) if s.demand_mean is None else s.demand_mean,
            demand_std=float(np.nan_to_num(std)) if s.demand_std is None else s.demand_std,
        )
    return Network([filled.get(s.stage_id, s) for s in network.stages], network.edges)


def run_gsm(network: Network, config: GSMConfig, safety_factor: float | None = None) -> GSMResult:
    """Solve the GSM with the normal demand bound (``safety_factor`` fills stages without z)."""
    return solve_gsm(network, NormalDemandBound(network, safety_factor=safety_factor), config)


def write_stage_results(result: GSMResult, path: Path) -> Path:
    """Write per-stage results atomically (CSV, or JSON records for ``*.json``)."""
    check_out_path(path)
    frame = result.to_frame()
    if path.suffix.lower() == ".json":
        return write_text_atomic(frame.to_json(orient="records", indent=1), path)
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False)
    return path


def log_gsm_run(result: GSMResult, network: Network, params: dict, tracking_uri: str | None) -> str:
    """One MLflow run ``gsm``: parameters, totals as metrics, per-stage table as artifact; returns the run id."""
    frame = result.to_frame()
    summary = result.summary()
    with start_run("gsm", tracking_uri=tracking_uri) as run:
        run.log_params(
            {**params, "n_stages": network.n_stages, "n_edges": network.n_edges, "method": summary["method"]}
        )
        run.log_fingerprints({"gsm_stages": frame})
        run.log_metrics(
            {
                k: float(summary[k])
                for k in ("total_cost", "solve_seconds", "gap", "bound", "n_stocking_stages", "total_safety_stock")
                if summary[k] is not None
            }
            | {"optimal": float(summary["optimal"])}
        )
        run.log_table(frame, "gsm_stages.csv")
        return run.run_id
