"""Branch-and-bound on the relaxed links of the spanning-tree Lagrangian (Humair & Willems 2011).

The root is :func:`optimization.meio_lagrange.spanning_tree_lagrangian`'s ascent
(with reduced-cost fixing). If its bound has not met the best plan, the search
branches on the relaxed link i -> k most violated by the DP's plan at a node's
best bound (S_i = a > SI_k = b): with m = (a + b) // 2, every feasible plan has
either S_i <= m, or S_i > m and then SI_k >= S_i > m, so the children are

- S_i <= m,
- S_i >= m + 1 and SI_k >= m + 1,

and both exclude the DP's plan. A node's domain (service-time ranges) enters the
DP as infinite stage costs outside the ranges; its bound is the Lagrangian dual
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
import time
from dataclasses import dataclass, field, replace

import numpy as np

from optimization.meio_grid import TimeGrid
from optimization.meio_lagrange import (
    AscentState,
    LagrangianBound,
    Relaxation,
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


def _domain(rel: Relaxation, ranges: dict) -> dict | None:
    """The ranges as 0 / inf stage costs on S and SI; None if some range is empty (infeasible node)."""
    sub, out = rel.mult.grid, {}
    for k, (s_lo, s_hi, si_lo, si_hi) in ranges.items():
        if s_lo > s_hi or si_lo > si_hi:
            return None
        s, si = np.arange(sub.s_max[k] + 1), np.arange(sub.si_max[k] + 1)
        out[k] = (
            np.where((s >= s_lo) & (s <= s_hi), 0.0, np.inf),
            np.where((si >= si_lo) & (si <= si_hi), 0.0, np.inf),
        )
    return out


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

    def evaluate(self, ranges: dict, parent: _Node, retries: int = 0) -> None:
        """Bound one child by a warm-started ascent; push it unless it is closed."""
        self.nodes += 1
        domain = _domain(self.rel, ranges)
        if domain is None:
            return
        st = AscentState(parent.step, best_ub=self.ub, best_S=self.S, best_raw=self.raw, floor=self.floor)
        self.rel.mult.value = parent.mult.copy()
        self.iterations += ascend(
            self.rel,
            st,
            rel_gap=self.rel_gap,
            deadline=self.deadline,
            iterations=self.node_iterations,
            polish=self.polish,
            domain=domain,
        )
        self.raw = min(self.raw, st.best_raw)
        if st.best_ub < self.ub:
            self.ub, self.S = st.best_ub, st.best_S
        bound = max(parent.bound, st.best_lb)
        if st.dp_plan is None or self.close(bound):
            return
        heapq.heappush(self.heap, _Node(bound, self.nodes, ranges, st.best_mult, st.dp_plan, st.step, retries))


def lagrangian_branch_and_bound(
    network: Network,
    grid: TimeGrid,
    time_limit: float = 60.0,
    rel_gap: float = 1e-4,
    max_root_iterations: int = 150,
    node_iterations: int = 10,
    polish: float | None = 0.01,
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
    search = _Search(
        rel, st.best_ub, st.best_S, st.floor, rel_gap, deadline, node_iterations, polish, st.best_raw, iterations=it
    )
    if st.dp_plan is not None and not search.close(st.best_lb):
        heapq.heappush(search.heap, _Node(st.best_lb, 0, {}, st.best_mult, st.dp_plan, max(st.step, 0.25)))
    while search.heap and not search.done() and time.perf_counter() < deadline:
        node = heapq.heappop(search.heap)
        if search.close(node.bound):
            continue
        link = _branch_link(rel, node.plan)
        if link is None:  # the DP plan keeps every relaxed link, the multipliers have slack: drop those, ascend
            if node.retries < 3:
                mult = np.where(rel.mult.subgradient(*node.plan) < 0, 0.0, node.mult)
                search.evaluate(node.ranges, replace(node, mult=mult, step=max(node.step, 0.25)), node.retries + 1)
            else:  # give up on this node; its bound stays in the answer
                search.closed = min(search.closed, node.bound)
            continue
        for ranges in _children(rel, node.ranges, *link):
            search.evaluate(ranges, node)
    lower = search.lower_bound()
    return LagrangianBound(
        lower, search.ub, search.S, search.iterations, time.perf_counter() - start, st.fixes, st.banned, search.nodes
    )
