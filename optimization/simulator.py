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

from optimization.policies import PolicyParams

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
            if not np.all(np.isfinite(value)) or (value < 0).any():
                raise ValueError(f"cost {f.name} must be finite and >= 0, got {value.ravel()[:5]}")
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
            if not np.all(np.isfinite(value)) or (value < 0).any():
                raise ValueError(f"initial {name} must be finite and >= 0, got {value.ravel()[:5]}")
            value.setflags(write=False)
            object.__setattr__(self, name, value)


@dataclass(frozen=True)
class SimulationResult:
    """Per-item KPIs, costs and unit flows; every array has the batch shape ``(..., n_items)``.

    KPI definitions (measured periods t >= warmup):

    - ``csl``: share of review cycles (blocks of R periods) without a stockout; a
      period is a stockout when it ends with a backlog or loses a sale;
    - ``fill_rate``: units served from stock on arrival / demand (NaN without demand);
    - ``ready_rate``: share of periods ending with on-hand > 0;
    - ``avg_on_hand``, ``avg_backorder``, ``avg_lost_sales``: per-period means of
      ending on-hand, ending backlog and units lost;
    - ``n_orders``: orders placed; ``cost_*``: totals over the measured periods.

    Flow totals (all periods) satisfy the balances of the module docstring.
    """

    csl: np.ndarray
    fill_rate: np.ndarray
    ready_rate: np.ndarray
    avg_on_hand: np.ndarray
    avg_backorder: np.ndarray
    avg_lost_sales: np.ndarray
    n_orders: np.ndarray
    cost_purchasing: np.ndarray
    cost_ordering: np.ndarray
    cost_holding: np.ndarray
    cost_shortage: np.ndarray
    cost_expiration: np.ndarray
    demand: np.ndarray
    served: np.ndarray
    backorders_filled: np.ndarray
    new_backorders: np.ndarray
    lost: np.ndarray
    ordered: np.ndarray
    received: np.ndarray
    expired: np.ndarray
    initial_on_hand: np.ndarray
    initial_backlog: np.ndarray
    initial_on_order: np.ndarray
    ending_on_hand: np.ndarray
    ending_backlog: np.ndarray
    ending_on_order: np.ndarray
    n_periods: int

    @property
    def cost_total(self) -> np.ndarray:
        """Sum of the five cost types per item."""
        return (self.cost_purchasing + self.cost_ordering + self.cost_holding
                + self.cost_shortage + self.cost_expiration)


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


@dataclass
class _Inputs:
    """Validated, flattened inputs: every per-item array has shape (m,)."""

    batch: tuple[int, ...]
    demand: np.ndarray  # (..., n, T) broadcastable to batch + (T,)
    T: int
    R: np.ndarray
    s: np.ndarray
    S: np.ndarray
    Q: np.ndarray
    fixed: np.ndarray
    moq: np.ndarray
    mult: np.ndarray
    lost: np.ndarray
    lead: np.ndarray  # (m,) fixed, or (m, T) sampled
    cross: bool
    shelf: np.ndarray  # (m,) int, 0 = no expiry
    costs: dict[str, np.ndarray]
    on_hand0: np.ndarray
    backlog0: np.ndarray
    pipeline0: np.ndarray  # (m, k)
    warmup: int


def _flat(value, batch, dtype=float) -> np.ndarray:
    return np.broadcast_to(np.asarray(value, dtype=dtype), batch).ravel()


def _validate_demand(demand) -> np.ndarray:
    d = np.asarray(demand, dtype=float)
    if d.ndim < 2:
        raise ValueError(f"demand must have shape (..., n_items, n_periods); got shape {d.shape}")
    if not np.all(np.isfinite(d)):
        item = np.argwhere(~np.isfinite(d))[0].tolist()
        raise ValueError(f"demand contains NaN/inf (first at index {item}); fill or drop those periods")
    if (d < 0).any():
        item = np.argwhere(d < 0)[0].tolist()
        raise ValueError(f"demand must be >= 0 (first negative at index {item})")
    return d


def _prepare(demand, policy, lead_time, costs, initial, sampled_lead_times, orders_cross,
             shelf_life, warmup) -> _Inputs:
    if not isinstance(policy, PolicyParams):
        raise TypeError(f"policy must be PolicyParams, got {type(policy).__name__}")
    d = _validate_demand(demand)
    T = d.shape[-1]
    costs = costs if costs is not None else CostParams()
    if not isinstance(costs, CostParams):
        raise TypeError(f"costs must be CostParams, got {type(costs).__name__}")
    shapes = [d.shape[:-1], policy.shape, np.shape(lead_time)] + [
        getattr(costs, f.name).shape for f in fields(costs)]
    try:
        batch = np.broadcast_shapes(*shapes)
    except ValueError as exc:
        raise ValueError(f"demand items {d.shape[:-1]}, policy {policy.shape} and lead_time "
                         f"{np.shape(lead_time)} do not broadcast to one (..., n_items) shape") from exc
    if not 0 <= warmup < T:
        raise ValueError(f"warmup must be in [0, {T}), got {warmup}")
    lead = np.asarray(lead_time)
    if lead.dtype.kind not in "iu" and not np.all(np.mod(lead, 1) == 0):
        raise ValueError(f"lead_time must be whole periods, got {lead.ravel()[:5]}")
    if sampled_lead_times is not None:
        lt = np.asarray(sampled_lead_times)
        if lt.shape[-1] != T or (lt < 0).any():
            raise ValueError(f"sampled_lead_times must be >= 0 with last axis n_periods={T}, "
                             f"got shape {lt.shape}")
        lead_flat = np.broadcast_to(lt.astype(np.int64), batch + (T,)).reshape(-1, T)
    else:
        if (lead < 0).any():
            raise ValueError(f"lead_time must be >= 0, got {lead.ravel()[:5]}")
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
        batch=batch, demand=d, T=T, R=_flat(policy.review_period, batch, np.int64), s=s, S=S, Q=Q,
        fixed=fixed, moq=_flat(policy.moq, batch), mult=_flat(policy.order_multiple, batch),
        lost=_flat(policy.lost_sales, batch, bool), lead=lead_flat, cross=orders_cross, shelf=shelf,
        costs={f.name: _flat(getattr(costs, f.name), batch) for f in fields(costs)},
        on_hand0=_flat(initial.on_hand, batch).copy(),
        backlog0=np.where(_flat(policy.lost_sales, batch, bool), 0.0, _flat(initial.backlog, batch)),
        pipeline0=pipeline0, warmup=warmup,
    )


def _order_quantity(x: _Inputs, ip: np.ndarray, review: np.ndarray) -> np.ndarray:
    """Order placed this period per item (0 when none), rounded for MOQ and multiples."""
    trigger = review & (ip <= x.s)
    if x.fixed.any():
        n_q = np.floor((x.s - ip) / np.where(x.fixed, x.Q, 1.0)) + 1.0
        raw = np.where(x.fixed, n_q * x.Q, x.S - ip)
    else:
        raw = x.S - ip
    q = np.where(trigger & (raw > 1e-9), raw, 0.0)
    if x.moq.any() or x.mult.any():
        pos = q > 0
        q = np.where(pos, np.maximum(q, x.moq), 0.0)
        safe = np.where(x.mult > 0, x.mult, 1.0)
        q = np.where(pos & (x.mult > 0), np.ceil(q / safe - 1e-9) * safe, q)
    return q


def _consume_fifo(lots: np.ndarray, amount: np.ndarray) -> None:
    """Take ``amount`` per item from the oldest lots first (in place); lots[:, -1] is oldest."""
    rev = lots[:, ::-1]
    before = np.cumsum(rev, axis=1) - rev
    rev -= np.clip(amount[:, None] - before, 0.0, rev)


class _Recorder:
    """Per-period event arrays (m, T) for :func:`optimization.events.simulate_events`."""

    NAMES = ("received", "backorders_filled", "inventory_position", "ordered", "demand", "served",
             "shortage", "lost", "expired", "on_hand", "backlog", "on_order")

    def __init__(self, m: int, T: int) -> None:
        self.data = {n: np.zeros((m, T)) for n in self.NAMES}

    def put(self, t: int, **values: np.ndarray) -> None:
        for name, value in values.items():
            self.data[name][:, t] = value


def _run(x: _Inputs, recorder: _Recorder | None = None) -> SimulationResult:
    """The time loop; state arrays have shape (m,) with m = prod(batch)."""
    m, T = x.on_hand0.shape[0], x.T
    sampled = x.lead.ndim == 2
    max_lead = int(x.lead.max()) if x.lead.size else 0
    W = max(max_lead, x.pipeline0.shape[1] - 1) + 1
    if x.pipeline0.shape[1] > max_lead + 1:
        raise ValueError(f"initial pipeline covers {x.pipeline0.shape[1]} periods but the largest lead "
                         f"time is {max_lead}; pass at most {max_lead + 1} columns")
    pipe = np.zeros((m, W))
    pipe[:, : x.pipeline0.shape[1]] = x.pipeline0
    rows = np.arange(m)
    shelf_items = x.shelf > 0
    use_lots = bool(shelf_items.any())
    n_ages = max(int(x.shelf.max()), 2) if use_lots else 0
    lots = np.zeros((m, n_ages))
    if use_lots:
        lots[:, 0] = x.on_hand0
    expire_age = np.where(shelf_items, x.shelf - 1, n_ages + 1)[:, None] <= np.arange(n_ages)[None, :]
    any_lost, any_back = bool(x.lost.any()), bool((~x.lost).any())
    zero_lead = (x.lead == 0).any()
    last_arrival = np.full(m, -1, dtype=np.int64)

    on_hand, backlog = x.on_hand0.copy(), x.backlog0.copy()
    on_order = x.pipeline0.sum(axis=1)
    acc = {k: np.zeros(m) for k in (
        "demand", "served", "filled", "new_back", "lost", "ordered", "received", "expired",
        "n_orders", "oh_sum", "bo_sum", "lost_m", "ready", "stockout_cycles", "cycles",
        "c_purch", "c_order", "c_short", "c_expire", "demand_m", "served_m")}
    cycle_flag = np.zeros(m, dtype=bool)
    demand_view = x.demand

    def receive(slot: int) -> tuple[np.ndarray, np.ndarray]:
        nonlocal on_hand, backlog, on_order
        arrived = pipe[:, slot].copy()
        pipe[:, slot] = 0.0
        on_order -= arrived
        on_hand += arrived
        if use_lots:
            lots[:, 0] += arrived
        filled = np.minimum(backlog, on_hand) if any_back else np.zeros(m)
        if any_back:
            backlog -= filled
            on_hand -= filled
            if use_lots:
                _consume_fifo(lots, filled)
        return arrived, filled

    for t in range(T):
        measured = t >= x.warmup
        # 1. receive
        arrived, filled = receive(t % W)
        # 2. decide
        ip = on_hand - backlog + on_order
        q = _order_quantity(x, ip, t % x.R == 0)
        placed = q > 0
        lead_t = x.lead[:, t] if sampled else x.lead
        arrival = t + lead_t
        if not x.cross:
            arrival = np.maximum(arrival, last_arrival)
            last_arrival = np.where(placed, arrival, last_arrival)
        pipe[rows, arrival % W] += q  # rows are distinct, so fancy += is safe
        on_order += q
        if zero_lead:
            arrived0, filled0 = receive(t % W)
            arrived, filled = arrived + arrived0, filled + filled0
        # 3. serve
        d = np.broadcast_to(demand_view[..., t], x.batch).ravel()
        served = np.minimum(d, on_hand)
        on_hand -= served
        if use_lots:
            _consume_fifo(lots, served)
        unmet = d - served
        lost_t = np.where(x.lost, unmet, 0.0) if any_lost else np.zeros(m)
        if any_back:
            backlog += unmet - lost_t
        # 4. close: expire, charge, age
        if use_lots:
            expired = np.where(expire_age, lots, 0.0).sum(axis=1)
            lots[expire_age] = 0.0
            on_hand -= expired
            oldest = lots[:, -1] + lots[:, -2]  # items without shelf life pool in the last bucket
            lots[:, 1:-1] = lots[:, :-2].copy()
            lots[:, -1] = oldest
            lots[:, 0] = 0.0
            acc["expired"] += expired
        else:
            expired = None
        acc["demand"] += d
        acc["served"] += served
        acc["filled"] += filled
        acc["new_back"] += unmet - lost_t
        acc["lost"] += lost_t
        acc["ordered"] += q
        acc["received"] += arrived
        if measured:
            acc["n_orders"] += placed
            acc["oh_sum"] += on_hand
            acc["bo_sum"] += backlog
            acc["lost_m"] += lost_t
            acc["ready"] += on_hand > 1e-9
            acc["demand_m"] += d
            acc["served_m"] += served
            acc["c_purch"] += q
            acc["c_short"] += unmet
            if expired is not None:
                acc["c_expire"] += expired
            cycle_flag |= (backlog > 1e-9) | (lost_t > 1e-9)
            cycle_end = ((t + 1) % x.R == 0) | (t == T - 1)
            acc["stockout_cycles"] += cycle_end & cycle_flag
            acc["cycles"] += cycle_end
            cycle_flag &= ~cycle_end
        if recorder is not None:
            recorder.put(t, received=arrived, backorders_filled=filled, inventory_position=ip, ordered=q,
                         demand=d, served=served, shortage=unmet, lost=lost_t,
                         expired=0.0 if expired is None else expired, on_hand=on_hand, backlog=backlog,
                         on_order=on_order)
    return _result(x, acc, on_hand, backlog, on_order)


def _result(x: _Inputs, acc: dict, on_hand, backlog, on_order) -> SimulationResult:
    n = x.T - x.warmup
    c = x.costs
    shape = x.batch

    def r(v) -> np.ndarray:
        return np.asarray(v, dtype=float).reshape(shape)

    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.where(acc["demand_m"] > 0, acc["served_m"] / acc["demand_m"], np.nan)
        csl = np.where(acc["cycles"] > 0, 1.0 - acc["stockout_cycles"] / acc["cycles"], np.nan)
    return SimulationResult(
        csl=r(csl), fill_rate=r(fill), ready_rate=r(acc["ready"] / n), avg_on_hand=r(acc["oh_sum"] / n),
        avg_backorder=r(acc["bo_sum"] / n), avg_lost_sales=r(acc["lost_m"] / n), n_orders=r(acc["n_orders"]),
        cost_purchasing=r(c["unit_cost"] * acc["c_purch"]),
        cost_ordering=r(c["order_cost"] * acc["n_orders"]),
        cost_holding=r(c["holding_cost"] * acc["oh_sum"]),
        cost_shortage=r(c["shortage_cost"] * acc["c_short"] + c["backorder_cost"] * acc["bo_sum"]),
        cost_expiration=r(c["expiry_cost"] * acc["c_expire"]),
        demand=r(acc["demand"]), served=r(acc["served"]), backorders_filled=r(acc["filled"]),
        new_backorders=r(acc["new_back"]), lost=r(acc["lost"]), ordered=r(acc["ordered"]),
        received=r(acc["received"]), expired=r(acc["expired"]), initial_on_hand=r(x.on_hand0),
        initial_backlog=r(x.backlog0), initial_on_order=r(x.pipeline0.sum(axis=1)),
        ending_on_hand=r(on_hand), ending_backlog=r(backlog), ending_on_order=r(on_order), n_periods=n,
    )


def simulate(demand, policy: PolicyParams, lead_time, *, costs: CostParams | None = None,
             initial: InitialState | None = None, sampled_lead_times=None, orders_cross: bool = True,
             shelf_life=None, warmup: int = 0) -> SimulationResult:
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

    Returns
    -------
    SimulationResult
        Arrays of shape ``(..., n_items)``.

    Raises
    ------
    ValueError
        NaN/negative demand, shapes that do not broadcast, negative lead times, bad warmup.
    TypeError
        ``policy``/``costs``/``initial`` of the wrong type.

    Examples
    --------
    >>> from optimization.policies import base_stock_policy
    >>> res = simulate([[1.0, 2.0, 0.0, 3.0]], base_stock_policy([3.0]), 1)
    >>> res.fill_rate.round(3).tolist()
    [1.0]
    """
    x = _prepare(demand, policy, lead_time, costs, initial, sampled_lead_times, orders_cross,
                 shelf_life, warmup)
    return _run(x)
