"""GSM benchmark: Willems chains vs reported optima, stockpyl vs our tree DP, scaling.

Run: ``.venv/bin/python -m benchmarks.gsm_willems [--time-limit 600] [--skip-scaling]``.
Prints markdown tables and writes them to ``benchmarks/results/gsm_willems.md``.

- Willems: holding rate 0.35 on cumulative cost; reported = Humair & Willems
  (2011) optimum (3 significant figures). Chains with stochastic stage times
  (chain 1: one stochastic stage per SNC's topology summary) are listed
  separately: the CSVs hold only the mean, so the reported cost cannot be matched.
- stockpyl (trees only): ``stockpyl.gsm_tree.optimize_committed_service_times``
  on generated trees, timed in the same run as our DP; ratio = stockpyl / ours.
- Scaling: a generated 10,000-stage tree (DP) and a 2,000-stage layered general
  network (MILP).
"""

from __future__ import annotations

import argparse
import math
import platform
import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from optimization import Edge, GSMConfig, Network, Stage, solve_gsm
from pipelines.data.network_io import read_willems_chain

ROOT = Path(__file__).resolve().parents[1]
WILLEMS = ROOT.parent / "shared" / "data" / "willems"
RESULTS = ROOT / "benchmarks" / "results"
STOCHASTIC_CHAINS = {1}  # SNC topology summary: chain 1 has a stochastic stage time; 2, 4, 17, 25, 34 none


def willems_table(time_limit: float) -> pd.DataFrame:
    """One row per chain: size, reported vs ours, gap, time, optimality."""
    ref = pd.read_csv(WILLEMS / "reported_optimal_costs.csv")
    rows = []
    for r in ref.itertuples():
        net = read_willems_chain(WILLEMS / r.file, holding_rate=0.35)
        res = solve_gsm(net, config=GSMConfig(time_limit=time_limit))
        rows.append(
            {
                "chain": r.chain,
                "stages": net.n_stages,
                "edges": net.n_edges,
                "stage times": "stochastic" if r.chain in STOCHASTIC_CHAINS else "deterministic",
                "reported": r.reported_optimal_cost,
                "ours": round(res.total_cost),
                "gap %": round(100 * (res.total_cost / r.reported_optimal_cost - 1), 2),
                "solve s": round(res.solve_seconds, 2),
                "optimal": res.optimal,
                "proven gap": f"{res.gap:.1e}",
            }
        )
    return pd.DataFrame(rows)


def random_tree(rng: np.random.Generator, n: int, max_t: int = 4) -> Network:
    """Random spanning tree; arcs point down 70% of the time; sinks get N(mu, sigma) demand."""
    parent = np.concatenate([[-1], [int(rng.integers(max(0, i - 50), i)) for i in range(1, n)]])
    down = rng.random(n) < 0.7
    edges = [Edge(f"s{parent[i]}", f"s{i}") if down[i] else Edge(f"s{i}", f"s{parent[i]}") for i in range(1, n)]
    sources = {e.upstream for e in edges}
    stages = [
        Stage(
            f"s{i}",
            float(rng.integers(0, max_t + 1)),
            float(rng.uniform(0.5, 5)),
            0.0 if f"s{i}" not in sources else math.inf,
            demand_mean=None if f"s{i}" in sources else float(rng.uniform(10, 100)),
            demand_std=None if f"s{i}" in sources else float(rng.uniform(2, 20)),
            safety_factor=None if f"s{i}" in sources else 1.645,
        )
        for i in range(n)
    ]
    return Network(stages, edges)


def layered_network(rng: np.random.Generator, sizes=(1000, 500, 300, 200)) -> Network:
    """Assembly then distribution, like the Willems chains: parts -> manuf -> DCs -> retail."""
    names = [[f"L{k}_{i}" for i in range(n)] for k, n in enumerate(sizes)]
    edges = set()
    for k in range(1, len(sizes)):
        fan_in = 3 if k == 1 else 2
        for i, name in enumerate(names[k]):
            for up in rng.choice(sizes[k - 1], size=int(rng.integers(1, fan_in + 1)), replace=False):
                edges.add((names[k - 1][up], name))
    used = {u for u, _ in edges}
    for k in range(len(sizes) - 1):  # every upper stage needs a customer
        for name in names[k]:
            if name not in used:
                edges.add((name, names[k + 1][int(rng.integers(sizes[k + 1]))]))
    last = len(sizes) - 1
    stages = [
        Stage(
            name,
            float(rng.integers(1, 11)),
            float(rng.uniform(0.5, 3) * (k + 1)),
            float(rng.integers(0, 3)) if k == last else math.inf,
            demand_mean=float(rng.uniform(10, 100)) if k == last else None,
            demand_std=float(rng.uniform(2, 20)) if k == last else None,
            safety_factor=1.645 if k == last else None,
        )
        for k, layer in enumerate(names)
        for name in layer
    ]
    return Network(stages, [Edge(u, d) for u, d in sorted(edges)])


def stockpyl_network(net: Network):
    """The same tree as a stockpyl SupplyChainNetwork."""
    from stockpyl.demand_source import DemandSource
    from stockpyl.supply_chain_network import SupplyChainNetwork
    from stockpyl.supply_chain_node import SupplyChainNode

    scn = SupplyChainNetwork()
    for k, sid in enumerate(net.stage_ids):
        node = SupplyChainNode(
            k + 1,
            sid,
            scn,
            processing_time=int(net.processing_time[k]),
            local_holding_cost=float(net.holding_cost[k]),
            demand_bound_constant=1.645,
        )
        if net.is_sink[k]:
            node.demand_source = DemandSource(
                type="N", mean=float(net.demand_mean[k]), standard_deviation=float(net.demand_std[k])
            )
            node.external_outbound_cst = int(net.max_service_time[k])
        scn.add_node(node)
    for u, d in zip(net.edge_up.tolist(), net.edge_down.tolist()):
        scn.add_edge(u + 1, d + 1)
    return scn


def stockpyl_table(sizes=(25, 50, 100)) -> pd.DataFrame:
    """Our tree DP vs stockpyl's on the same generated trees."""
    from stockpyl.gsm_tree import optimize_committed_service_times

    rows = []
    for n in sizes:
        net = random_tree(np.random.default_rng(n), n)
        ours = solve_gsm(net, config=GSMConfig(method="tree_dp"))
        scn = stockpyl_network(net)
        start = time.perf_counter()
        _, cost = optimize_committed_service_times(scn)
        sp = time.perf_counter() - start
        rows.append(
            {
                "stages": n,
                "ours cost": round(ours.total_cost, 4),
                "stockpyl cost": round(cost, 4),
                "ours s": round(ours.solve_seconds, 3),
                "stockpyl s": round(sp, 3),
                "stockpyl / ours": round(sp / ours.solve_seconds, 1),
            }
        )
    return pd.DataFrame(rows)


def scaling_table(time_limit: float) -> pd.DataFrame:
    """10,000-stage tree (DP) and 2,000-stage general network (MILP)."""
    rows = []
    tree = random_tree(np.random.default_rng(0), 10_000)
    res = solve_gsm(tree)
    rows.append(
        {
            "network": "random tree",
            "stages": tree.n_stages,
            "edges": tree.n_edges,
            "method": res.method,
            "solve s": round(res.solve_seconds, 2),
            "optimal": res.optimal,
            "cost": round(res.total_cost),
        }
    )
    dag = layered_network(np.random.default_rng(0))
    res = solve_gsm(dag, config=GSMConfig(time_limit=time_limit))
    rows.append(
        {
            "network": "layered DAG",
            "stages": dag.n_stages,
            "edges": dag.n_edges,
            "method": res.method,
            "solve s": round(res.solve_seconds, 2),
            "optimal": res.optimal,
            "cost": round(res.total_cost),
            "proven gap": f"{res.gap:.1e}",
        }
    )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=600.0)
    parser.add_argument("--skip-scaling", action="store_true")
    args = parser.parse_args()
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}, {platform.processor() or platform.machine()}"
    parts = [
        f"# GSM benchmark ({stamp})",
        "",
        "`.venv/bin/python -m benchmarks.gsm_willems"
        + (f" --time-limit {args.time_limit:g}" if args.time_limit != 600 else "")
        + "`",
        "",
    ]
    for title, table in [
        ("Willems chains (holding rate 0.35)", willems_table(args.time_limit)),
        ("Tree DP vs stockpyl (same trees, same run)", stockpyl_table()),
        *([] if args.skip_scaling else [("Scaling", scaling_table(args.time_limit))]),
    ]:
        parts += [f"## {title}", "", table.to_markdown(index=False), ""]
        print("\n".join(parts[-4:]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gsm_willems.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
