"""Lower and upper bounds for the GSM on general networks from the spanning-tree DP.

The links of a maximum spanning forest (weight: holding cost of both ends)
are kept; every other link i -> k (SI_k >= S_i) is relaxed, per period t as
[S_i >= t] <= [SI_k >= t] with a multiplier lambda_t >= 0 each (or once, as
S_i <= SI_k), which adds sum_t lambda_t ([S_i >= t] - [SI_k >= t]) <= 0 on
feasible plans to the objective. The tree DP of :mod:`optimization.meio_tree`
minimises any per-stage cost of S and SI, so each evaluation gives a proven
lower bound L(lambda) <= optimum; the DP's plan, repaired to satisfy every
link and polished by exact local moves (:func:`local_search`, :func:`polish_plan`),
gives a feasible plan (upper bound).
Subgradient steps (Polyak step towards the best upper bound) raise L.

With one multiplier per link and period (the default) the bound met the plan
on the shared Willems chains and on generated 150- and 500-stage networks; it
can stall below the optimum (a duality gap; e.g. 3.6 % on a 30-stage network),
which is why ``solve_gsm``'s ``auto`` hands the rest of the time to the MILP.
Measurements: docs/methods/gsm-model.md (issue 15).

References
----------
M. Held, P. Wolfe and H. P. Crowder. Validation of subgradient optimization.
*Mathematical Programming*, 6:62-88, 1974.

S. Humair and S. P. Willems. Optimizing strategic safety stock placement in
general acyclic networks. *Operations Research*, 59(3):781-787, 2011.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from optimization.meio_grid import TimeGrid
from optimization.meio_milp import repair_service_times
from optimization.meio_tree import TreeDP
from optimization.network import Edge, Network

__all__ = ["LagrangianBound", "local_search", "polish_plan", "spanning_tree_lagrangian"]


@dataclass(frozen=True)
class LagrangianBound:
    """Best lower bound, best feasible plan (S in grid units) and its cost, iterations, seconds."""

    lower_bound: float
    upper_bound: float
    S: np.ndarray
    iterations: int
    seconds: float


def _spanning_forest(network: Network) -> np.ndarray:
    """Mask of the links in a maximum spanning forest (weight: holding cost at both ends)."""
    up, down, n = network.edge_up, network.edge_down, network.n_stages
    weight = network.holding_cost[up] + network.holding_cost[down] + 1e-9
    tree = minimum_spanning_tree(csr_matrix((-weight, (up, down)), shape=(n, n))).tocoo()
    kept = set(zip(tree.row.tolist(), tree.col.tolist()))
    return np.array([(u, d) in kept or (d, u) in kept for u, d in zip(up.tolist(), down.tolist())])


def _tree_problem(network: Network, grid: TimeGrid, mask: np.ndarray) -> tuple[Network, TimeGrid, np.ndarray]:
    """The forest as a Network, the full network's grid in its stage order, and full -> forest positions.

    The full grid's ranges are kept (not the forest's shorter paths) so that every plan of
    the full network is a plan of the relaxation.
    """
    ids = network.stage_ids
    links = [Edge(ids[u], ids[d]) for u, d in zip(network.edge_up[mask].tolist(), network.edge_down[mask].tolist())]
    has_customer = {e.upstream for e in links}
    stages = [  # costs come from the grid; stages left without customers only need placeholder demand
        s if s.stage_id in has_customer or s.has_demand else replace(s, demand_mean=0.0, demand_std=0.0)
        for s in network.stages
    ]
    forest = Network(stages, links)
    pos = {s: i for i, s in enumerate(forest.stage_ids)}
    to_forest = np.array([pos[s] for s in ids])
    order = np.argsort(to_forest)  # forest position -> full index
    counts = grid.M[order] + 1
    cost = np.concatenate([grid.stage_cost(j) for j in order.tolist()])
    sub = replace(
        grid,
        T=grid.T[order],
        s_max=grid.s_max[order],
        si_min=grid.si_min[order],
        si_max=grid.si_max[order],
        M=grid.M[order],
        offset=np.concatenate([[0], np.cumsum(counts)]),
        cost=cost,
    )
    return forest, sub, to_forest


def _repair(network: Network, grid: TimeGrid, S: np.ndarray, SI: np.ndarray) -> tuple[np.ndarray, float]:
    """The cheaper of two feasible plans from the DP's (S, SI), which may violate relaxed links.

    Raise each SI to its suppliers' S (:func:`repair_service_times`), or first lower each
    S_i to its customers' SI (keeping the DP's inbound times), then make it consistent.
    """
    best_S, best = None, np.inf
    lowered = S.copy()
    np.minimum.at(lowered, network.edge_up, SI[network.edge_down])
    for candidate in (S, lowered):
        plan, inbound, _ = repair_service_times(network, grid, candidate)
        # then quote the latest S each stage's customers allow: tau falls, nothing else moves
        plan = np.minimum(grid.s_max, inbound + grid.T)
        np.minimum.at(plan, network.edge_up, inbound[network.edge_down])
        plan, _, tau = repair_service_times(network, grid, plan)
        cost = float(grid.cost[grid.offset[:-1] + tau].sum())
        if cost < best:
            best_S, best = plan, cost
    return best_S, best


def _plan_cost(grid: TimeGrid, tau: np.ndarray) -> float:
    return float(grid.cost[grid.offset[:-1] + tau].sum())


def _consistent(network: Network, grid: TimeGrid, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, SI) after :func:`repair_service_times`."""
    S, SI, _ = repair_service_times(network, grid, S)
    return S, SI


def _customer_links(network: Network) -> list[list[tuple[int, np.ndarray]]]:
    """Per stage i: (customer k, k's other suppliers) for every link i -> k."""
    out = []
    for i in range(network.n_stages):
        out.append([(k, (p := network.predecessors(k))[p != i]) for k in network.successors(i).tolist()])
    return out


def _best_move(grid: TimeGrid, S: np.ndarray, SI: np.ndarray, i: int, links: list) -> tuple[int, float]:
    """Stage i's outbound time that minimises the exact cost of i and its customers, the rest fixed.

    A customer k's inbound time becomes max(its other suppliers' S, x); values of x that
    would leave a customer with S_k > SI_k + T_k are excluded. Returns (x, saving).
    """
    x = np.arange(min(grid.s_max[i], SI[i] + grid.T[i]) + 1)
    total = grid.stage_cost(i)[SI[i] + grid.T[i] - x]
    for k, others in links:
        base = max(grid.si_min[k], S[others].max() if others.size else 0)
        tau = np.maximum(base, x) + (grid.T[k] - S[k])
        total = total + np.where(tau >= 0, grid.stage_cost(k)[np.maximum(tau, 0)], np.inf)
    best = int(np.argmin(total))
    return best, float(total[S[i]] - total[best])


def _exact_cost(network: Network, grid: TimeGrid, S: np.ndarray) -> float:
    """Cost of outbound times S with SI_k = max(si_min_k, suppliers' S); inf if some S_k > SI_k + T_k."""
    SI = grid.si_min.copy()
    np.maximum.at(SI, network.edge_down, S[network.edge_up])
    tau = SI + grid.T - S
    return _plan_cost(grid, tau) if tau.min() >= 0 else np.inf


def _inbound_moves(network: Network, grid: TimeGrid, S: np.ndarray, cost: float) -> tuple[np.ndarray, float, bool]:
    """Lower a stage's inbound time by lowering every supplier quoting more than y to y.

    One-stage moves cannot do this when two suppliers quote the same latest time;
    y runs over the lower supplier quotes and si_min. Exact cost; returns (S, cost, moved).
    """
    moved = False
    for k in range(network.n_stages):
        preds = network.predecessors(k)
        if preds.size < 2:
            continue
        quotes = S[preds]
        for y in np.unique(np.append(quotes[quotes < quotes.max()], grid.si_min[k]))[::-1].tolist():
            trial = S.copy()
            trial[preds] = np.minimum(quotes, y)
            c = _exact_cost(network, grid, trial)
            if c < cost * (1 - 1e-12):
                S, cost, moved = trial, c, True
                break
    return S, cost, moved


def local_search(
    network: Network, grid: TimeGrid, S: np.ndarray, sweeps: int = 20, links: list | None = None
) -> tuple[np.ndarray, float]:
    """Improve a feasible plan by exact one-stage moves of S until none saves anything (or ``sweeps``).

    Each move sets one S_i to its best value given every other S (the customers'
    inbound times follow), so the exact cost never rises. Returns (S, cost).
    """
    links = _customer_links(network) if links is None else links
    S, SI = _consistent(network, grid, S)
    for _ in range(sweeps):
        moved = False
        for i in range(network.n_stages):
            x, saving = _best_move(grid, S, SI, i, links[i])
            if saving <= 1e-9 * max(1.0, abs(grid.stage_cost(i)[-1])):
                continue
            S[i], moved = x, True
            for k, others in links[i]:
                SI[k] = max(grid.si_min[k], x, S[others].max() if others.size else 0)
        if not moved:
            break
    S, SI = _consistent(network, grid, S)
    return S, _plan_cost(grid, SI + grid.T - S)


def polish_plan(network: Network, grid: TimeGrid, S: np.ndarray, links: list | None = None) -> tuple[np.ndarray, float]:
    """:func:`local_search` and :func:`_inbound_moves` in turn until neither saves anything."""
    links = _customer_links(network) if links is None else links
    S, cost = local_search(network, grid, S, links=links)
    for _ in range(10):
        S, cost, moved = _inbound_moves(network, grid, S, cost)
        if not moved:
            break
        S, cost = local_search(network, grid, S, links=links)
    return S, cost


class _Multipliers:
    """One multiplier per relaxed link i -> k and period t (a_i,t <= b_k,t), or per link (S_i <= SI_k)."""

    def __init__(self, grid: TimeGrid, up: np.ndarray, down: np.ndarray, per_period: bool) -> None:
        self.grid, self.up, self.down, self.per_period = grid, up, down, per_period
        if per_period:
            lo, hi = grid.si_min[down] + 1, grid.s_max[up]
            length = np.maximum(hi - lo + 1, 0)
            self.edge = np.repeat(np.arange(up.size), length)
            self.t = lo[self.edge] + np.arange(length.sum()) - np.repeat(np.cumsum(length) - length, length)
        else:
            self.edge = np.arange(up.size)
            self.t = np.zeros(up.size, dtype=np.int64)
        self.value = np.zeros(self.edge.size)

    def _step_costs(self, stages: np.ndarray, size: np.ndarray, sign: float) -> list[np.ndarray]:
        """Per stage: sign * sum of multipliers with t <= x, for x = 0..size-1 (or sign * weight * x)."""
        n = size.size
        if not self.per_period:
            weight = np.bincount(stages, self.value, n)
            return [sign * weight[k] * np.arange(size[k]) for k in range(n)]
        off = np.concatenate([[0], np.cumsum(size)])
        flat = np.zeros(off[-1])
        np.add.at(flat, off[stages[self.edge]] + self.t, self.value)
        run = np.cumsum(flat)
        before = np.concatenate([[0.0], run])[off[:-1]]
        return [sign * (run[off[k] : off[k + 1]] - before[k]) for k in range(n)]

    def costs(self) -> tuple[list[np.ndarray], list[np.ndarray]]:
        """(s_cost, si_cost) for :func:`solve_tree_dp`."""
        return (
            self._step_costs(self.up, self.grid.s_max + 1, 1.0),
            self._step_costs(self.down, self.grid.si_max + 1, -1.0),
        )

    def subgradient(self, S: np.ndarray, SI: np.ndarray) -> np.ndarray:
        """Violation of each relaxed constraint at the DP's solution."""
        if not self.per_period:
            return (S[self.up] - SI[self.down]).astype(float)
        t = self.t
        return (S[self.up[self.edge]] >= t).astype(float) - (SI[self.down[self.edge]] >= t)


def spanning_tree_lagrangian(
    network: Network,
    grid: TimeGrid,
    time_limit: float = 60.0,
    rel_gap: float = 1e-4,
    max_iterations: int = 2000,
    step: float = 2.0,
    per_period: bool = True,
    trace: list | None = None,
    polish: float | None = 0.01,
) -> LagrangianBound:
    """Subgradient ascent on the multipliers of the links outside a maximum spanning forest.

    Parameters
    ----------
    time_limit : float, default 60
        Seconds; checked after each DP solve (so at least one runs).
    rel_gap : float, default 1e-4
        Stop when (plan cost - bound) / plan cost <= rel_gap.
    max_iterations : int, default 2000
    step : float, default 2.0
        Polyak step factor towards the best plan's cost; halved after 10 DP
        solves without a better bound; the ascent stops when it falls below 1e-3.
    per_period : bool, default True
        Relax a_i,t <= b_k,t for every period t (stronger than one multiplier
        per link on S_i <= SI_k).
    polish : float, default 0.01
        Run :func:`local_search` on every repaired plan that is a new best repair or
        within this fraction of the best plan's cost, and :func:`polish_plan` on the
        best plan at the end when the bounds have not met; None: no local search (the
        repairs alone, as before issue 15's second pass).
    """
    start = time.perf_counter()
    mask = _spanning_forest(network)
    forest, sub, to_forest = _tree_problem(network, grid, mask)
    mult = _Multipliers(sub, to_forest[network.edge_up[~mask]], to_forest[network.edge_down[~mask]], per_period)
    dp = TreeDP(forest, sub)
    best_lb, best_ub, best_S, it, stale = -np.inf, np.inf, None, 0, 0
    best_raw, links = np.inf, _customer_links(network)
    for it in range(1, max_iterations + 1):
        S, SI, value = dp.solve(*mult.costs())
        stale = 0 if value > best_lb + 1e-12 * abs(value) else stale + 1
        best_lb = max(best_lb, value)
        S_full, ub = _repair(network, grid, S[to_forest], SI[to_forest])
        if polish is not None and ub < min(
            best_raw, (1 + polish) * best_ub
        ):  # a good repair: polish it (a pass ~ one DP solve)
            best_raw = min(best_raw, ub)
            S_full, ub = local_search(network, grid, S_full, links=links)
        if ub < best_ub:
            best_ub, best_S = ub, S_full
        if trace is not None:
            trace.append((it, time.perf_counter() - start, value, ub, step))
        if best_ub - best_lb <= rel_gap * best_ub or time.perf_counter() - start > time_limit:
            break
        g = mult.subgradient(S, SI)
        g[(mult.value <= 0) & (g < 0)] = 0.0  # projected: multipliers at 0 cannot fall
        norm = float(np.sum(g**2))
        if norm == 0:  # the DP plan satisfies every relaxed link: it is optimal
            break
        if stale >= 10:
            step, stale = step / 2, 0
            if step < 1e-3:
                break
        mult.value = np.maximum(0.0, mult.value + step * (best_ub - value) / norm * g)
    if polish is not None and best_ub - best_lb > rel_gap * best_ub:  # not proven: one deeper polish (~1 s)
        best_S, best_ub = polish_plan(network, grid, best_S, links)
    return LagrangianBound(min(best_lb, best_ub), best_ub, best_S, it, time.perf_counter() - start)
