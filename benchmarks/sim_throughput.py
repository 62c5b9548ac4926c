"""(R, S) simulation throughput: vectorised simulator vs a plain Python loop vs stockpyl.

Run: ``.venv/bin/python -m benchmarks.sim_throughput [--max-items 100000]``

One instance for all three engines: Poisson demand (mean 5 per period), R = 1,
L = 2, S = 95% quantile of Poisson over L + 1 periods, 156 periods (3 years of
weeks), backorders. The plain loop and stockpyl run on a subset of items (they
are slow); every engine is checked to give the same average on-hand on the
items they share, so the ratios compare like with like. Throughput is in
item-periods per second; ratios are against the plain loop measured in the
same run, best of 5 repeats. Peak memory: tracemalloc peak of the simulate call (numpy
allocations included) and the process max RSS.
"""

from __future__ import annotations

import argparse
import resource
import time
import tracemalloc
from pathlib import Path

import numpy as np
from scipy import stats

from optimization import r_s_policy, simulate

T, LEAD, MEAN = 156, 2, 5.0
RESULTS = Path(__file__).resolve().parent / "results"


def _instance(n: int, seed: int = 0) -> tuple[np.ndarray, float]:
    demand = np.random.default_rng(seed).poisson(MEAN, size=(n, T)).astype(float)
    level = float(stats.poisson.ppf(0.95, MEAN * (LEAD + 1)))
    return demand, level


def plain_loop(demand: np.ndarray, level: float, lead: int) -> np.ndarray:
    """Per-item, per-period Python loop: same events and the same KPI sums as the simulator.

    Returns the average on-hand per item (the other sums are kept so that the loop
    does the same bookkeeping work: served, backorders filled, orders, backlog,
    ready periods, stockout periods).
    """
    out = np.empty(demand.shape[0])
    for i, row in enumerate(demand.tolist()):
        on_hand, backlog, pipe = level, 0.0, [0.0] * (lead + 1)
        oh_sum = bo_sum = served_sum = filled_sum = ordered = received = 0.0
        n_orders = ready = stockouts = 0
        for t, d in enumerate(row):
            slot = t % (lead + 1)
            arrived = pipe[slot]
            pipe[slot] = 0.0
            on_hand += arrived
            received += arrived
            fill = min(backlog, on_hand)
            backlog -= fill
            on_hand -= fill
            filled_sum += fill
            ip = on_hand - backlog + sum(pipe)
            q = level - ip if level - ip > 1e-9 else 0.0
            if q > 0:
                n_orders += 1
                ordered += q
                pipe[(t + lead) % (lead + 1)] += q
            served = min(d, on_hand)
            on_hand -= served
            served_sum += served
            backlog += d - served
            oh_sum += on_hand
            bo_sum += backlog
            ready += on_hand > 1e-9
            stockouts += backlog > 1e-9
        out[i] = oh_sum / len(row)
    return out


def stockpyl_run(demand: np.ndarray, level: float, lead: int) -> np.ndarray:
    """stockpyl single-stage base-stock simulation per item; returns avg on-hand.

    stockpyl orders after demand with shipment lead time L_sp, which equals our
    lead time L_sp - 1 (see tests/optimization/test_simulator.py).
    """
    from stockpyl.sim import simulation
    from stockpyl.supply_chain_network import single_stage_system

    out = np.empty(demand.shape[0])
    for i, row in enumerate(demand):
        net = single_stage_system(
            holding_cost=1.0,
            stockout_cost=1.0,
            demand_type="D",
            demand_list=list(row),
            policy_type="BS",
            base_stock_level=level,
            shipment_lead_time=lead + 1,
            initial_inventory_level=level,
        )
        simulation(net, len(row), rand_seed=0, progress_bar=False)
        states = net.nodes[0].state_vars
        out[i] = np.mean([max(states[t].inventory_level[-1000], 0.0) for t in range(len(row))])
    return out


def _timed(fn, *args, repeat: int = 5) -> tuple[float, object]:
    """Best wall time of ``repeat`` runs (the machine is shared; best-of damps noise)."""
    best, value = np.inf, None
    for _ in range(repeat):
        start = time.perf_counter()
        value = fn(*args)
        best = min(best, time.perf_counter() - start)
    return best, value


def _ours(demand: np.ndarray, level: float) -> np.ndarray:
    n = demand.shape[0]
    return simulate(demand, r_s_policy(1, np.full(n, level)), LEAD).avg_on_hand


def main(max_items: int = 100_000, loop_items: int = 300, stockpyl_items: int = 10) -> str:
    demand, level = _instance(max(max_items, loop_items))
    rows = []
    t_loop, loop_oh = _timed(plain_loop, demand[:loop_items], level, LEAD)
    loop_rate = loop_items * T / t_loop
    rows.append(("plain Python loop", loop_items, t_loop, loop_rate, "-"))
    t_sp, sp_oh = _timed(stockpyl_run, demand[:stockpyl_items], level, LEAD, repeat=1)
    ours_small = _ours(demand[:loop_items], level)
    assert np.allclose(loop_oh, ours_small), "plain loop and simulator disagree"
    assert np.allclose(sp_oh, ours_small[:stockpyl_items]), "stockpyl and simulator disagree"
    rows.append(("stockpyl sim (per item)", stockpyl_items, t_sp, stockpyl_items * T / t_sp, "-"))
    for n in sorted({1_000, 10_000, max_items}):
        if n > demand.shape[0]:
            continue
        sub = np.ascontiguousarray(demand[:n])
        _ours(sub[: min(n, 100)], level)  # warm caches
        elapsed, _ = _timed(_ours, sub, level)
        tracemalloc.start()  # separate run: tracing slows numpy allocations down
        _ours(sub, level)
        peak = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
        rows.append(("stockwise simulate", n, elapsed, n * T / elapsed, f"{peak:.0f}"))
    rss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    lines = [
        f"(R, S) with R = 1, L = {LEAD}, Poisson({MEAN:g}) demand, {T} periods; same instance for every engine "
        f"(average on-hand checked equal on shared items).",
        "",
        "| engine | items | seconds | item-periods/s | x plain loop | peak MiB (simulate) |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name, n, sec, rate, peak in rows:
        lines.append(f"| {name} | {n:,} | {sec:.3f} | {rate:,.0f} | {rate / loop_rate:,.1f} | {peak} |")
    lines += ["", f"process max RSS: {rss:,.0f} MiB (includes the {demand.nbytes / 2**20:,.0f} MiB demand matrix)"]
    table = "\n".join(lines)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "sim_throughput.md").write_text(table + "\n", encoding="utf-8")
    return table


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--max-items", type=int, default=100_000)
    parser.add_argument("--loop-items", type=int, default=300)
    parser.add_argument("--stockpyl-items", type=int, default=10)
    args = parser.parse_args()
    print(main(args.max_items, args.loop_items, args.stockpyl_items))
