"""Efficient frontier: inventory investment vs achieved service vs cost.

Sweep a service target (or shortage cost), size the policy for each value with
a caller-supplied sizing function, replay all candidates in ONE batched
simulation (leading axis = target) and tabulate per item; aggregate per segment
and in total with :func:`summarise_frontier`. Plotting lives in ``pipelines``.

References
----------
E. A. Silver, D. F. Pyke and D. J. Thomas, *Inventory and Production Management
in Supply Chains*, 4th ed., 2017, sec. 7.5 (exchange curves).
"""

from __future__ import annotations

from typing import Callable, Sequence

import numpy as np
import pandas as pd

from optimization.policies import PolicyParams, stack_policies
from optimization.simulator import CostParams, simulate

__all__ = ["efficient_frontier", "summarise_frontier"]

_COSTS = ["cost_purchasing", "cost_ordering", "cost_holding", "cost_shortage", "cost_expiration"]


def efficient_frontier(
    demand,
    size: Callable[[float], PolicyParams],
    targets: Sequence[float],
    lead_time,
    *,
    costs: CostParams | None = None,
    unique_id=None,
    segment=None,
    warmup: int = 0,
    sampled_lead_times=None,
    shelf_life=None,
) -> pd.DataFrame:
    """Per-item frontier points, one row per (target, item).

    Parameters
    ----------
    demand : array_like, shape (n_items, n_periods)
        Held-out demand or sampled paths.
    size : callable
        ``size(target) -> PolicyParams`` of batch shape (n_items,), e.g. a
        ``functools.partial`` of :func:`optimization.sizing.size_policy`.
    targets : sequence of float
        Service levels (or shortage costs) to sweep.
    lead_time, costs, warmup, sampled_lead_times, shelf_life
        As in :func:`optimization.simulator.simulate`.
    unique_id, segment : sequence of str, shape (n_items,), optional

    Returns
    -------
    pandas.DataFrame
        Columns ``target, unique_id, segment, demand, avg_on_hand, inventory_value``
        (avg on-hand x unit cost), ``csl, fill_rate``, the five ``cost_*`` columns,
        ``cost_operating`` (all but purchasing) and ``cost_total``.

    Raises
    ------
    ValueError
        Empty ``targets`` or labels of the wrong length.
    """
    targets = np.asarray(targets, dtype=float)
    if targets.ndim != 1 or targets.size == 0:
        raise ValueError("targets must be a non-empty 1-D sequence of service levels or costs")
    demand = np.asarray(demand, dtype=float)
    n = demand.shape[0]
    ids = np.arange(n).astype(str) if unique_id is None else np.asarray(unique_id, dtype=str)
    seg = np.full(n, "all") if segment is None else np.asarray(segment, dtype=str)
    if ids.shape != (n,) or seg.shape != (n,):
        raise ValueError(f"unique_id and segment need {n} labels, got {ids.size} and {seg.size}")
    policies = stack_policies([size(float(t)) for t in targets])
    costs = costs if costs is not None else CostParams()
    res = simulate(
        demand,
        policies,
        lead_time,
        costs=costs,
        warmup=warmup,
        sampled_lead_times=sampled_lead_times,
        shelf_life=shelf_life,
    )
    k = targets.size
    unit_cost = np.broadcast_to(costs.unit_cost, (k, n))
    frame = pd.DataFrame(
        {
            "target": np.repeat(targets, n),
            "unique_id": np.tile(ids, k),
            "segment": np.tile(seg, k),
            "demand": demand[:, warmup:].sum(axis=1)[None, :].repeat(k, 0).ravel(),
            "avg_on_hand": res.avg_on_hand.ravel(),
            "inventory_value": (res.avg_on_hand * unit_cost).ravel(),
            "csl": res.csl.ravel(),
            "fill_rate": res.fill_rate.ravel(),
            **{c: getattr(res, c).ravel() for c in _COSTS},
        }
    )
    frame["cost_operating"] = frame[_COSTS[1:]].sum(axis=1)
    frame["cost_total"] = frame[_COSTS].sum(axis=1)
    return frame


def summarise_frontier(frame: pd.DataFrame, by: str | None = "segment") -> pd.DataFrame:
    """Aggregate per-item frontier rows per target (and segment).

    Inventory value and costs are summed; fill rate is demand-weighted
    (total served / total demand); CSL is the plain mean over items.

    Parameters
    ----------
    frame : output of :func:`efficient_frontier`
    by : column to group by besides ``target``; None for the portfolio total.

    Returns
    -------
    pandas.DataFrame
        One row per target (and group).
    """
    missing = {"target", "demand", "fill_rate", "csl", "inventory_value", "cost_total"} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}; pass the output of efficient_frontier")
    keys = ["target"] if by is None else ["target", by]
    work = frame.assign(served=frame["fill_rate"].fillna(1.0) * frame["demand"])
    sums = ["demand", "served", "avg_on_hand", "inventory_value", *_COSTS, "cost_operating", "cost_total"]
    out = work.groupby(keys, sort=True).agg({**{c: "sum" for c in sums}, "csl": "mean"}).reset_index()
    out["fill_rate"] = np.where(out["demand"] > 0, out["served"] / out["demand"].where(out["demand"] > 0), np.nan)
    return out.drop(columns="served")
