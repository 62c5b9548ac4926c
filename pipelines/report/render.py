"""Planner report: one self-contained HTML page per recommend run.

The page works offline (CSS, JavaScript, data and SVG charts all inline) and
holds: a summary (inventory value now vs recommended, expected service, cost by
type, stranded inventory by item, location and segment in units and value),
the efficient frontier, a sortable and filterable item table (one row per
item: policy, parameters, reasons) and a per-item chart (history, forecast with
its error band, simulated on-hand, s and S levels). Exports of the
recommendations (CSV, Parquet, Excel) go next to it (:mod:`pipelines.report.export`).

Inputs are plain DataFrames:

- ``recommendations``: the table of :mod:`pipelines.report.schema`;
- ``history``: demand in long format (``unique_id, ds, y``);
- ``forecasts``: ``unique_id, ds, forecast`` and optionally ``lo``, ``hi``
  (the error band); :func:`forecasts_from_models` builds it from Nixtla
  output (one column per model alias);
- ``sim_paths``: simulated on-hand, ``unique_id, ds, on_hand``;
- ``frontier``: ``service, inventory_value, cost`` and optionally ``chosen``;
- ``items``: the item master, for ``unit_cost`` (else it is derived from the
  value/units columns of the recommendations).
"""

from __future__ import annotations

import html
import json
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.data.io import write_text_atomic
from pipelines.report.export import export_recommendations
from pipelines.report.inputs import (  # noqa: F401  (re-exported)
    forecasts_from_models,
    forecasts_from_wide,
    frontier_points,
    sim_paths_from_events,
)
from pipelines.report.schema import conform_recommendations
from pipelines.report.template import CSS, ERROR_TRAP_JS, PAGE_JS, fmt_number, svg_bars, svg_frontier

__all__ = [
    "ReportSummary",
    "summarise",
    "stranded_by",
    "forecasts_from_models",
    "frontier_points",
    "sim_paths_from_events",
    "forecasts_from_wide",
    "render_report",
    "write_report",
    "REPORT_NAME",
]

REPORT_NAME = "report.html"
COST_TYPES = ("holding", "ordering", "shortage")
_COST_COLORS = {"holding": "#2a9d8f", "ordering": "#e9c46a", "shortage": "#e76f51"}
TABLE_COLUMNS = (
    "unique_id",
    "abc",
    "xyz",
    "sbc_class",
    "forecaster",
    "policy",
    "review_period",
    "lead_time",
    "reorder_point",
    "order_up_to",
    "order_quantity",
    "safety_stock",
    "service_type",
    "service_target",
    "expected_csl",
    "expected_fill_rate",
    "expected_total_cost",
    "on_hand",
    "excess_units",
    "shortfall_units",
    "reasons",
)
_TEXT_COLUMNS = {"unique_id", "abc", "xyz", "sbc_class", "forecaster", "policy", "service_type", "reasons"}


@dataclass(frozen=True)
class ReportSummary:
    """Headline numbers of one recommend run (values in currency, costs per year)."""

    n_items: int
    inventory_value_now: float
    inventory_value_recommended: float
    safety_stock_value: float
    mean_csl: float
    mean_fill_rate: float
    items_below_target: int
    holding_cost: float
    ordering_cost: float
    shortage_cost: float
    total_cost: float
    excess_units: float
    excess_value: float
    shortfall_units: float
    shortfall_value: float


def _unit_cost(recs: pd.DataFrame, items: pd.DataFrame | None) -> pd.Series:
    """Unit cost per row of ``recs``: item master first, else value / units ratios."""
    if items is not None and "unit_cost" in items.columns:
        cost = recs["unique_id"].map(items.drop_duplicates("unique_id").set_index("unique_id")["unit_cost"])
        return cost.astype(float)
    cost = pd.Series(np.nan, index=recs.index)
    for value, units in (
        ("safety_stock_value", "safety_stock"),
        ("excess_value", "excess_units"),
        ("shortfall_value", "shortfall_units"),
    ):
        ratio = recs[value].astype(float) / recs[units].astype(float).where(recs[units].astype(float) > 0)
        cost = cost.fillna(ratio)
    return cost


def _num(recs: pd.DataFrame, col: str) -> pd.Series:
    return pd.to_numeric(recs[col], errors="coerce").astype(float)


def summarise(recommendations: pd.DataFrame, items: pd.DataFrame | None = None) -> ReportSummary:
    """Headline numbers of a recommendations table.

    Parameters
    ----------
    recommendations : DataFrame
        Table per :mod:`pipelines.report.schema` (missing columns count as empty).
    items : DataFrame, optional
        Item master with ``unique_id`` and ``unit_cost``; without it unit cost is
        derived from ``safety_stock_value / safety_stock`` (and the excess and
        shortfall pairs).

    Returns
    -------
    ReportSummary
        Inventory value now (``on_hand x unit_cost``) and recommended (simulated
        average on-hand x unit cost), mean service, items below their service
        target, yearly cost by type and stranded stock totals.

    Examples
    --------
    >>> recs = pd.DataFrame({"unique_id": ["A"], "on_hand": [10.0], "expected_avg_on_hand": [4.0]})
    >>> summarise(recs, pd.DataFrame({"unique_id": ["A"], "unit_cost": [2.0]})).inventory_value_now
    20.0
    """
    recs = conform_recommendations(recommendations)
    unit = _unit_cost(recs, items)
    achieved = np.where(
        recs["service_type"].astype(str) == "fill_rate", _num(recs, "expected_fill_rate"), _num(recs, "expected_csl")
    )
    target = _num(recs, "service_target").to_numpy()
    below = np.isfinite(achieved) & np.isfinite(target) & (achieved < target - 1e-9)
    costs = {c: float(np.nansum(_num(recs, f"expected_{c}_cost"))) for c in COST_TYPES}
    total = _num(recs, "expected_total_cost")
    return ReportSummary(
        n_items=len(recs),
        inventory_value_now=float(np.nansum(_num(recs, "on_hand") * unit)),
        inventory_value_recommended=float(np.nansum(_num(recs, "expected_avg_on_hand") * unit)),
        safety_stock_value=float(np.nansum(_num(recs, "safety_stock_value"))),
        mean_csl=float(np.nanmean(_num(recs, "expected_csl"))) if _num(recs, "expected_csl").notna().any() else np.nan,
        mean_fill_rate=(
            float(np.nanmean(_num(recs, "expected_fill_rate")))
            if _num(recs, "expected_fill_rate").notna().any()
            else np.nan
        ),
        items_below_target=int(below.sum()),
        holding_cost=costs["holding"],
        ordering_cost=costs["ordering"],
        shortage_cost=costs["shortage"],
        total_cost=float(np.nansum(total)) if total.notna().any() else float(sum(costs.values())),
        excess_units=float(np.nansum(_num(recs, "excess_units"))),
        excess_value=float(np.nansum(_num(recs, "excess_value"))),
        shortfall_units=float(np.nansum(_num(recs, "shortfall_units"))),
        shortfall_value=float(np.nansum(_num(recs, "shortfall_value"))),
    )


def stranded_by(recommendations: pd.DataFrame, by: str) -> pd.DataFrame:
    """Excess and shortfall in units and value grouped by ``by``, largest excess value first.

    Parameters
    ----------
    recommendations : DataFrame
        Table per :mod:`pipelines.report.schema`.
    by : str
        A column of the table, e.g. ``"item_id"``, ``"location"``, ``"abc"``, ``"sbc_class"``.

    Returns
    -------
    DataFrame
        ``by, items, excess_units, excess_value, shortfall_units, shortfall_value``.

    Raises
    ------
    ValueError
        When ``by`` is not a recommendations column.
    """
    recs = conform_recommendations(recommendations)
    if by not in recs.columns:
        raise ValueError(f"cannot group stranded stock by {by!r}: not a recommendations column")
    cols = ["excess_units", "excess_value", "shortfall_units", "shortfall_value"]
    frame = recs[cols].apply(pd.to_numeric, errors="coerce").fillna(0.0)
    frame[by] = recs[by].astype("string").fillna("(none)")
    out = frame.groupby(by, sort=False).agg(items=(cols[0], "size"), **{c: (c, "sum") for c in cols})
    return out.sort_values(["excess_value", "shortfall_value"], ascending=False).reset_index()


def _round(values: pd.Series) -> list:
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return [None if not np.isfinite(v) else round(float(v), 2) for v in arr]


def _dates(values: pd.Series) -> list[str]:
    """ISO dates; each distinct date is formatted once (a long panel has few distinct dates)."""
    codes, uniques = pd.factorize(pd.to_datetime(pd.Series(values)), use_na_sentinel=False)
    text = np.asarray(pd.DatetimeIndex(uniques).strftime("%Y-%m-%d"), dtype=object)
    return text[codes].tolist() if len(codes) else []


def _by_id(frame: pd.DataFrame | None, columns: dict[str, str], ids: set, tail: int | None = None) -> dict:
    """Per unique_id of ``ids``: ``{"t": dates, key: rounded column, ...}`` in date order (``tail``: the
    last periods only); a missing column gives ``[]``. Converted once for the whole frame, then sliced."""
    if frame is None:
        return {}
    part = frame[frame["unique_id"].isin(ids)].sort_values(["unique_id", "ds"], kind="stable")
    if tail is not None:
        part = part.groupby("unique_id", sort=False).tail(tail)
    values = {"t": _dates(part["ds"])} | {k: _round(part[c]) if c in part else None for k, c in columns.items()}
    uid = part["unique_id"].to_numpy()
    cuts = np.flatnonzero(uid[1:] != uid[:-1]) + 1 if len(uid) else np.array([], dtype=int)
    bounds = zip(np.r_[0, cuts], np.r_[cuts, len(uid)])
    return {uid[a]: {k: ([] if v is None else v[a:b]) for k, v in values.items()} for a, b in bounds if b > a}


def _series_payload(
    recs: pd.DataFrame,
    history: pd.DataFrame,
    forecasts: pd.DataFrame | None,
    sim_paths: pd.DataFrame | None,
    history_periods: int,
) -> dict[str, Any]:
    """Per item: last ``history_periods`` of history, forecast band, simulated on-hand, s and S."""
    uids = set(recs["unique_id"])
    groups = {
        "h": _by_id(history, {"y": "y"}, uids, tail=history_periods),
        "f": _by_id(forecasts, {"y": "forecast", "lo": "lo", "hi": "hi"}, uids),
        "s": _by_id(sim_paths, {"y": "on_hand"}, uids),
    }
    empty = {"h": {"t": [], "y": []}, "f": {"t": [], "y": [], "lo": [], "hi": []}, "s": {"t": [], "y": []}}
    levels = recs[["reorder_point", "order_up_to"]].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=float)
    out: dict[str, Any] = {}
    for uid, (rop, out_to) in zip(recs["unique_id"], levels):
        out[uid] = {k: groups[k].get(uid, empty[k]) for k in ("h", "f", "s")} | {
            "s_": None if not np.isfinite(rop) else round(float(rop), 2),
            "S": None if not np.isfinite(out_to) else round(float(out_to), 2),
        }
    return out


def _column_cells(col: str, values: pd.Series) -> list[str]:
    """The ``<td>`` of every value of one table column (numbers converted once per column)."""
    if col in _TEXT_COLUMNS:
        cls = "reasons" if col == "reasons" else "t"
        return [f'<td class="{cls}">{html.escape(_text(v))}</td>' for v in values.astype(object).to_numpy(dtype=object)]
    nums = pd.to_numeric(values, errors="coerce").astype(object).to_numpy(dtype=object)
    digits = 3 if col.startswith(("expected_csl", "expected_fill", "service_target")) else 1
    digits = 0 if col == "expected_total_cost" else digits
    cells = []
    for num in nums:
        x = np.nan if num is None or num is pd.NA else float(num)
        data_v = "" if not np.isfinite(x) else repr(x)
        cells.append(f'<td data-v="{data_v}">{fmt_number(x, digits)}</td>')
    return cells


def _text(value: Any) -> str:
    missing = value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA
    return "" if missing else str(value)


def _item_table(recs: pd.DataFrame) -> str:
    head = "".join(f'<th data-col="{c}" class="{"t" if c in _TEXT_COLUMNS else ""}">{c}</th>' for c in TABLE_COLUMNS)
    columns = [_column_cells(c, recs[c]) for c in TABLE_COLUMNS]
    body = [
        f'<tr data-uid="{html.escape(str(uid))}" data-policy="{html.escape(str(policy))}">{"".join(cells)}</tr>'
        for uid, policy, cells in zip(recs["unique_id"], recs["policy"], zip(*columns), strict=True)
    ]
    return f'<table id="items-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _digits(value: Any) -> int:
    """Decimals to show: none for whole numbers and large values, up to 3 for small ones."""
    v = abs(float(value))
    if not np.isfinite(v) or float(value).is_integer() or v >= 100:
        return 0
    return 3 if v < 1 else 1


def _frame_table(df: pd.DataFrame, table_id: str, max_rows: int = 50) -> str:
    head = "".join(f'<th class="t">{html.escape(str(c))}</th>' for c in df.columns)
    rows = []
    for row in df.head(max_rows).itertuples(index=False):
        cells = "".join(
            f'<td class="t">{html.escape(str(v))}</td>'
            if isinstance(v, str)
            else f"<td>{fmt_number(float(v), _digits(v))}</td>"
            for v in row
        )
        rows.append(f"<tr>{cells}</tr>")
    more = f'<p class="muted">top {max_rows} of {len(df)} shown</p>' if len(df) > max_rows else ""
    return f'<table id="{table_id}"><thead><tr>{head}</tr></thead><tbody>{"".join(rows)}</tbody></table>{more}'


def _summary_section(s: ReportSummary) -> str:
    cards = [
        ("items", fmt_number(s.n_items)),
        ("inventory value now", fmt_number(s.inventory_value_now)),
        ("inventory value recommended", fmt_number(s.inventory_value_recommended)),
        ("change", fmt_number(s.inventory_value_recommended - s.inventory_value_now)),
        ("safety stock value", fmt_number(s.safety_stock_value)),
        ("mean cycle service level", fmt_number(s.mean_csl, 3)),
        ("mean fill rate", fmt_number(s.mean_fill_rate, 3)),
        ("items below service target", fmt_number(s.items_below_target)),
        ("yearly total cost", fmt_number(s.total_cost)),
        ("excess (stranded) value", fmt_number(s.excess_value)),
        ("shortfall value", fmt_number(s.shortfall_value)),
    ]
    html_cards = "".join(
        f'<div class="card"><div class="v">{v}</div><div class="l">{html.escape(k)}</div></div>' for k, v in cards
    )
    bars = svg_bars(
        [f"{c} cost" for c in COST_TYPES],
        [getattr(s, f"{c}_cost") for c in COST_TYPES],
        [_COST_COLORS[c] for c in COST_TYPES],
        title="yearly cost by type",
    )
    return (
        f'<section id="summary"><h2>Summary</h2><div class="cards">{html_cards}</div>'
        f"<h3>Expected yearly cost by type</h3>{bars}</section>"
    )


def _stranded_section(recs: pd.DataFrame) -> str:
    if pd.to_numeric(recs["on_hand"], errors="coerce").isna().all():
        return (
            '<section id="stranded"><h2>Stranded inventory</h2><p class="muted">no on-hand stock '
            "was given, so excess and shortfall cannot be computed</p></section>"
        )
    parts = []
    for by, label in (
        ("item_id", "item"),
        ("location", "location"),
        ("abc", "ABC segment"),
        ("sbc_class", "demand class"),
    ):
        parts.append(
            f"<div><h3>By {label}</h3><div class='scroll'>"
            f"{_frame_table(stranded_by(recs, by), f'stranded-{by}')}</div></div>"
        )
    return (
        f'<section id="stranded"><h2>Stranded inventory (excess above S, shortfall below the safety stock)</h2>'
        f'<div class="grid2">{"".join(parts)}</div></section>'
    )


def _frontier_section(frontier: pd.DataFrame | None) -> str:
    if frontier is None or frontier.empty:
        return (
            '<section id="frontier"><h2>Efficient frontier</h2><p class="muted">not computed in this run</p></section>'
        )
    missing = {"service", "inventory_value", "cost"} - set(frontier.columns)
    if missing:
        raise ValueError(f"frontier needs columns service, inventory_value, cost; missing {sorted(missing)}")
    chosen = frontier["chosen"].fillna(False).to_numpy(bool) if "chosen" in frontier else np.zeros(len(frontier), bool)
    svg = svg_frontier(*(frontier[c].to_numpy(float) for c in ("service", "inventory_value", "cost")), chosen)
    return (
        f'<section id="frontier"><h2>Efficient frontier</h2><p class="muted">each point: the cheapest '
        f"inventory investment that reaches a service level; the large point is this run.</p>{svg}</section>"
    )


def _exchange_section(curve: pd.DataFrame | None) -> str:
    """The portfolio exchange curve of a segment / portfolio target, one chart per segment (empty in item mode)."""
    if curve is None or curve.empty:
        return ""
    missing = {"segment", "service", "inventory_value", "chosen"} - set(curve.columns)
    if missing:
        raise ValueError(
            f"exchange_curve needs columns segment, service, inventory_value, chosen; missing {sorted(missing)}"
        )
    parts = []
    for segment, g in curve.groupby("segment", sort=True):
        chosen = g["chosen"].to_numpy(bool)
        value, service = g["inventory_value"].to_numpy(float), g["service"].to_numpy(float)
        at = (
            f"service {service[chosen][0]:.3f} at inventory value {fmt_number(value[chosen][0])}"
            if chosen.any()
            else ""
        )
        svg = svg_frontier(service, value, np.full(len(g), np.nan), chosen)
        parts.append(f'<div><h3>{html.escape(str(segment))}</h3><p class="muted">the plan: {at}</p>{svg}</div>')
    return (
        '<section id="exchange"><h2>Exchange curve (service target by marginal allocation)</h2>'
        '<p class="muted">each point: the least inventory value at which the segment reaches a service level, '
        "in the sizing's demand model (the greedy of marginal analysis over every item's service-vs-value curve); "
        f'the large point is this plan.</p><div class="grid2">{"".join(parts)}</div></section>'
    )


def render_report(
    recommendations: pd.DataFrame,
    history: pd.DataFrame,
    forecasts: pd.DataFrame | None = None,
    sim_paths: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    comparison: pd.DataFrame | None = None,
    title: str = "Stockwise recommendations",
    history_periods: int = 104,
    exchange_curve: pd.DataFrame | None = None,
) -> str:
    """Return the report as one self-contained HTML string (see module docstring for inputs).

    ``exchange_curve`` (``segment, service, inventory_value, chosen``; from
    :func:`policy_selector.portfolio.exchange_curve`) adds the exchange-curve section of a
    segment / portfolio target.

    Raises
    ------
    ValueError
        When the recommendations break the schema or the frontier lacks its columns.
    """
    recs = conform_recommendations(recommendations)
    summary = summarise(recs, items)
    data = {
        "first": str(recs["unique_id"].iloc[0]) if len(recs) else None,
        "series": _series_payload(recs, history, forecasts, sim_paths, history_periods),
        "summary": asdict(summary),
    }
    payload = json.dumps(data, separators=(",", ":"), allow_nan=False, default=str).replace("</", "<\\/")
    policies = "".join(
        f'<option value="{html.escape(p)}">{html.escape(p)}</option>'
        for p in sorted(recs["policy"].dropna().astype(str).unique())
    )
    run_ids = ", ".join(sorted(recs["run_id"].dropna().astype(str).unique())) or "n/a"
    compare = (
        f'<section id="compare"><h2>Scenario comparison</h2>{_frame_table(comparison, "compare-table")}</section>'
        if comparison is not None
        else ""
    )
    stamp = datetime.now(timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<script>{ERROR_TRAP_JS}</script><style>{CSS}</style></head>
<body><header><h1>{html.escape(title)}</h1><p>generated {stamp} &middot; MLflow run(s): {html.escape(run_ids)}
&middot; <span id="js-status"></span></p></header><main>
{_summary_section(summary)}
{_frontier_section(frontier)}
{_exchange_section(exchange_curve)}
{compare}
{_stranded_section(recs)}
<section id="items"><h2>Items</h2>
<div class="controls"><input id="filter" type="search" placeholder="filter: id, class, policy, reason...">
<select id="policy-filter"><option value="">all policies</option>{policies}</select>
<span id="row-count" class="muted"></span><span class="muted">click a column to sort, a row to chart it</span></div>
<div class="scroll">{_item_table(recs)}</div></section>
<section id="item"><h2>Item <span id="item-title"></span></h2>
<div class="legend"><span><i class="sw" style="background:#1d3557"></i>demand history</span>
<span><i class="sw" style="background:#e76f51"></i>forecast</span>
<span><i class="sw" style="background:#f4a261"></i>forecast error band</span>
<span><i class="sw" style="background:#2a9d8f"></i>simulated on-hand</span></div>
<div id="item-chart"></div></section>
</main>
<script type="application/json" id="report-data">{payload}</script>
<script>{PAGE_JS}</script></body></html>
"""


def write_report(
    run_dir: str | Path,
    recommendations: pd.DataFrame,
    history: pd.DataFrame,
    forecasts: pd.DataFrame | None = None,
    sim_paths: pd.DataFrame | None = None,
    frontier: pd.DataFrame | None = None,
    items: pd.DataFrame | None = None,
    comparison: pd.DataFrame | None = None,
    title: str = "Stockwise recommendations",
    exports: tuple[str, ...] = ("csv", "parquet", "xlsx"),
    run: Any = None,
    exchange_curve: pd.DataFrame | None = None,
) -> Path:
    """Write ``report.html`` and the exports into ``run_dir`` atomically; return the report path.

    Parameters
    ----------
    run_dir : path
        The run folder (created if missing).
    recommendations, history, forecasts, sim_paths, frontier, items, comparison : DataFrame
        See the module docstring; only ``recommendations`` and ``history`` are required.
    title : str
        Page title.
    exchange_curve : DataFrame, optional
        The portfolio exchange curve of a segment / portfolio target (see :func:`render_report`).
    exports : tuple of {"csv", "parquet", "xlsx"}
        Export formats of the recommendations written next to the report.
    run : pipelines.registry.tracking.RunLogger, optional
        When given, the report and exports are logged as artifacts under ``report/``.

    Returns
    -------
    Path
        ``run_dir / "report.html"``.

    Examples
    --------
    >>> write_report("runs/2026-11-25", recs, demand, forecasts, sim, frontier, items)  # doctest: +SKIP
    """
    run_dir = Path(run_dir)
    page = render_report(
        recommendations,
        history,
        forecasts,
        sim_paths,
        frontier,
        items,
        comparison,
        title,
        exchange_curve=exchange_curve,
    )
    report = write_text_atomic(page, run_dir / REPORT_NAME)
    summary = pd.DataFrame([asdict(summarise(recommendations, items))]).T.reset_index()
    sheets = {"summary": summary.set_axis(["measure", "value"], axis=1)}
    if pd.to_numeric(conform_recommendations(recommendations)["on_hand"], errors="coerce").notna().any():
        sheets |= {
            f"stranded_by_{by}": stranded_by(recommendations, by) for by in ("item_id", "location", "abc", "sbc_class")
        }
    paths = export_recommendations(recommendations, run_dir, formats=exports, items=items, extra_sheets=sheets)
    if run is not None:
        for path in (report, *paths.values()):
            run.log_artifact(path, "report")
    return report
