"""GSM at real-world scale: generated Willems-like chains, the shared chains, a 10,000-stage tree.

Run: ``.venv/bin/python -m benchmarks.gsm_scale [--time-limit 60] [--sizes 150 500 1400] [--skip-chains] [--workers N]``
(``--workers``: branch-and-bound processes, default the machine's cores).
Prints markdown tables and writes them to ``benchmarks/results/gsm_scale.md``.

- Generated: :func:`optimization.willems_like_network` with seed 0, stage times up
  to 100 periods and the links/stage ratios of the real chains the issue names
  (156 stages / 1.69, 482 / 1.95, 1,386 / 1.34). Target: proven optimal
  (``optimal``: gap <= 1e-4) within the time limit.
- Shared chains (holding rate 0.35): cost vs the reported optimum; target < 10 s.
- Tree: a 10,000-stage Willems-like spanning forest (tree DP).

The machine may be shared: every row records the 1-minute load average before
the solve and the CPU seconds of the solve: this process and its branch-and-bound
workers ("cpu s"; "cpu share" = cpu s / wall s, so up to the number of workers).
"""

from __future__ import annotations

import argparse
import os
import platform
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from optimization import (
    GSMConfig,
    Network,
    WillemsLikeConfig,
    solve_gsm,
    willems_like_network,
)
from pipelines.data.network_io import read_willems_chain

ROOT = Path(__file__).resolve().parents[1]
WILLEMS = ROOT.parent / "shared" / "data" / "willems"
RESULTS = ROOT / "benchmarks" / "results"
LINKS = {150: 1.7, 500: 1.95, 1400: 1.35}
DETERMINISTIC_CHAINS = (2, 4, 17, 25, 34)


def _cpu_seconds() -> float:
    """CPU seconds of this process and of its finished child processes (the branch-and-bound workers)."""
    t = os.times()
    return t.user + t.system + t.children_user + t.children_system


def timed_solve(net: Network, config: GSMConfig) -> dict:
    """Solve once; wall and CPU seconds, load before, result columns."""
    load = os.getloadavg()[0]
    cpu, wall = _cpu_seconds(), time.perf_counter()
    res = solve_gsm(net, config=config)
    cpu, wall = _cpu_seconds() - cpu, time.perf_counter() - wall
    return {
        "stages": net.n_stages,
        "edges": net.n_edges,
        "max T": int(net.processing_time.max()),
        "method": res.method,
        "optimal": res.optimal,
        "gap": f"{res.gap:.1e}",
        "cost": round(res.total_cost),
        "bound": round(res.bound),
        "solve s": round(wall, 1),
        "cpu s": round(cpu, 1),
        "cpu share": round(cpu / wall, 2),
        "load 1m": round(load, 1),
    }


def generated_table(sizes, time_limit: float, workers: int = 1) -> pd.DataFrame:
    """One row per generated network."""
    rows = []
    for n in sizes:
        net = willems_like_network(WillemsLikeConfig(n, LINKS.get(n, 1.7), 100), np.random.default_rng(0))
        config = GSMConfig(time_limit=time_limit, workers=workers)
        rows.append({"network": f"generated n={n}", **timed_solve(net, config)})
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def chains_table(time_limit: float, workers: int = 1) -> pd.DataFrame:
    """The five deterministic shared chains against their reported optima."""
    ref = pd.read_csv(WILLEMS / "reported_optimal_costs.csv").set_index("chain")
    rows = []
    for chain in DETERMINISTIC_CHAINS:
        net = read_willems_chain(WILLEMS / ref.at[chain, "file"], holding_rate=0.35)
        row = timed_solve(net, GSMConfig(time_limit=time_limit, workers=workers))
        reported = ref.at[chain, "reported_optimal_cost"]
        rows.append(
            {
                "network": f"Willems chain {chain}",
                **row,
                "reported": reported,
                "vs reported %": round(100 * (row["cost"] / reported - 1), 2),
            }
        )
        print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def tree_table() -> pd.DataFrame:
    """A 10,000-stage Willems-like forest."""
    net = willems_like_network(WillemsLikeConfig(10_000, tree=True), np.random.default_rng(0))
    return pd.DataFrame([{"network": "generated tree n=10000", **timed_solve(net, GSMConfig())}])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--time-limit", type=float, default=60.0)
    parser.add_argument("--sizes", type=int, nargs="+", default=[150, 500, 1400])
    parser.add_argument("--skip-chains", action="store_true")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="branch-and-bound processes")
    args = parser.parse_args()
    stamp = (
        f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC, {platform.node()}, "
        f"{os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f} at start"
    )
    command = (
        ".venv/bin/python -m benchmarks.gsm_scale --time-limit {:g} --sizes {}".format(
            args.time_limit, " ".join(map(str, args.sizes))
        )
        + (" --skip-chains" if args.skip_chains else "")
        + f" --workers {args.workers}"
    )
    parts = [f"# GSM at scale ({stamp})", "", f"`{command}`", ""]
    tables = [
        ("Tree DP", tree_table()),
        ("Generated Willems-like networks", generated_table(args.sizes, args.time_limit, args.workers)),
    ]
    if not args.skip_chains:
        tables.append(("Shared Willems chains (holding rate 0.35)", chains_table(args.time_limit, args.workers)))
    for title, table in tables:
        parts += [f"## {title}", "", table.to_markdown(index=False), ""]
        print("\n".join(parts[-4:]), flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gsm_scale.md").write_text("\n".join(parts))


if __name__ == "__main__":
    main()
