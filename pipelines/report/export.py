"""Exports of the recommendations table for planners: CSV, Parquet and Excel.

Every file is written to a temporary name in the target folder and renamed
into place (:mod:`pipelines.data.io`), so a reader never sees half a file. The Excel
workbook carries the recommendations plus any extra sheets (summary, stranded
stock) and a ``columns`` sheet that explains every column.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import pandas as pd

from pipelines.data.io import atomic_path, write_table_atomic
from pipelines.report.schema import RECOMMENDATION_COLUMNS, conform_recommendations

__all__ = ["export_recommendations", "EXPORT_FORMATS"]

EXPORT_FORMATS = ("csv", "parquet", "xlsx")
_EXCEL_SHEET_MAX = 31


def _write_workbook(sheets: Mapping[str, pd.DataFrame], path: Path) -> Path:
    """One sheet per frame, written atomically (openpyxl)."""
    with atomic_path(path) as tmp:
        with pd.ExcelWriter(tmp, engine="openpyxl") as writer:
            for name, frame in sheets.items():
                frame.to_excel(writer, sheet_name=name[:_EXCEL_SHEET_MAX], index=False)
    return path


def export_recommendations(
    recommendations: pd.DataFrame,
    out_dir: str | Path,
    formats: tuple[str, ...] = EXPORT_FORMATS,
    stem: str = "recommendations",
    items: pd.DataFrame | None = None,
    extra_sheets: Mapping[str, pd.DataFrame] | None = None,
) -> dict[str, Path]:
    """Write the recommendations as ``<stem>.csv``, ``.parquet`` and/or ``.xlsx``.

    Parameters
    ----------
    recommendations : DataFrame
        Table per :mod:`pipelines.report.schema` (conformed: schema columns, in order).
    out_dir : path
        Folder to write into (created if missing).
    formats : tuple of {"csv", "parquet", "xlsx"}, default all three
    stem : str, default "recommendations"
        File name without suffix.
    items : DataFrame, optional
        Unused today except for ``unit_cost``, which is added to the Excel
        ``recommendations`` sheet so planners can re-value stock.
    extra_sheets : mapping of str to DataFrame, optional
        More sheets for the Excel workbook (e.g. summary, stranded stock).

    Returns
    -------
    dict of str to Path
        Format -> written path.

    Raises
    ------
    ValueError
        For an unknown format or a table that breaks the schema.

    Examples
    --------
    >>> export_recommendations(recs, "runs/latest", formats=("csv",))  # doctest: +SKIP
    {'csv': PosixPath('runs/latest/recommendations.csv')}
    """
    unknown = sorted(set(formats) - set(EXPORT_FORMATS))
    if unknown:
        raise ValueError(f"unknown export format(s) {unknown}; use any of {list(EXPORT_FORMATS)}")
    recs = conform_recommendations(recommendations)
    out_dir = Path(out_dir)
    paths: dict[str, Path] = {}
    if "csv" in formats:
        paths["csv"] = write_table_atomic(recs, out_dir / f"{stem}.csv")
    if "parquet" in formats:
        # object columns that hold only missing values would be typed "null"; cast to string
        empty = [c for c in recs.columns if recs[c].isna().all() and recs[c].dtype == object]
        paths["parquet"] = write_table_atomic(recs.astype({c: "string" for c in empty}), out_dir / f"{stem}.parquet")
    if "xlsx" in formats:
        sheet = recs
        if items is not None and "unit_cost" in items.columns:
            cost = recs["unique_id"].map(items.drop_duplicates("unique_id").set_index("unique_id")["unit_cost"])
            sheet = recs.assign(unit_cost=cost)
        doc = pd.DataFrame({"column": list(RECOMMENDATION_COLUMNS), "meaning": list(RECOMMENDATION_COLUMNS.values())})
        sheets = {"recommendations": sheet, **dict(extra_sheets or {}), "columns": doc}
        paths["xlsx"] = _write_workbook(sheets, out_dir / f"{stem}.xlsx")
    return paths
