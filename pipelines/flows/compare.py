"""Scenario compare: two runs side by side (``stockwise compare --config A.yaml --config B.yaml``).

Typical scenarios: a 95 % vs a 98 % service target, a supplier lead-time
change, another set of forecasters. Each config is planned with
:func:`pipelines.flows.plan.run_plan`; the two recommendation tables are then
compared on working capital (recommended inventory value), safety stock,
service, yearly cost by type and stranded stock, plus an item-level table of
what changes. The comparison lands as CSV and as a section of a planner report
(``compare.html``, the second scenario's items) in one folder, written under a
hidden name and renamed into place when complete.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.io import read_table, write_table_atomic, write_text_atomic
from pipelines.report.render import render_report, summarise
from pipelines.report.schema import conform_recommendations

__all__ = ["compare_recommendations", "compare_items", "compare_runs", "COMPARE_MEASURES"]

COMPARE_MEASURES: dict[str, str] = {
    "n_items": "items",
    "inventory_value_recommended": "working capital: recommended inventory value",
    "inventory_value_now": "inventory value now (on hand)",
    "safety_stock_value": "safety stock value",
    "mean_csl": "mean cycle service level",
    "mean_fill_rate": "mean fill rate",
    "items_below_target": "items below their service target",
    "holding_cost": "yearly holding cost",
    "ordering_cost": "yearly ordering cost",
    "shortage_cost": "yearly shortage cost",
    "total_cost": "yearly total cost",
    "excess_value": "excess (stranded) value",
    "shortfall_value": "shortfall value",
}


def compare_recommendations(
    a: pd.DataFrame,
    b: pd.DataFrame,
    labels: Sequence[str] = ("A", "B"),
    items_a: pd.DataFrame | None = None,
    items_b: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Headline measures of two recommendation tables side by side.

    Parameters
    ----------
    a, b : DataFrame
        Recommendation tables (:mod:`pipelines.report.schema`) of the two scenarios.
    labels : pair of str, default ("A", "B")
        Column names for the scenarios.
    items_a, items_b : DataFrame, optional
        Item masters (for ``unit_cost``); see :func:`pipelines.report.render.summarise`.

    Returns
    -------
    DataFrame
        One row per measure: ``measure``, ``<label A>``, ``<label B>``, ``difference``
        (B - A) and ``change_pct`` (relative to A; NaN when A is 0).

    Raises
    ------
    ValueError
        When the labels are not two distinct names or a table breaks the schema.

    Examples
    --------
    >>> compare_recommendations(recs_95, recs_98, labels=("95%", "98%"))  # doctest: +SKIP
    """
    if len(labels) != 2 or labels[0] == labels[1]:
        raise ValueError(f"labels must be two distinct names; got {list(labels)}")
    sa, sb = asdict(summarise(a, items_a)), asdict(summarise(b, items_b))
    va = np.array([sa[k] for k in COMPARE_MEASURES], dtype=float)
    vb = np.array([sb[k] for k in COMPARE_MEASURES], dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        pct = np.where(va != 0, (vb - va) / np.abs(va) * 100, np.nan)
    return pd.DataFrame(
        {
            "measure": list(COMPARE_MEASURES.values()),
            labels[0]: va,
            labels[1]: vb,
            "difference": vb - va,
            "change_pct": pct,
        }
    )


def compare_items(a: pd.DataFrame, b: pd.DataFrame, labels: Sequence[str] = ("A", "B")) -> pd.DataFrame:
    """Per item: policy, order-up-to, safety stock and cost in both scenarios, biggest cost change first.

    Items present in only one scenario are kept, with the other side empty.
    """
    cols = ["policy", "order_up_to", "safety_stock", "expected_fill_rate", "expected_total_cost"]
    left = conform_recommendations(a)[["unique_id", *cols]]
    right = conform_recommendations(b)[["unique_id", *cols]]
    both = left.merge(right, on="unique_id", how="outer", suffixes=(f"_{labels[0]}", f"_{labels[1]}"))
    cost_a = pd.to_numeric(both[f"expected_total_cost_{labels[0]}"], errors="coerce")
    cost_b = pd.to_numeric(both[f"expected_total_cost_{labels[1]}"], errors="coerce")
    both["cost_difference"] = cost_b - cost_a
    pa, pb = both[f"policy_{labels[0]}"].astype(object), both[f"policy_{labels[1]}"].astype(object)
    both["policy_changed"] = (pa != pb).to_numpy(bool)  # an item missing on one side counts as changed
    order = both["cost_difference"].abs().fillna(np.inf).sort_values(ascending=False, kind="stable").index
    return both.loc[order].reset_index(drop=True)


def _run_inputs(run_dir: Path, data: Path | None) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Demand and items a run planned on: its own ``data/`` copy (demo runs) or the config's folder."""
    folder = run_dir / "data" if (run_dir / "data").is_dir() else data
    if folder is None:
        raise ValueError(f"{run_dir}: no data/ folder and no data in the config; cannot find demand history")
    find = {
        name: next(
            (folder / f"{name}{ext}" for ext in (".parquet", ".csv") if (folder / f"{name}{ext}").is_file()),
            folder / f"{name}.csv",
        )
        for name in ("demand", "items")
    }
    demand = read_table(find["demand"])
    demand["ds"] = pd.to_datetime(demand["ds"])
    return demand, read_table(find["items"])


def compare_runs(
    configs: Sequence[Path],
    out: Path,
    labels: Sequence[str] | None = None,
    plan: Callable | None = None,
    progress: Callable[[str], None] = lambda _: None,
) -> Path:
    """Plan each config, compare the two results, write the comparison folder; return it.

    Parameters
    ----------
    configs : two paths
        Run configs (YAML) of the two scenarios.
    out : path
        Parent folder; the result is ``out/compare-<stamp>-<pid>/``.
    labels : two str, optional
        Scenario names (default: the config file stems).
    plan : callable ``(RunConfig, command) -> PlanResult``, optional
        Default :func:`pipelines.flows.plan.run_plan`.

    Returns
    -------
    Path
        Folder with ``comparison.csv``, ``comparison_items.csv`` and ``compare.html``.
    """
    from pipelines.data.config import load_config

    if len(configs) != 2:
        raise ValueError(f"compare needs exactly two --config files; got {len(configs)}")
    if plan is None:
        from pipelines.flows.plan import run_plan as plan
    labels = list(labels or [Path(c).stem for c in configs])
    if len(labels) != 2:
        raise ValueError(f"give one --label per --config (two); got {len(labels)}: {labels}")
    for path in configs:  # a bad second file should fail before the first plan runs
        load_config(path)
    if labels[0] == labels[1]:
        labels = [f"{labels[0]}_1", f"{labels[1]}_2"]
    results = []
    for label, path in zip(labels, configs, strict=True):
        progress(f"planning scenario {label} ({path})")
        cfg = load_config(path)
        result = plan(cfg, command=f"compare-{label}")
        recs = read_table(result.recommendations)
        demand, items = _run_inputs(Path(result.run_dir), cfg.data)
        results.append((recs, demand, items))
    (ra, _, ia), (rb, db, ib) = results
    table = compare_recommendations(ra, rb, labels, ia, ib)
    final = Path(out) / f"compare-{time.strftime('%Y%m%d-%H%M%S')}-{os.getpid()}"
    staging = final.parent / f".{final.name}.partial"
    staging.mkdir(parents=True)
    try:
        write_table_atomic(table, staging / "comparison.csv")
        write_table_atomic(compare_items(ra, rb, labels), staging / "comparison_items.csv")
        page = render_report(
            rb, db, items=ib, comparison=table, title=f"Scenario {labels[1]} compared with {labels[0]}"
        )
        write_text_atomic(page, staging / "compare.html")
        os.replace(staging, final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final
