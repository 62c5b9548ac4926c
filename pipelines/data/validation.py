"""Validation of a Stockwise data folder: demand, item master, network.

Demand goes through the one panel validator (:func:`forecasting.panel.validate_demand`);
this module adds the item-master checks, the cross-checks between demand and
item master, and the network checks, and gathers everything in one
:class:`~forecasting.panel.ValidationReport`.

A data folder holds ``demand.csv`` (or ``demand.parquet``), ``items.csv`` and,
for multi-echelon runs, ``stages.csv`` and ``edges.csv``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting.panel import DataValidationError, Issue, ValidationReport, validate_demand
from pipelines.data.io import InputFileError, read_table
from policy_selector.economics import REQUIRED_ITEM_COLUMNS

__all__ = [
    "DataSet",
    "load_dataset",
    "validate_path",
    "validate_items",
    "validate_network",
    "cross_check",
    "ITEM_COLUMNS",
]

# The library's contract (what Economics needs) plus the service target every planned item carries here.
ITEM_REQUIRED = (*REQUIRED_ITEM_COLUMNS, "service_target", "service_type")
ITEM_OPTIONAL_DEFAULTS = {
    "shortage_cost": np.nan,
    "lead_time_std": 0.0,
    "moq": 0.0,
    "order_multiple": 1.0,
    "shelf_life": np.nan,
    "lost_sales": False,
    "price": np.nan,
    "on_hand": np.nan,
}
ITEM_COLUMNS = ITEM_REQUIRED + tuple(ITEM_OPTIONAL_DEFAULTS)
_NON_NEGATIVE = (
    "unit_cost",
    "holding_rate",
    "order_cost",
    "shortage_cost",
    "lead_time",
    "lead_time_std",
    "moq",
    "price",
    "on_hand",
)
SERVICE_TYPES = ("csl", "fill_rate")


@dataclass(frozen=True)
class DataSet:
    """Validated inputs of one run; ``network`` is ``None`` without stages/edges."""

    demand: pd.DataFrame
    items: pd.DataFrame
    report: ValidationReport
    freq: str | None  # None when it could not be inferred (an error in the report)
    stages: pd.DataFrame | None = None
    edges: pd.DataFrame | None = None
    files: dict[str, str] | None = None


def _bad_rows(report, mask, items, source, check, column, message) -> None:
    if mask.any():
        rows = tuple(int(r) + 1 for r in np.flatnonzero(mask.to_numpy()))
        labels = items.loc[mask, "unique_id"].fillna("no id").astype(str).tolist()
        shown = ", ".join(f"row {r} ({i})" for r, i in list(zip(rows, labels))[:20])
        ids = tuple(str(i) for i in items.loc[mask, "unique_id"].dropna())
        report.add(
            Issue(
                "error",
                check,
                source,
                f"{message}: {shown}",
                column=column,
                rows=rows,
                series=ids,
                n_excluded=len(rows),
            )
        )


def validate_items(items: pd.DataFrame, source: str = "items") -> tuple[pd.DataFrame, ValidationReport]:
    """Check the item master; return the valid rows (with optional columns filled) and the report.

    Raises
    ------
    DataValidationError
        When required columns are missing (nothing can be checked then).
    """
    report = ValidationReport()
    missing = [c for c in ITEM_REQUIRED if c not in items.columns]
    if missing:
        report.add(
            Issue(
                "error",
                "missing_column",
                source,
                f"missing required column(s) {missing}; the item master needs "
                f"{list(ITEM_REQUIRED)} (see README, data formats)",
                column=",".join(missing),
            )
        )
        raise DataValidationError(report)
    items = items.reset_index(drop=True).copy()
    for col, default in ITEM_OPTIONAL_DEFAULTS.items():
        if col not in items.columns:
            items[col] = default
    items["unique_id"] = items["unique_id"].astype("string").str.strip().replace("", pd.NA)
    bad = items["unique_id"].isna()
    _bad_rows(
        report, bad, items, source, "missing_id", "unique_id", "row has no unique_id; fill it in or remove the row"
    )
    for col in ITEM_COLUMNS:
        if col in ("unique_id", "service_type", "lost_sales"):
            continue
        values = pd.to_numeric(items[col], errors="coerce")
        non_numeric = values.isna() & items[col].notna()
        _bad_rows(report, non_numeric, items, source, "non_numeric", col, f"'{col}' is not a number")
        items[col] = values
        bad |= non_numeric
    for col in _NON_NEGATIVE:
        neg = items[col] < 0
        _bad_rows(report, neg, items, source, f"negative_{col}", col, f"'{col}' must be >= 0")
        bad |= neg
    for col in ("unit_cost", "holding_rate", "service_target", "lead_time", "review_period", "order_cost"):
        nan = items[col].isna() & ~bad
        _bad_rows(report, nan, items, source, "missing_value", col, f"'{col}' is empty")
        bad |= nan
    target = items["service_target"]
    outside = ((target <= 0) | (target >= 1)) & target.notna()
    _bad_rows(
        report,
        outside,
        items,
        source,
        "service_target_range",
        "service_target",
        "service_target must be strictly between 0 and 1 (e.g. 0.95)",
    )
    rp = items["review_period"] <= 0
    _bad_rows(report, rp, items, source, "review_period_range", "review_period", "review_period must be > 0 periods")
    stype = items["service_type"].astype("string").str.strip().str.lower()
    bad_type = ~stype.isin(SERVICE_TYPES)
    _bad_rows(
        report, bad_type, items, source, "service_type", "service_type", f"service_type must be one of {SERVICE_TYPES}"
    )
    items["service_type"] = stype
    dup = items["unique_id"].duplicated(keep="first") & items["unique_id"].notna()
    _bad_rows(report, dup, items, source, "duplicate_item", "unique_id", "unique_id appears twice")
    items["lost_sales"] = items["lost_sales"].fillna(False).astype(str).str.lower().isin(("true", "1", "yes"))
    bad |= outside | rp | bad_type | dup
    return items[~bad].reset_index(drop=True), report


def cross_check(
    demand: pd.DataFrame, items: pd.DataFrame, demand_source: str, items_source: str
) -> tuple[pd.DataFrame, pd.DataFrame, ValidationReport]:
    """Keep series present in both tables; report the ones missing on either side."""
    report = ValidationReport()
    d_ids, i_ids = set(demand["unique_id"]), set(items["unique_id"])
    no_master = sorted(d_ids - i_ids)
    no_demand = sorted(i_ids - d_ids)
    if no_master:
        n = int(demand["unique_id"].isin(no_master).sum())
        report.add(
            Issue(
                "warning",
                "missing_from_item_master",
                demand_source,
                f"{len(no_master)} series have demand but no row in {items_source}: "
                f"{', '.join(no_master[:20])}; excluded ({n} rows). Add them to the item master.",
                series=tuple(no_master),
                n_excluded=n,
            )
        )
    if no_demand:
        report.add(
            Issue(
                "warning",
                "missing_from_demand",
                items_source,
                f"{len(no_demand)} items have no usable demand history: "
                f"{', '.join(no_demand[:20])}; excluded. Check their ids or their demand rows.",
                series=tuple(no_demand),
                n_excluded=len(no_demand),
            )
        )
    keep = d_ids & i_ids
    return (
        demand[demand["unique_id"].isin(keep)].reset_index(drop=True),
        items[items["unique_id"].isin(keep)].reset_index(drop=True),
        report,
    )


def validate_network(
    stages: pd.DataFrame,
    edges: pd.DataFrame,
    demand: pd.DataFrame,
    stages_source: str = "stages",
    edges_source: str = "edges",
) -> ValidationReport:
    """Structural network checks (cycles, unknown stages, negative times or costs,
    customer-facing stages without demand) plus stages linked to series without demand."""
    from optimization.network import NetworkError
    from pipelines.data.network_io import network_from_frames

    report = ValidationReport()
    try:
        network = network_from_frames(stages, edges, stages_source, edges_source)
    except NetworkError as exc:
        report.add(Issue("error", "network", f"{stages_source}/{edges_source}", str(exc)))
        return report
    linked = [u for u in network.unique_ids if u is not None]
    missing = sorted(set(linked) - set(demand["unique_id"]))
    if missing:
        report.add(
            Issue(
                "warning",
                "stage_without_demand_series",
                stages_source,
                f"{len(missing)} customer-facing stages link to series with no usable demand: "
                f"{', '.join(missing[:20])}; they plan with zero demand. Check their unique_id.",
                column="unique_id",
                series=tuple(missing),
            )
        )
    return report


def _find(folder: Path, stem: str) -> Path | None:
    """The one ``stem.csv`` or ``stem.parquet`` of the folder; both at once is ambiguous."""
    found = [folder / f"{stem}{suffix}" for suffix in (".parquet", ".csv") if (folder / f"{stem}{suffix}").is_file()]
    if len(found) > 1:
        raise InputFileError(
            f"{folder}: both {stem}.parquet and {stem}.csv found; it is not clear which one "
            "to use, so remove or rename the other"
        )
    return found[0] if found else None


def load_dataset(folder: str | Path, freq: str | None = None, min_length: int = 8, fill_gaps: bool = False) -> DataSet:
    """Read and validate a data folder (demand, items, optional network).

    Parameters
    ----------
    folder : path
        Holds ``demand.csv|parquet``, ``items.csv|parquet`` and optionally
        ``stages.csv`` + ``edges.csv``.
    freq : str, optional
        Period frequency; inferred from the dates when omitted.
    min_length : int, default 8
        Shorter series are excluded (reported).
    fill_gaps : bool, default False
        Zero-fill missing periods instead of excluding gappy series.

    Returns
    -------
    DataSet
        Clean tables and the full report. The caller decides whether errors stop
        the run (``report.raise_if_errors()``).

    Raises
    ------
    InputFileError
        When the folder or a required file is missing or unreadable.
    """
    folder = Path(folder)
    if not folder.is_dir():
        raise InputFileError(f"{folder}: not a folder; pass a folder with demand.csv and items.csv")
    demand_path, items_path = _find(folder, "demand"), _find(folder, "items")
    for name, path in (("demand", demand_path), ("items", items_path)):
        if path is None:
            raise InputFileError(f"{folder}: no {name}.csv or {name}.parquet found")
    demand, report = validate_demand(
        read_table(demand_path), source=demand_path.name, freq=freq, min_length=min_length, fill_gaps=fill_gaps
    )
    items, item_report = validate_items(read_table(items_path), source=items_path.name)
    report.extend(item_report)
    demand, items, cross = cross_check(demand, items, demand_path.name, items_path.name)
    report.extend(cross)
    if demand.empty and not report.blocking:
        report.add(
            Issue(
                "error",
                "no_data",
                str(folder),
                f"no series is left with both usable demand in {demand_path.name} and a valid row in "
                f"{items_path.name}; fix the findings above (e.g. matching unique_id values)",
            )
        )
    stages_path, edges_path = _find(folder, "stages"), _find(folder, "edges")
    stages = read_table(stages_path) if stages_path else None
    edges = read_table(edges_path) if edges_path else None
    if (stages is None) != (edges is None):
        report.add(
            Issue(
                "error",
                "network_incomplete",
                str(folder),
                "a network needs both stages and edges; add the missing file or remove the other",
            )
        )
    elif stages is not None:
        report.extend(validate_network(stages, edges, demand, stages_path.name, edges_path.name))
    files = {
        k: str(v)
        for k, v in (("demand", demand_path), ("items", items_path), ("stages", stages_path), ("edges", edges_path))
        if v
    }
    return DataSet(
        demand=demand, items=items, report=report, freq=report.freq or freq, stages=stages, edges=edges, files=files
    )


def validate_path(
    path: Path, items: Path | None = None, freq: str | None = None, min_length: int = 8, fill_gaps: bool = False
) -> ValidationReport:
    """Validate a data folder (demand, items, network) or a single demand file."""
    if path.is_dir():
        return load_dataset(path, freq=freq, min_length=min_length, fill_gaps=fill_gaps).report
    try:
        demand, report = validate_demand(
            read_table(path), source=path.name, freq=freq, min_length=min_length, fill_gaps=fill_gaps
        )
    except DataValidationError as exc:
        return exc.report
    if items is not None:
        master, item_report = validate_items(read_table(items), source=items.name)
        report.extend(item_report)
        report.extend(cross_check(demand, master, path.name, items.name)[2])
    return report
