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

from pathlib import Path


from optimization import (
    GSMConfig,
    GSMResult,
    Network,
    NormalDemandBound,
    solve_gsm,
)
from pipelines.data.io import atomic_path, write_text_atomic
from pipelines.data.network_io import read_stockwise_network, read_willems_chain
from pipelines.registry.tracking import start_run

__all__ = ["load_network", "log_gsm_run", "run_gsm", "write_stage_results"]


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


def write_stage_results(result: GSMResult, path: Path) -> Path:
    """Write per-stage results atomically (CSV, or JSON records for ``*.json``)."""
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
        run.log_params({**params, "n_stages": network.n_stages, "n_edges": network.n_edges,
                        "method": summary["method"]})
        run.log_fingerprints({"gsm_stages": frame})
        run.log_metrics({k: float(summary[k]) for k in
                         ("total_cost", "solve_seconds", "gap", "n_stocking_stages", "total_safety_stock")}
                        | {"optimal": float(summary["optimal"])})
        run.log_table(frame, "gsm_stages.csv")
        return run.run_id
