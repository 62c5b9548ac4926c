"""Exact GSM dynamic programme on spanning trees (Graves & Willems 2000).

Stages are labelled so that each has at most one adjacent stage with a larger
label (its *parent* p(k)); stage k's subproblem covers the subtree N_k of
stages it reaches without passing through p(k). For each stage, in label
order, the table-building step computes

- f_k(S)  = min over SI of c_k(S, SI)  when p(k) is downstream of k,
- g_k(SI) = min over S  of c_k(S, SI)  when p(k) is upstream of k,

with c_k(S, SI) = h_k ss_k(SI + T_k - S) + sum_{i supplier child} min_{x <= SI} f_i(x)
+ sum_{d customer child} min_{y >= S} g_d(y) (Graves & Willems 2000, eqs.
(6)-(9)). The last stage of each component is minimised over both S and SI,
and a backtracking pass recovers the optimal service times.

All values are on the integer time grid of :mod:`optimization.meio_grid`.

References
----------
S. C. Graves and S. P. Willems. Optimizing strategic safety stock placement in
supply chains. *M&SOM*, 2(1):68-83, 2000; erratum *M&SOM* 5(2):176-177, 2003.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from optimization.meio_grid import TimeGrid
from optimization.network import Network

__all__ = ["solve_tree_dp"]


@dataclass
class _Table:
    """f_k (over S) or g_k (over SI) of one stage, with its running minimum and argmins."""

    values: np.ndarray
    arg_other: np.ndarray
    run_min: np.ndarray
    run_arg: np.ndarray


def _label_stages(network: Network) -> tuple[np.ndarray, np.ndarray]:
    """Leaf-stripping order and each stage's larger adjacent stage (-1 for component roots)."""
    n = network.n_stages
    adj: list[list[int]] = [[] for _ in range(n)]
    for u, d in zip(network.edge_up.tolist(), network.edge_down.tolist()):
        adj[u].append(d)
        adj[d].append(u)
    degree = np.array([len(a) for a in adj])
    removed = np.zeros(n, dtype=bool)
    parent = np.full(n, -1, dtype=np.int64)
    stack = [i for i in range(n - 1, -1, -1) if degree[i] <= 1]
    order: list[int] = []
    while stack:
        k = stack.pop()
        if removed[k]:
            continue
        removed[k] = True
        order.append(k)
        for p in adj[k]:
            if not removed[p]:
                parent[k] = p
                degree[p] -= 1
                if degree[p] <= 1:
                    stack.append(p)
    return np.array(order, dtype=np.int64), parent


def _running_min(values: np.ndarray, reverse: bool) -> tuple[np.ndarray, np.ndarray]:
    """Prefix (or suffix when ``reverse``) minimum and the index attaining it."""
    v = values[::-1] if reverse else values
    run = np.minimum.accumulate(v)
    idx = np.arange(v.size)
    arg = np.maximum.accumulate(np.where(v <= run, idx, 0))
    if reverse:
        return run[::-1], (v.size - 1 - arg)[::-1]
    return run, arg


def _stage_costs(k, grid, network, tables, children, extra=None) -> np.ndarray:
    """c_k(S, SI) as a (S = 0..s_max) x (SI = 0..si_max) array (inf where tau < 0).

    ``extra`` = (s_cost, si_cost) adds s_cost[k][S] + si_cost[k][SI] (e.g. Lagrangian terms).
    """
    s = np.arange(grid.s_max[k] + 1)
    si = np.arange(grid.si_max[k] + 1)
    tau = si[None, :] + grid.T[k] - s[:, None]
    own = grid.stage_cost(k)
    ok = (tau >= 0) & (si[None, :] >= grid.si_min[k])
    total = np.where(ok, own[np.clip(tau, 0, grid.M[k])], np.inf)
    if extra is not None:
        total = total + extra[0][k][:, None] + extra[1][k][None, :]
    for c in children:
        t = tables[c]
        if network.index_is_supplier(c, k):
            total = total + t.run_min[np.minimum(si, t.run_min.size - 1)][None, :]
        else:
            total = total + t.run_min[s][:, None]
    return total


def _build_tables(network: Network, grid: TimeGrid, order, parent, children, extra=None):
    """Table-building pass: f_k or g_k for every non-root stage, in label order."""
    tables: dict[int, _Table] = {}
    roots: dict[int, tuple[float, int, int]] = {}
    for k in order.tolist():
        total = _stage_costs(k, grid, network, tables, children[k], extra)
        p = parent[k]
        if p < 0:
            flat = int(np.argmin(total))
            s, si = np.unravel_index(flat, total.shape)
            roots[k] = (float(total.flat[flat]), int(s), int(si))
        elif network.index_is_supplier(k, p):
            arg = np.argmin(total, axis=1)
            values = total[np.arange(total.shape[0]), arg]
            tables[k] = _Table(values, arg, *_running_min(values, reverse=False))
        else:
            arg = np.argmin(total, axis=0)
            values = total[arg, np.arange(total.shape[1])]
            tables[k] = _Table(values, arg, *_running_min(values, reverse=True))
    return tables, roots


def _backtrack(network: Network, order, children, tables, roots) -> tuple[np.ndarray, np.ndarray]:
    """Recover S and SI from the roots down, in reverse label order."""
    n = network.n_stages
    S = np.zeros(n, dtype=np.int64)
    SI = np.zeros(n, dtype=np.int64)
    for k, (_, s, si) in roots.items():
        S[k], SI[k] = s, si
    for k in order[::-1].tolist():
        for c in children[k]:
            t = tables[c]
            if network.index_is_supplier(c, k):
                S[c] = t.run_arg[min(SI[k], t.run_arg.size - 1)]
                SI[c] = t.arg_other[S[c]]
            else:
                SI[c] = t.run_arg[S[k]]
                S[c] = t.arg_other[SI[c]]
    return S, SI


def solve_tree_dp(
    network: Network,
    grid: TimeGrid,
    s_cost: Sequence[np.ndarray] | None = None,
    si_cost: Sequence[np.ndarray] | None = None,
) -> tuple[np.ndarray, np.ndarray, float]:
    """Optimal (S, SI) in grid units and the optimal cost on a spanning tree / forest.

    ``s_cost[k]`` (length s_max_k + 1) and ``si_cost[k]`` (length si_max_k + 1)
    add any per-stage functions of S_k and SI_k to the objective, e.g. Lagrange
    multipliers of relaxed links; the returned cost includes them.

    Raises
    ------
    ValueError
        The network is not a tree (use the MILP).
    """
    if not network.is_tree:
        raise ValueError(
            f"tree DP needs a spanning tree/forest; this network has {network.n_edges} edges for "
            f"{network.n_stages} stages; use method='milp'"
        )
    order, parent = _label_stages(network)
    children: list[list[int]] = [[] for _ in range(network.n_stages)]
    for k in order.tolist():
        if parent[k] >= 0:
            children[parent[k]].append(k)
    extra = None
    if s_cost is not None or si_cost is not None:
        zeros = [np.zeros(grid.s_max[k] + 1) for k in range(network.n_stages)]
        zeros_si = [np.zeros(grid.si_max[k] + 1) for k in range(network.n_stages)]
        extra = (zeros if s_cost is None else s_cost, zeros_si if si_cost is None else si_cost)
    tables, roots = _build_tables(network, grid, order, parent, children, extra)
    S, SI = _backtrack(network, order, children, tables, roots)
    return S, SI, float(sum(r[0] for r in roots.values()))
