"""Branch-and-bound on the relaxed links of the spanning-tree Lagrangian (Humair & Willems 2011).

The root is :func:`optimization.meio_lagrange.spanning_tree_lagrangian`'s ascent
(with reduced-cost fixing). If its bound has not met the best plan, the search
branches on the relaxed link i -> k most violated by the DP's plan at a node's
best bound (S_i = a > SI_k = b): with m = (a + b) // 2, every feasible plan has
either S_i <= m, or S_i > m and then SI_k >= S_i > m, so the children are

- S_i <= m,
- S_i >= m + 1 and SI_k >= m + 1,

and both exclude the DP's plan. A node's domain (service-time ranges) cuts the
DP's tables to the cells inside the ranges; its bound is the Lagrangian dual
of the restricted problem, from a few subgradient steps warm-started at the
parent's multipliers, never below the parent's. Every DP plan is repaired and
polished into a feasible plan, so the incumbent improves during the search.
Nodes are explored best bound first; the proven bound is the least bound of the
open nodes (and of the nodes closed within ``rel_gap``, and the fixing floor).

References
----------
S. Humair and S. P. Willems. Optimizing strategic safety stock placement in
general acyclic networks. *Operations Research*, 59(3):781-787, 2011.
"""

from __future__ import annotations

import heapq
import multiprocessing
import time
from concurrent.futures import Executor, ProcessPoolExecutor
from dataclasses import dataclass, field, replace

import numpy as np

from optimization.meio_grid import TimeGrid
from optimization.meio_lagrange import (
    AscentState,
    LagrangianBound,
    Relaxation,
    _fix,
    _fix_cells,
    ascend,
    polish_plan,
)
from optimization.network import Network

__all__ = ["lagrangian_branch_and_bound"]


@dataclass(order=True)
class _Node:
    """An open node: its bound, and (not compared) its ranges, multipliers and the DP plan at its bound."""

    bound: float
    seq: int
    ranges: dict = field(compare=False)  # forest stage -> [s_lo, s_hi, si_lo, si_hi]
    mult: np.ndarray = field(compare=False)
    plan: tuple = field(compare=False)
    step: float = field(compare=False)
    retries: int = field(default=0, compare=False)


def _domain(ranges: dict) -> dict | None:
    """The ranges for the DP (:meth:`TreeDP.solve`'s ``ranges``); None if some range is empty (infeasible node)."""
    for s_lo, s_hi, si_lo, si_hi in ranges.values():
        if s_lo > s_hi or si_lo > si_hi:
            return None
    return ranges


def _branch_link(rel: Relaxation, plan: tuple) -> tuple[int, int, int] | None:
    """(i, k, m) for the relaxed link most violated by the DP plan (forest indices), or None."""
    S, SI = plan
    up, down = rel.mult.up, rel.mult.down
    unique = np.unique(np.stack([up, down]), axis=1)
    violation = S[unique[0]] - SI[unique[1]]
    e = int(np.argmax(violation))
    if violation[e] <= 0:
        return None
    i, k = int(unique[0, e]), int(unique[1, e])
    return i, k, int((S[i] + SI[k]) // 2)


def _children(rel: Relaxation, ranges: dict, i: int, k: int, m: int) -> list[dict]:
    """Ranges of the two children: S_i <= m; S_i >= m + 1 and SI_k >= m + 1."""
    sub = rel.mult.grid

    def full(j: int) -> list[int]:
        return list(ranges.get(j, [0, int(sub.s_max[j]), 0, int(sub.si_max[j])]))

    low = dict(ranges)
    low[i] = full(i)
    low[i][1] = min(low[i][1], m)
    high = dict(ranges)
    high[i], high[k] = full(i), full(k)
    high[i][0] = max(high[i][0], m + 1)
    high[k][2] = max(high[k][2], m + 1)
    return [low, high]


@dataclass
class _Search:
    """Incumbent, node counter and the least bound among nodes closed within the tolerance."""

    rel: Relaxation
    ub: float
    S: np.ndarray
    floor: float
    rel_gap: float
    deadline: float
    node_iterations: int
    polish: float | None
    raw: float = np.inf  # best repaired plan before polishing (see spanning_tree_lagrangian's polish)
    nodes: int = 0
    iterations: int = 0
    closed: float = np.inf  # least bound of nodes pruned within rel_gap (not above the incumbent)
    heap: list = field(default_factory=list)
    root_mult: np.ndarray | None = None  # the root's best multipliers, for fixing with a better incumbent
    fixings: tuple = ()  # (multipliers, threshold) of every fixing round during the search, in order
    fixed_at: float = np.inf  # incumbent cost of the last fixing round

    def refix(self) -> None:
        """Queue a fixing round (root multipliers, threshold from the incumbent) once the incumbent is rel_gap cheaper.

        The bans are valid in every node (a plan through a banned cell costs at least the
        threshold), so each process applies them before its next child (:func:`_apply_fixings`).
        """
        if self.root_mult is None or self.ub >= self.fixed_at * (1 - self.rel_gap):
            return
        threshold = self.ub * (1 - 0.9 * self.rel_gap)
        self.fixings += ((self.root_mult, threshold),)
        self.fixed_at, self.floor = self.ub, min(self.floor, threshold)

    def lower_bound(self) -> float:
        open_min = self.heap[0].bound if self.heap else np.inf
        return min(open_min, self.closed, self.floor, self.ub)

    def done(self) -> bool:
        return self.ub - self.lower_bound() <= self.rel_gap * self.ub

    def close(self, bound: float) -> bool:
        """True (and recorded) when a node with this bound need not be explored."""
        if bound >= self.ub * (1 - self.rel_gap):
            self.closed = min(self.closed, bound) if bound < self.ub else self.closed
            return True
        return False

    def task(self, ranges: dict, parent: _Node, retries: int = 0) -> _Task:
        """A child to bound, with the incumbent as it is now."""
        left = self.deadline - time.perf_counter()
        return _Task(
            ranges,
            parent.bound,
            parent.mult,
            parent.step,
            retries,
            self.ub,
            self.S,
            self.raw,
            self.floor,
            left,
            self.fixings,
        )

    def run(self, tasks: list[_Task], pool: Executor | None) -> None:
        """Bound a batch of children (in the pool if given, else here) and merge them in order.

        Every child of a batch starts from the incumbent of the batch's start, so the answer
        does not depend on how many processes bound them.
        """
        settings = (self.rel_gap, self.node_iterations, self.polish)
        if pool is None:
            outcomes = [_bound_child(self.rel, t, *settings) for t in tasks]
        else:
            outcomes = list(pool.map(_bound_in_worker, tasks, [settings] * len(tasks)))
        for t, out in zip(tasks, outcomes):
            self.nodes += 1
            self.iterations += out.iterations
            self.raw = min(self.raw, out.raw)
            if out.ub < self.ub:
                self.ub, self.S = out.ub, out.S
            if out.plan is None or self.close(out.bound):
                continue
            heapq.heappush(self.heap, _Node(out.bound, self.nodes, t.ranges, out.mult, out.plan, out.step, t.retries))
        self.refix()


@dataclass(frozen=True)
class _Task:
    """One child to bound: its ranges, the parent's bound / multipliers / step, the incumbent, seconds left."""

    ranges: dict
    parent_bound: float
    mult: np.ndarray
    step: float
    retries: int
    ub: float
    S: np.ndarray
    raw: float
    floor: float
    seconds: float
    fixings: tuple = ()


@dataclass(frozen=True)
class _Outcome:
    """A bounded child: DP solves, best plan seen, its bound, and (None if infeasible) its best multipliers and DP plan."""

    iterations: int
    ub: float
    S: np.ndarray
    raw: float
    bound: float
    mult: np.ndarray | None = None
    plan: tuple | None = None
    step: float = 0.0


def _bound_child(rel: Relaxation, t: _Task, rel_gap: float, node_iterations: int, polish) -> _Outcome:
    """A child's bound by ``node_iterations`` subgradient steps from its parent's multipliers (never below the parent's)."""
    _apply_fixings(rel, t.fixings)
    domain = _domain(t.ranges)
    if domain is None:
        return _Outcome(0, t.ub, t.S, t.raw, np.inf)
    st = AscentState(t.step, best_ub=t.ub, best_S=t.S, best_raw=t.raw, floor=t.floor)
    rel.mult.value = t.mult.copy()
    deadline = time.perf_counter() + t.seconds
    it = ascend(rel, st, rel_gap=rel_gap, deadline=deadline, iterations=node_iterations, polish=polish, domain=domain)
    bound = max(t.parent_bound, st.best_lb)
    return _Outcome(it, st.best_ub, st.best_S, st.best_raw, bound, st.best_mult, st.dp_plan, st.step)


def _apply_fixings(rel: Relaxation, fixings: tuple) -> None:
    """Ban the cells of the fixing rounds this process has not applied yet (same bans in every process)."""
    for values, threshold in fixings[rel.fixed :]:
        current, rel.mult.value = rel.mult.value, values
        _fix_cells(rel.dp, rel.mult, threshold)
        rel.mult.value = current
    rel.fixed = max(rel.fixed, len(fixings))


_WORKER: dict = {}


def _start_worker(rel: Relaxation) -> None:
    """Pool initializer: keep the relaxation (forest DP with its fixed cells) for every task of this process."""
    _WORKER["rel"] = rel


def _bound_in_worker(t: _Task, settings: tuple) -> _Outcome:
    return _bound_child(_WORKER["rel"], t, *settings)


def _pool(rel: Relaxation, workers: int) -> Executor | None:
    """A process pool that holds ``rel`` (forked where the platform allows, so nothing is copied), or None for 1 worker."""
    if workers <= 1:
        return None
    methods = multiprocessing.get_all_start_methods()
    context = multiprocessing.get_context("fork" if "fork" in methods else None)
    return ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(rel,))


def _next_tasks(search: _Search) -> list[_Task]:
    """The children of the best open node (or its re-ascent when its DP plan keeps every relaxed link)."""
    while search.heap:
        node = heapq.heappop(search.heap)
        if search.close(node.bound):
            continue
        link = _branch_link(search.rel, node.plan)
        if link is not None:
            return [search.task(ranges, node) for ranges in _children(search.rel, node.ranges, *link)]
        if node.retries < 3:  # the multipliers have slack: drop those and ascend again
            mult = np.where(search.rel.mult.subgradient(*node.plan) < 0, 0.0, node.mult)
            return [search.task(node.ranges, replace(node, mult=mult, step=max(node.step, 0.25)), node.retries + 1)]
        search.closed = min(search.closed, node.bound)  # give up on this node; its bound stays in the answer
    return []


def lagrangian_branch_and_bound(
    network: Network,
    grid: TimeGrid,
    time_limit: float = 60.0,
    rel_gap: float = 1e-4,
    max_root_iterations: int = 150,
    node_iterations: int = 10,
    polish: float | None = 0.01,
    workers: int = 1,
    fix_at_root: bool = True,
) -> LagrangianBound:
    """Root ascent with reduced-cost fixing, then best-first branching on violated relaxed links.

    Parameters
    ----------
    time_limit : float, default 60
        Seconds for root and search together; the best plan and the least open bound come back.
    rel_gap : float, default 1e-4
        Stop when (plan cost - bound) / plan cost <= rel_gap.
    max_root_iterations : int, default 150
        DP solves at the root (it also stops when its step stalls and nothing more can be fixed).
        150: on the generated 1,400-stage network branching after 150 root solves proved it
        in 128 CPU s, after 300 in 163 CPU s (docs/methods/gsm-model.md).
    node_iterations : int, default 10
        DP solves per node (subgradient steps from the parent's best multipliers).
    polish : float, default 0.01
        As in :func:`spanning_tree_lagrangian`.
    workers : int, default 1
        Processes that bound the children of a node side by side (1: in this process). The
        answer is the same for any number: both children start from the same incumbent.
    fix_at_root : bool, default True
        One reduced-cost fixing round with the root's best multipliers and the polished plan
        before branching, so that every node's DP scans only the cells left.
    """
    start = time.perf_counter()
    deadline = start + time_limit
    rel = Relaxation.build(network, grid)
    st = AscentState(2.0)
    it = ascend(
        rel, st, rel_gap=rel_gap, deadline=deadline, iterations=max_root_iterations, polish=polish, fix_every=20
    )
    if polish is not None and st.best_ub - st.best_lb > rel_gap * st.best_ub:
        st.best_S, st.best_ub = polish_plan(network, grid, st.best_S, rel.links)
    if fix_at_root and st.best_ub - st.best_lb > rel_gap * st.best_ub and st.best_mult is not None:
        _fix(st, rel.dp, rel.mult, rel_gap)  # with the polished plan: every node solves only the cells left
    search = _Search(
        rel, st.best_ub, st.best_S, st.floor, rel_gap, deadline, node_iterations, polish, st.best_raw, iterations=it
    )
    if fix_at_root:
        search.root_mult, search.fixed_at = st.best_mult, st.best_ub
    if st.dp_plan is not None and not search.close(st.best_lb):
        heapq.heappush(search.heap, _Node(st.best_lb, 0, {}, st.best_mult, st.dp_plan, max(st.step, 0.25)))
    pool = _pool(rel, workers) if search.heap else None
    try:
        while search.heap and not search.done() and time.perf_counter() < deadline:
            search.run(_next_tasks(search), pool)
    finally:
        if pool is not None:
            pool.shutdown(cancel_futures=True)
    lower = search.lower_bound()
    return LagrangianBound(
        lower, search.ub, search.S, search.iterations, time.perf_counter() - start, st.fixes, st.banned, search.nodes
    )
