"""Vectorised periodic inventory simulator (the digital twin).

Items (and any leading batch axis of candidate policies or scenarios) are numpy
arrays; only the time loop is Python.

Order of events in every period t (explicit, and the same for every policy):

1. **receive** -- orders due in t arrive (FIFO lots age 0); under backorders
   the arrivals first ship the waiting backlog (``backorders_filled``);
2. **decide** -- at a review period (``t % R == 0``) the policy looks at the
   inventory position IP = on-hand - backlog + on-order and places an order
   (rules in :mod:`optimization.policies`). An order placed in t with lead time
   L arrives at the start of t + L; an L = 0 order is received at once and can
   serve demand of period t. So an order-up-to level S covers demand over
   L + R periods;
3. **serve** -- demand of t is served from on-hand (FIFO, oldest lots first);
   the rest is backordered or lost (per item);
4. **close** -- lots that reach their shelf life expire, costs of the period are
   charged on ending on-hand (holding) and ending backlog (per-period backorder
   cost), then lots age by one period.

Lead times are fixed per item, or sampled per order (``sampled_lead_times``).
With sampled lead times orders may cross by default (each order arrives at its
own t + L_t, as with independent shipments); ``orders_cross=False`` enforces
sequential delivery: an order never arrives before an earlier one
(arrival = max(t + L_t, previous arrival)), as with a single carrier queue.

KPIs and costs use the measured periods ``t >= warmup``; the flow totals
(received, served, ...) cover all periods so the unit balance closes:

    initial on-hand + received = served + backorders filled + ending on-hand + expired
    demand = served + lost + new backorders
    initial on-order + ordered = received + ending on-order

References
----------
S. Axsäter, *Inventory Control*, 3rd ed., Springer, 2015, ch. 5 (order of events).
L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed.,
Wiley, 2019, sec. 4.3 (periodic review, costs on ending inventory level).
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields

import numpy as np

from optimization.policies import MAX_UNITS, ItemValueError, PolicyParams, check_items
from optimization.sim_engine import SimulationResult, _Inputs, _run

__all__ = [
    "CostParams",
    "InitialState",
    "SimulationResult",
    "simulate",
    "sample_lead_times",
]


def _arr(value, dtype=float) -> np.ndarray:
    out = np.array(value, dtype=dtype)
    out.setflags(write=False)
    return out


@dataclass(frozen=True)
class CostParams:
    """Unit costs per item, arrays broadcastable to the batch shape ``(..., n_items)``.

    Parameters
    ----------
    unit_cost : purchasing cost per unit ordered (charged when the order is placed).
    order_cost : fixed cost per order placed.
    holding_cost : per unit of ending on-hand per period.
    shortage_cost : per unit of demand not served from stock when it arrives
        (lost margin under lost sales, penalty per backordered unit otherwise).
    backorder_cost : per unit of ending backlog per period (the "p" of
        Snyder & Shen's periodic-review models).
    expiry_cost : per unit expired (typically the unit cost plus disposal).
    """

    unit_cost: np.ndarray = field(default_factory=lambda: _arr(0.0))
    order_cost: np.ndarray = field(default_factory=lambda: _arr(0.0))
    holding_cost: np.ndarray = field(default_factory=lambda: _arr(0.0))
    shortage_cost: np.ndarray = field(default_factory=lambda: _arr(0.0))
    backorder_cost: np.ndarray = field(default_factory=lambda: _arr(0.0))
    expiry_cost: np.ndarray = field(default_factory=lambda: _arr(0.0))

    def __post_init__(self) -> None:
        for f in fields(self):
            value = np.array(getattr(self, f.name), dtype=float)
            check_items(
                ~(np.isfinite(value) & (value >= 0)),
                value,
                f"cost {f.name} must be finite and >= 0",
                "use 0 for no cost",
            )
            value.setflags(write=False)
            object.__setattr__(self, f.name, value)


@dataclass(frozen=True)
class InitialState:
    """Stock at the start of period 0, arrays broadcastable to ``(..., n_items)``.

    Parameters
    ----------
    on_hand : units on hand (treated as fresh, age 0, for shelf-life items).
    backlog : units backordered (ignored for lost-sales items).
    pipeline : ndarray, shape (..., n_items, k), optional
        Units arriving at the start of periods 0..k-1 (already ordered). k must not
        exceed the largest lead time + 1.
    """

    on_hand: np.ndarray
    backlog: np.ndarray = field(default_factory=lambda: _arr(0.0))
    pipeline: np.ndarray | None = None

    def __post_init__(self) -> None:
        for name in ("on_hand", "backlog", "pipeline"):
            value = getattr(self, name)
            if value is None:
                continue
            value = np.array(value, dtype=float)
            check_items(
                ~(np.isfinite(value) & (value >= 0)), value, f"initial {name} must be finite and >= 0", "use 0 for none"
            )
            check_items(
                value > MAX_UNITS, value, f"initial {name} must be at most {MAX_UNITS:.0e} units", "check the units"
            )
            value.setflags(write=False)
            object.__setattr__(self, name, value)


def sample_lead_times(mean, std, shape: tuple[int, ...], rng: np.random.Generator) -> np.ndarray:
    """Integer lead times per order: normal(mean, std) rounded and clipped at 0.

    Parameters
    ----------
    mean, std : array_like, broadcastable to ``shape[:-1]`` (per item)
    shape : (..., n_items, n_periods), one lead time per period's potential order
    rng : numpy Generator

    Returns
    -------
    ndarray of int, shape ``shape``

    Examples
    --------
    >>> lt = sample_lead_times([2.0], [0.0], (1, 4), np.random.default_rng(0))
    >>> lt.tolist()
    [[2, 2, 2, 2]]
    """
    mean = np.asarray(mean, dtype=float)[..., None]
    std = np.asarray(std, dtype=float)[..., None]
    if (mean < 0).any() or (std < 0).any():
        raise ValueError("lead-time mean and std must be >= 0")
    return np.clip(np.rint(rng.normal(mean, std, size=shape)), 0, None).astype(np.int64)


# --------------------------------------------------------------------------- core


def _flat(value, batch, dtype=float) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=dtype), batch).reshape(-1)  # a view when it can be (read-only)


def _totals_and_min(d: np.ndarray, rows: int = 2048) -> tuple[np.ndarray, float]:
    """Sum over the last axis and overall minimum, by row chunks (the min re-reads each one from cache)."""
    if not d.flags.c_contiguous or d.size == 0:
        return d.sum(axis=-1), (d.min() if d.size else 0.0)
    flat = d.reshape(-1, d.shape[-1])
    total, lowest = np.empty(flat.shape[0]), np.inf
    for a in range(0, flat.shape[0], rows):
        chunk = flat[a : a + rows]
        np.sum(chunk, axis=-1, out=total[a : a + rows])
        lowest = min(lowest, chunk.min())  # a NaN may be dropped here, but it makes its row's total NaN
    return total.reshape(d.shape[:-1]), lowest


def _validate_demand(demand) -> tuple[np.ndarray, np.ndarray]:
    """Demand as float and its total per item over all periods (the engine reuses it)."""
    d = np.asarray(demand, dtype=float)
    if d.ndim < 2:
        raise ValueError(f"demand must have shape (..., n_items, n_periods); got shape {d.shape}")
    total, lowest = _totals_and_min(d)
    # no mask arrays: a NaN or negative fails lowest >= 0, a +inf makes its item's total inf
    if lowest >= 0 and np.isfinite(total).all() and (total.size == 0 or total.max() <= MAX_UNITS * d.shape[-1]):
        return d, total
    for bad, what, fix in (
        (~np.isfinite(d), "demand must be finite (no NaN/inf)", "fill or drop those periods"),
        (d < 0, "demand must be >= 0", "record returns separately"),
        (d > MAX_UNITS, f"demand must be at most {MAX_UNITS:.0e} units per period", "check the units"),
    ):
        if bad.any():
            first = np.argwhere(bad)[0]
            item = np.ravel_multi_index(tuple(first[:-1]), d.shape[:-1])
            raise ItemValueError(f"{what} (first in period {first[-1]})", [item], [d[tuple(first)]], fix)
    return d, total


def _prepare(
    demand, policy, lead_time, costs, initial, sampled_lead_times, orders_cross, shelf_life, warmup
) -> _Inputs:
    if not isinstance(policy, PolicyParams):
        raise TypeError(f"policy must be PolicyParams, got {type(policy).__name__}")
    d, demand_total = _validate_demand(demand)
    T = d.shape[-1]
    costs = costs if costs is not None else CostParams()
    if not isinstance(costs, CostParams):
        raise TypeError(f"costs must be CostParams, got {type(costs).__name__}")
    shapes = [d.shape[:-1], policy.shape, np.shape(lead_time)] + [getattr(costs, f.name).shape for f in fields(costs)]
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError as exc:
        raise ValueError(
            f"demand items {d.shape[:-1]}, policy {policy.shape} and lead_time "
            f"{np.shape(lead_time)} do not broadcast to one (..., n_items) shape"
        ) from exc
    if not 0 <= warmup < T:
        raise ValueError(f"warmup must be in [0, {T}), got {warmup}")
    lead = np.asarray(lead_time)
    if lead.dtype.kind not in "iu":
        lead = lead.astype(float)
        check_items(
            ~np.isfinite(lead) | (np.mod(lead, 1) != 0),
            lead,
            "lead_time must be whole periods",
            "round it to a whole number of periods",
        )
    if sampled_lead_times is not None:
        lt = np.asarray(sampled_lead_times)
        if lt.shape[-1] != T or (lt < 0).any():
            raise ValueError(f"sampled_lead_times must be >= 0 with last axis n_periods={T}, got shape {lt.shape}")
        lead_flat = np.broadcast_to(lt.astype(np.int64), batch + (T,)).reshape(-1, T)
    else:
        check_items(lead < 0, lead, "lead_time must be >= 0", "use 0 for same-period delivery")
        lead_flat = _flat(lead, batch, np.int64)
    shelf = _flat(0 if shelf_life is None else shelf_life, batch, np.int64)
    if (shelf < 0).any():
        raise ValueError("shelf_life must be >= 0 periods (0 = no expiry)")
    fixed = _flat(policy.is_fixed_quantity, batch, bool)
    s, S, Q = (_flat(v, batch) for v in (policy.reorder_level, policy.order_up_to, policy.order_quantity))
    if initial is None:
        initial = InitialState(on_hand=np.maximum(np.where(fixed, s + Q, S), 0.0).reshape(batch))
    if not isinstance(initial, InitialState):
        raise TypeError(f"initial must be InitialState, got {type(initial).__name__}")
    pipeline0 = np.zeros(batch + (0,)) if initial.pipeline is None else initial.pipeline
    k = pipeline0.shape[-1]
    pipeline0 = np.broadcast_to(pipeline0, batch + (k,)).reshape(int(np.prod(batch)), k)
    return _Inputs(
        batch=batch,
        demand=d,
        demand_total=demand_total,
        T=T,
        R=_flat(policy.review_period, batch, np.int64),
        s=s,
        S=S,
        Q=Q,
        fixed=fixed,
        moq=_flat(policy.moq, batch),
        mult=_flat(policy.order_multiple, batch),
        lost=_flat(policy.lost_sales, batch, bool),
        lead=lead_flat,
        cross=orders_cross,
        shelf=shelf,
        costs={f.name: _flat(getattr(costs, f.name), batch) for f in fields(costs)},
        on_hand0=_flat(initial.on_hand, batch).copy(),
        backlog0=np.where(_flat(policy.lost_sales, batch, bool), 0.0, _flat(initial.backlog, batch)),
        pipeline0=pipeline0,
        warmup=warmup,
    )


def simulate(
    demand,
    policy: PolicyParams,
    lead_time,
    *,
    costs: CostParams | None = None,
    initial: InitialState | None = None,
    sampled_lead_times=None,
    orders_cross: bool = True,
    shelf_life=None,
    warmup: int = 0,
    ids=None,
) -> SimulationResult:
    """Simulate inventory policies on demand paths, vectorised over items and batches.

    Parameters
    ----------
    demand : array_like, shape (..., n_items, n_periods)
        Demand per period (>= 0, no NaN): held-out actuals or sampled paths.
    policy : PolicyParams
        Batch shape broadcastable with ``demand.shape[:-1]``; a leading axis may
        hold candidate policies evaluated on the same demand.
    lead_time : int or array_like of int, shape (..., n_items)
        Fixed lead time in periods (>= 0). Sizes the pipeline when
        ``sampled_lead_times`` is given (pass its maximum or any value).
    costs : CostParams, optional
        Default all zero (KPIs only).
    initial : InitialState, optional
        Default: on-hand = S (order-up-to types) or s + Q (s_Q), nothing on order.
    sampled_lead_times : array_like of int, shape (..., n_items, n_periods), optional
        Lead time of an order placed in each period (see :func:`sample_lead_times`).
    orders_cross : bool, default True
        With sampled lead times, whether a later order may arrive before an earlier one.
    shelf_life : int or array_like of int, shape (..., n_items), optional
        Periods a unit can stay on hand (0 or None = no expiry). FIFO issuing.
    warmup : int, default 0
        Periods excluded from KPIs and costs (flows still cover them).
    ids : sequence of str, shape (n_items,), optional
        Item ids; input errors then name the offending items by id.

    Returns
    -------
    SimulationResult
        Arrays of shape ``(..., n_items)``.

    Raises
    ------
    ValueError
        Shapes that do not broadcast, bad warmup.
    ItemValueError
        (a ``ValueError``) NaN, negative or above-``MAX_UNITS`` demand, negative or
        fractional lead times, naming the items (by id when ``ids`` is given).
    TypeError
        ``policy``/``costs``/``initial`` of the wrong type.

    Examples
    --------
    >>> from optimization.policies import base_stock_policy
    >>> res = simulate([[1.0, 2.0, 0.0, 3.0]], base_stock_policy([3.0]), 1)
    >>> res.fill_rate.round(3).tolist()
    [1.0]
    """
    try:
        x = _prepare(demand, policy, lead_time, costs, initial, sampled_lead_times, orders_cross, shelf_life, warmup)
    except ItemValueError as exc:
        if ids is None:
            raise
        raise exc.named(ids) from None
    return _run(x)
