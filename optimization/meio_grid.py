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

__all__ = ["MAX_GRID_CELLS", "GridTooLargeError", "NonFiniteCostError", "TimeGrid", "build_grid", "grid_cells"]

MAX_GRID_CELLS = 20_000_000
"""Default cap on (stage, S, SI) cells a solve may tabulate (~160 MB of float64 per table)."""


class NonFiniteCostError(ValueError):
    """A stage's cost (holding cost x safety stock) is infinite or NaN; the message names the stages."""


class GridTooLargeError(ValueError):
    """The time grid would need more memory than allowed; the message names the stage and the fix."""


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
        return self.cost[self.offset[j] : self.offset[j + 1]]


def grid_cells(network: Network, d: int) -> tuple[float, float, int]:
    """Cells the solvers would allocate on a 1/d grid, computed in floats before any allocation.

    Returns (cost-table cells sum_j (M_j + 1), the largest tree-DP table max_j (s_j + 1)(SI_max_j + 1)
    -- the DP holds one such table at a time --, index of the stage with the longest inbound time M_j).
    """
    M = network.longest_inbound_time() * d
    si_max = M - network.processing_time * d
    smax = network.max_service_time * d
    s_max = np.minimum(np.where(np.isfinite(smax), smax, M), M)
    return float(np.sum(M + 1)), float(np.max((s_max + 1) * (si_max + 1))), int(np.argmax(M))


def _check_size(network: Network, d: int, max_cells: int) -> None:
    """Raise GridTooLargeError before allocating a grid larger than ``max_cells``."""
    table, dp, worst = grid_cells(network, d)
    if max(table, dp) > max_cells:
        longest = network.longest_inbound_time()[worst]
        raise GridTooLargeError(
            f"the GSM time grid needs {max(table, dp):.3g} cells (limit {max_cells:,}): stage "
            f"{network.stage_ids[worst]!r} has a longest inbound path of {longest:g} periods"
            + (f" on a 1/{d}-period grid" if d > 1 else "")
            + "; express processing and service times in a coarser unit (e.g. weeks instead of days) "
            "or raise max_grid_cells"
        )


def build_grid(network: Network, model, max_denominator: int = 100, max_cells: int = MAX_GRID_CELLS) -> TimeGrid:
    """Put the network on its time grid and tabulate every stage's cost over tau.

    Parameters
    ----------
    network : Network
    model : SafetyStockModel
        Evaluated once, vectorised, on all (stage, tau) pairs.
    max_denominator : int, default 100
        Finest grid accepted (1/100 period).
    max_cells : int, default MAX_GRID_CELLS
        Largest cost table or tree-DP table (cells) allowed; checked before allocating.

    Raises
    ------
    GridTooLargeError
        The grid would exceed ``max_cells`` (e.g. a processing time of 1e6 periods).
    NonFiniteCostError
        A stage's cost overflows (e.g. demand_std 1e300); the stages are named.
    """
    d = network.time_denominator(max_denominator)
    _check_size(network, d, max_cells)
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
    with np.errstate(over="ignore", invalid="ignore"):
        cost = network.holding_cost[stage] * model.safety_stock(stage, tau / d)
    bad = np.unique(stage[~np.isfinite(cost)])
    if bad.size:
        raise NonFiniteCostError(
            f"safety-stock cost is not finite at stages {[network.stage_ids[j] for j in bad[:10]]} "
            "(holding cost x safety stock overflows); check their demand_mean, demand_std, "
            "safety_factor and holding_cost for extreme values"
        )
    return TimeGrid(d=d, T=T, s_max=s_max, si_min=si_min, si_max=si_max, M=M, offset=offset, cost=cost)
