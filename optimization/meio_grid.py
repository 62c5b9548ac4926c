"""The discrete time grid shared by the exact GSM solvers.

Service times live on a grid of 1/d periods, d the smallest integer that puts
every processing time T_j and every finite maximum service time on the grid
(d = 1 for integer data; e.g. d = 20 for times like 1.05). The GSM minimises
a concave function of tau over a polytope whose vertices have S, SI and tau
at sums of T_j and s_j, i.e. on this grid, so restricting tau to the grid is
exact for concave safety-stock functions (Graves & Willems 2000, sec. 4), not
a truncation. Non-concave safety-stock tables are optimised over the grid.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from optimization.network import Network

__all__ = ["TimeGrid", "build_grid"]


@dataclass(frozen=True)
class TimeGrid:
    """Integer grid data for one network and one safety-stock model (grid units).

    Attributes
    ----------
    d : int
        Grid steps per period.
    T, s_max, si_min, si_max, M : ndarray of int (n_stages,)
        Processing time, largest useful outbound service time
        min(s_j, M_j), smallest inbound service time (external supplier's
        quote), largest inbound service time max(si_min, max_i M_i), and
        M_j = si_max + T_j (longest inbound path).
    offset : ndarray of int (n_stages + 1,)
        ``cost[offset[j] + t]`` is stage j's holding cost at tau = t grid units,
        t = 0..M_j.
    cost : ndarray of float
        h_j * safety_stock_j(t / d).
    """

    d: int
    T: np.ndarray
    s_max: np.ndarray
    si_min: np.ndarray
    si_max: np.ndarray
    M: np.ndarray
    offset: np.ndarray
    cost: np.ndarray

    def stage_cost(self, j: int) -> np.ndarray:
        """Holding cost of stage j for tau = 0..M_j grid units."""
        return self.cost[self.offset[j]:self.offset[j + 1]]


def build_grid(network: Network, model, max_denominator: int = 100) -> TimeGrid:
    """Put the network on its time grid and tabulate every stage's cost over tau.

    Parameters
    ----------
    network : Network
    model : SafetyStockModel
        Evaluated once, vectorised, on all (stage, tau) pairs.
    max_denominator : int, default 100
        Finest grid accepted (1/100 period).
    """
    d = network.time_denominator(max_denominator)
    T = np.rint(network.processing_time * d).astype(np.int64)
    si_min = np.rint(network.external_inbound * d).astype(np.int64)
    M = np.zeros(network.n_stages, dtype=np.int64)
    si_max = np.zeros(network.n_stages, dtype=np.int64)
    for j in range(network.n_stages):
        preds = network.predecessors(j)
        si_max[j] = max(si_min[j], M[preds].max() if preds.size else 0)
        M[j] = si_max[j] + T[j]
    smax = network.max_service_time
    s_cap = np.where(np.isfinite(smax), np.floor(np.where(np.isfinite(smax), smax, 0) * d + 1e-9), M)
    s_max = np.minimum(s_cap.astype(np.int64), M)
    counts = M + 1
    offset = np.concatenate([[0], np.cumsum(counts)])
    stage = np.repeat(np.arange(network.n_stages), counts)
    tau = np.arange(offset[-1]) - offset[stage]
    cost = network.holding_cost[stage] * model.safety_stock(stage, tau / d)
    return TimeGrid(d=d, T=T, s_max=s_max, si_min=si_min, si_max=si_max, M=M, offset=offset, cost=cost)
