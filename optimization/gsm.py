"""Guaranteed Service Model: front door, configuration and result object.

Stage j quotes an outbound service time S_j, waits its inbound service time
SI_j = max_i S_i over its suppliers, and holds safety stock for its net
replenishment time tau_j = SI_j + T_j - S_j >= 0; customer-facing stages keep
S_j <= s_j. :func:`solve_gsm` minimises sum_j h_j * safety_stock_j(tau_j)
exactly: by the Graves & Willems (2000) dynamic programme on spanning trees
(:mod:`optimization.meio_tree`); on general acyclic networks by a Lagrangian
relaxation of the links outside a spanning forest, one multiplier per link and
period, each bound computed by the same DP and each DP plan repaired into a
feasible plan, with reduced-cost fixing (:mod:`optimization.meio_lagrange`), then
branch-and-bound on the violated relaxed links (:mod:`optimization.meio_bnb`), and,
if that ends unproven early, a MILP with adaptive breakpoints (:mod:`optimization.meio_milp`). Service times live
on the time grid of :mod:`optimization.meio_grid` (integers for integer data;
fractional processing times are kept on a 1/d grid, never truncated).

References
----------
S. C. Graves and S. P. Willems. Optimizing strategic safety stock placement in
supply chains. *M&SOM*, 2(1):68-83, 2000.

S. Humair and S. P. Willems. Optimizing strategic safety stock placement in
general acyclic networks. *Operations Research*, 59(3):781-787, 2011.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import Enum

import numpy as np
import pandas as pd

from optimization.meio_bnb import lagrangian_branch_and_bound
from optimization.meio_demand import NormalDemandBound, SafetyStockModel
from optimization.meio_grid import (
    MAX_GRID_CELLS,
    GridTooLargeError,
    NonFiniteCostError,
    TimeGrid,
    build_grid,
)
from optimization.meio_lagrange import spanning_tree_lagrangian
from optimization.meio_milp import repair_service_times, solve_milp
from optimization.meio_tree import solve_tree_dp
from optimization.network import Network

__all__ = [
    "GSMConfig",
    "GSMMethod",
    "GSMResult",
    "GSMTimeLimitError",
    "GridTooLargeError",
    "NonFiniteCostError",
    "evaluate_service_times",
    "solve_gsm",
]


class GSMTimeLimitError(RuntimeError):
    """The time limit ran out before the solver found any feasible plan of its own."""


class GSMMethod(str, Enum):
    """Exact solver to use.

    ``auto``: the tree DP on trees; elsewhere ``bnb`` and, if it ends without proof
    before the time limit, the MILP for the rest (best plan, best bound).
    ``bnb``: the Lagrangian with reduced-cost fixing, then branch-and-bound on the
    violated relaxed links (Humair & Willems 2011).
    ``lagrangian``: spanning-tree Lagrangian only (optimal when the bounds meet).
    ``milp``: the breakpoint MILP only (the reference).
    """

    AUTO = "auto"
    TREE_DP = "tree_dp"
    MILP = "milp"
    LAGRANGIAN = "lagrangian"
    BNB = "bnb"


@dataclass(frozen=True)
class GSMConfig:
    """Solver settings.

    Parameters
    ----------
    method : GSMMethod, default AUTO
    time_limit : float, default 600
        Seconds for the general-network solvers; on timeout the best solution
        comes back with ``optimal=False``, its gap and the proven bound.
    rel_gap : float, default 1e-4
        Relative optimality tolerance (HiGHS default; 0.01 %): a plan is
        reported optimal when (cost - bound) / cost <= rel_gap.
    max_time_denominator : int, default 100
        Finest time grid (1/100 period) accepted for fractional times.
    max_grid_cells : int, default 20,000,000
        Largest time-grid table a solve may allocate; checked before
        allocating (:class:`GridTooLargeError` names the stage).
    workers : int, default 1
        Processes for the branch-and-bound (``bnb`` / ``auto`` on general networks):
        the two children of a node are bounded side by side. The answer does not
        depend on it; e.g. ``os.cpu_count()`` on a machine of one's own.
    """

    method: GSMMethod = GSMMethod.AUTO
    time_limit: float = 600.0
    rel_gap: float = 1e-4
    max_time_denominator: int = 100
    max_grid_cells: int = MAX_GRID_CELLS
    workers: int = 1

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "method", GSMMethod(self.method))
        except ValueError:
            options = ", ".join(m.value for m in GSMMethod)
            raise ValueError(f"method must be one of {options}; got {self.method!r}") from None
        if not self.time_limit > 0:
            raise ValueError(f"time_limit must be > 0 seconds, got {self.time_limit!r}")
        if not 0 <= self.rel_gap < 1:
            raise ValueError(f"rel_gap must be in [0, 1), got {self.rel_gap!r}")
        if int(self.max_grid_cells) < 1:
            raise ValueError(f"max_grid_cells must be >= 1, got {self.max_grid_cells!r}")
        if int(self.max_time_denominator) < 1:
            raise ValueError(f"max_time_denominator must be >= 1, got {self.max_time_denominator!r}")
        if isinstance(self.workers, bool) or not isinstance(self.workers, int) or self.workers < 1:
            raise ValueError(f"workers must be an integer >= 1 (processes), got {self.workers!r}")


@dataclass(frozen=True)
class GSMResult:
    """Optimal service times and buffers, one entry per stage (topological order).

    Attributes
    ----------
    stage_ids : tuple of str
    service_time, inbound_service_time, net_replenishment_time : ndarray
        S_j, SI_j and tau_j in periods.
    safety_stock, base_stock, holding_cost : ndarray
        Units of safety stock, base-stock level mu_j tau_j + safety stock (the
        demand bound), and cost h_j * safety stock per period.
    max_service_binding : ndarray of bool
        S_j equals the customer's maximum service time.
    critical_supplier : tuple of (str or None)
        The supplier whose S sets SI_j (None for sources).
    total_cost : float
    optimal : bool
        Proven optimal (tree DP, or cost within ``rel_gap`` of the proven bound).
    gap : float
        Relative gap between the cost and the proven lower bound.
    bound : float
        Proven lower bound on the optimal cost (= total_cost when optimal;
        NaN for :func:`evaluate_service_times`).
    method : str
    solve_seconds : float
    """

    stage_ids: tuple[str, ...]
    service_time: np.ndarray
    inbound_service_time: np.ndarray
    net_replenishment_time: np.ndarray
    safety_stock: np.ndarray
    base_stock: np.ndarray
    holding_cost: np.ndarray
    max_service_binding: np.ndarray
    critical_supplier: tuple[str | None, ...]
    total_cost: float
    optimal: bool
    gap: float
    bound: float
    method: str
    solve_seconds: float

    def to_frame(self) -> pd.DataFrame:
        """One row per stage: stage_id, S, SI, tau, safety_stock, base_stock, holding_cost, binding flags."""
        return pd.DataFrame(
            {
                "stage_id": list(self.stage_ids),
                "service_time": self.service_time,
                "inbound_service_time": self.inbound_service_time,
                "net_replenishment_time": self.net_replenishment_time,
                "safety_stock": self.safety_stock,
                "base_stock": self.base_stock,
                "holding_cost": self.holding_cost,
                "max_service_binding": self.max_service_binding,
                "holds_stock": self.net_replenishment_time > 0,
                "critical_supplier": list(self.critical_supplier),
            }
        )

    def summary(self) -> dict:
        """Totals for reports and JSON: total_cost, n_stages, solve_seconds, optimal, gap, bound, method."""
        return {
            "total_cost": float(self.total_cost),
            "n_stages": len(self.stage_ids),
            "n_stocking_stages": int(np.sum(self.net_replenishment_time > 0)),
            "total_safety_stock": float(self.safety_stock.sum()),
            "solve_seconds": float(self.solve_seconds),
            "optimal": bool(self.optimal),
            "gap": float(self.gap) if np.isfinite(self.gap) else None,
            "bound": float(self.bound) if np.isfinite(self.bound) else None,
            "method": self.method,
        }


def _result(network, model, grid: TimeGrid, S, method, optimal, gap, bound, seconds) -> GSMResult:
    """Assemble the result from integer service times on the grid."""
    S, SI, tau = repair_service_times(network, grid, S)
    d = grid.d
    idx = np.arange(network.n_stages)
    ss = model.safety_stock(idx, tau / d)
    critical = []
    for j in range(network.n_stages):
        preds = network.predecessors(j)
        critical.append(network.stage_ids[preds[np.argmax(S[preds])]] if preds.size else None)
    with np.errstate(over="ignore", invalid="ignore"):
        base = np.asarray(model.demand_mean) * tau / d + ss
        holding = network.holding_cost * ss
        total = float(np.sum(holding))
    bad = ~(np.isfinite(ss) & np.isfinite(base) & np.isfinite(holding))
    if bad.any() or not np.isfinite(total):
        names = [network.stage_ids[j] for j in np.flatnonzero(bad)[:10]] or list(network.stage_ids[:10])
        raise NonFiniteCostError(
            f"GSM result is not finite at stages {names} (safety stock, base stock or cost overflows); "
            "check their demand_mean, demand_std and holding_cost for extreme values"
        )
    smax = network.max_service_time
    return GSMResult(
        stage_ids=network.stage_ids,
        service_time=S / d,
        inbound_service_time=SI / d,
        net_replenishment_time=tau / d,
        safety_stock=ss,
        base_stock=base,
        holding_cost=holding,
        max_service_binding=np.isfinite(smax) & np.isclose(S / d, smax),
        critical_supplier=tuple(critical),
        total_cost=total,
        optimal=optimal,
        gap=gap,
        bound=total if optimal and not np.isfinite(bound) else bound,
        method=method,
        solve_seconds=seconds,
    )


def solve_gsm(
    network: Network,
    model: SafetyStockModel | None = None,
    config: GSMConfig = GSMConfig(),
) -> GSMResult:
    """Optimal safety-stock placement under the Guaranteed Service Model.

    Parameters
    ----------
    network : Network
    model : SafetyStockModel, optional
        How much safety stock a stage needs for a net replenishment time;
        default :class:`NormalDemandBound` from the stages' mean, std and z.
        Safety stock must be non-decreasing in tau.
    config : GSMConfig

    Returns
    -------
    GSMResult

    Raises
    ------
    NetworkError
        Demand data missing for the default model.
    GridTooLargeError
        The time grid would exceed ``config.max_grid_cells`` (e.g. processing time 1e6).
    NonFiniteCostError
        Costs or buffers overflow (e.g. demand_std 1e300).
    GSMTimeLimitError
        The time limit ran out before the MILP found a feasible plan.
    ValueError
        ``method='tree_dp'`` on a non-tree, or times not on a grid of 1/``max_time_denominator``.

    Examples
    --------
    >>> from optimization import Network, Stage, Edge, solve_gsm
    >>> net = Network([Stage("A", 3, 1.0), Stage("B", 1, 2.0, 0, demand_mean=10,
    ...                demand_std=2, safety_factor=1.645)], [Edge("A", "B")])
    >>> round(solve_gsm(net).total_cost, 3)
    12.278

    References
    ----------
    Graves & Willems (2000); Humair & Willems (2011).
    """
    start = time.perf_counter()
    model = NormalDemandBound(network) if model is None else model
    grid = build_grid(network, model, config.max_time_denominator, config.max_grid_cells)
    method = config.method
    if method is GSMMethod.AUTO and network.is_tree:
        method = GSMMethod.TREE_DP
    S, optimal, gap, bound, label = _SOLVERS[method](network, grid, config)
    return _result(network, model, grid, S, label, optimal, gap, bound, time.perf_counter() - start)


_Solved = tuple[np.ndarray, bool, float, float, str]


def _gap(cost: float, bound: float) -> float:
    """Relative gap (cost - bound) / cost, 0 when cost <= 0."""
    return 0.0 if cost <= 0 else max(cost - bound, 0.0) / cost


def _solve_tree(network: Network, grid: TimeGrid, config: GSMConfig) -> _Solved:
    """Graves & Willems DP: always proven optimal (bound = its cost)."""
    return solve_tree_dp(network, grid)[0], True, 0.0, np.nan, GSMMethod.TREE_DP.value


def _solve_general(network: Network, grid: TimeGrid, config: GSMConfig, time_limit: float | None = None) -> _Solved:
    """MILP with staircases and adaptive breakpoints; a time limit before any solution is an error."""
    limit = config.time_limit if time_limit is None else time_limit
    out = solve_milp(network, grid, time_limit=limit, rel_gap=config.rel_gap)
    if not out.found:
        raise GSMTimeLimitError(
            f"the MILP found no feasible plan within time_limit={limit:g} s ({out.status}) "
            f"for {network.n_stages} stages / {network.n_edges} edges; raise the time limit"
        )
    return out.S, out.optimal, out.gap, out.lower_bound, GSMMethod.MILP.value


def _solve_lagrangian(network: Network, grid: TimeGrid, config: GSMConfig) -> _Solved:
    """Spanning-tree Lagrangian: the DP's bound and the best repaired plan (always has a plan)."""
    out = spanning_tree_lagrangian(network, grid, time_limit=config.time_limit, rel_gap=config.rel_gap)
    gap = _gap(out.upper_bound, out.lower_bound)
    return out.S, gap <= config.rel_gap, gap, out.lower_bound, GSMMethod.LAGRANGIAN.value


def _solve_bnb(network: Network, grid: TimeGrid, config: GSMConfig) -> _Solved:
    """Lagrangian root with reduced-cost fixing, then branch-and-bound ("lagrangian" if the root proves it)."""
    out = lagrangian_branch_and_bound(
        network, grid, time_limit=config.time_limit, rel_gap=config.rel_gap, workers=config.workers
    )
    gap = _gap(out.upper_bound, out.lower_bound)
    label = GSMMethod.LAGRANGIAN.value + (f"+{GSMMethod.BNB.value}" if out.nodes else "")
    return out.S, gap <= config.rel_gap, gap, out.lower_bound, label


def _solve_auto(network: Network, grid: TimeGrid, config: GSMConfig) -> _Solved:
    """Branch-and-bound first; if it ends unproven before the time limit, the MILP for the time left."""
    start = time.perf_counter()
    S, optimal, gap, bound, label = _solve_bnb(network, grid, config)
    left = config.time_limit - (time.perf_counter() - start)
    if optimal or left <= 1.0:
        return S, optimal, gap, bound, label
    cost = float(grid.cost[grid.offset[:-1] + repair_service_times(network, grid, S)[2]].sum())
    out = solve_milp(network, grid, time_limit=left, rel_gap=config.rel_gap)
    if out.found and out.upper_bound < cost:
        S, cost = out.S, out.upper_bound
    bound = max(bound, out.lower_bound if out.found else -np.inf)
    gap = _gap(cost, bound)
    return S, gap <= config.rel_gap, gap, bound, f"{label}+{GSMMethod.MILP.value}"


_SOLVERS = {
    GSMMethod.TREE_DP: _solve_tree,
    GSMMethod.MILP: _solve_general,
    GSMMethod.LAGRANGIAN: _solve_lagrangian,
    GSMMethod.AUTO: _solve_auto,
    GSMMethod.BNB: _solve_bnb,
}


def evaluate_service_times(
    network: Network,
    service_time: np.ndarray,
    model: SafetyStockModel | None = None,
    max_time_denominator: int = 100,
) -> GSMResult:
    """Cost a given vector of outbound service times (e.g. node-by-node S = 0 everywhere).

    ``service_time`` is in periods, one per stage in ``network.stage_ids`` order;
    it is clipped to the customer maximum and to SI_j + T_j.
    """
    service_time = np.asarray(service_time, dtype=float)
    if service_time.shape != (network.n_stages,):
        raise ValueError(f"service_time must have shape ({network.n_stages},), got {service_time.shape}")
    start = time.perf_counter()
    model = NormalDemandBound(network) if model is None else model
    grid = build_grid(network, model, max_time_denominator)
    S = np.rint(service_time * grid.d)
    return _result(network, model, grid, S, "given", False, np.nan, np.nan, time.perf_counter() - start)
