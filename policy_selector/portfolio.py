"""Segment and portfolio service targets: re-level the recommended policies by marginal allocation.

With per-item targets (the default) every item is sized to its own target. With a
segment or portfolio target, each stocked item's service-vs-inventory-value curve
is built from the *same* distribution of demand over its exposure H that sized it
(:func:`policy_selector.sizing._samples` of its chosen candidate), and
:func:`optimization.allocation.allocate` picks the cheapest levels whose weighted
service meets the target: CSL averaged over items with expected demand, or fill
rate weighted by expected demand. The chosen policy type, review period and order
quantity stay; the level (S, or s with S - s kept) moves by the allocated amount.

Items sized without a stocking policy (``no_stock``) keep it and are left out of the
target; the returned ``service_mode`` column says which rule set every level.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimization import PolicyType, ServiceType, mixed_policies
from optimization.allocation import Allocation, allocate
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff
from policy_selector.recommend import expected_outcomes, recommend_policies
from policy_selector.sizing import MAX_LEVEL_MULTIPLE, _samples, exposure, largest_demand

__all__ = ["ServiceMode", "ItemCurves", "item_curves", "allocate_levels", "portfolio_policy", "recommend_with_target"]

_LEVEL_POINTS = 40


class ServiceMode:
    """Names of the service modes (the ``service_mode`` column)."""

    ITEM = "item"
    SEGMENT = "segment"
    PORTFOLIO = "portfolio"


@dataclass(frozen=True)
class ItemCurves:
    """Exchange curve of every item: candidate levels, their service and inventory value.

    Attributes
    ----------
    ids : ndarray of str, shape (n,)
    level, service, value : ndarray, shape (n, k)
        Level (S or s), expected service at it (CSL or fill rate), unit_cost x level.
    weight : ndarray, shape (n,)
        Weight in the portfolio service (1 or expected demand; 0 for items without).
    current : ndarray, shape (n,)
        The level the per-item sizing chose.
    """

    ids: np.ndarray
    level: np.ndarray
    service: np.ndarray
    value: np.ndarray
    weight: np.ndarray
    current: np.ndarray


def _current_level(rec: pd.DataFrame) -> np.ndarray:
    """The level a target moves: s for (s, Q) and (R, s, S), S otherwise."""
    by_s = rec["policy"].isin([PolicyType.S_Q.value, PolicyType.R_S_S.value]).to_numpy()
    return np.where(by_s, rec["reorder_point"].to_numpy(float), rec["order_up_to"].to_numpy(float))


def item_curves(data: CutoffData, rec: pd.DataFrame, config: SelectorConfig, measure: ServiceType) -> ItemCurves:
    """Service-vs-value curve of every stocked item of ``rec`` (rows aligned with ``data.ids``).

    Levels are 0, the per-item level and every ``k``-th point of the item's sorted demand samples over H
    (rounded up for count data); CSL = P(D_H <= level), fill rate = 1 - E[(D_H - level)^+] /
    (demand per review cycle), the rules the sizing inverts.
    """
    stocked = rec["policy"].ne(PolicyType.NO_STOCK.value).to_numpy()
    n, econ = len(rec), data.economics
    k = _LEVEL_POINTS + 2
    current = _current_level(rec)
    level, service = np.full((n, k), np.nan), np.full((n, k), np.nan)
    weight = np.zeros(n)
    for name in pd.unique(rec.loc[stocked, "candidate"]):
        rows = np.flatnonzero(stocked & rec["candidate"].eq(name).to_numpy())
        cand = config.space[name]
        H_all = np.minimum(exposure(cand, econ.lead_time, econ.review_period), data.horizon)
        f_all = data.cum_forecast[cand.forecaster][np.arange(n), H_all - 1]
        samples = np.sort(_samples(data, cand, H_all, f_all, config)[rows], axis=1)
        pick = np.linspace(0, samples.shape[1] - 1, _LEVEL_POINTS).round().astype(int)
        lv = np.concatenate([np.zeros((len(rows), 1)), samples[:, pick]], axis=1)
        lv = np.ceil(lv - 1e-9) if data.integral else lv
        # the sizing's cap (a multiple of the largest demand seen over H) bounds the curve as it bounds S
        cap = MAX_LEVEL_MULTIPLE * largest_demand(data.history[rows], H_all[rows])
        lv = np.where(cap[:, None] > 0, np.minimum(lv, cap[:, None]), lv)
        # the per-item level is a point of the curve too: the item mode is one point of the exchange curve
        lv = np.sort(np.column_stack([lv, np.nan_to_num(current[rows])]), axis=1)
        rate = f_all[rows] / np.maximum(H_all[rows], 1)
        if measure is ServiceType.FILL_RATE:
            short = _cycle_shortage(data, cand, config, rows, lv, samples)
            cycle = rate * (H_all[rows] - _lead(data, rows))
            service[rows] = np.clip(1.0 - short / np.maximum(cycle, 1e-12)[:, None], 0.0, 1.0)
            weight[rows] = rate
        else:
            service[rows] = (samples[:, None, :] <= lv[:, :, None]).mean(axis=2)
            weight[rows] = (rate > 0).astype(float)
        level[rows] = lv
    value = level * econ.unit_cost[:, None]
    return ItemCurves(
        ids=np.asarray(rec["unique_id"], dtype=str),
        level=level,
        service=service,
        value=value,
        weight=weight,
        current=current,
    )


def _lead(data: CutoffData, rows: np.ndarray) -> np.ndarray:
    """Whole lead time in periods, capped at the cutoff's horizon."""
    return np.minimum(np.round(data.economics.lead_time[rows]).astype(int), data.horizon)


def _loss(samples: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """E[(D - level)^+] per item and level, shape (n, k)."""
    return np.maximum(samples[:, None, :] - levels[:, :, None], 0.0).mean(axis=2)


def _cycle_shortage(
    data: CutoffData, cand, config: SelectorConfig, rows: np.ndarray, levels: np.ndarray, samples_h: np.ndarray
) -> np.ndarray:
    """Expected units short per review cycle: E[(D_{L+R} - x)^+] - E[(D_L - x)^+] (periodic review).

    The second term removes the shortage already counted in the previous cycle
    (Silver, Pyke & Thomas 2017, sec. 7.3); without it the fill rate of L >= 1 items is
    understated and the allocation chases their tails.
    """
    out = _loss(samples_h, levels)
    lead = _lead(data, rows)
    has = lead >= 1
    if has.any():
        n = len(data.ids)
        H_L = np.ones(n, dtype=int)
        H_L[rows[has]] = lead[has]
        f_L = data.cum_forecast[cand.forecaster][np.arange(n), H_L - 1]
        samples_l = _samples(data, cand, H_L, f_L, config)[rows[has]]
        out[has] -= _loss(samples_l, levels[has])
    return np.maximum(out, 0.0)


def allocate_levels(
    curves: ItemCurves, target: float, groups: np.ndarray | None = None
) -> tuple[np.ndarray, dict[str, Allocation]]:
    """Level per item meeting ``target`` within each group (one group = the portfolio).

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
        a = allocate(curves.value[rows], curves.service[rows], target, weights=curves.weight[rows])
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
) -> tuple[pd.DataFrame, dict[str, Allocation]]:
    """Re-level ``rec`` (output of :func:`recommend_policies` at ``data``) to a segment or portfolio target.

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
    curves = item_curves(data, rec, config, measure)
    groups = rec[segment_by].astype(str).to_numpy() if segment_by else None
    levels, allocations = allocate_levels(curves, target, groups)
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
    return out, allocations


def policy_params(rec: pd.DataFrame, data: CutoffData):
    """PolicyParams of recommendation rows (for re-simulating their expected outcomes)."""
    econ = data.economics
    return mixed_policies(
        rec["policy"].to_numpy(),
        review_period=rec["review_period"].to_numpy(),
        reorder_level=rec["reorder_point"].fillna(0).to_numpy(),
        order_up_to=rec["order_up_to"].fillna(0).to_numpy(),
        order_quantity=rec["order_quantity"].fillna(0).to_numpy(),
        moq=econ.moq,
        order_multiple=econ.order_multiple,
        lost_sales=econ.lost_sales,
    )


def recommend_with_target(
    selector,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    target: float,
    measure: ServiceType | str = ServiceType.CSL,
    segment_by: str | None = None,
) -> tuple[pd.DataFrame, dict[str, Allocation]]:
    """:func:`recommend_policies`, then re-levelled to a segment / portfolio target and re-simulated.

    The cutoff data are prepared once more for the curves (the recommendation front door
    does not return them), so this costs a second backtest.

    Returns
    -------
    (pandas.DataFrame, dict)
        Recommendations as :func:`recommend_policies` returns them plus ``service_mode``;
        ``expected_*`` columns are those of the re-levelled policies.
    """
    rec = recommend_policies(selector, demand, items, config, rng)
    data = prepare_cutoff(demand, items, pd.Timestamp(pd.to_datetime(demand["ds"]).max()), config)
    out, allocations = portfolio_policy(data, rec, config, target, measure, segment_by)
    outcomes = expected_outcomes(data, policy_params(out, data), config, rng)
    for col in outcomes.columns:
        out[col] = outcomes[col].to_numpy()
    return out, allocations
