"""Segment and portfolio service targets: re-level the recommended policies by marginal allocation.

With per-item targets (the default) every item is sized to its own target. With a segment or
portfolio target, every stocked item's service-vs-inventory-value curve
(:func:`policy_selector.service_curves.item_curves`, in the model that sized it) goes to
:func:`optimization.allocation.allocate`, which picks the cheapest levels whose weighted service
meets the target: CSL over the items that sell (each weighted by its chance to sell within a
year), or fill rate weighted by expected demand. The chosen policy type, review period and order
quantity stay; the level (S, or s with S - s kept) moves by the allocated amount.
:func:`exchange_curve` gives the portfolio exchange curve for the report.

The model is optimistic out of time where the allocation lowers levels, so the front door,
:func:`policy_selector.service_target.recommend_with_target`, first backtests the allocation at
an earlier origin and raises each segment's target to the one whose replay met it.

Items sized without a stocking policy (``no_stock``) keep it and are left out of the
target; the returned ``service_mode`` column says which rule set every level.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization import ServiceType
from optimization.allocation import Allocation, allocate
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData
from policy_selector.decision_eval import policies_from_table
from policy_selector.service_curves import ItemCurves, calibration_groups, group_scale, item_curves

__all__ = [
    "ServiceMode",
    "MAX_TARGET",
    "allocate_levels",
    "exchange_curve",
    "policy_params",
    "portfolio_policy",
    "relevel",
]

#: Highest service the allocation is asked for after raising a target by its backtested shortfall.
MAX_TARGET = 0.995


class ServiceMode:
    """Names of the service modes (the ``service_mode`` column)."""

    ITEM = "item"
    SEGMENT = "segment"
    PORTFOLIO = "portfolio"


def allocate_levels(
    curves: ItemCurves, target: float, groups: np.ndarray | None = None, raise_by: dict | None = None
) -> tuple[np.ndarray, dict[str, Allocation]]:
    """Level per item meeting ``target`` within each group (one group = the portfolio).

    ``raise_by`` maps a group to the points its target is raised by in the allocation's
    model (:func:`policy_selector.service_target.backtest_target`); the raised target is capped at :data:`MAX_TARGET`.

    Returns
    -------
    (levels, allocations)
        ``levels`` shape (n,), NaN for items without a curve (not stocked);
        ``allocations`` maps each group to its :class:`~optimization.allocation.Allocation`.
    """
    has = np.isfinite(curves.level).any(axis=1)
    groups = np.full(len(curves.ids), "all", dtype=object) if groups is None else np.asarray(groups, dtype=object)
    levels, out = np.full(len(curves.ids), np.nan), {}
    for g in pd.unique(groups[has]):
        rows = np.flatnonzero(has & (groups == g))
        if curves.weight[rows].sum() <= 0:
            continue  # nothing to serve in this group: keep the per-item levels
        goal = min(target + (raise_by or {}).get(str(g), 0.0), max(target, MAX_TARGET))
        a = allocate(curves.value[rows], curves.service[rows], goal, weights=curves.weight[rows])
        levels[rows] = curves.level[rows, a.level_index]
        out[str(g)] = a
    return levels, out


def portfolio_policy(
    data: CutoffData,
    rec: pd.DataFrame,
    config: SelectorConfig,
    target: float,
    measure: ServiceType | str = ServiceType.CSL,
    segment_by: str | None = None,
    raise_by: dict | None = None,
    factors: dict | None = None,
) -> tuple[pd.DataFrame, dict[str, Allocation]]:
    """Re-level ``rec`` (output of :func:`policy_selector.recommend.recommend_policies` at ``data``) to a segment or portfolio target.

    Parameters
    ----------
    data : CutoffData
        The cutoff the recommendations were sized at (same ids, same order).
    rec : pandas.DataFrame
        Recommendations with ``unique_id, candidate, policy, reorder_point, order_up_to,
        safety_stock`` (and ``segment_by`` when given).
    target : float
        Service each segment (or the portfolio) must reach.
    measure : ServiceType or str, default CSL
        ``csl`` or ``fill_rate``.
    segment_by : str, optional
        Column of ``rec`` whose values are the segments; None = the whole portfolio.
    raise_by : dict of str -> float, optional
        Points each segment's (``"all"``: the portfolio's) target is raised by in the
        allocation's model, e.g. :attr:`policy_selector.service_target.TargetBacktest.raise_by`; ``service_target`` stays ``target``.
    factors : dict of str -> float, optional
        Demand scale per calibration group (:attr:`policy_selector.service_target.TargetBacktest.factors`) the curves' demand
        samples are multiplied by (:func:`group_scale`).

    Returns
    -------
    (pandas.DataFrame, dict)
        The re-levelled recommendations (``service_mode``, ``service_type`` and
        ``service_target`` say which rule set each level) and the allocation per segment.

    Raises
    ------
    ValueError
        ``rec`` is not aligned with ``data.ids``, or the measure is not csl / fill_rate.
    """
    measure = ServiceType(measure)
    if measure not in (ServiceType.CSL, ServiceType.FILL_RATE):
        raise ValueError(f"a portfolio target is a csl or fill_rate target, got {measure.value!r}")
    if not np.array_equal(np.asarray(rec["unique_id"], dtype=str), data.ids):
        raise ValueError("recommendations must be the rows of recommend_policies at the same cutoff, in its order")
    curves = item_curves(data, rec, config, measure, group_scale(calibration_groups(rec), factors))
    groups = rec[segment_by].astype(str).to_numpy() if segment_by else None
    levels, allocations = allocate_levels(curves, target, groups, raise_by)
    return relevel(rec, data, curves, levels, target, measure, segment_by), allocations


def relevel(rec, data: CutoffData, curves: ItemCurves, levels, target: float, measure: ServiceType, segment_by):
    """``rec`` with every allocated item's level moved to ``levels`` (S, or s with S - s kept)."""
    moved = np.isfinite(levels)
    delta = np.where(moved, levels - curves.current, 0.0)
    out = rec.copy()
    for col in ("reorder_point", "order_up_to"):
        out[col] = out[col] + delta
    out["safety_stock"] = np.maximum(out["safety_stock"] + delta, 0.0)
    out["safety_stock_value"] = out["safety_stock"] * data.economics.unit_cost
    mode = f"{ServiceMode.SEGMENT}:{segment_by}" if segment_by else ServiceMode.PORTFOLIO
    out["service_mode"] = np.where(moved, mode, ServiceMode.ITEM)
    out.loc[moved, "service_type"] = measure.value
    out.loc[moved, "service_target"] = target
    return out


def policy_params(rec: pd.DataFrame, data: CutoffData):
    """PolicyParams of recommendation rows (for re-simulating their expected outcomes)."""
    return policies_from_table(rec, data.economics)


def exchange_curve(allocations: dict[str, Allocation], max_points: int = 400) -> pd.DataFrame:
    """The portfolio exchange curve of every segment and where the plan sits on it.

    Parameters
    ----------
    allocations : dict of str -> Allocation
        From :func:`portfolio_policy` / :func:`policy_selector.service_target.recommend_with_target`.
    max_points : int, default 400
        Points kept per segment (evenly spaced steps; the first, the last and the plan's are always kept).

    Returns
    -------
    pandas.DataFrame
        ``segment, step, inventory_value, service, chosen`` (``chosen``: the plan's point).
    """
    frames = []
    for segment, a in allocations.items():
        m = len(a.curve_value)
        chosen = int(np.flatnonzero(np.isclose(a.curve_value, a.value) & np.isclose(a.curve_service, a.service))[0])
        keep = np.unique(np.concatenate([np.linspace(0, m - 1, min(m, max_points)).round().astype(int), [chosen]]))
        frames.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "step": keep,
                    "inventory_value": a.curve_value[keep],
                    "service": a.curve_service[keep],
                    "chosen": keep == chosen,
                }
            )
        )
    cols = ["segment", "step", "inventory_value", "service", "chosen"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)
