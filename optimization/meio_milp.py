"""Exact GSM on general acyclic networks: MILP with adaptive breakpoints (HiGHS).

The GSM (Graves & Willems 2000, problem P; Humair & Willems 2011 for general
acyclic networks) minimises sum_j c_j(tau_j) subject to::

    tau_j = SI_j + T_j - S_j >= 0,   SI_j >= S_i  for each edge i -> j,
    0 <= S_j <= s_j (customer-facing),  SI_j >= 0,

with c_j(tau) = h_j * safety stock_j(tau) concave. A concave function is
under-estimated by its piecewise-linear interpolation between breakpoints,
so a MILP with a few segments per stage (multiple-choice model: one binary per
segment, locally ideal) gives a lower bound, and its solution, costed with the
true c_j, an upper bound. Breakpoints are then added at the tau values of the
solution and the MILP re-solved; when every stage's tau is a breakpoint the
two bounds coincide and the solution is optimal (Magnanti, Shen, Shu, Simchi-
Levi & Teo 2006, "dynamic sloping"). Breakpoints stay on the integer time grid
of :mod:`optimization.meio_grid`; with every grid point as a breakpoint the
model is the exact full multiple-choice MILP, so the loop terminates.

References
----------
S. Humair and S. P. Willems. Optimizing strategic safety stock placement in
general acyclic networks. *Operations Research*, 59(3):781-787, 2011.

T. L. Magnanti, Z.-J. M. Shen, J. Shu, D. Simchi-Levi and C.-P. Teo. Inventory
placement in acyclic supply chain networks. *Operations Research Letters*,
34(2):228-238, 2006.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
from scipy import sparse
from scipy.optimize import Bounds, LinearConstraint, milp

from optimization.meio_grid import TimeGrid
from optimization.network import Network

__all__ = ["MilpOutcome", "repair_service_times", "solve_milp"]


@dataclass(frozen=True)
class MilpOutcome:
    """MILP answer in grid units: best S found, bounds and status."""

    S: np.ndarray
    upper_bound: float
    lower_bound: float
    optimal: bool
    iterations: int
    status: str

    @property
    def gap(self) -> float:
        """Relative gap (upper - lower) / upper (0 when proven optimal)."""
        return 0.0 if self.upper_bound <= 0 else max(self.upper_bound - self.lower_bound, 0.0) / self.upper_bound


def repair_service_times(network: Network, grid: TimeGrid, S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Make (S, SI, tau) consistent: SI_j = max_i S_i, S_j <= SI_j + T_j, integers.

    Never raises tau, so with non-decreasing costs the cost never rises.
    """
    S = np.clip(np.rint(S).astype(np.int64), 0, grid.s_max)
    SI = np.zeros_like(S)
    for j in range(network.n_stages):
        preds = network.predecessors(j)
        SI[j] = max(grid.si_min[j], S[preds].max() if preds.size else 0)
        S[j] = min(S[j], SI[j] + grid.T[j])
    return S, SI, SI + grid.T - S


def _true_cost(grid: TimeGrid, tau: np.ndarray) -> float:
    """sum_j c_j(tau_j) from the tabulated costs."""
    return float(grid.cost[grid.offset[:-1] + tau].sum())


@dataclass
class _Segments:
    """Flattened PWL segments of all costly stages."""

    stage: np.ndarray
    start: np.ndarray
    length: np.ndarray
    f0: np.ndarray
    slope: np.ndarray


def _segments(grid: TimeGrid, breaks: dict[int, np.ndarray]) -> _Segments:
    """Segments [b_{s-1}, b_s] with start value and slope, per stage (single point = length 0)."""
    parts = []
    for j, b in breaks.items():
        cost = grid.stage_cost(j)
        start = b[:-1] if b.size > 1 else b
        end = b[1:] if b.size > 1 else b
        length = end - start
        slope = np.where(length > 0, (cost[end] - cost[start]) / np.maximum(length, 1), 0.0)
        parts.append((np.full(start.size, j), start, length, cost[start], slope))
    cols = [np.concatenate([p[i] for p in parts]) if parts else np.zeros(0) for i in range(5)]
    return _Segments(cols[0].astype(np.int64), cols[1].astype(np.int64), cols[2].astype(np.int64), cols[3], cols[4])


def _model(network: Network, grid: TimeGrid, seg: _Segments, costly: np.ndarray):
    """Objective, constraints, bounds and integrality over x = [S, SI, z, w]."""
    n, m, k = network.n_stages, network.n_edges, seg.stage.size
    zb, wb = 2 * n, 2 * n + k
    row_of = np.full(n, -1)
    row_of[costly] = np.arange(costly.size)
    free = np.flatnonzero(row_of < 0)
    c_ = costly.size
    rows, cols, vals, lb, ub = [], [], [], [], []

    def add(r, cidx, v):
        rows.append(np.asarray(r)); cols.append(np.asarray(cidx)); vals.append(np.asarray(v, dtype=float))

    seg_row = row_of[seg.stage]
    add(seg_row, zb + np.arange(k), np.ones(k))                      # one segment per stage
    lb.append(np.ones(c_)); ub.append(np.ones(c_))
    r = c_ + np.arange(c_)                                            # SI - S - tau = -T
    add(r, n + costly, np.ones(c_)); add(r, costly, -np.ones(c_))
    add(c_ + seg_row, zb + np.arange(k), -seg.start); add(c_ + seg_row, wb + np.arange(k), -np.ones(k))
    lb.append(-grid.T[costly].astype(float)); ub.append(-grid.T[costly].astype(float))
    r = 2 * c_ + np.arange(k)                                         # w_s <= len_s z_s
    add(r, wb + np.arange(k), np.ones(k)); add(r, zb + np.arange(k), -seg.length)
    lb.append(np.full(k, -np.inf)); ub.append(np.zeros(k))
    r = 2 * c_ + k + np.arange(free.size)                             # free stages: tau >= 0
    add(r, n + free, np.ones(free.size)); add(r, free, -np.ones(free.size))
    lb.append(-grid.T[free].astype(float)); ub.append(np.full(free.size, np.inf))
    r = 2 * c_ + k + free.size + np.arange(m)                         # SI_j >= S_i
    add(r, n + network.edge_down, np.ones(m)); add(r, network.edge_up, -np.ones(m))
    lb.append(np.zeros(m)); ub.append(np.full(m, np.inf))
    shape = (2 * c_ + k + free.size + m, 2 * n + 2 * k)
    A = sparse.csr_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=shape)
    cost = np.concatenate([np.zeros(2 * n), seg.f0, seg.slope])
    integrality = np.concatenate([np.zeros(2 * n), np.ones(k), np.zeros(k)])
    bounds = Bounds(np.concatenate([np.zeros(n), grid.si_min, np.zeros(2 * k)]).astype(float),
                    np.concatenate([grid.s_max, grid.si_max, np.ones(k), seg.length]).astype(float))
    return cost, LinearConstraint(A, np.concatenate(lb), np.concatenate(ub)), bounds, integrality


def _initial_breaks(grid: TimeGrid, costly: np.ndarray) -> dict[int, np.ndarray]:
    """Start with the ends of each stage's tau range, 1 grid step and T_j (where service is immediate)."""
    lo = np.maximum(grid.T + grid.si_min - grid.s_max, 0)
    return {
        int(j): np.unique(np.clip([lo[j], lo[j] + 1, grid.T[j], grid.M[j]], lo[j], grid.M[j]))
        for j in costly
    }


def solve_milp(
    network: Network,
    grid: TimeGrid,
    time_limit: float = 600.0,
    rel_gap: float = 1e-6,
    max_iterations: int = 200,
) -> MilpOutcome:
    """Solve the GSM exactly by breakpoint refinement; S in grid units.

    Parameters
    ----------
    time_limit : float, default 600
        Seconds for the whole loop; on timeout the best solution is returned
        with ``optimal=False`` and its bounds.
    rel_gap : float, default 1e-6
        Stop when (upper - lower) / upper <= rel_gap.
    max_iterations : int, default 200

    Examples
    --------
    >>> out = solve_milp(net, build_grid(net, NormalDemandBound(net)))  # doctest: +SKIP
    """
    start = time.perf_counter()
    costly = np.flatnonzero([np.any(grid.stage_cost(j) > 0) for j in range(network.n_stages)])
    breaks = _initial_breaks(grid, costly)
    best_S, best_ub = repair_service_times(network, grid, np.zeros(network.n_stages))[0], np.inf
    lower, status, it = 0.0, "not started", 0
    for it in range(1, max_iterations + 1):
        left = time_limit - (time.perf_counter() - start)
        if left <= 0:
            status = "time limit"
            break
        seg = _segments(grid, breaks)
        cost, cons, bounds, integ = _model(network, grid, seg, costly)
        res = milp(cost, constraints=cons, integrality=integ, bounds=bounds,
                   options={"time_limit": left, "mip_rel_gap": rel_gap / 10, "disp": False})
        if res.x is None:
            status = f"HiGHS: {res.message}"
            break
        bound = float(getattr(res, "mip_dual_bound", res.fun) if res.status != 0 else res.fun)
        lower = max(lower, bound if np.isfinite(bound) else 0.0)
        S, _, tau = repair_service_times(network, grid, res.x[: network.n_stages])
        ub = _true_cost(grid, tau)
        if ub < best_ub:
            best_S, best_ub = S, ub
        if res.status != 0:
            status = f"HiGHS: {res.message}"
            break
        if best_ub - lower <= rel_gap * max(best_ub, 1e-12):
            return MilpOutcome(best_S, best_ub, lower, True, it, "optimal")
        added = 0
        for j in costly.tolist():
            b = breaks[j]
            if tau[j] not in b:
                breaks[j] = np.union1d(b, [tau[j]])
                added += 1
        if added == 0:
            # Solution already on breakpoints but the HiGHS bound is loose: tighten by refining all segments.
            for j in costly.tolist():
                b = breaks[j]
                breaks[j] = np.union1d(b, (b[:-1] + b[1:]) // 2)
    if best_ub - lower <= rel_gap * max(best_ub, 1e-12):
        return MilpOutcome(best_S, best_ub, lower, True, it, "optimal")
    return MilpOutcome(best_S, best_ub, lower, False, it, status if status != "not started" else "iteration limit")
