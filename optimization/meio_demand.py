"""Demand propagation and safety-stock functions for the Guaranteed Service Model.

Every stage j of a network sees the external demand of the demand stages k it
serves, scaled by the bill-of-material multiplier Phi_jk (sum over all paths
j -> k of the product of edge quantities; Humair & Willems 2011, appendix
"demand propagation"). Mean demand is mu_j = sum_k Phi_jk mu_k. With normal
demand the demand bound at a demand stage is D_k(tau) = tau mu_k +
z_k sigma_k sqrt(tau) (Graves & Willems 2000, eq. 1) and at an internal stage
the excesses over the mean are pooled with exponent p (p = 2: square root of
the sum of squares, i.e. independent demand streams)::

    D_j(tau) - tau mu_j = ( sum_k (Phi_jk z_k sigma_k sqrt(tau))^p )^(1/p)
                        = sqrt(tau) * K_j.

A safety-stock model is any object with ``demand_mean`` (per stage, for base
stock levels) and ``safety_stock(stage, tau) -> ndarray`` evaluated
element-wise on integer stage indices and net replenishment times. Two are
provided: :class:`NormalDemandBound` (the classic model above) and
:class:`TabulatedSafetyStock` (per-stage values over tau, e.g. quantiles of
cumulative forecast error from backtests, so the optimiser stays independent
of the forecasting layer).

References
----------
S. C. Graves and S. P. Willems. Optimizing strategic safety stock placement in
supply chains. *M&SOM*, 2(1):68-83, 2000.

S. Humair and S. P. Willems. Optimizing strategic safety stock placement in
general acyclic networks. *Operations Research*, 59(3):781-787, 2011.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
from scipy import sparse

from optimization.network import Network, NetworkError

__all__ = [
    "NormalDemandBound",
    "SafetyStockModel",
    "TabulatedSafetyStock",
    "bom_multipliers",
    "error_quantile_table",
]


@runtime_checkable
class SafetyStockModel(Protocol):
    """What the GSM solver needs to size buffers."""

    demand_mean: np.ndarray

    def safety_stock(self, stage: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Safety stock of ``stage[i]`` for net replenishment time ``tau[i]``."""


def bom_multipliers(network: Network) -> sparse.csr_matrix:
    """Phi (n_stages x n_stages): units of stage j per unit of demand at stage k.

    Only columns of stages with external demand are non-zero; Phi_kk = 1 for a
    demand stage k. Computed in reverse topological order,
    Phi_j = e_j [j has demand] + sum_d phi_jd Phi_d.
    """
    n = network.n_stages
    has_demand = ~np.isnan(network.demand_mean) | np.array([u is not None for u in network.unique_ids])
    rows: list[dict[int, float]] = [{} for _ in range(n)]
    for j in range(n - 1, -1, -1):
        row = rows[j]
        if has_demand[j]:
            row[j] = 1.0
        lo, hi = network.succ_indptr[j], network.succ_indptr[j + 1]
        for d, q in zip(network.succ_indices[lo:hi].tolist(), network.succ_qty[lo:hi].tolist()):
            for k, v in rows[d].items():
                row[k] = row.get(k, 0.0) + q * v
    indptr = np.concatenate([[0], np.cumsum([len(r) for r in rows])])
    indices = np.fromiter((k for r in rows for k in r), dtype=np.int64, count=indptr[-1])
    data = np.fromiter((v for r in rows for v in r.values()), dtype=float, count=indptr[-1])
    return sparse.csr_matrix((data, indices, indptr), shape=(n, n))


@dataclass(frozen=True)
class NormalDemandBound:
    """Normal demand bound D(tau) = tau mu + K sqrt(tau), pooled upstream with exponent p.

    Parameters
    ----------
    network : Network
        Demand stages need ``demand_mean`` and ``demand_std``.
    safety_factor : float or None
        z used where a demand stage has no ``safety_factor`` of its own
        (stage values win). ``None`` requires every demand stage to carry z.

    Attributes
    ----------
    demand_mean : ndarray (n_stages,)
        mu_j = sum_k Phi_jk mu_k.
    excess_factor : ndarray (n_stages,)
        K_j, so that safety stock = K_j sqrt(tau).

    Raises
    ------
    NetworkError
        A demand stage lacks mean, std or z (the message lists the ids).
    ValueError
        ``safety_factor`` negative or not finite.

    Examples
    --------
    >>> model = NormalDemandBound(net, safety_factor=1.645)  # doctest: +SKIP
    >>> model.safety_stock(np.array([0]), np.array([4.0]))  # doctest: +SKIP
    """

    network: Network
    safety_factor: float | None = None
    demand_mean: np.ndarray = field(init=False, repr=False)
    excess_factor: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        net = self.network
        if self.safety_factor is not None and not (np.isfinite(self.safety_factor) and self.safety_factor >= 0):
            raise ValueError(
                f"safety_factor must be a finite number >= 0 (z of the demand bound, e.g. 1.645 for 95 %), "
                f"got {self.safety_factor!r}"
            )
        phi = bom_multipliers(net)
        demand = np.unique(phi.indices)
        mu, sigma, z = net.demand_mean[demand], net.demand_std[demand], net.safety_factor[demand].copy()
        if self.safety_factor is not None:
            z = np.where(np.isnan(z), float(self.safety_factor), z)
        missing = [net.stage_ids[k] for k, bad in zip(demand, np.isnan(mu) | np.isnan(sigma) | np.isnan(z)) if bad]
        if missing:
            raise NetworkError(
                f"demand stages {missing[:10]} lack demand_mean, demand_std or safety_factor; "
                "fill them or pass safety_factor=, or use a TabulatedSafetyStock from forecast errors"
            )
        col = np.zeros(net.n_stages)
        col[demand] = mu
        mean = phi @ col
        col[demand] = z * sigma
        p = net.risk_pool
        pooled = phi.copy()
        with np.errstate(over="ignore"):  # overflow -> inf, reported as NonFiniteCostError by build_grid
            pooled.data = np.abs(pooled.data * col[pooled.indices]) ** np.repeat(p, np.diff(pooled.indptr))
            excess = np.asarray(pooled.sum(axis=1)).ravel() ** (1.0 / p)
        object.__setattr__(self, "demand_mean", mean)
        object.__setattr__(self, "excess_factor", excess)

    def safety_stock(self, stage: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """K_j sqrt(tau) (zero at tau <= 0)."""
        tau = np.asarray(tau, dtype=float)
        return self.excess_factor[stage] * np.sqrt(np.maximum(tau, 0.0))


@dataclass(frozen=True)
class TabulatedSafetyStock:
    """Safety stock per stage given on a tau grid, linearly interpolated.

    Use it to size buffers from forecast-error quantiles: ``table[j, t]`` is
    the safety stock stage j needs to cover its cumulative forecast error over
    ``taus[t]`` periods at the target service (e.g. the service quantile of
    the backtest errors of the demand it serves). Beyond the last tau the
    value grows with sqrt(tau / last tau) (documented extrapolation).

    Parameters
    ----------
    taus : ndarray (n_tau,)
        Increasing, starting at 0.
    table : ndarray (n_stages, n_tau)
        Non-negative; rows should be non-decreasing in tau.
    demand_mean : ndarray (n_stages,)
        Mean demand per period at each stage (for base-stock levels).

    Raises
    ------
    ValueError
        Shapes disagree, taus do not start at 0 or do not increase, or values are negative.
    """

    taus: np.ndarray
    table: np.ndarray
    demand_mean: np.ndarray

    def __post_init__(self) -> None:
        taus = np.asarray(self.taus, dtype=float)
        table = np.asarray(self.table, dtype=float)
        mean = np.asarray(self.demand_mean, dtype=float)
        if taus.ndim != 1 or taus.size < 2 or taus[0] != 0 or np.any(np.diff(taus) <= 0):
            raise ValueError(f"taus must be increasing, start at 0 and have >= 2 values; got {taus[:5]}")
        if table.shape != (mean.size, taus.size):
            raise ValueError(f"table must have shape ({mean.size}, {taus.size}), got {table.shape}")
        if np.any(~np.isfinite(table)) or np.any(table < 0):
            raise ValueError("table values must be finite and >= 0 (safety stock in units)")
        if np.any(np.diff(table, axis=1) < -1e-9):
            raise ValueError("table rows must be non-decreasing in tau (more time never needs less stock)")
        for name, value in (("taus", taus), ("table", table), ("demand_mean", mean)):
            value.flags.writeable = False
            object.__setattr__(self, name, value)

    def safety_stock(self, stage: np.ndarray, tau: np.ndarray) -> np.ndarray:
        """Interpolate row ``stage[i]`` at ``tau[i]`` (sqrt extrapolation beyond the grid)."""
        stage = np.asarray(stage, dtype=np.int64)
        tau = np.maximum(np.asarray(tau, dtype=float), 0.0)
        last = self.taus[-1]
        t = np.minimum(tau, last)
        pos = np.clip(np.searchsorted(self.taus, t, side="right") - 1, 0, self.taus.size - 2)
        lo, hi = self.taus[pos], self.taus[pos + 1]
        w = (t - lo) / (hi - lo)
        val = (1 - w) * self.table[stage, pos] + w * self.table[stage, pos + 1]
        return np.where(tau > last, self.table[stage, -1] * np.sqrt(tau / last), val)


def error_quantile_table(
    network: Network,
    errors: np.ndarray,
    quantile: float,
    max_tau: int,
    demand_mean: np.ndarray | None = None,
) -> TabulatedSafetyStock:
    """Safety stock over tau from the empirical quantile of cumulative forecast errors.

    For each stage j the per-period error series it sees is aggregated first,
    e_j(t) = sum_k Phi_jk e_k(t) over the demand stages k it serves, so that
    correlation between downstream series is kept (no independence assumption);
    the safety stock for tau periods is the ``quantile`` of the rolling
    tau-period sums of e_j, floored at 0 and made non-decreasing in tau.

    Parameters
    ----------
    network : Network
    errors : ndarray (n_periods, n_stages)
        Per-period errors (actual - forecast, e.g. from rolling-origin backtests
        of the forecasting layer) at each stage's external demand; zeros for
        stages without external demand. Columns in ``network.stage_ids`` order.
    quantile : float in (0, 1)
        Cycle-service target.
    max_tau : int
        Largest tau tabulated (>= 1); beyond it the table grows with sqrt(tau).
    demand_mean : ndarray (n_stages,), optional
        External mean demand per period per stage (for base-stock levels);
        propagated upstream with Phi. Default: zeros.

    Returns
    -------
    TabulatedSafetyStock

    Raises
    ------
    ValueError
        Shapes disagree, errors are not finite, quantile outside (0, 1),
        fewer periods than ``max_tau`` + 1.
    """
    errors = np.asarray(errors, dtype=float)
    n = network.n_stages
    if errors.ndim != 2 or errors.shape[1] != n:
        raise ValueError(f"errors must have shape (n_periods, {n}), got {errors.shape}")
    if not np.all(np.isfinite(errors)):
        raise ValueError("errors must be finite; drop or fill periods without a backtest forecast")
    if not 0 < quantile < 1:
        raise ValueError(f"quantile must be in (0, 1), got {quantile!r}")
    if max_tau < 1 or errors.shape[0] <= max_tau:
        raise ValueError(f"need more than max_tau={max_tau} periods of errors, got {errors.shape[0]}")
    phi = bom_multipliers(network)
    seen = np.asarray(phi @ errors.T).T  # (n_periods, n_stages)
    csum = np.vstack([np.zeros((1, n)), np.cumsum(seen, axis=0)])
    taus = np.arange(max_tau + 1, dtype=float)
    table = np.zeros((n, max_tau + 1))
    for tau in range(1, max_tau + 1):
        sums = csum[tau:] - csum[:-tau]
        table[:, tau] = np.quantile(sums, quantile, axis=0)
    table = np.maximum.accumulate(np.maximum(table, 0.0), axis=1)
    mean = np.zeros(n) if demand_mean is None else phi @ np.asarray(demand_mean, dtype=float)
    return TabulatedSafetyStock(taus, table, mean)
