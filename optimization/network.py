"""Immutable multi-echelon network: stages, edges, validation and flat arrays.

A :class:`Network` is input data for the Guaranteed Service Model
(:mod:`optimization.gsm`). It is validated once on construction and turned
into numpy arrays in topological order (suppliers before customers) with CSR
adjacency, so the algorithms never touch Python objects or pandas.

Notation follows Graves & Willems (2000): stage j has processing time T_j,
holding cost h_j per unit-period of safety stock and, if customer-facing, a
maximum outbound service time s_j. An edge (i, j) with quantity phi_ij means
stage j consumes phi_ij units of stage i per unit it produces.

References
----------
S. C. Graves and S. P. Willems. Optimizing strategic safety stock placement in
supply chains. *Manufacturing & Service Operations Management*, 2(1):68-83, 2000.

S. Humair and S. P. Willems. Optimizing strategic safety stock placement in
general acyclic networks. *Operations Research*, 59(3):781-787, 2011.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from fractions import Fraction

import numpy as np

__all__ = [
    "CycleError",
    "Edge",
    "Network",
    "NetworkError",
    "Stage",
    "UnknownStageError",
]


class NetworkError(ValueError):
    """A network that violates the data contract (see the message for ids)."""


class CycleError(NetworkError):
    """The edges contain a directed cycle; the message names it."""


class UnknownStageError(NetworkError):
    """An edge refers to a stage id that is not in the stage list."""


@dataclass(frozen=True)
class Stage:
    """One stocking/processing stage of a network.

    Parameters
    ----------
    stage_id : str
        Unique id, e.g. ``"SKU001@DC1"``.
    processing_time : float
        T_j in periods, >= 0; fractions are kept.
    holding_cost : float
        Cost per unit-period of safety stock held at the stage, >= 0.
    max_service_time : float, default inf
        Largest outbound service time the stage may quote (customer-facing
        stages); ``inf`` or ``None`` = unbounded.
    unique_id : str or None
        Link to a demand series (Nixtla ``unique_id``) for demand stages.
    demand_mean, demand_std : float or None
        External demand per period (Willems gives them; otherwise they come
        from the forecasting layer).
    safety_factor : float or None
        z of the demand bound D(tau) = tau*mu + z*sigma*sqrt(tau) at a demand stage.
    external_inbound_service_time : float, default 0
        Service time quoted by an outside supplier (SI_j >= this value), e.g.
        a vendor that ships 7 periods after the order.
    risk_pool : float, default 2
        Exponent p pooling the excess demand of the demand stages served by an
        internal stage (2 = square root of sum of squares).
    """

    stage_id: str
    processing_time: float
    holding_cost: float
    max_service_time: float | None = math.inf
    unique_id: str | None = None
    demand_mean: float | None = None
    demand_std: float | None = None
    safety_factor: float | None = None
    external_inbound_service_time: float = 0.0
    risk_pool: float = 2.0

    @property
    def has_demand(self) -> bool:
        """True when the stage faces external demand (mean given or linked series)."""
        return self.demand_mean is not None or self.unique_id is not None


@dataclass(frozen=True)
class Edge:
    """Material flows from ``upstream`` to ``downstream``; ``quantity`` per unit."""

    upstream: str
    downstream: str
    quantity: float = 1.0


def _check_stage(stage: Stage) -> None:
    """Raise NetworkError on a negative or non-finite stage attribute."""
    sid = stage.stage_id
    if not isinstance(sid, str) or not sid:
        raise NetworkError(f"stage_id must be a non-empty string, got {sid!r}")
    checks = {
        "processing_time": stage.processing_time,
        "holding_cost": stage.holding_cost,
        "external_inbound_service_time": stage.external_inbound_service_time,
    }
    for name, value in checks.items():
        if not (np.isfinite(value) and value >= 0):
            raise NetworkError(f"stage {sid!r}: {name} must be finite and >= 0, got {value!r}")
    smax = stage.max_service_time
    if smax is not None and not (smax >= 0):
        raise NetworkError(f"stage {sid!r}: max_service_time must be >= 0 or blank, got {smax!r}")
    for name in ("demand_mean", "demand_std", "safety_factor"):
        value = getattr(stage, name)
        if value is not None and not (np.isfinite(value) and value >= 0):
            raise NetworkError(f"stage {sid!r}: {name} must be finite and >= 0, got {value!r}")
    if not (stage.risk_pool >= 1):
        raise NetworkError(f"stage {sid!r}: risk_pool must be >= 1, got {stage.risk_pool!r}")


def _find_cycle(remaining: set[int], preds: list[list[int]]) -> list[int]:
    """Walk predecessors inside the unsorted remainder until a stage repeats."""
    start = min(remaining)
    seen: dict[int, int] = {}
    path: list[int] = []
    node = start
    while node not in seen:
        seen[node] = len(path)
        path.append(node)
        node = next(p for p in preds[node] if p in remaining)
    cycle = path[seen[node] :]
    return cycle[::-1] + [cycle[-1]]


@dataclass(frozen=True)
class Network:
    """Validated, immutable multi-echelon network with flat numpy views.

    Parameters
    ----------
    stages : sequence of Stage
    edges : sequence of Edge

    Raises
    ------
    NetworkError
        Duplicate stages or edges, negative times/costs/quantities,
        customer-facing (sink) stages without demand, empty network.
    UnknownStageError
        An edge names a stage that does not exist.
    CycleError
        The edges contain a directed cycle (named in the message).

    Attributes
    ----------
    stage_ids : tuple of str
        Topological order (suppliers first); ``index`` maps id -> position.
    processing_time, holding_cost, max_service_time, external_inbound : ndarray (n_stages,)
    demand_mean, demand_std, safety_factor, risk_pool : ndarray (n_stages,)
        NaN where not given.
    unique_ids : tuple of (str or None)
    is_sink : ndarray of bool
        Customer-facing stages (no successor).
    edge_up, edge_down, edge_qty : ndarray (n_edges,)
    pred_indptr, pred_indices, pred_qty, succ_indptr, succ_indices, succ_qty : ndarray
        CSR adjacency (read-only views).

    Notes
    -----
    All arrays are indexed in topological order (``stage_ids``); suppliers of
    stage j are ``pred_indices[pred_indptr[j]:pred_indptr[j+1]]`` (CSR).

    Examples
    --------
    >>> net = Network([Stage("A", 2, 1.0), Stage("B", 1, 2.0, 0, demand_mean=5,
    ...                demand_std=1, safety_factor=1.645)], [Edge("A", "B")])
    >>> net.stage_ids
    ('A', 'B')
    """

    stages: tuple[Stage, ...]
    edges: tuple[Edge, ...]
    _arrays: dict = field(init=False, repr=False, compare=False)

    def __init__(self, stages: Sequence[Stage], edges: Sequence[Edge]) -> None:
        object.__setattr__(self, "stages", tuple(stages))
        object.__setattr__(self, "edges", tuple(edges))
        object.__setattr__(self, "_arrays", self._build())

    # ------------------------------------------------------------------ build
    def _build(self) -> dict:
        """Validate and compute the topological order and flat arrays."""
        if not self.stages:
            raise NetworkError("network has no stages; give at least one Stage")
        for stage in self.stages:
            if not isinstance(stage, Stage):
                raise TypeError(f"stages must be Stage objects, got {type(stage).__name__}")
            _check_stage(stage)
        index = self._index_stages()
        up, down, qty = self._index_edges(index)
        order = self._topological_order(len(index), up, down)
        return self._arrays_in_order(order, up, down, qty)

    def _index_stages(self) -> dict[str, int]:
        """Map stage id -> input position, rejecting duplicates."""
        index: dict[str, int] = {}
        dupes = []
        for i, stage in enumerate(self.stages):
            if stage.stage_id in index:
                dupes.append(stage.stage_id)
            index[stage.stage_id] = i
        if dupes:
            raise NetworkError(f"duplicate stage ids {sorted(set(dupes))}; stage ids must be unique")
        return index

    def _index_edges(self, index: dict[str, int]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Edge endpoints as input positions, rejecting unknown ids and duplicates."""
        unknown = sorted({s for e in self.edges for s in (e.upstream, e.downstream) if s not in index})
        if unknown:
            raise UnknownStageError(
                f"edges refer to unknown stages {unknown[:10]}; add them to the stages or fix the ids"
            )
        seen: set[tuple[str, str]] = set()
        for e in self.edges:
            key = (e.upstream, e.downstream)
            if key in seen:
                raise NetworkError(f"duplicate edge {e.upstream!r} -> {e.downstream!r}; merge quantities")
            if e.upstream == e.downstream:
                raise CycleError(f"self-loop on stage {e.upstream!r}; remove the edge")
            if not (np.isfinite(e.quantity) and e.quantity > 0):
                raise NetworkError(f"edge {e.upstream!r} -> {e.downstream!r}: quantity must be > 0, got {e.quantity!r}")
            seen.add(key)
        up = np.array([index[e.upstream] for e in self.edges], dtype=np.int64)
        down = np.array([index[e.downstream] for e in self.edges], dtype=np.int64)
        qty = np.array([float(e.quantity) for e in self.edges], dtype=float)
        return up, down, qty

    def _topological_order(self, n: int, up: np.ndarray, down: np.ndarray) -> np.ndarray:
        """Kahn's algorithm, ties by input order; a leftover means a cycle."""
        preds: list[list[int]] = [[] for _ in range(n)]
        succs: list[list[int]] = [[] for _ in range(n)]
        for u, d in zip(up.tolist(), down.tolist()):
            preds[d].append(u)
            succs[u].append(d)
        indeg = np.array([len(p) for p in preds])
        ready = [i for i in range(n) if indeg[i] == 0]
        order: list[int] = []
        head = 0
        while head < len(ready):
            node = ready[head]
            head += 1
            order.append(node)
            for d in succs[node]:
                indeg[d] -= 1
                if indeg[d] == 0:
                    ready.append(d)
        if len(order) < n:
            cycle = _find_cycle(set(range(n)) - set(order), preds)
            names = " -> ".join(self.stages[i].stage_id for i in cycle)
            raise CycleError(f"the network has a directed cycle: {names}; remove one of its edges")
        return np.array(order, dtype=np.int64)

    def _arrays_in_order(self, order, up, down, qty) -> dict:
        """Reorder stages topologically and build CSR predecessor/successor arrays."""
        n = len(order)
        rank = np.empty(n, dtype=np.int64)
        rank[order] = np.arange(n)
        stages = [self.stages[i] for i in order]
        up_r, down_r = rank[up], rank[down]
        is_sink = np.bincount(up_r, minlength=n) == 0
        no_demand = [s.stage_id for s, sink in zip(stages, is_sink) if sink and not s.has_demand]
        if no_demand:
            raise NetworkError(
                f"customer-facing (sink) stages without demand {no_demand[:10]}; give them "
                "demand_mean/demand_std or a unique_id, or connect them to a customer stage"
            )
        smax = np.array([math.inf if s.max_service_time is None else float(s.max_service_time) for s in stages])

        def opt(name: str) -> np.ndarray:
            return np.array([np.nan if getattr(s, name) is None else float(getattr(s, name)) for s in stages])

        by_down = np.lexsort((up_r, down_r))
        by_up = np.lexsort((down_r, up_r))
        return {
            "stage_ids": tuple(s.stage_id for s in stages),
            "index": {s.stage_id: i for i, s in enumerate(stages)},
            "processing_time": np.array([float(s.processing_time) for s in stages]),
            "holding_cost": np.array([float(s.holding_cost) for s in stages]),
            "max_service_time": smax,
            "demand_mean": opt("demand_mean"),
            "demand_std": opt("demand_std"),
            "safety_factor": opt("safety_factor"),
            "risk_pool": np.array([float(s.risk_pool) for s in stages]),
            "external_inbound": np.array([float(s.external_inbound_service_time) for s in stages]),
            "unique_ids": tuple(s.unique_id for s in stages),
            "edge_up": up_r,
            "edge_down": down_r,
            "edge_qty": qty,
            "pred_indptr": np.concatenate([[0], np.cumsum(np.bincount(down_r, minlength=n))]),
            "pred_indices": up_r[by_down],
            "pred_qty": qty[by_down],
            "succ_indptr": np.concatenate([[0], np.cumsum(np.bincount(up_r, minlength=n))]),
            "succ_indices": down_r[by_up],
            "succ_qty": qty[by_up],
            "is_sink": is_sink,
            "edge_pairs": frozenset(zip(up_r.tolist(), down_r.tolist())),
        }

    # ------------------------------------------------------------- accessors
    def __getattr__(self, name: str):
        arrays = object.__getattribute__(self, "_arrays")
        if name in arrays:
            value = arrays[name]
            if isinstance(value, np.ndarray):
                value = value.view()
                value.flags.writeable = False
            return value
        raise AttributeError(f"Network has no attribute {name!r}")

    @property
    def n_stages(self) -> int:
        """Number of stages."""
        return len(self.stages)

    @property
    def n_edges(self) -> int:
        """Number of edges."""
        return len(self.edges)

    @property
    def is_tree(self) -> bool:
        """True when the undirected graph is a forest (the tree DP applies)."""
        return self.n_edges == self.n_stages - self.n_components

    @property
    def n_components(self) -> int:
        """Number of weakly connected components."""
        parent = np.arange(self.n_stages)

        def find(i: int) -> int:
            while parent[i] != i:
                parent[i] = parent[parent[i]]
                i = parent[i]
            return i

        for u, d in zip(self.edge_up.tolist(), self.edge_down.tolist()):
            parent[find(u)] = find(d)
        return len({find(i) for i in range(self.n_stages)})

    def predecessors(self, j: int) -> np.ndarray:
        """Supplier indices of stage index j."""
        return self.pred_indices[self.pred_indptr[j] : self.pred_indptr[j + 1]]

    def successors(self, j: int) -> np.ndarray:
        """Customer indices of stage index j."""
        return self.succ_indices[self.succ_indptr[j] : self.succ_indptr[j + 1]]

    def index_is_supplier(self, i: int, j: int) -> bool:
        """True when stage index i supplies stage index j directly."""
        return (i, j) in self.edge_pairs

    def longest_inbound_time(self) -> np.ndarray:
        """M_j = T_j + max(external SI_j, max_i M_i): the largest useful service time of j."""
        T = self.processing_time
        M = np.zeros(self.n_stages)
        for j in range(self.n_stages):
            preds = self.predecessors(j)
            M[j] = T[j] + max(self.external_inbound[j], M[preds].max() if preds.size else 0.0)
        return M

    def cumulative(self, values: np.ndarray) -> np.ndarray:
        """c_j = values_j + sum_i phi_ij c_i over suppliers (e.g. cumulative unit cost)."""
        values = np.asarray(values, dtype=float)
        if values.shape != (self.n_stages,):
            raise ValueError(f"values must have shape ({self.n_stages},), got {values.shape}")
        out = values.copy()
        for j in range(self.n_stages):
            lo, hi = self.pred_indptr[j], self.pred_indptr[j + 1]
            out[j] += float(self.pred_qty[lo:hi] @ out[self.pred_indices[lo:hi]])
        return out

    def time_denominator(self, max_denominator: int = 100) -> int:
        """Smallest d such that every T_j and finite s_j is a multiple of 1/d.

        Raises
        ------
        ValueError
            If no d <= ``max_denominator`` works; round the times first.
        """
        smax = self.max_service_time
        times = np.concatenate([self.processing_time, self.external_inbound, smax[np.isfinite(smax)]])
        d = 1
        for t in np.unique(times):
            frac = Fraction(float(t)).limit_denominator(max_denominator)
            if abs(float(frac) - t) > 1e-9:
                raise ValueError(
                    f"time {t!r} is not a multiple of 1/{max_denominator}; round processing or "
                    "service times to a coarser grid"
                )
            d = d * frac.denominator // math.gcd(d, frac.denominator)
        if d > max_denominator:
            raise ValueError(f"times need a grid of 1/{d} periods (> 1/{max_denominator}); round them to a common grid")
        return d

    def with_stages(self, **changes: dict) -> Network:
        """New network with some stage attributes replaced (scenarios).

        Examples
        --------
        >>> net2 = net.with_stages(A={"processing_time": 3})  # doctest: +SKIP
        """
        unknown = sorted(set(changes) - set(self.index))
        if unknown:
            raise UnknownStageError(f"unknown stage ids {unknown}; use ids from network.stage_ids")
        stages = [replace(s, **changes[s.stage_id]) if s.stage_id in changes else s for s in self.stages]
        return Network(stages, self.edges)
