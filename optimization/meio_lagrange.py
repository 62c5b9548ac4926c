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
from collections.abc import Sequence
from dataclasses import dataclass, replace

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import minimum_spanning_tree

from optimization.meio_grid import TimeGrid
from optimization.meio_tree import TreeDP
from optimization.network import Edge, Network

__all__ = [
    "AscentState",
    "LagrangianBound",
    "Relaxation",
    "ascend",
    "local_search",
    "polish_plan",
    "spanning_tree_lagrangian",
]


@dataclass(frozen=True)
class LagrangianBound:
    """Best lower bound, best feasible plan (S in grid units) and its cost, iterations, seconds, fixing rounds, cells banned, B&B nodes."""

    lower_bound: float
    upper_bound: float
    S: np.ndarray
    iterations: int
    seconds: float
    fixes: int = 0
    banned_cells: int = 0
    nodes: int = 0


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


_LEVELS: dict[int, tuple[Network, list]] = {}


def _levels(network: Network) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """Per topological level: (its stages, the links into them: suppliers, customers); cached per network."""
    hit = _LEVELS.get(id(network))
    if hit is not None and hit[0] is network:
        return hit[1]
    up, down, n = network.edge_up, network.edge_down, network.n_stages
    level = np.zeros(n, dtype=np.int64)
    for j in range(n):  # stage indices are topological
        preds = network.predecessors(j)
        level[j] = level[preds].max() + 1 if preds.size else 0
    out = []
    for v in range(int(level.max()) + 1 if n else 0):
        into = level[down] == v
        out.append((np.flatnonzero(level == v), up[into], down[into]))
    if len(_LEVELS) > 8:
        _LEVELS.clear()
    _LEVELS[id(network)] = (network, out)
    return out


def repair_fast(network: Network, grid: TimeGrid, S: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """:func:`optimization.meio_milp.repair_service_times`, one topological level at a time (same result)."""
    S = np.clip(np.rint(S).astype(np.int64), 0, grid.s_max)
    SI = grid.si_min.astype(np.int64).copy()
    for stages, sup, cust in _levels(network):
        np.maximum.at(SI, cust, S[sup])
        S[stages] = np.minimum(S[stages], SI[stages] + grid.T[stages])
    return S, SI, SI + grid.T - S


def _repair(network: Network, grid: TimeGrid, S: np.ndarray, SI: np.ndarray) -> tuple[np.ndarray, float]:
    """The cheaper of two feasible plans from the DP's (S, SI), which may violate relaxed links.

    Raise each SI to its suppliers' S (:func:`repair_service_times`), or first lower each
    S_i to its customers' SI (keeping the DP's inbound times), then make it consistent.
    """
    best_S, best = None, np.inf
    lowered = S.copy()
    np.minimum.at(lowered, network.edge_up, SI[network.edge_down])
    for candidate in (S, lowered):
        plan, inbound, _ = repair_fast(network, grid, candidate)
        # then quote the latest S each stage's customers allow: tau falls, nothing else moves
        plan = np.minimum(grid.s_max, inbound + grid.T)
        np.minimum.at(plan, network.edge_up, inbound[network.edge_down])
        plan, _, tau = repair_fast(network, grid, plan)
        cost = float(grid.cost[grid.offset[:-1] + tau].sum())
        if cost < best:
            best_S, best = plan, cost
    return best_S, best


def _plan_cost(grid: TimeGrid, tau: np.ndarray) -> float:
    return float(grid.cost[grid.offset[:-1] + tau].sum())


def _consistent(network: Network, grid: TimeGrid, S: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(S, SI) after :func:`repair_service_times`."""
    S, SI, _ = repair_fast(network, grid, S)
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


class _Slices:
    """Per-stage views into one flat array: ``self[k]`` is stage k's vector (no per-stage copies)."""

    def __init__(self, flat: np.ndarray, off: np.ndarray) -> None:
        self.flat, self.off = flat, off.tolist()

    def __getitem__(self, k: int) -> np.ndarray:
        return self.flat[self.off[k] : self.off[k + 1]]

    def __len__(self) -> int:
        return len(self.off) - 1


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
        flat = np.bincount(off[stages[self.edge]] + self.t, self.value, off[-1])
        run = np.cumsum(flat, dtype=float)  # bincount of no links is int
        before = np.concatenate([[0.0], run])[off[:-1]]
        run -= np.repeat(before, size)  # each stage's cumulative sum restarts at 0
        return _Slices(sign * run if sign != 1.0 else run, off)

    def costs(self) -> tuple[Sequence[np.ndarray], Sequence[np.ndarray]]:
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


def _fix_cells(dp: TreeDP, mult: _Multipliers, threshold: float) -> int:
    """Reduced-cost fixing: ban every (S_k, SI_k) cell whose min-marginal with these multipliers is >= threshold.

    Any plan through a banned cell costs at least its min-marginal (the relaxed terms are <= 0
    on plans), so the optimum is >= min(threshold, bound of what is left). Returns cells banned.
    """
    banned = 0
    for k, marginal in dp.min_marginals(*mult.costs()):
        cells = marginal >= threshold
        if cells.any():
            banned += dp.ban(k, cells)
    return banned


@dataclass
class AscentState:
    """State of the subgradient ascent: bounds, best plan, step, fixing floor."""

    step: float
    best_lb: float = -np.inf
    best_ub: float = np.inf
    best_S: np.ndarray | None = None
    best_raw: float = np.inf
    best_value: float = -np.inf
    best_mult: np.ndarray | None = None
    floor: float = np.inf  # every banned cell's plans cost at least this
    dp_plan: tuple | None = None  # the DP's (S, SI) in forest order at best_value
    stale: int = 0
    since_fix: int = 0
    fixes: int = 0
    banned: int = 0


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
    fix_every: int | None = 20,
    fix_below: float = 0.002,
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
    fix_every : int or None, default 20
        Reduced-cost fixing (:func:`_fix_cells`) with the best multipliers every this many
        DP solves once the gap is below ``fix_below``, and when the step would stall:
        every stage's (S, SI) cells whose min-marginal reaches plan x (1 - 0.9 rel_gap)
        are excluded from later solves, which raises the bound. None: no fixing.
    """
    start = time.perf_counter()
    rel = Relaxation.build(network, grid, per_period)
    st = AscentState(step)
    it = ascend(
        rel,
        st,
        rel_gap=rel_gap,
        deadline=start + time_limit,
        iterations=max_iterations,
        polish=polish,
        fix_every=fix_every,
        fix_below=fix_below,
        trace=trace,
        start=start,
    )
    if polish is not None and st.best_ub - st.best_lb > rel_gap * st.best_ub:  # not proven: one deeper polish
        st.best_S, st.best_ub = polish_plan(network, grid, st.best_S, rel.links)
    return LagrangianBound(
        min(st.best_lb, st.best_ub), st.best_ub, st.best_S, it, time.perf_counter() - start, st.fixes, st.banned
    )


@dataclass
class Relaxation:
    """The spanning-forest relaxation of one network, set up once: forest DP, multipliers, customer links."""

    network: Network
    grid: TimeGrid
    dp: TreeDP
    mult: _Multipliers
    to_forest: np.ndarray
    links: list
    fixed: int = 0  # fixing rounds of a branch-and-bound applied to ``dp`` (see meio_bnb)

    @classmethod
    def build(cls, network: Network, grid: TimeGrid, per_period: bool = True) -> Relaxation:
        mask = _spanning_forest(network)
        forest, sub, to_forest = _tree_problem(network, grid, mask)
        up, down = to_forest[network.edge_up[~mask]], to_forest[network.edge_down[~mask]]
        mult = _Multipliers(sub, up, down, per_period)
        return cls(network, grid, TreeDP(forest, sub), mult, to_forest, _customer_links(network))

    def solve(self, ranges: dict | None = None) -> tuple[np.ndarray, np.ndarray, float]:
        """The forest DP with the current multipliers, within ``ranges`` (forest stage -> S / SI bounds) if given."""
        return self.dp.solve(*self.mult.costs(), ranges=ranges)


def ascend(
    rel: Relaxation,
    st: AscentState,
    *,
    rel_gap: float,
    deadline: float,
    iterations: int,
    polish: float | None,
    fix_every: int | None = None,
    fix_below: float = 0.002,
    domain=None,
    trace: list | None = None,
    start: float = 0.0,
) -> int:
    """Subgradient steps on ``rel.mult`` (updated in place) within ``domain``; returns DP solves done.

    ``domain``: forest stage -> [s_lo, s_hi, si_lo, si_hi] (a branch-and-bound node's ranges).

    ``st`` carries the bounds, the best plan and the step between calls (a branch-and-bound
    node passes its own state with the incumbent copied in).
    """
    it = 0
    for it in range(1, iterations + 1):
        S, SI, value = rel.solve(domain)
        _record(st, rel, S, SI, value, polish)
        if trace is not None:
            trace.append((it, time.perf_counter() - start, value, st.best_ub, st.step))
        if st.best_ub - st.best_lb <= rel_gap * st.best_ub or time.perf_counter() > deadline or not np.isfinite(value):
            break
        g = rel.mult.subgradient(S, SI)
        g[(rel.mult.value <= 0) & (g < 0)] = 0.0  # projected: multipliers at 0 cannot fall
        norm = float(np.sum(g**2))
        if norm == 0:  # the DP plan satisfies every relaxed link with complementary slackness: optimal
            break
        if st.stale >= 10:
            st.step, st.stale = st.step / 2, 0
        due = fix_every is not None and st.since_fix >= fix_every and st.best_ub - st.best_lb <= fix_below * st.best_ub
        if fix_every is not None and (due or st.step < 1e-3):
            if not _fix(st, rel.dp, rel.mult, rel_gap):
                break  # nothing left to ban and the step has stalled
            continue
        if st.step < 1e-3:
            break
        rel.mult.value = np.maximum(0.0, rel.mult.value + st.step * (st.best_ub - value) / norm * g)
    return it


def _record(st: AscentState, rel: Relaxation, S: np.ndarray, SI: np.ndarray, value: float, polish) -> None:
    """Update the bound (capped by the fixing floor), the best multipliers, the DP plan there and the best plan."""
    network, grid, mult, links = rel.network, rel.grid, rel.mult, rel.links
    bound = min(value, st.floor)
    st.stale = 0 if bound > st.best_lb + 1e-12 * abs(bound) else st.stale + 1
    st.best_lb, st.since_fix = max(st.best_lb, bound), st.since_fix + 1
    if value > st.best_value:
        st.best_value, st.best_mult, st.dp_plan = value, mult.value.copy(), (S, SI)
    if not np.isfinite(value):  # every cell banned: no plan beats the floor
        return
    S_full, ub = _repair(network, grid, S[rel.to_forest], SI[rel.to_forest])
    if polish is not None and ub < min(st.best_raw, (1 + polish) * st.best_ub):  # polish good repairs (~1 DP solve)
        st.best_raw = min(st.best_raw, ub)
        S_full, ub = local_search(network, grid, S_full, links=links)
    if ub < st.best_ub:
        st.best_ub, st.best_S = ub, S_full


def _fix(st: AscentState, dp: TreeDP, mult: _Multipliers, rel_gap: float) -> bool:
    """Fix cells with the best multipliers so far and restart the ascent from them; False if none banned."""
    threshold = st.best_ub * (1 - 0.9 * rel_gap)
    current = mult.value
    mult.value = st.best_mult
    banned = _fix_cells(dp, mult, threshold)
    st.floor, st.since_fix, st.fixes, st.banned = min(st.floor, threshold), 0, st.fixes + 1, st.banned + banned
    st.best_value, st.stale = -np.inf, 0  # the restricted problem's bounds are new
    if banned == 0:
        mult.value = current
        return st.step >= 1e-3
    return True
