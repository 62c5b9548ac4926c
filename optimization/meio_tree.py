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

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from optimization.meio_grid import MAX_GRID_CELLS, TimeGrid
from optimization.network import Network

__all__ = ["TreeDP", "solve_tree_dp"]


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


class TreeDP:
    """The DP of one spanning tree / forest, set up once and solved for any extra stage costs.

    Labels, children and each stage's own cost table c_k(S, SI) (inf where tau < 0)
    are kept between solves (the tables only while their cells total at most
    ``cache_cells``), so repeated solves with different Lagrangian terms cost
    one pass of additions and minima over the tables.

    Raises
    ------
    ValueError
        The network is not a tree (use the MILP).
    """

    def __init__(self, network: Network, grid: TimeGrid, cache_cells: float = MAX_GRID_CELLS) -> None:
        if not network.is_tree:
            raise ValueError(
                f"tree DP needs a spanning tree/forest; this network has {network.n_edges} edges for "
                f"{network.n_stages} stages; use method='milp'"
            )
        self.network, self.grid = network, grid
        self.order, self.parent = _label_stages(network)
        self.children: list[list[int]] = [[] for _ in range(network.n_stages)]
        for k in self.order.tolist():
            if self.parent[k] >= 0:
                self.children[self.parent[k]].append(k)
        self.supplier = {  # (child, parent) -> child supplies parent
            (c, k): network.index_is_supplier(c, k) for k in range(network.n_stages) for c in self.children[k]
        }
        self._up = np.array(  # k supplies its parent (its table is f_k over S), else g_k over SI
            [self.parent[k] >= 0 and self.supplier[(k, int(self.parent[k]))] for k in range(network.n_stages)]
        )
        self._sup_children = [[c for c in self.children[k] if self._up[c]] for k in range(network.n_stages)]
        self._cust_children = [[c for c in self.children[k] if not self._up[c]] for k in range(network.n_stages)]
        cells = float(np.sum((grid.s_max + 1.0) * (grid.si_max + 1.0)))
        self._cache: dict[int, tuple[tuple[int, int, int, int], np.ndarray]] | None = (
            {} if cells <= cache_cells else None
        )
        self._banned: dict[int, np.ndarray] = {}

    def _own(self, k: int) -> np.ndarray:
        """c_k(S, SI) as a (S = 0..s_max) x (SI = 0..si_max) array (inf where tau < 0 or SI < si_min, or banned)."""
        grid = self.grid
        if self._cache is not None and k in self._cache:  # expand the live box
            (a, b, c, d), live = self._cache[k]
            own = np.full((grid.s_max[k] + 1, grid.si_max[k] + 1), np.inf)
            own[a : b + 1, c : d + 1] = live
            return own
        s = np.arange(grid.s_max[k] + 1)
        si = np.arange(grid.si_max[k] + 1)
        tau = si[None, :] + grid.T[k] - s[:, None]
        ok = (tau >= 0) & (si[None, :] >= grid.si_min[k])
        own = np.where(ok, grid.stage_cost(k)[np.clip(tau, 0, grid.M[k])], np.inf)
        if k in self._banned:
            own[self._banned[k]] = np.inf
        return own

    def _live(self, k: int) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """Stage k's live box (s_lo, s_hi, si_lo, si_hi) -- the rows and columns with a finite cell -- and c_k on it.

        After reduced-cost fixing most cells are banned, so a solve scans only these boxes.
        """
        if self._cache is not None and k in self._cache:
            return self._cache[k]
        own = self._own(k)
        finite = np.isfinite(own)
        rows, cols = np.flatnonzero(finite.any(axis=1)), np.flatnonzero(finite.any(axis=0))
        if rows.size == 0:
            box, live = (1, 0, 1, 0), np.empty((0, 0))
        else:
            box = (int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1]))
            live = np.ascontiguousarray(own[box[0] : box[1] + 1, box[2] : box[3] + 1])
        if self._cache is not None:
            self._cache[k] = (box, live)
        return box, live

    def _vectors(self, k: int, tables: dict, extra) -> tuple[np.ndarray, np.ndarray]:
        """The terms of c_k(S, SI) that depend on S only (row) and SI only (col): children's costs + extra."""
        grid = self.grid
        row = np.zeros(grid.s_max[k] + 1) if extra is None else np.array(extra[0][k], dtype=float)
        col = np.zeros(grid.si_max[k] + 1) if extra is None else np.array(extra[1][k], dtype=float)
        for c in self.children[k]:
            run = tables[c].run_min
            if self.supplier[(c, k)]:
                col += run[np.minimum(np.arange(col.size), run.size - 1)]
            else:
                row += run[: row.size]
        return row, col

    def _stage_costs(self, k: int, tables: dict, extra) -> np.ndarray:
        """c_k(S, SI) + the children's best costs (eqs. 6-9) + extra[0][k][S] + extra[1][k][SI]."""
        row, col = self._vectors(k, tables, extra)
        total = self._own(k) + row[:, None]
        total += col[None, :]
        return total

    def _build_tables(self, extra, totals: dict | None = None):
        """Table-building pass: f_k or g_k for every non-root stage, in label order (``totals``: keep c_k).

        f_k(S) = row(S) + min_SI [own + col] and g_k(SI) = col(SI) + min_S [own + row]: one
        full-table addition per stage unless ``totals`` asks for the whole c_k.
        """
        tables: dict[int, _Table] = {}
        roots: dict[int, tuple[float, int, int]] = {}
        for k in self.order.tolist():
            p = self.parent[k]
            if p < 0 or totals is not None:
                total = self._stage_costs(k, tables, extra)
                if totals is not None:
                    totals[k] = total
                if p < 0:
                    flat = int(np.argmin(total))
                    s, si = np.unravel_index(flat, total.shape)
                    roots[k] = (float(total.flat[flat]), int(s), int(si))
                    continue
                row = col = None
                part = total
            else:
                row, col = self._vectors(k, tables, extra)
                part = self._own(k) + (col[None, :] if self.supplier[(k, p)] else row[:, None])
            if self.supplier[(k, p)]:
                arg = np.argmin(part, axis=1)
                values = part[np.arange(part.shape[0]), arg] + (0.0 if row is None else row)
                tables[k] = _Table(values, arg, *_running_min(values, reverse=False))
            else:
                arg = np.argmin(part, axis=0)
                values = part[arg, np.arange(part.shape[1])] + (0.0 if col is None else col)
                tables[k] = _Table(values, arg, *_running_min(values, reverse=True))
        return tables, roots

    def _box(self, k: int, ranges) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """Stage k's live box cut to ``ranges[k]`` (if given) and c_k on it (a view; empty if no cell is left)."""
        (a0, b0, c0, d0), live = self._live(k)
        a, b, c, d = a0, b0, c0, d0
        if ranges is not None and k in ranges:
            lo_s, hi_s, lo_si, hi_si = ranges[k]
            a, b, c, d = max(a, lo_s), min(b, hi_s), max(c, lo_si), min(d, hi_si)
        return (a, b, c, d), live[a - a0 : b - a0 + 1, c - c0 : d - c0 + 1]

    def _box_vectors(self, k: int, box: tuple, tables: dict, extra) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_vectors` on the box only: the S terms for S = a..b and the SI terms for SI = c..d."""
        a, b, c, d = box
        if extra is None:
            row, col = np.zeros(b - a + 1), np.zeros(d - c + 1)
        else:
            (s_flat, s_off), (si_flat, si_off) = extra
            row, col = s_flat[s_off[k] + a : s_off[k] + b + 1].copy(), si_flat[si_off[k] + c : si_off[k] + d + 1].copy()
        for ch in self._cust_children[k]:
            row += tables[ch].run_min[a : b + 1]
        for ch in self._sup_children[k]:
            run = tables[ch].run_min
            col += run[c : d + 1] if d < run.size else run[np.minimum(np.arange(c, d + 1), run.size - 1)]
        return row, col

    def _compact_tables(self, extra, ranges=None):
        """:meth:`_build_tables` on each stage's live box (cut to ``ranges``): same tables, cost ~ live cells.

        Outside the box f_k / g_k are inf, as the full pass gives them (every cell there is inf).
        """
        tables: dict[int, _Table] = {}
        roots: dict[int, tuple[float, int, int]] = {}
        s_max, si_max = self.grid.s_max, self.grid.si_max
        for k in self.order.tolist():
            box, part = self._box(k, ranges)
            a, b, c, d = box
            up, root = bool(self._up[k]), self.parent[k] < 0
            if a > b or c > d:  # no cell left: no plan through this stage
                if root:
                    roots[k] = (np.inf, 0, 0)
                else:
                    size = (s_max[k] if up else si_max[k]) + 1
                    inf, zero = np.full(size, np.inf), np.zeros(size, dtype=np.int64)
                    tables[k] = _Table(inf, zero, inf, zero)
                continue
            row, col = self._box_vectors(k, box, tables, extra)  # extra: flat arrays and offsets
            if root:
                total = part + row[:, None]
                total += col[None, :]
                flat = int(np.argmin(total))
                s, si = divmod(flat, total.shape[1])
                roots[k] = (float(total.flat[flat]), a + s, c + si)
            elif up:  # f_k(S) = row(S) + min_SI [own + col]
                part = part + col[None, :]
                arg = part.argmin(axis=1)
                values, other = np.full(s_max[k] + 1, np.inf), np.zeros(s_max[k] + 1, dtype=np.int64)
                values[a : b + 1] = part[np.arange(b - a + 1), arg] + row
                other[a : b + 1] = arg + c
                tables[k] = _Table(values, other, *_running_min(values, reverse=False))
            else:  # g_k(SI) = col(SI) + min_S [own + row]
                part = part + row[:, None]
                arg = part.argmin(axis=0)
                values, other = np.full(si_max[k] + 1, np.inf), np.zeros(si_max[k] + 1, dtype=np.int64)
                values[c : d + 1] = part[arg, np.arange(d - c + 1)] + col
                other[c : d + 1] = arg + a
                tables[k] = _Table(values, other, *_running_min(values, reverse=True))
        return tables, roots

    def live_cells(self) -> int:
        """(S, SI) cells in the stages' live boxes: what one :meth:`solve` scans."""
        return int(sum(self._live(k)[1].size for k in range(self.network.n_stages)))

    def ban(self, k: int, cells: np.ndarray) -> int:
        """Exclude stage k's (S, SI) cells where ``cells`` is True from every later solve; returns cells newly banned."""
        old = self._banned.get(k, np.zeros(cells.shape, dtype=bool))
        new = int(np.count_nonzero(cells & ~old))
        self._banned[k] = old | cells
        if self._cache is not None:
            self._cache.pop(k, None)
        return new

    def _extra(self, s_cost, si_cost):
        if s_cost is None and si_cost is None:
            return None
        grid, n = self.grid, self.network.n_stages
        return (
            [np.zeros(grid.s_max[k] + 1) for k in range(n)] if s_cost is None else s_cost,
            [np.zeros(grid.si_max[k] + 1) for k in range(n)] if si_cost is None else si_cost,
        )

    def min_marginals(
        self, s_cost: Sequence[np.ndarray] | None = None, si_cost: Sequence[np.ndarray] | None = None
    ) -> Iterator[tuple[int, np.ndarray]]:
        """Yield (k, M_k) for every stage: M_k[S, SI] = the optimum with (S_k, SI_k) fixed to (S, SI).

        An outside pass after the table-building pass (reverse label order): stage k's
        table plus the best cost of everything outside its subtree N_k given the link to
        its parent. Costs about two :meth:`solve` calls; with Lagrangian terms every M_k
        is a lower bound on any plan with those (S_k, SI_k) (reduced-cost fixing).
        """
        extra = self._extra(s_cost, si_cost)
        totals: dict[int, np.ndarray] = {}
        tables, _ = self._build_tables(extra, totals)
        outside: dict[int, np.ndarray] = {}
        for k in self.order[::-1].tolist():
            full = totals.pop(k)
            p = self.parent[k]
            if p >= 0:
                out = outside.pop(k)
                full = full + (out[:, None] if self.supplier[(k, p)] else out[None, :])
            for c in self.children[k]:
                outside[c] = self._outside(full, c, k, tables[c].run_min)
            yield k, full

    def _outside(self, full: np.ndarray, c: int, k: int, run: np.ndarray) -> np.ndarray:
        """Best cost outside child c's subtree given S_c (c supplies k) or SI_c (k supplies c)."""
        with np.errstate(invalid="ignore"):
            if self.supplier[(c, k)]:  # full had min_{x <= SI_k} f_c(x) added per column
                contrib = run[np.minimum(np.arange(full.shape[1]), run.size - 1)]
                excl = np.where(np.isinf(contrib)[None, :], np.inf, full - contrib[None, :])
                best = np.minimum.accumulate(excl.min(axis=0)[::-1])[::-1]  # over SI_k >= x
                size = self.grid.s_max[c] + 1
                return np.where(np.arange(size) < best.size, best[np.minimum(np.arange(size), best.size - 1)], np.inf)
            contrib = run[: full.shape[0]]  # full had min_{y >= S_k} g_c(y) added per row
            excl = np.where(np.isinf(contrib)[:, None], np.inf, full - contrib[:, None])
            best = np.minimum.accumulate(excl.min(axis=1))  # over S_k <= y
            size = self.grid.si_max[c] + 1
            return best[np.minimum(np.arange(size), best.size - 1)]

    def solve(
        self,
        s_cost: Sequence[np.ndarray] | None = None,
        si_cost: Sequence[np.ndarray] | None = None,
        ranges: dict | None = None,
    ) -> tuple[np.ndarray, np.ndarray, float]:
        """Optimal (S, SI) in grid units and the optimal cost, extra stage costs included.

        ``s_cost[k]`` (length s_max_k + 1) and ``si_cost[k]`` (length si_max_k + 1)
        add any per-stage functions of S_k and SI_k, e.g. Lagrange multipliers.
        ``ranges[k] = (s_lo, s_hi, si_lo, si_hi)`` restricts stage k's service times
        (a branch-and-bound node; the same as infinite extra costs outside them, but a
        solve only scans the cells left). The value is inf when no plan is left.
        """
        extra = self._extra(s_cost, si_cost)
        flat = None if extra is None else tuple(_flatten(e) for e in extra)
        tables, roots = self._compact_tables(flat, ranges)
        S, SI = _backtrack(self.order, self.children, self._up, tables, roots)
        return S, SI, float(sum(r[0] for r in roots.values()))


def _flatten(vectors) -> tuple[np.ndarray, list[int]]:
    """Per-stage vectors as one float array and offsets (views of an already flat array are reused)."""
    flat = getattr(vectors, "flat", None)
    if isinstance(flat, np.ndarray):
        return flat, vectors.off
    sizes = [len(v) for v in vectors]
    return np.concatenate(vectors).astype(float, copy=False), np.concatenate([[0], np.cumsum(sizes)]).tolist()


def _backtrack(order, children, up, tables, roots) -> tuple[np.ndarray, np.ndarray]:
    """Recover S and SI from the roots down, in reverse label order (``up[c]``: c supplies its parent)."""
    n = up.size
    S = np.zeros(n, dtype=np.int64)
    SI = np.zeros(n, dtype=np.int64)
    for k, (_, s, si) in roots.items():
        S[k], SI[k] = s, si
    for k in order[::-1].tolist():
        for c in children[k]:
            t = tables[c]
            if up[c]:
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

    ``s_cost`` and ``si_cost`` add per-stage functions of S and SI (see :meth:`TreeDP.solve`).

    Raises
    ------
    ValueError
        The network is not a tree (use the MILP).
    """
    return TreeDP(network, grid, cache_cells=0).solve(s_cost, si_cost)
