"""Time loop of the inventory simulator (see :mod:`optimization.simulator` for the model).

Everything here works on flattened state arrays of shape (m,), m = product of
the batch shape; only the loop over periods is Python. Fast paths (uniform
lead time, order-up-to only, R = 1, no lost sales, no shelf life) skip work
that does not apply; they compute the same numbers as the general path.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np

__all__ = ["SimulationResult"]

_EPS = 1e-9
#: Items per block: state arrays of this size stay in cache and avoid large temporaries.
_BLOCK = 12_288
#: Periods of demand the fast path copies time-major at once (a cache-friendly transpose).
_CHUNK = 16


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
        return self.cost_purchasing + self.cost_ordering + self.cost_holding + self.cost_shortage + self.cost_expiration


@dataclass
class _Inputs:
    """Validated, flattened inputs: every per-item array has shape (m,)."""

    batch: tuple[int, ...]
    demand: np.ndarray  # (..., n, T) broadcastable to batch + (T,)
    demand_total: np.ndarray  # (..., n) = demand.sum(axis=-1)
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


class _Recorder:
    """Per-period event arrays (m, T) for :func:`optimization.events.simulate_events`."""

    NAMES = (
        "received",
        "backorders_filled",
        "inventory_position",
        "ordered",
        "demand",
        "served",
        "shortage",
        "lost",
        "expired",
        "on_hand",
        "backlog",
        "on_order",
    )

    def __init__(self, m: int, T: int) -> None:
        self.data = {n: np.zeros((m, T)) for n in self.NAMES}

    def put(self, t: int, **values) -> None:
        for name, value in values.items():
            self.data[name][:, t] = value


def _consume_fifo(lots: np.ndarray, amount: np.ndarray) -> None:
    """Take ``amount`` per item from the oldest lots first (in place); lots[:, -1] is oldest."""
    rev = lots[:, ::-1]
    before = np.cumsum(rev, axis=1) - rev
    rev -= np.clip(amount[:, None] - before, 0.0, rev)


class _Policy:
    """Decision rule with the branches that apply to this portfolio decided once."""

    def __init__(self, x: _Inputs) -> None:
        self.x = x
        self.every_period = bool((x.R == 1).all())
        self.fixed = bool(x.fixed.any())
        self.rounding = bool(x.moq.any() or x.mult.any())
        self.up_to_is_trigger = bool((x.s == x.S).all()) and not self.fixed
        self.safe_q = np.where(x.fixed, x.Q, 1.0)
        self.safe_mult = np.where(x.mult > 0, x.mult, 1.0)

    def order(self, t: int, ip: np.ndarray) -> np.ndarray:
        """Order placed in period t per item (0 when none), rounded for MOQ and multiples."""
        x = self.x
        raw = x.S - ip
        if self.fixed:
            n_q = np.floor((x.s - ip) / self.safe_q) + 1.0
            raw = np.where(x.fixed, n_q * x.Q, raw)
        if self.up_to_is_trigger and self.every_period:
            q = np.where(raw > _EPS, raw, 0.0)  # IP <= S  <=>  S - IP >= 0
        else:
            trigger = ip <= x.s
            if not self.every_period:
                trigger &= t % x.R == 0
            q = np.where(trigger & (raw > _EPS), raw, 0.0)
        if self.rounding:
            pos = q > 0
            q = np.where(pos, np.maximum(q, x.moq), 0.0)
            q = np.where(pos & (x.mult > 0), np.ceil(q / self.safe_mult - _EPS) * self.safe_mult, q)
        return q


class _Pipeline:
    """Orders in transit: ring buffer (W, m) of arrivals by period."""

    def __init__(self, x: _Inputs) -> None:
        self.sampled = x.lead.ndim == 2
        max_lead = int(x.lead.max()) if x.lead.size else 0
        k = x.pipeline0.shape[1]
        if k > max_lead + 1:
            raise ValueError(
                f"initial pipeline covers {k} periods but the largest lead time is {max_lead}; "
                f"pass at most {max_lead + 1} columns"
            )
        m = x.pipeline0.shape[0]
        self.W = max_lead + 1
        self.ring = np.zeros((self.W, m))
        self.ring[:k] = x.pipeline0.T
        self.flat = self.ring.reshape(-1)
        self.cols = np.arange(m)
        self.uniform = (not self.sampled) and bool((x.lead == x.lead.flat[0]).all()) if x.lead.size else True
        self.lead, self.cross = x.lead, x.cross
        self.last_arrival = np.full(m, -1, dtype=np.int64)
        self.zero_lead = bool((x.lead == 0).any())

    def take(self, t: int) -> np.ndarray:
        """Remove and return what arrives in period t."""
        row = self.ring[t % self.W]
        arrived = row.copy()
        row[:] = 0.0
        return arrived

    def put(self, t: int, q: np.ndarray) -> None:
        """Ship orders placed in period t."""
        if self.uniform:
            self.ring[(t + int(self.lead.flat[0])) % self.W] += q
            return
        arrival = t + (self.lead[:, t] if self.sampled else self.lead)
        if not self.cross:
            arrival = np.maximum(arrival, self.last_arrival)
            self.last_arrival = np.where(q > 0, arrival, self.last_arrival)
        self.flat[(arrival % self.W) * self.ring.shape[1] + self.cols] += q  # distinct columns: += is safe


#: Array fields of :class:`SimulationResult` (all float, shape (m,) per block).
_ARRAYS = tuple(f.name for f in fields(SimulationResult) if f.name != "n_periods")
_SUMS = ("served", "filled", "lost", "ordered", "received", "expired", "n_orders", "oh_sum", "bo_sum", "ready", "unmet")


def _run(x: _Inputs, recorder: _Recorder | None = None, fast: bool = True) -> SimulationResult:
    """Simulate in blocks of items (items are independent); ``fast`` allows the fast path."""
    m, T = x.on_hand0.shape[0], x.T
    demand_rows = x.demand.reshape(-1, T)
    total_rows = x.demand_total.reshape(-1)
    row_of = np.broadcast_to(np.arange(demand_rows.shape[0]).reshape(x.demand.shape[:-1]), x.batch).reshape(m)
    identity = x.demand.shape[:-1] == x.batch
    out = None  # (n_fields, m): each block's result is copied in when it is done (no list of parts to merge)
    n_blocks = -(-m // _BLOCK)
    bounds = [m * i // n_blocks for i in range(n_blocks + 1)]  # equal blocks: no small last block
    for a, b in zip(bounds[:-1], bounds[1:]):
        rows = demand_rows[a:b] if identity else demand_rows[row_of[a:b]]
        block = _slice(x, a, b, rows, total_rows[a:b] if identity else total_rows[row_of[a:b]])
        block_recorder = None if recorder is None else _Recorder(b - a, T)
        if fast and block_recorder is None and _fast_path_applies(block):
            part = _run_fast(block)
        else:
            part = _run_block(block, block_recorder)
        if recorder is not None:
            for name, values in block_recorder.data.items():
                recorder.data[name][a:b] = values
        if b - a == m:
            return replace(part, **{name: getattr(part, name).reshape(x.batch) for name in _ARRAYS})
        if out is None:
            out = np.empty((len(_ARRAYS), m))
        for i, name in enumerate(_ARRAYS):
            out[i, a:b] = getattr(part, name)
    return SimulationResult(
        **{name: out[i].reshape(x.batch) for i, name in enumerate(_ARRAYS)}, n_periods=part.n_periods
    )


def _slice(x: _Inputs, a: int, b: int, demand: np.ndarray, demand_total: np.ndarray) -> _Inputs:
    """Items a..b-1 of the flattened inputs as a 1-D batch."""
    return replace(
        x,
        batch=(b - a,),
        demand=demand,
        demand_total=demand_total,
        R=x.R[a:b],
        s=x.s[a:b],
        S=x.S[a:b],
        Q=x.Q[a:b],
        fixed=x.fixed[a:b],
        moq=x.moq[a:b],
        mult=x.mult[a:b],
        lost=x.lost[a:b],
        lead=x.lead[a:b],
        shelf=x.shelf[a:b],
        costs={k: v[a:b] for k, v in x.costs.items()},
        on_hand0=x.on_hand0[a:b],
        backlog0=x.backlog0[a:b],
        pipeline0=x.pipeline0[a:b],
    )


def _fast_path_applies(x: _Inputs) -> bool:
    """Order-up-to every period, one fixed lead time >= 1, backorders, no shelf life, no rounding."""
    return (
        x.lead.ndim == 1
        and x.lead.size > 0
        and bool((x.lead == x.lead[0]).all())
        and int(x.lead[0]) >= 1
        and bool((x.R == 1).all())
        and not x.fixed.any()
        and bool((x.s == x.S).all())
        and not (x.moq.any() or x.mult.any())
        and not x.lost.any()
        and not (x.shelf > 0).any()
    )


def _run_fast(x: _Inputs) -> SimulationResult:
    """Base-stock / (1, S) with backorders: the same events, in place, on net inventory.

    With backorders, on-hand = max(IL, 0) and backlog = max(-IL, 0) for the net
    inventory IL, and arrivals ship backorders first, so IL is the only stock
    state. Receipts do not change IP = IL + on-order; ordering up to S sets it to
    max(IP, S) and demand lowers it by d, so IP is carried as state too and the
    order is max(IP, S) - IP, written straight into the ring slot of its arrival
    (with one lead time L, the slot written in t >= 1 is the one emptied in t - 1).
    Units served are max(IL, 0) before demand minus max(IL, 0) after it, so only
    the first sum is kept per period. Once every item has IP <= S (checked each
    chunk), max(IP, S) is S exactly and is not computed. Demand is copied
    time-major _CHUNK periods at a time, so the copy is read from cache. Orders,
    receipts, backorders filled and backlog sums follow from the balances at the
    end. Checked field by field against the general path.
    """
    m, T, L = x.on_hand0.shape[0], x.T, int(x.lead[0])
    W = L + 1
    ring = np.zeros((W, m))
    ring[: x.pipeline0.shape[1]] = x.pipeline0.T
    demand_sum = x.demand_total
    demand_tm = np.empty((min(_CHUNK, T), m))  # time-major copy of a few periods: stays in cache
    il = x.on_hand0 - x.backlog0
    ip = il + ring.sum(axis=0)
    ip0 = ip.copy()
    S = np.ascontiguousarray(x.S)
    sums = {k: np.zeros(m) for k in ("pre_sum", "oh_sum", "il_sum")}
    # boolean counts in the smallest int that holds T (adding a bool array to uint8 is ~5x faster than to float64)
    count_type = next(c for c in (np.uint8, np.int16, np.int64) if T <= np.iinfo(c).max)
    counts = {k: np.zeros(m, dtype=count_type) for k in ("n_orders", "ready", "stockouts")}
    n_orders, ready, stockouts = counts["n_orders"], counts["ready"], counts["stockouts"]
    pre_sum, oh_sum, il_sum = sums["pre_sum"], sums["oh_sum"], sums["il_sum"]
    up_buf, on_hand, zero = np.empty(m), np.empty(m), np.zeros(m)
    capped = False
    flag = np.empty(m, dtype=bool)
    snapshot = None
    for t in range(T):
        if t == x.warmup and t > 0:
            snapshot = _fast_totals(x, t, sums, counts, il, ip, ip0, x.demand[:, :t].sum(axis=1))
        if t % _CHUNK == 0:
            c = min(_CHUNK, T - t)
            np.copyto(demand_tm[:c], x.demand[:, t : t + c].T)
            capped = capped or bool((ip <= S).all())  # once IP <= S, ordering up to S keeps it there
        il += ring[t % W]  # receive: arrivals ship the backlog first
        up = S if capped else np.maximum(ip, S, out=up_buf)  # decide: IP after ordering up to S
        slot = ring[(t + L) % W]
        if t == 0:  # the slot may hold the initial pipeline
            q = up - ip
            slot += q
        else:
            q = np.subtract(up, ip, out=slot)
        np.greater(q, _EPS, out=flag)  # residuals below _EPS move no real stock; not counted as orders
        np.add(n_orders, flag, out=n_orders)
        d = demand_tm[t % _CHUNK]  # serve
        np.subtract(up, d, out=ip)
        np.maximum(il, zero, out=on_hand)  # an array operand: ~2x faster than the scalar 0.0
        np.add(pre_sum, on_hand, out=pre_sum)
        np.subtract(il, d, out=il)
        np.add(il_sum, il, out=il_sum)  # close
        np.maximum(il, zero, out=on_hand)
        np.add(oh_sum, on_hand, out=oh_sum)
        np.greater(il, _EPS, out=flag)  # on-hand > _EPS  <=>  IL > _EPS
        np.add(ready, flag, out=ready)
        np.less(il, -_EPS, out=flag)
        np.add(stockouts, flag, out=stockouts)
    total = _fast_totals(x, T, sums, counts, il, ip, ip0, demand_sum)
    before = snapshot if snapshot is not None else {}
    measured = {k: total[k] - before[k] if before else total[k] for k in _SUMS}
    on_order = sum(ring[(T + j) % W] for j in range(L))
    total["received"] = x.pipeline0.sum(axis=1) + total["ordered"] - on_order  # each order lands once
    stockouts = total["stockouts"] - before["stockouts"] if before else total["stockouts"]
    cycles = np.full(m, float(T - x.warmup))
    return _result(x, total, measured, stockouts, cycles, np.maximum(il, 0.0), np.maximum(-il, 0.0), on_order)


def _fast_totals(x: _Inputs, t: int, sums: dict, counts: dict, il, ip, ip0, demand) -> dict[str, np.ndarray]:
    """Flow totals over periods 0..t-1 of the fast path, from its sums and the stock balances."""
    m = il.shape[0]
    backlog = np.maximum(-il, 0.0)
    served = sums["pre_sum"] - sums["oh_sum"]  # served in a period = max(IL, 0) before demand - after
    out = {k: v.astype(float) for k, v in counts.items()}
    out |= {
        "served": served,
        "oh_sum": sums["oh_sum"].copy(),
        "bo_sum": sums["oh_sum"] - sums["il_sum"],  # sum of max(-IL, 0) = sum max(IL, 0) - sum IL
        "ordered": ip - ip0 + demand,  # IP moves only by +orders and -demand
        "filled": x.backlog0 + demand - served - backlog,  # backlog in = backlog out
        "unmet": demand - served,
        "lost": np.zeros(m),
        "expired": np.zeros(m),
        "received": np.zeros(m),
    }
    return out


class _Lots:
    """On-hand stock by age for the items with a shelf life (FIFO issue, expiry at the period's close).

    Only those items' lots are kept (``rows``): an item without a shelf life never expires
    anything, so its ages would be bookkeeping no result reads. Issuing from the lots is a
    cumulative sum over the ages per period, so a block where a few items are perishable
    pays for those few, not for every item (issue 14 follow-up: the whole block's lots were
    most of the policy step's simulation).
    """

    def __init__(self, x: _Inputs) -> None:
        self.rows = np.flatnonzero(x.shelf > 0)
        self.active = self.rows.size > 0
        n_ages = max(int(x.shelf.max()), 2) if self.active else 0
        shelf = x.shelf[self.rows]
        self.lots = np.zeros((self.rows.size, n_ages))
        if self.active:
            self.lots[:, 0] = x.on_hand0[self.rows]
        self.expire_age = (shelf - 1)[:, None] <= np.arange(n_ages)[None, :]
        self.expired = np.zeros(x.on_hand0.shape[0])

    def receive(self, q: np.ndarray) -> None:
        if self.active:
            self.lots[:, 0] += q[self.rows]

    def issue(self, served: np.ndarray) -> None:
        if self.active:
            _consume_fifo(self.lots, served[self.rows])

    def expire_and_age(self, zeros: np.ndarray) -> np.ndarray:
        """Units expiring at the close (removed), then every lot one period older."""
        if not self.active:
            return zeros
        lots = self.lots
        expired = self.expired.copy()
        expired[self.rows] = np.where(self.expire_age, lots, 0.0).sum(axis=1)
        lots[self.expire_age] = 0.0
        oldest = lots[:, -1] + lots[:, -2]
        lots[:, 1:-1] = lots[:, :-2].copy()
        lots[:, -1] = oldest
        lots[:, 0] = 0.0
        return expired


class _Cycles:
    """Replenishment cycles and those with a stockout (the CSL counts), after the warm-up."""

    def __init__(self, x: _Inputs, every_period: bool) -> None:
        m = x.on_hand0.shape[0]
        self.x, self.every_period = x, every_period
        self.stockout_cycles, self.cycles = np.zeros(m), np.zeros(m)
        self.flag = np.zeros(m, dtype=bool)

    def close(self, t: int, stockout: np.ndarray) -> None:
        if t < self.x.warmup:
            return
        if self.every_period:
            self.stockout_cycles += stockout
            self.cycles += 1.0
            return
        self.flag |= stockout
        cycle_end = ((t + 1) % self.x.R == 0) | (t == self.x.T - 1)
        self.stockout_cycles += cycle_end & self.flag
        self.cycles += cycle_end
        self.flag &= ~cycle_end


def _run_block(x: _Inputs, recorder: _Recorder | None = None) -> SimulationResult:
    """General path: every feature, one block of items (order of events in :func:`simulate`)."""
    m, T = x.on_hand0.shape[0], x.T
    policy, pipe, lots = _Policy(x), _Pipeline(x), _Lots(x)
    cycles = _Cycles(x, policy.every_period)
    demand_tm = np.ascontiguousarray(x.demand.T)  # time-major: one row per period
    any_lost, any_back = bool(x.lost.any()), bool((~x.lost).any())
    on_hand, backlog = x.on_hand0.copy(), x.backlog0.copy()
    on_order = x.pipeline0.sum(axis=1)
    acc = {k: np.zeros(m) for k in _SUMS}
    before_warmup = {k: np.zeros(m) for k in _SUMS}
    zeros = np.zeros(m)

    for t in range(T):
        if t == x.warmup and t > 0:
            before_warmup = {k: v.copy() for k, v in acc.items()}
        # 1. receive (orders due now; then ship the waiting backlog)
        arrived = pipe.take(t)
        on_order -= arrived
        on_hand += arrived
        lots.receive(arrived)
        filled = _fill_backlog(on_hand, backlog, lots) if any_back else zeros
        # 2. decide
        ip = on_hand - backlog + on_order
        q = policy.order(t, ip)
        pipe.put(t, q)
        on_order += q
        if pipe.zero_lead:  # L = 0: received at once, can serve this period's demand
            now = pipe.take(t)
            on_order -= now
            on_hand += now
            lots.receive(now)
            arrived = arrived + now
            if any_back:
                filled = filled + _fill_backlog(on_hand, backlog, lots)
        # 3. serve
        d = demand_tm[t]
        served = np.minimum(d, on_hand)
        on_hand -= served
        lots.issue(served)
        unmet = d - served
        lost_t = np.where(x.lost, unmet, 0.0) if any_lost else zeros
        if any_back:
            backlog += unmet - lost_t if any_lost else unmet
        # 4. close: expire, then age the lots
        expired = lots.expire_and_age(zeros)
        on_hand -= expired
        _accumulate(
            acc,
            served=served,
            filled=filled,
            ordered=q,
            received=arrived,
            on_hand=on_hand,
            unmet=unmet,
            expired=expired if lots.active else None,
            backlog=backlog if any_back else None,
            lost=lost_t if any_lost else None,
        )
        cycles.close(t, (backlog > _EPS) | (lost_t > _EPS) if any_lost else backlog > _EPS)
        if recorder is not None:
            recorder.put(
                t,
                received=arrived,
                backorders_filled=filled,
                inventory_position=ip,
                ordered=q,
                demand=d,
                served=served,
                shortage=unmet,
                lost=lost_t,
                expired=expired,
                on_hand=on_hand,
                backlog=backlog,
                on_order=on_order,
            )
    measured = {k: acc[k] - before_warmup[k] for k in _SUMS}
    return _result(x, acc, measured, cycles.stockout_cycles, cycles.cycles, on_hand, backlog, on_order)


def _accumulate(acc: dict, *, served, filled, ordered, received, on_hand, unmet, expired, backlog, lost) -> None:
    """Add one period to the running sums (features not in use pass None)."""
    acc["served"] += served
    acc["filled"] += filled
    acc["ordered"] += ordered
    acc["received"] += received
    acc["n_orders"] += ordered > 0
    acc["oh_sum"] += on_hand
    acc["unmet"] += unmet
    acc["ready"] += on_hand > _EPS
    if expired is not None:
        acc["expired"] += expired
    if backlog is not None:
        acc["bo_sum"] += backlog
    if lost is not None:
        acc["lost"] += lost


def _fill_backlog(on_hand: np.ndarray, backlog: np.ndarray, lots: _Lots) -> np.ndarray:
    """Ship waiting backorders from on-hand (in place, oldest lots first); return units shipped."""
    filled = np.minimum(backlog, on_hand)
    backlog -= filled
    on_hand -= filled
    lots.issue(filled)
    return filled


def _result(
    x: _Inputs, total: dict, measured: dict, stockout_cycles, cycles, on_hand, backlog, on_order
) -> SimulationResult:
    """Assemble KPIs (measured periods) and flows (all periods) into the result object."""
    n = x.T - x.warmup
    c = x.costs
    shape = x.batch
    demand_sum = x.demand_total
    demand_m = demand_sum if x.warmup == 0 else x.demand[:, x.warmup :].sum(axis=-1)

    def r(v) -> np.ndarray:
        return np.asarray(v, dtype=float).reshape(shape)

    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.where(demand_m > 0, measured["served"] / demand_m, np.nan)
        csl = np.where(cycles > 0, 1.0 - stockout_cycles / cycles, np.nan)
    return SimulationResult(
        csl=r(csl),
        fill_rate=r(fill),
        ready_rate=r(measured["ready"] / n),
        avg_on_hand=r(measured["oh_sum"] / n),
        avg_backorder=r(measured["bo_sum"] / n),
        avg_lost_sales=r(measured["lost"] / n),
        n_orders=r(measured["n_orders"]),
        cost_purchasing=r(c["unit_cost"] * measured["ordered"]),
        cost_ordering=r(c["order_cost"] * measured["n_orders"]),
        cost_holding=r(c["holding_cost"] * measured["oh_sum"]),
        cost_shortage=r(c["shortage_cost"] * measured["unmet"] + c["backorder_cost"] * measured["bo_sum"]),
        cost_expiration=r(c["expiry_cost"] * measured["expired"]),
        demand=r(demand_sum),
        served=r(total["served"]),
        backorders_filled=r(total["filled"]),
        new_backorders=r(total["unmet"] - total["lost"]),
        lost=r(total["lost"]),
        ordered=r(total["ordered"]),
        received=r(total["received"]),
        expired=r(total["expired"]),
        initial_on_hand=r(x.on_hand0),
        initial_backlog=r(x.backlog0),
        initial_on_order=r(x.pipeline0.sum(axis=1)),
        ending_on_hand=r(on_hand),
        ending_backlog=r(backlog),
        ending_on_order=r(on_order),
        n_periods=n,
    )
