"""``stockwise simulate``: replay a policy table on a demand file and write KPIs.

Inputs
------
- demand (CSV/Parquet, long format): ``unique_id, ds, y``; one regular grid of
  periods; no gaps or NaN inside a simulated series.
- policies (CSV/Parquet), one row per ``unique_id``:

  ======================  ========  =====================================================
  column                  required  meaning
  ======================  ========  =====================================================
  ``unique_id``           yes       item; must appear in the demand file
  ``policy_type``         yes       ``s_Q``, ``R_S``, ``R_s_S``, ``base_stock``, ``no_stock``
  ``lead_time``           yes       whole periods >= 0
  ``review_period``       no (1)    R
  ``reorder_level``       s_Q, R_s_S  s
  ``order_up_to``         R_S, R_s_S, base_stock  S
  ``order_quantity``      s_Q       Q
  ``moq``, ``order_multiple``, ``lost_sales``, ``shelf_life``, ``on_hand``   optional
  ``unit_cost``, ``order_cost``, ``holding_cost``, ``shortage_cost``,
  ``backorder_cost``, ``expiry_cost``                                         optional (0)
  ======================  ========  =====================================================

Outputs (written atomically: temp file + ``os.replace``)
--------------------------------------------------------
- ``DIR/kpis.csv``: one row per unique_id: ``unique_id, policy_type, csl, fill_rate,
  ready_rate, avg_on_hand, avg_backorder, avg_lost_sales, n_orders, demand, cost_*``;
- ``DIR/kpis_total.csv``: one row, sums of units and costs, demand-weighted fill rate,
  mean CSL;
- ``DIR/excluded.csv``: series not simulated, with the reason: no policy row, or
  demand missing/NaN in some periods of the common grid (e.g. items launched late).

Each invocation is one MLflow run ``simulate`` (through :mod:`pipelines.registry.tracking`).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.panel import MAX_DEMAND
from optimization import CostParams, InitialState, ItemValueError, mixed_policies, simulate
from pipelines.data.io import write_table_atomic
from pipelines.registry.tracking import start_run

__all__ = ["SimulationOutput", "run_simulation", "pivot_demand", "kpi_table"]

COST_COLUMNS = ["unit_cost", "order_cost", "holding_cost", "shortage_cost", "backorder_cost", "expiry_cost"]
KPI_COLUMNS = ["csl", "fill_rate", "ready_rate", "avg_on_hand", "avg_backorder", "avg_lost_sales", "n_orders", "demand"]
RESULT_COSTS = ["cost_purchasing", "cost_ordering", "cost_holding", "cost_shortage", "cost_expiration"]
_REQUIRED = ["unique_id", "policy_type", "lead_time"]
_NUMERIC_DEFAULTS = {
    "review_period": 1,
    "reorder_level": 0.0,
    "order_up_to": 0.0,
    "order_quantity": 0.0,
    "moq": 0.0,
    "order_multiple": 0.0,
    "shelf_life": 0,
    **{c: 0.0 for c in COST_COLUMNS},
}


@dataclass(frozen=True)
class SimulationOutput:
    """What ``run_simulation`` produced."""

    kpis: pd.DataFrame
    total: pd.DataFrame
    excluded: pd.DataFrame
    out_dir: Path
    run_id: str


def _fail(source: str, column: str, rows: pd.Series | pd.Index, message: str, ids=None) -> None:
    shown = [str(r) for r in list(rows)[:5]]
    named = f" (unique_id {[str(i) for i in list(ids)[:5]]})" if ids is not None else ""
    raise ValueError(f"{source}: column {column!r}, rows {shown}{named}: {message}")


def _fail_items(source: str, table: pd.DataFrame, exc: ItemValueError) -> None:
    """An invalid policy parameter from the library, with the file, line and unique_id."""
    lines = [int(table.index[p % len(table)]) for p in exc.positions[:5]]
    ids = [str(table["unique_id"].iloc[p % len(table)]) for p in exc.positions[:5]]
    raise ValueError(
        f"{source}: {exc.what} at rows {lines} (unique_id {ids}, got {', '.join(map(str, exc.values[:5]))}); {exc.fix}"
    ) from None


#: a recommendations table (pipelines.report.schema) is a valid policy table under these names
_SCHEMA_NAMES = {"policy": "policy_type", "reorder_point": "reorder_level"}


def _check_policies(table: pd.DataFrame, source: str) -> pd.DataFrame:
    """Validate the policy table; return it with defaults filled (rows labelled from 2 = CSV line)."""
    table = table.rename(
        columns={k: v for k, v in _SCHEMA_NAMES.items() if k in table.columns and v not in table.columns}
    )
    missing = [c for c in _REQUIRED if c not in table.columns]
    if missing:
        raise ValueError(f"{source}: missing column(s) {missing}; required are {_REQUIRED}")
    table = table.copy()
    table.index = pd.RangeIndex(2, len(table) + 2, name="line")
    dup = table["unique_id"].duplicated(keep=False)
    if dup.any():
        _fail(
            source,
            "unique_id",
            table.index[dup],
            f"duplicate ids {sorted(set(table.loc[dup, 'unique_id']))[:5]}; keep one policy row per unique_id",
        )
    for col, default in _NUMERIC_DEFAULTS.items():
        if col not in table.columns:
            table[col] = default
        values = pd.to_numeric(table[col].fillna(default), errors="coerce")
        bad = values.isna() | (values < 0) | ~np.isfinite(values)
        if bad.any():
            _fail(source, col, table.index[bad], "must be a finite number >= 0", table.loc[bad, "unique_id"])
        table[col] = values
    lead = pd.to_numeric(table["lead_time"], errors="coerce")
    bad = lead.isna() | (lead < 0) | (lead % 1 != 0) | ~np.isfinite(lead)
    if bad.any():
        _fail(
            source, "lead_time", table.index[bad], "must be a whole number of periods >= 0", table.loc[bad, "unique_id"]
        )
    table["lead_time"] = lead.astype(int)
    for col in ("review_period", "shelf_life"):
        bad = table[col] % 1 != 0
        if bad.any():
            _fail(source, col, table.index[bad], "must be a whole number of periods", table.loc[bad, "unique_id"])
    table["lost_sales"] = _as_bool(table.get("lost_sales", pd.Series(False, index=table.index)), source)
    return table


def _as_bool(column: pd.Series, source: str) -> pd.Series:
    mapping = {
        "true": True,
        "false": False,
        "1": True,
        "0": False,
        "yes": True,
        "no": False,
        "": False,
        "nan": False,
        "<na>": False,
        "1.0": True,
        "0.0": False,
    }
    text = column.astype(str).str.strip().str.lower()
    bad = ~text.isin(mapping)
    if bad.any():
        _fail(source, "lost_sales", column.index[bad], "use true/false")
    return text.map(mapping).astype(bool)


def pivot_demand(demand: pd.DataFrame, items: list[str], source: str = "demand") -> pd.DataFrame:
    """Wide demand (one row per item of ``items``, one column per period of their common grid).

    Periods a series lacks (or has as NaN) stay NaN; :func:`run_simulation` excludes such
    series and reports them.

    Raises
    ------
    ValueError
        Missing columns, unknown items, duplicate (unique_id, ds) rows, negative values.
    """
    missing = {"unique_id", "ds", "y"} - set(demand.columns)
    if missing:
        raise ValueError(f"{source}: missing column(s) {sorted(missing)}; expected unique_id, ds, y")
    known = set(demand["unique_id"].astype(str))
    absent = [i for i in items if i not in known]
    if absent:
        raise ValueError(f"{source}: no demand for unique_id {absent[:5]} listed in the policy table")
    sub = demand[demand["unique_id"].astype(str).isin(items)]
    y = pd.to_numeric(sub["y"], errors="coerce")
    bad = (y.isna() & sub["y"].notna()) | np.isinf(y) | (y > MAX_DEMAND)
    if bad.any():
        _fail(
            source,
            "y",
            (sub.index[bad] + 2),
            f"not a finite number of units (at most {MAX_DEMAND:.0e}): {sub.loc[bad, 'y'].astype(str).tolist()[:5]}",
            sub.loc[bad, "unique_id"],
        )
    sub = sub.assign(y=y)
    if sub.duplicated(["unique_id", "ds"]).any():
        _raise_duplicates(sub, source)
    wide = sub.pivot(index="unique_id", columns="ds", values="y")
    wide.index = wide.index.astype(str)
    wide = wide.reindex(items)
    neg = (wide < 0).any(axis=1)
    if neg.any():
        raise ValueError(f"{source}: column 'y' negative for unique_id {wide.index[neg].tolist()[:5]}")
    return wide


def _raise_duplicates(sub: pd.DataFrame, source: str) -> None:
    dup = sub[sub.duplicated(["unique_id", "ds"], keep=False)]
    examples = dup[["unique_id", "ds"]].head(3).values.tolist()
    raise ValueError(f"{source}: duplicate (unique_id, ds) rows, e.g. {examples}; keep one row per series and period")


def kpi_table(unique_id, policy_type, result) -> pd.DataFrame:
    """Per-item KPI frame from a :class:`optimization.SimulationResult` (1-D batch)."""
    frame = pd.DataFrame({"unique_id": list(unique_id), "policy_type": list(policy_type)})
    for col in KPI_COLUMNS + RESULT_COSTS:
        frame[col] = getattr(result, col)
    frame["cost_total"] = result.cost_total
    return frame


def _total(kpis: pd.DataFrame) -> pd.DataFrame:
    served = (kpis["fill_rate"].fillna(1.0) * kpis["demand"]).sum()
    demand = kpis["demand"].sum()
    row = {
        "unique_id": "TOTAL",
        "n_items": len(kpis),
        "csl": kpis["csl"].mean(),
        "fill_rate": served / demand if demand > 0 else np.nan,
        "ready_rate": kpis["ready_rate"].mean(),
    }
    for col in ["avg_on_hand", "avg_backorder", "avg_lost_sales", "n_orders", "demand", *RESULT_COSTS, "cost_total"]:
        row[col] = kpis[col].sum()
    return pd.DataFrame([row])


def run_simulation(
    demand: pd.DataFrame,
    policies: pd.DataFrame,
    out: str | Path,
    *,
    warmup: int = 0,
    demand_source: str = "demand",
    policy_source: str = "policies",
    tracking_uri: str | None = None,
) -> SimulationOutput:
    """Simulate every row of the policy table on its demand series; write the KPI files.

    Parameters
    ----------
    demand, policies : DataFrames as described in the module docstring
    out : output folder (created)
    warmup : periods excluded from KPIs and costs
    demand_source, policy_source : names used in error messages (file names)
    tracking_uri : MLflow store (default from :mod:`pipelines.registry.tracking`); one run ``simulate``
        with the input fingerprints, total KPIs as metrics and the three CSVs as artifacts.

    Returns
    -------
    SimulationOutput

    Raises
    ------
    ValueError
        Invalid table, naming the file, column and rows (CSV line numbers).
    """
    table = _check_policies(policies, policy_source)
    wide = pivot_demand(demand, table["unique_id"].astype(str).tolist(), demand_source)
    n_missing = wide.isna().sum(axis=1)
    incomplete = pd.DataFrame(
        {
            "unique_id": wide.index[n_missing > 0],
            "reason": [f"demand missing or NaN in {k} of {wide.shape[1]} periods" for k in n_missing[n_missing > 0]],
        }
    )
    table = table[(n_missing == 0).to_numpy()]
    if table.empty:
        raise ValueError(
            f"{demand_source}: every series in the policy table has missing or NaN periods on the "
            f"common grid {wide.columns.min()} .. {wide.columns.max()}; fill them (0 for no demand) "
            "or trim the file"
        )
    items = table["unique_id"].astype(str).tolist()
    matrix = wide.loc[items].to_numpy(float)
    try:
        policy = mixed_policies(
            table["policy_type"].astype(str).to_numpy(),
            review_period=table["review_period"].astype(int),
            reorder_level=table["reorder_level"],
            order_up_to=table["order_up_to"],
            order_quantity=table["order_quantity"],
            moq=table["moq"],
            order_multiple=table["order_multiple"],
            lost_sales=table["lost_sales"].to_numpy(),
        )
        costs = CostParams(**{c: table[c].to_numpy(float) for c in COST_COLUMNS})
        initial = None
        if "on_hand" in policies.columns:
            on_hand = pd.to_numeric(table["on_hand"], errors="coerce")
            default = np.where(
                policy.is_fixed_quantity, policy.reorder_level + policy.order_quantity, policy.order_up_to
            )
            initial = InitialState(on_hand=np.where(on_hand.isna(), np.maximum(default, 0), on_hand))
        result = simulate(
            matrix,
            policy,
            table["lead_time"].to_numpy(),
            costs=costs,
            initial=initial,
            shelf_life=table["shelf_life"].astype(int).to_numpy(),
            warmup=warmup,
        )
    except ItemValueError as exc:
        _fail_items(policy_source, table, exc)
    kpis = kpi_table(items, table["policy_type"].astype(str), result)
    all_ids = pd.Series(demand["unique_id"].astype(str).unique())
    no_policy = pd.DataFrame({"unique_id": all_ids[~all_ids.isin(wide.index)], "reason": "no row in the policy table"})
    excluded = pd.concat([incomplete, no_policy], ignore_index=True)
    out = Path(out)
    total = _total(kpis)
    paths = [
        write_table_atomic(kpis, out / "kpis.csv"),
        write_table_atomic(total, out / "kpis_total.csv"),
        write_table_atomic(excluded, out / "excluded.csv"),
    ]
    with start_run("simulate", tracking_uri=tracking_uri) as run:
        run.log_params(
            {
                "warmup": warmup,
                "n_items": len(kpis),
                "n_excluded": len(excluded),
                "n_periods": matrix.shape[1],
                "demand_source": demand_source,
                "policy_source": policy_source,
            }
        )
        run.log_fingerprints({"demand": demand, "policies": policies})
        run.log_metrics({f"total.{k}": v for k, v in total.iloc[0].items() if k != "unique_id"})
        for path in paths:
            run.log_artifact(path)
        run_id = run.run_id
    return SimulationOutput(kpis=kpis, total=total, excluded=excluded, out_dir=out, run_id=run_id)
