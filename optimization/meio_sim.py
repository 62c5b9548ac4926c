"""Replay a GSM solution on demand paths: achieved service of the base-stock policies.

Under the Guaranteed Service Model each stage j runs a base-stock policy with
level B_j and one-for-one replenishment; when every supplier keeps its
promise, stage j's net inventory at the end of period t is (Graves & Willems
2000, sec. 2)::

    I_j(t) = B_j - d_j(t - S_j - tau_j, t - S_j]

with d_j the demand stage j sees (its own plus Phi-weighted downstream
demand). This module replays that identity on sampled or held-out demand and
reports, per stage, how often the promise holds (I_j >= 0: the cycle service
level at customer-facing stages, "no expediting needed" upstream) and the fill
rate. Net replenishment times are rounded up to whole periods.

References
----------
S. C. Graves and S. P. Willems. Optimizing strategic safety stock placement in
supply chains. *M&SOM*, 2(1):68-83, 2000.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.gsm import GSMResult
from optimization.meio_demand import bom_multipliers
from optimization.network import Network

__all__ = ["replay_guaranteed_service", "replay_rolling_plans", "simulate_base_stock_network"]


def _window_sums(x: np.ndarray, length: np.ndarray, lag: np.ndarray) -> np.ndarray:
    """Per column j: sum of x over (t - lag_j - length_j, t - lag_j], NaN where the window is incomplete."""
    n_t, n = x.shape
    csum = np.vstack([np.zeros((1, n)), np.cumsum(x, axis=0)])
    t = np.arange(1, n_t + 1)[:, None]
    hi, lo = t - lag[None, :], t - lag[None, :] - length[None, :]
    ok = lo >= 0
    cols = np.arange(n)[None, :]
    out = csum[np.clip(hi, 0, n_t), cols] - csum[np.clip(lo, 0, n_t), cols]
    return np.where(ok, out, np.nan)


def replay_guaranteed_service(network: Network, result: GSMResult, demand: np.ndarray) -> pd.DataFrame:
    """Achieved service per stage when the GSM base-stock levels face ``demand``.

    Parameters
    ----------
    network : Network
    result : GSMResult
        From :func:`optimization.solve_gsm` or :func:`optimization.evaluate_service_times`.
    demand : ndarray (n_periods, n_stages)
        External demand per period at each stage (zeros for stages without
        external demand), columns in ``network.stage_ids`` order.

    Returns
    -------
    DataFrame
        stage_id, is_customer_facing, periods, csl (share of periods with
        I_j >= 0), fill_rate (share of the stage's demand served from stock),
        avg_on_hand.

    Raises
    ------
    ValueError
        ``demand`` has the wrong shape, negative or non-finite values.
    """
    demand = np.asarray(demand, dtype=float)
    if demand.ndim != 2 or demand.shape[1] != network.n_stages:
        raise ValueError(f"demand must have shape (n_periods, {network.n_stages}), got {demand.shape}")
    if not np.all(np.isfinite(demand)) or np.any(demand < 0):
        raise ValueError("demand must be finite and >= 0 (fill unknown periods before replaying)")
    seen = demand @ bom_multipliers(network).T.toarray()  # d_j(t) = sum_k Phi_jk d_k(t)
    tau = np.ceil(result.net_replenishment_time - 1e-9).astype(np.int64)
    lag = np.rint(result.service_time).astype(np.int64)
    inv = result.base_stock[None, :] - _window_sums(seen, tau, lag)
    period_demand = _window_sums(seen, np.ones_like(tau), lag)
    valid = ~np.isnan(inv)
    short = np.where(valid, np.clip(np.minimum(period_demand, -inv), 0, None), 0.0)
    dem = np.where(valid, period_demand, 0.0).sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        csl = np.where(valid, inv >= -1e-9, False).sum(axis=0) / valid.sum(axis=0)
        fill = np.where(dem > 0, 1 - short.sum(axis=0) / dem, 1.0)
    return pd.DataFrame(
        {
            "stage_id": list(network.stage_ids),
            "is_customer_facing": network.is_sink,
            "periods": valid.sum(axis=0),
            "csl": csl,
            "fill_rate": fill,
            "avg_on_hand": np.nanmean(np.where(valid, np.clip(inv, 0, None), np.nan), axis=0),
        }
    )


def replay_rolling_plans(
    network: Network, plans: list[GSMResult], starts: list[int], demand: np.ndarray, measure_from: int = 0
) -> pd.DataFrame:
    """Achieved service when the GSM plan is re-run periodically (rolling re-plan).

    Plan ``k`` is in force from period ``starts[k]`` until the next start (the
    first plan also before its start). Each period stage j orders up to the
    base-stock level B_j(t) in force: its inventory position is
    IP_j(t) = max(B_j(t), IP_j(t-1) - d_j(t)) (a lower level is reached by
    ordering nothing until demand has used the excess; nothing is returned),
    and under the guaranteed-service identity its net inventory is

        I_j(t) = IP_j(t - S_j - tau_j) - d_j(t - S_j - tau_j, t - S_j]

    with S_j, tau_j of the plan in force at t. With one plan this is
    :func:`replay_guaranteed_service` (IP_j = B_j throughout).

    Parameters
    ----------
    network : Network
    plans : list of GSMResult
        One per re-plan, each for ``network``.
    starts : list of int
        Period index at which each plan takes effect; strictly increasing.
    demand : ndarray (n_periods, n_stages)
        External demand per period, columns in ``network.stage_ids`` order.
    measure_from : int, default 0
        First period counted (e.g. the start of a hold-out).

    Returns
    -------
    DataFrame
        Same columns as :func:`replay_guaranteed_service`, over periods >= ``measure_from``.

    Raises
    ------
    ValueError
        Bad demand, ``plans``/``starts`` of different lengths or ``starts`` not increasing.
    """
    demand = np.asarray(demand, dtype=float)
    if demand.ndim != 2 or demand.shape[1] != network.n_stages:
        raise ValueError(f"demand must have shape (n_periods, {network.n_stages}), got {demand.shape}")
    if not np.all(np.isfinite(demand)) or np.any(demand < 0):
        raise ValueError("demand must be finite and >= 0 (fill unknown periods before replaying)")
    starts = np.asarray(starts, dtype=np.int64)
    if len(plans) == 0 or len(plans) != starts.size or np.any(np.diff(starts) <= 0):
        raise ValueError(
            f"give one start per plan, strictly increasing; got {len(plans)} plans, starts {starts.tolist()}"
        )
    n_t, n = demand.shape
    if not 0 <= measure_from < n_t:
        raise ValueError(f"measure_from must be in [0, {n_t}), got {measure_from}")
    seen = demand @ bom_multipliers(network).T.toarray()
    which = np.clip(np.searchsorted(starts, np.arange(n_t), side="right") - 1, 0, None)
    base = np.stack([p.base_stock for p in plans])[which]  # (n_t, n)
    tau_all = np.stack([np.ceil(p.net_replenishment_time - 1e-9) for p in plans]).astype(np.int64)[which]
    lag_all = np.stack([np.rint(p.service_time) for p in plans]).astype(np.int64)[which]
    position = np.empty((n_t + 1, n))  # row r = IP at the end of period r - 1
    position[0] = base[0]
    for t in range(n_t):
        position[t + 1] = np.maximum(base[t], position[t] - seen[t])
    csum = np.vstack([np.zeros((1, n)), np.cumsum(seen, axis=0)])
    t = np.arange(n_t)[:, None]
    hi = t - lag_all  # last period of the exposure window
    lo = hi - tau_all  # period whose end position covers it
    ok = (lo >= -1) & (t >= measure_from)
    cols = np.arange(n)[None, :]
    exposure = csum[np.clip(hi + 1, 0, n_t), cols] - csum[np.clip(lo + 1, 0, n_t), cols]
    inv = np.where(ok, position[np.clip(lo + 1, 0, n_t), cols] - exposure, np.nan)
    period_demand = np.where(ok & (hi >= 0), seen[np.clip(hi, 0, n_t - 1), cols], 0.0)
    short = np.where(ok, np.clip(np.minimum(period_demand, -np.nan_to_num(inv)), 0, None), 0.0)
    dem = period_demand.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        csl = np.where(ok, inv >= -1e-9, False).sum(axis=0) / ok.sum(axis=0)
        fill = np.where(dem > 0, 1 - short.sum(axis=0) / dem, 1.0)
        on_hand = np.nanmean(np.where(ok, np.clip(inv, 0, None), np.nan), axis=0)
    return pd.DataFrame(
        {
            "stage_id": list(network.stage_ids),
            "is_customer_facing": network.is_sink,
            "periods": ok.sum(axis=0),
            "csl": csl,
            "fill_rate": fill,
            "avg_on_hand": on_hand,
        }
    )


def simulate_base_stock_network(
    network: Network, result: GSMResult, demand: np.ndarray, measure_from: int = 0
) -> pd.DataFrame:
    """Multi-echelon base-stock simulation with late deliveries propagated downstream.

    Unlike :func:`replay_guaranteed_service`, no stage expedites: every stage
    starts with its base stock B_j on hand, orders one-for-one what its
    customers order (lot u = all orders received in period u), and ships lot u
    at its quoted due date u + S_j or, if stock is short, as soon as enough has
    been produced (first-in first-out, whole lots). A stage starts producing
    lot u when the last of its suppliers has shipped it (sources: after their
    external inbound service time) and adds it to stock T_j periods later, so
    an upstream shortage delays everything below it.

    Parameters
    ----------
    network : Network
    result : GSMResult
        Service times and base stocks (e.g. :func:`optimization.solve_gsm`).
    demand : ndarray (n_periods, n_stages)
        External demand per period, columns in ``network.stage_ids`` order.
    measure_from : int, default 0
        First period (lot) counted in the statistics (e.g. start of a hold-out).

    Returns
    -------
    DataFrame
        stage_id, is_customer_facing, lots (with demand), on_time (share of
        lots shipped by their due date: the cycle service level at
        customer-facing stages), fill_rate (share of units on time),
        avg_delay (periods, over late lots), unresolved_lots (still unshipped
        at the end of the horizon, left out of the shares), avg_on_hand.

    Raises
    ------
    ValueError
        Bad demand shape/values or ``measure_from`` outside the horizon.
    """
    demand = np.asarray(demand, dtype=float)
    if demand.ndim != 2 or demand.shape[1] != network.n_stages:
        raise ValueError(f"demand must have shape (n_periods, {network.n_stages}), got {demand.shape}")
    if not np.all(np.isfinite(demand)) or np.any(demand < 0):
        raise ValueError("demand must be finite and >= 0")
    n_t = demand.shape[0]
    if not 0 <= measure_from < n_t:
        raise ValueError(f"measure_from must be in [0, {n_t}), got {measure_from}")
    orders = demand @ bom_multipliers(network).T.toarray()  # lot sizes d_j(u)
    S = np.rint(result.service_time).astype(np.int64)
    T = np.ceil(network.processing_time - 1e-9).astype(np.int64)
    ext = np.ceil(network.external_inbound - 1e-9).astype(np.int64)
    lots = np.arange(n_t)
    never = np.iinfo(np.int64).max // 4
    ship = np.zeros((network.n_stages, n_t), dtype=np.int64)
    rows = []
    for j in range(network.n_stages):
        preds = network.predecessors(j)
        start = ship[preds].max(axis=0) if preds.size else lots + ext[j]
        done = start + T[j]
        produced = np.bincount(np.minimum(done, n_t), weights=orders[:, j], minlength=n_t + 1)[:n_t]
        available = result.base_stock[j] + np.cumsum(produced)
        due_qty = np.cumsum(orders[:, j])
        first = np.searchsorted(available, due_qty - 1e-9, side="left")
        ship[j] = np.where(first < n_t, np.maximum(first, lots + S[j]), never)
        late = ship[j] - (lots + S[j])
        # Lots still unshipped when the horizon ends are left out (their delay is unknown).
        sel = (lots >= measure_from) & (orders[:, j] > 0) & (ship[j] < never)
        on_time = late[sel] <= 0
        qty = orders[sel, j]
        shipped_cum = np.minimum(due_qty, available)  # FIFO units out by each period
        on_hand = available - np.concatenate([[0.0], shipped_cum[:-1]])
        rows.append(
            {
                "stage_id": network.stage_ids[j],
                "is_customer_facing": bool(network.is_sink[j]),
                "lots": int(sel.sum()),
                "on_time": float(on_time.mean()) if sel.any() else 1.0,
                "fill_rate": float(qty[on_time].sum() / qty.sum()) if qty.sum() > 0 else 1.0,
                "avg_delay": float(late[sel][~on_time].mean()) if (~on_time).any() else 0.0,
                "unresolved_lots": int(((lots >= measure_from) & (orders[:, j] > 0) & (ship[j] >= never)).sum()),
                "avg_on_hand": float(np.clip(on_hand[measure_from:], 0, None).mean()),
            }
        )
    return pd.DataFrame(rows)
