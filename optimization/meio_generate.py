"""Willems-like supply chains for tests and benchmarks of the GSM solvers.

The 38 real chains of Willems (2008) share one shape: purchased parts feed
one or more assembly levels, whose products flow through distribution and
transport stages to retail (demand) stages; links per stage range from 1 to
about 3.5, stage times from 0 to a few hundred days, and a chain mixes a few
service levels. :func:`willems_like_network` draws networks of that shape
from a seeded generator so that scale benchmarks do not depend on the six
chains we may redistribute.

Holding cost follows the data set's convention: added cost per stage,
holding cost = ``holding_rate`` x cumulative unit cost (Humair & Willems 2011
report optima at a rate of 0.35).

References
----------
S. P. Willems. Real-world multiechelon supply chains used for inventory
optimization. *M&SOM*, 10(1):19-23, 2008.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np

from optimization.network import Edge, Network, Stage

__all__ = ["WillemsLikeConfig", "willems_like_network"]


@dataclass(frozen=True)
class WillemsLikeConfig:
    """Shape of a generated chain.

    Parameters
    ----------
    n_stages : int
        10 to 2,000 stages in the default layer shares (any >= 5 works).
    links_per_stage : float, default 1.5
        Edges / stages, in [1, 3.5] (Willems' chains span 1.0-3.4).
    max_stage_time : int, default 100
        Stage (processing) times are integers drawn from 1..max_stage_time for
        parts and assembly, 1..max(1, max_stage_time // 4) downstream.
    safety_factors : tuple of float, default (1.645, 2.054, 2.326)
        z values given to the demand stages (95 %, 98 %, 99 %), drawn uniformly.
    max_service_share : float, default 0.3
        Share of demand stages quoting a positive maximum service time (1-20);
        the rest must serve from stock (s = 0), as in most chains.
    holding_rate : float, default 0.35
    layer_shares : tuple of float, default (0.35, 0.15, 0.1, 0.15, 0.25)
        Parts, two assembly levels, distribution, retail.
    tree : bool, default False
        A spanning forest instead (``links_per_stage`` ignored): parts and
        sub-assemblies have one customer, distribution and retail stages one
        supplier; one tree per final assembly stage.
    """

    n_stages: int
    links_per_stage: float = 1.5
    max_stage_time: int = 100
    safety_factors: tuple[float, ...] = (1.645, 2.054, 2.326)
    max_service_share: float = 0.3
    holding_rate: float = 0.35
    layer_shares: tuple[float, ...] = (0.35, 0.15, 0.1, 0.15, 0.25)
    tree: bool = False

    def __post_init__(self) -> None:
        if int(self.n_stages) < len(self.layer_shares):
            raise ValueError(f"n_stages must be >= {len(self.layer_shares)} (one per layer), got {self.n_stages!r}")
        if not 1.0 <= self.links_per_stage <= 3.5:
            raise ValueError(f"links_per_stage must be in [1, 3.5], got {self.links_per_stage!r}")
        if int(self.max_stage_time) < 1:
            raise ValueError(f"max_stage_time must be >= 1 period, got {self.max_stage_time!r}")
        if not self.safety_factors or min(self.safety_factors) < 0:
            raise ValueError(f"safety_factors must be non-empty and >= 0, got {self.safety_factors!r}")


def _layer_sizes(n: int, shares: tuple[float, ...]) -> list[int]:
    """Split n stages over the layers, at least one per layer."""
    sizes = np.maximum(1, np.floor(np.asarray(shares) / sum(shares) * n).astype(int))
    sizes[-1] += n - sizes.sum()
    while sizes[-1] < 1:
        k = int(np.argmax(sizes[:-1]))
        sizes[k] -= 1
        sizes[-1] += 1
    return sizes.tolist()


def _edges(rng: np.random.Generator, sizes: list[int], n_edges: int) -> set[tuple[int, int]]:
    """Tree-like backbone (every stage fed from the layer above, every non-sink used), then extra links."""
    start = np.concatenate([[0], np.cumsum(sizes)])
    layer_of = np.repeat(np.arange(len(sizes)), sizes)
    edges: set[tuple[int, int]] = set()
    for k in range(1, len(sizes)):
        for j in range(start[k], start[k + 1]):
            edges.add((int(rng.integers(start[k - 1], start[k])), j))
    used = {u for u, _ in edges}
    for j in range(start[-2]):  # every non-retail stage needs a customer
        if j not in used:
            k = layer_of[j] + 1
            edges.add((j, int(rng.integers(start[k], start[k + 1]))))
    n_internal = start[-2]
    tries = 0
    while len(edges) < n_edges and tries < 50 * n_edges:
        tries += 1
        u = int(rng.integers(0, n_internal))
        k = layer_of[u] + 1 if rng.random() < 0.8 or layer_of[u] + 2 >= len(sizes) else layer_of[u] + 2
        edges.add((u, int(rng.integers(start[k], start[k + 1]))))
    return edges


def _tree_edges(rng: np.random.Generator, sizes: list[int]) -> set[tuple[int, int]]:
    """Assembly in-trees into the last assembly layer, distribution out-trees from it (a forest)."""
    start = np.concatenate([[0], np.cumsum(sizes)])
    edges: set[tuple[int, int]] = set()
    top = len(sizes) - 3  # last assembly layer
    for k in range(len(sizes)):
        if k < top:  # one customer each, every customer used first
            customers = _cover(rng, sizes[k], start[k + 1], start[k + 2])
            edges |= {(int(start[k] + i), int(c)) for i, c in enumerate(customers)}
        elif k > top:  # one supplier each, every supplier used first
            suppliers = _cover(rng, sizes[k], start[k - 1], start[k])
            edges |= {(int(s), int(start[k] + i)) for i, s in enumerate(suppliers)}
    return edges


def _cover(rng: np.random.Generator, n: int, lo: int, hi: int) -> np.ndarray:
    """n picks from lo..hi-1 that use every value when n allows, shuffled."""
    base = np.arange(lo, hi)[:n]
    return rng.permutation(np.concatenate([base, rng.integers(lo, hi, n - base.size)]))


def willems_like_network(config: WillemsLikeConfig, rng: np.random.Generator) -> Network:
    """A random chain with assembly and distribution layers (see the module docstring).

    Parameters
    ----------
    config : WillemsLikeConfig
    rng : numpy.random.Generator

    Returns
    -------
    Network
        Stage ids ``Part_0001``, ``Manuf_0001`` ..., ``Dist_0001``, ``Retail_0001``;
        retail stages carry demand_mean, demand_std, safety_factor and max_service_time.

    Examples
    --------
    >>> net = willems_like_network(WillemsLikeConfig(150), np.random.default_rng(0))
    >>> net.n_stages
    150
    """
    sizes = _layer_sizes(int(config.n_stages), config.layer_shares)
    n = sum(sizes)
    edges = _tree_edges(rng, sizes) if config.tree else _edges(rng, sizes, round(config.links_per_stage * n))
    names = ["Part", "Manuf", "Manuf", "Dist", "Retail"] if len(sizes) == 5 else [f"L{k}" for k in range(len(sizes))]
    counter: dict[str, int] = {}
    ids = []
    for name, size in zip(names, sizes):
        for _ in range(size):
            counter[name] = counter.get(name, 0) + 1
            ids.append(f"{name}_{counter[name]:04d}")
    layer_of = np.repeat(np.arange(len(sizes)), sizes)
    upstream = layer_of < 3
    t_max = np.where(upstream, config.max_stage_time, max(1, config.max_stage_time // 4))
    times = rng.integers(1, t_max + 1)
    added = np.where(
        layer_of == 0, rng.lognormal(2.5, 1.0, n), np.where(upstream, rng.uniform(0, 20, n), rng.uniform(0, 2, n))
    )
    stages = []
    for j in range(n):
        if layer_of[j] == len(sizes) - 1:
            mean = float(rng.uniform(5, 500))
            smax = float(rng.integers(1, 21)) if rng.random() < config.max_service_share else 0.0
            stages.append(
                Stage(
                    ids[j],
                    float(times[j]),
                    float(added[j]),
                    smax,
                    demand_mean=mean,
                    demand_std=float(mean * rng.uniform(0.1, 1.0)),
                    safety_factor=float(rng.choice(config.safety_factors)),
                )
            )
        else:
            stages.append(Stage(ids[j], float(times[j]), float(added[j])))
    links = [Edge(ids[u], ids[d]) for u, d in sorted(edges)]
    added_net = Network(stages, links)
    by_id = dict(zip(added_net.stage_ids, added_net.cumulative(added_net.holding_cost)))
    return Network([replace(s, holding_cost=config.holding_rate * by_id[s.stage_id]) for s in stages], links)
