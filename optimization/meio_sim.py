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

__all__ = ["replay_guaranteed_service"]


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
    seen = demand @ bom_multipliers(network).T.toarray()       # d_j(t) = sum_k Phi_jk d_k(t)
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
    return pd.DataFrame({
        "stage_id": list(network.stage_ids),
        "is_customer_facing": network.is_sink,
        "periods": valid.sum(axis=0),
        "csl": csl,
        "fill_rate": fill,
        "avg_on_hand": np.nanmean(np.where(valid, np.clip(inv, 0, None), np.nan), axis=0),
    })
