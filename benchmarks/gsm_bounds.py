"""GSM lower bounds at scale: the spanning-tree Lagrangian (issue 15) on generated networks and shared chains.

Run: ``.venv/bin/python -m benchmarks.gsm_bounds [--iterations 2000] [--time-limit 60] [--sizes 150 500] [--chains 17 25 34] [--per-link] [--no-polish] [--no-fix]``.
Prints a markdown table and writes it to ``benchmarks/results/gsm_bounds.md``.

Each row: the best proven lower bound and the best repaired plan's cost after
``--iterations`` subgradient steps (or the time limit), the gap between them,
and the Willems reported optimum where there is one. Measures how far the
relaxation is from the optimum before anyone builds a branch-and-bound on it.
"""

from __future__ import annotations

import argparse
import os
import time
from datetime import UTC, datetime

import numpy as np
import pandas as pd

from benchmarks.gsm_scale import LINKS, RESULTS, WILLEMS
from optimization import NormalDemandBound, WillemsLikeConfig, willems_like_network
from optimization.meio_grid import build_grid
from optimization.meio_lagrange import spanning_tree_lagrangian
from pipelines.data.network_io import read_willems_chain


def bound_row(name: str, net, args: argparse.Namespace, reported: float | None = None) -> dict:
    """One Lagrangian run: bounds, gap, seconds, load."""
    load = os.getloadavg()[0]
    grid = build_grid(net, NormalDemandBound(net))
    start = time.perf_counter()
    out = spanning_tree_lagrangian(
        net,
        grid,
        time_limit=args.time_limit,
        max_iterations=args.iterations,
        per_period=not args.per_link,
        polish=None if args.no_polish else 0.01,
        fix_every=None if args.no_fix else 20,
    )
    row = {
        "network": name,
        "stages": net.n_stages,
        "edges": net.n_edges,
        "lower bound": round(out.lower_bound),
        "plan cost": round(out.upper_bound),
        "gap %": round(100 * (out.upper_bound - out.lower_bound) / out.upper_bound, 2),
        "iterations": out.iterations,
        "fixes": out.fixes,
        "cells banned": out.banned_cells,
        "s": round(time.perf_counter() - start, 1),
        "load 1m": round(load, 1),
    }
    if reported is not None:
        row["reported"] = reported
        row["bound vs reported %"] = round(100 * (out.lower_bound / reported - 1), 2)
    print(row, flush=True)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--iterations", type=int, default=2000)
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--sizes", type=int, nargs="*", default=[150, 500])
    parser.add_argument("--chains", type=int, nargs="*", default=[17, 25, 34])
    parser.add_argument("--per-link", action="store_true", help="one multiplier per link (S_i <= SI_k) instead")
    parser.add_argument("--no-polish", action="store_true", help="repaired plans without the local search")
    parser.add_argument("--no-fix", action="store_true", help="no reduced-cost fixing")
    args = parser.parse_args()
    rows = []
    for n in args.sizes:
        net = willems_like_network(WillemsLikeConfig(n, LINKS.get(n, 1.7), 100), np.random.default_rng(0))
        rows.append(bound_row(f"generated n={n}", net, args))
    ref = pd.read_csv(WILLEMS / "reported_optimal_costs.csv").set_index("chain")
    for chain in args.chains:
        net = read_willems_chain(WILLEMS / ref.at[chain, "file"], holding_rate=0.35)
        reported = float(ref.at[chain, "reported_optimal_cost"])
        rows.append(bound_row(f"Willems chain {chain}", net, args, reported))
    command = (
        (
            f".venv/bin/python -m benchmarks.gsm_bounds --iterations {args.iterations} --time-limit {args.time_limit:g}"
            f" --sizes {' '.join(map(str, args.sizes))} --chains {' '.join(map(str, args.chains))}"
        )
        + (" --per-link" if args.per_link else "")
        + (" --no-polish" if args.no_polish else "")
        + (" --no-fix" if args.no_fix else "")
    )
    stamp = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {os.cpu_count()} CPUs"
    text = f"# GSM spanning-tree Lagrangian bounds ({stamp})\n\n`{command}`\n\n{pd.DataFrame(rows).to_markdown(index=False)}\n"
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / "gsm_bounds.md.tmp"
    tmp.write_text(text)
    tmp.replace(RESULTS / "gsm_bounds.md")


if __name__ == "__main__":
    main()
