"""Exact GSM on general acyclic networks: MILP with staircases and adaptive breakpoints (HiGHS).

The GSM (Graves & Willems 2000, problem P; Humair & Willems 2011 for general
acyclic networks) minimises sum_j c_j(tau_j) subject to::

    tau_j = SI_j + T_j - S_j >= 0,   SI_j >= S_i  for each edge i -> j,
    0 <= S_j <= s_j (customer-facing),  SI_j >= external SI_j,

with c_j(tau) = h_j * safety stock_j(tau), concave for the normal bound. Two
exact devices, both on the integer time grid of :mod:`optimization.meio_grid`:

1. Staircases. Where only S_j varies (sources: SI_j fixed) or only SI_j
   varies (customer-facing stages with s_j = 0), c_j is a function of one
   integer variable and is linear in staircase binaries a_j,t = [S_j >= t]
   or b_j,t = [SI_j >= t]. On edges between the two kinds the coupling
   a_i,t <= b_k,t is a closure (totally unimodular) system, so the relaxation
   is tight; this is what solves Willems chain 34 (1,148 parts feeding 53
   demand stages). Used where at least half of a stage's edges are such.
2. Adaptive breakpoints for every other stage: the piecewise-linear
   interpolation of a concave c_j between breakpoints under-estimates it, so
   a MILP with a few segments per stage (multiple-choice model, one binary per
   segment) gives a lower bound, and its solution, costed exactly, an upper
   bound; breakpoints are added at the solution's tau and the MILP re-solved
   until the bounds meet (Magnanti, Shen, Shu, Simchi-Levi & Teo 2006). With
   every grid point a breakpoint the model is the full multiple-choice MILP,
   so the loop terminates.

References
----------
S. C. Graves and S. P. Willems. Optimizing strategic safety stock placement in
supply chains. *M&SOM*, 2(1):68-83, 2000.

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
    found: bool = True
    """False when HiGHS returned no feasible solution (S is then the node-by-node plan S = 0)."""

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


class _Rows:
    """Accumulates sparse constraint rows (COO) with their bounds."""

    def __init__(self) -> None:
        self.r, self.c, self.v, self.lb, self.ub, self.n = [], [], [], [], [], 0

    def add(self, cols: list, vals: list, lb, ub) -> None:
        """Add rows: ``cols[i]``/``vals[i]`` are equal-length arrays, one entry per new row."""
        size = len(cols[0]) if cols else len(np.atleast_1d(lb))
        rows = self.n + np.arange(size)
        for cidx, v in zip(cols, vals):
            self.r.append(rows)
            self.c.append(np.asarray(cidx, dtype=np.int64))
            self.v.append(np.broadcast_to(np.asarray(v, dtype=float), (size,)))
        self.lb.append(np.broadcast_to(np.asarray(lb, dtype=float), (size,)))
        self.ub.append(np.broadcast_to(np.asarray(ub, dtype=float), (size,)))
        self.n += size

    def constraint(self, n_cols: int) -> LinearConstraint:
        """The assembled ``LinearConstraint``."""
        A = sparse.csr_matrix(
            (np.concatenate(self.v), (np.concatenate(self.r), np.concatenate(self.c))), shape=(self.n, n_cols)
        )
        return LinearConstraint(A, np.concatenate(self.lb), np.concatenate(self.ub))


@dataclass(frozen=True)
class _Layout:
    """Column layout: S, SI, staircases a (S_j >= t) and b (SI_j >= t), then segments z, w."""

    n: int
    a_off: np.ndarray
    b_off: np.ndarray
    a0: int
    b0: int
    z0: int
    k: int

    @property
    def size(self) -> int:
        return self.z0 + 2 * self.k


def staircase_stages(network: Network, grid: TimeGrid) -> tuple[np.ndarray, np.ndarray]:
    """Which stages get exact staircase costs: (a_use, b_use) boolean masks.

    A source-like stage (only S varies) gets S-staircase binaries a_j,t = [S_j >= t]
    and a stage with S fixed (only SI varies) gets b_j,t = [SI_j >= t] when at
    least half of their edges join the two kinds: there the per-t coupling
    a_i,t <= b_k,t makes the LP relaxation (nearly) integral -- it is a
    closure problem, totally unimodular. Elsewhere staircases only add
    binaries to a chord-weak relaxation, so those stages keep PWL segments.
    """
    kind = stage_kinds(grid)
    n = network.n_stages
    up, down = network.edge_up, network.edge_down
    strong = (kind[up] == _S_ONLY) & (kind[down] == _SI_ONLY)
    out_deg, in_deg = np.bincount(up, minlength=n), np.bincount(down, minlength=n)
    a_use = (kind == _S_ONLY) & (out_deg > 0) & (2 * np.bincount(up[strong], minlength=n) >= out_deg)
    b_use = (kind == _SI_ONLY) & (in_deg > 0) & (2 * np.bincount(down[strong], minlength=n) >= in_deg)
    return a_use, b_use


def _layout(network: Network, grid: TimeGrid, k: int) -> _Layout:
    """Columns: S, SI, staircases a_j,t (t = 1..s_max_j) and b_j,t (t = si_min_j + 1..si_max_j), z, w."""
    n = grid.T.size
    a_use, b_use = staircase_stages(network, grid)
    a_len = np.where(a_use, grid.s_max, 0)
    b_len = np.where(b_use, grid.si_max - grid.si_min, 0)
    a_off = np.concatenate([[0], np.cumsum(a_len)])
    b_off = np.concatenate([[0], np.cumsum(b_len)])
    a0 = 2 * n
    b0 = a0 + a_off[-1]
    return _Layout(n, a_off, b_off, a0, b0, b0 + b_off[-1], k)


def _staircase_rows(rows: _Rows, lay: _Layout, grid: TimeGrid) -> None:
    """S_j = sum_t a_jt, SI_j = si_min_j + sum_t b_jt, both staircases non-increasing in t."""
    n = lay.n
    for off, base, var0, shift in ((lay.a_off, lay.a0, 0, np.zeros(n)), (lay.b_off, lay.b0, n, grid.si_min)):
        length = np.diff(off)
        has = np.flatnonzero(length > 0)
        owner = np.repeat(has, length[has])
        cols = base + np.arange(off[-1])
        rows_of = np.searchsorted(has, owner)
        r0 = rows.n
        rows.add([var0 + has], [1.0], shift[has], shift[has])
        rows.r.append(r0 + rows_of)
        rows.c.append(cols)
        rows.v.append(-np.ones(cols.size))
        step = np.flatnonzero(np.diff(owner) == 0)  # consecutive t of the same stage
        rows.add([cols[step + 1], cols[step]], [1.0, -1.0], -np.inf, 0.0)


def _edge_rows(rows: _Rows, lay: _Layout, network: Network, grid: TimeGrid) -> None:
    """SI_k >= S_i, aggregated and per t (a_i,t <= b_k,t): the per-t form keeps the LP tight."""
    up, down = network.edge_up, network.edge_down
    rows.add([lay.n + down, up], [1.0, -1.0], 0.0, np.inf)
    a_cols, b_cols = [], []
    a_len, b_len = np.diff(lay.a_off), np.diff(lay.b_off)
    for i, k in zip(up.tolist(), down.tolist()):
        if a_len[i] == 0 or b_len[k] == 0:
            continue
        t = np.arange(grid.si_min[k] + 1, min(grid.s_max[i], grid.si_max[k]) + 1)
        a_cols.append(lay.a0 + lay.a_off[i] + t - 1)
        b_cols.append(lay.b0 + lay.b_off[k] + t - grid.si_min[k] - 1)
    if a_cols:
        a_cols, b_cols = np.concatenate(a_cols), np.concatenate(b_cols)
        rows.add([a_cols, b_cols], [1.0, -1.0], -np.inf, 0.0)


def _staircase_costs(lay: _Layout, grid: TimeGrid, kind: np.ndarray, cost: np.ndarray) -> float:
    """Exact linear costs for stages with S or SI fixed; returns the constant part."""
    const = 0.0
    for j in range(lay.n):
        f = grid.stage_cost(j)
        base = grid.si_min[j] + grid.T[j]
        if lay.b_off[j + 1] > lay.b_off[j]:  # S_j fixed: tau = SI_j + T_j, increments of f over SI
            g = f[base : grid.M[j] + 1]
            cost[lay.b0 + lay.b_off[j] : lay.b0 + lay.b_off[j + 1]] = np.diff(g)
            const += g[0]
        elif lay.a_off[j + 1] > lay.a_off[j]:  # SI_j fixed: tau = base - S_j, savings as S grows
            h = f[base - np.arange(grid.s_max[j] + 1)]
            cost[lay.a0 + lay.a_off[j] : lay.a0 + lay.a_off[j + 1]] = np.diff(h)
            const += h[0]
        elif kind[j] == _FIXED:
            const += f[base]
    return const


_FIXED, _S_ONLY, _SI_ONLY, _BOTH = 0, 1, 2, 3


def stage_kinds(grid: TimeGrid) -> np.ndarray:
    """0: S and SI fixed, 1: only S varies (sources), 2: only SI varies (S_j = 0), 3: both vary."""
    return (grid.s_max > 0).astype(int) + 2 * (grid.si_max > grid.si_min).astype(int)


def _model(network: Network, grid: TimeGrid, seg: _Segments, costly: np.ndarray):
    """Objective (+ constant), constraints, bounds and integrality.

    Stages whose S or SI is fixed get exact linear costs on staircase binaries;
    only stages where both vary (``costly``) use the PWL segments z, w.
    """
    n, k = network.n_stages, seg.stage.size
    lay = _layout(network, grid, k)
    kind = stage_kinds(grid)
    rows = _Rows()
    _staircase_rows(rows, lay, grid)
    _edge_rows(rows, lay, network, grid)
    zc, wc = lay.z0 + np.arange(k), lay.z0 + k + np.arange(k)
    if costly.size:
        row_of = np.full(n, -1)
        row_of[costly] = np.arange(costly.size)
        seg_row = row_of[seg.stage]
        r0 = rows.n
        rows.add([], [], np.ones(costly.size), np.ones(costly.size))  # one segment per stage
        rows.r.append(r0 + seg_row)
        rows.c.append(zc)
        rows.v.append(np.ones(k))
        r0 = rows.n  # SI - S - sum(start z + w) = -T
        rows.add([n + costly, costly], [1.0, -1.0], -grid.T[costly], -grid.T[costly])
        rows.r += [r0 + seg_row, r0 + seg_row]
        rows.c += [zc, wc]
        rows.v += [-seg.start.astype(float), -np.ones(k)]
        rows.add([wc, zc], [np.ones(k), -seg.length.astype(float)], -np.inf, 0.0)
    stair = (np.diff(lay.a_off) > 0) | (np.diff(lay.b_off) > 0)
    free = np.setdiff1d(np.flatnonzero(~stair & (kind != _FIXED)), costly)
    rows.add([n + free, free], [1.0, -1.0], -grid.T[free], np.inf)  # tau >= 0
    cost = np.zeros(lay.size)
    const = _staircase_costs(lay, grid, kind, cost)
    cost[zc], cost[wc] = seg.f0, seg.slope
    integrality = np.zeros(lay.size)
    integrality[lay.a0 : lay.z0 + k] = 1
    lower = np.zeros(lay.size)
    lower[n : 2 * n] = grid.si_min
    upper = np.ones(lay.size)
    upper[:n], upper[n : 2 * n], upper[lay.z0 + k :] = grid.s_max, grid.si_max, seg.length
    return cost, const, rows.constraint(lay.size), Bounds(lower, upper), integrality


def _initial_breaks(grid: TimeGrid, costly: np.ndarray) -> dict[int, np.ndarray]:
    """Start with the ends of each stage's tau range, 1 grid step and T_j (where service is immediate)."""
    lo = np.maximum(grid.T + grid.si_min - grid.s_max, 0)
    return {int(j): np.unique(np.clip([lo[j], lo[j] + 1, grid.T[j], grid.M[j]], lo[j], grid.M[j])) for j in costly}


def solve_milp(
    network: Network,
    grid: TimeGrid,
    time_limit: float = 600.0,
    rel_gap: float = 1e-4,
    max_iterations: int = 200,
) -> MilpOutcome:
    """Solve the GSM exactly by breakpoint refinement; S in grid units.

    Parameters
    ----------
    time_limit : float, default 600
        Seconds for the whole loop; on timeout the best solution is returned
        with ``optimal=False`` and its bounds.
    rel_gap : float, default 1e-4
        Stop when (upper - lower) / upper <= rel_gap.
    max_iterations : int, default 200

    Examples
    --------
    >>> out = solve_milp(net, build_grid(net, NormalDemandBound(net)))  # doctest: +SKIP
    """
    start = time.perf_counter()
    kind = stage_kinds(grid)
    a_use, b_use = staircase_stages(network, grid)
    pwl = (kind != _FIXED) & ~a_use & ~b_use
    costly = np.flatnonzero([pwl[j] and np.any(grid.stage_cost(j) > 0) for j in range(network.n_stages)])
    breaks = _initial_breaks(grid, costly)
    best_S, best_ub = repair_service_times(network, grid, np.zeros(network.n_stages))[0], np.inf
    lower, status, it, found = 0.0, "not started", 0, False
    for it in range(1, max_iterations + 1):
        left = time_limit - (time.perf_counter() - start)
        if left <= 0:
            status = "time limit"
            break
        seg = _segments(grid, breaks)
        cost, const, cons, bounds, integ = _model(network, grid, seg, costly)
        res = milp(
            cost,
            constraints=cons,
            integrality=integ,
            bounds=bounds,
            options={"time_limit": left, "mip_rel_gap": rel_gap / 10, "disp": False},
        )
        if res.x is None:
            status = f"HiGHS: {res.message}"
            break
        dual = getattr(res, "mip_dual_bound", None)
        bound = const + float(res.fun if dual is None or not np.isfinite(dual) and res.status == 0 else dual)
        lower = max(lower, bound if np.isfinite(bound) else 0.0)
        found = True
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
    if not found:
        best_ub = _true_cost(grid, repair_service_times(network, grid, best_S)[2])
    if found and best_ub - lower <= rel_gap * max(best_ub, 1e-12):
        return MilpOutcome(best_S, best_ub, lower, True, it, "optimal")
    status = status if status != "not started" else ("time limit" if it <= 1 else "iteration limit")
    return MilpOutcome(best_S, best_ub, lower, False, it, status, found)
