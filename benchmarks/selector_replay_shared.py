"""Train's decision replay with the path-independent work shared, against one path at a time (issue 13).

Run: ``PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m benchmarks.selector_replay_shared
[--carparts-sample 200] [--demo-items 16] [--skip-demo] [--skip-carparts]``

For each data set, ``stockwise train`` (:func:`pipelines.flows.train.run_train`, default
settings, a fresh MLflow store) runs once; its decision replay is wrapped:

1. the replay train runs (``replay_by_origin``: the path-independent work once for the four
   paths) is timed inside train;
2. the same replay is then run one path at a time (``shared=False``: each path repeats the
   forecast backtest, the selector's cutoff preparation and sizing, and the baselines'
   forecasts, levels and replay, as before the change) and timed;
3. the two tables must be equal (the run stops otherwise);
4. with ``--origins k`` (k > 1), the shared replay of the same paths pooled over k origins
   (``replay_selectors(..., origins=k)``: the last window and the k - 1 before it) is timed too.

Train's wall time before the change = its measured wall time - (1) + (2): nothing else in
train changed. Both replays run in the same process on the same machine load, so their ratio is
the measurement; wall times move with the load. Writes ``benchmarks/results/selector_replay_shared/
summary.md`` and prints it.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import pandas as pd

from benchmarks.decisions import carparts_folder
from pipelines.data.demo_data import DemoConfig, generate_demo
from pipelines.data.io import read_table
from pipelines.flows import train_gate
from pipelines.flows.evaluate import replay_by_origin, replay_selectors
from pipelines.flows.train import TrainSettings, run_train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "selector_replay_shared"


def timed_train(demand: pd.DataFrame, items: pd.DataFrame, freq: str, out: Path, seed: int, origins: int = 1) -> dict:
    """Train once with the shared replay; replay the same paths one at a time; the times and the check."""
    seen = {}

    def replay(*args, **kwargs):
        t0 = time.perf_counter()
        table = replay_by_origin(*args, **kwargs)
        seen["shared"] = time.perf_counter() - t0
        seen["args"], seen["kwargs"], seen["table"] = args, kwargs, table
        return table

    train_gate.replay_by_origin = replay
    try:
        settings = TrainSettings(seed=seed, freq=freq, gate_origins=1)
        t0 = time.perf_counter()
        result = run_train(demand, items, freq, settings, out, f"sqlite:///{out}/mlflow.db")
        seen["train"] = time.perf_counter() - t0
    finally:
        train_gate.replay_by_origin = replay_by_origin
    if "table" not in seen:
        raise RuntimeError(f"train ran no replay: {result.decision}")
    t0 = time.perf_counter()
    alone = replay_by_origin(*seen["args"], **seen["kwargs"], shared=False)
    seen["alone"] = time.perf_counter() - t0
    pd.testing.assert_frame_equal(seen["table"], alone)  # the same numbers, path by path
    paths = seen["args"][5][-1]  # train passes one mapping of paths per origin
    n_paths = len(paths)
    if origins > 1:  # the same paths at every origin (train's gate over k origins: benchmarks.selector_gate_origins)
        t0 = time.perf_counter()
        replay_selectors(*seen["args"][:5], paths, origins=origins)
        seen["pooled"] = time.perf_counter() - t0
    keys = ("train", "shared", "alone", "pooled")
    return {k: seen.get(k, float("nan")) for k in keys} | {"paths": n_paths, "decision": result.decision}


def render(rows: list[dict]) -> str:
    lines = [
        "| data | series | periods | paths replayed | train (after) s | replay shared s | replay one path at a time s "
        "| replay speed-up | train before s (estimated) | train before / after | replay shared, k origins s "
        "| load (1 min) at start / end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        before = r["train"] - r["shared"] + r["alone"]
        lines.append(
            f"| {r['name']} | {r['series']} | {r['periods']} | {r['paths']} | {r['train']:,.0f} | {r['shared']:,.0f} "
            f"| {r['alone']:,.0f} | {r['alone'] / r['shared']:.2f}x | {before:,.0f} | {before / r['train']:.2f}x "
            f"| {r['pooled']:,.0f} ({r['origins']}) | {r['load0']:.1f} / {r['load1']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def data_parser(description: str) -> argparse.ArgumentParser:
    """The data-set options of the selector benchmarks."""
    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--carparts-sample", type=int, default=200)
    parser.add_argument("--demo-items", type=int, default=16, help="items of DemoConfig (x stores = series)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-carparts", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    return parser


def data_sets(args: argparse.Namespace, results: Path) -> list[tuple[str, pd.DataFrame, pd.DataFrame, str]]:
    """(name, demand, items, freq): the seeded demo and a carparts sample (its folder under ``results``)."""
    sets = []
    if not args.skip_demo:
        demo = generate_demo(DemoConfig(seed=args.seed, n_items=args.demo_items))
        sets.append(("demo", demo.demand, demo.items, "W-MON"))
    if not args.skip_carparts:
        folder = carparts_folder(args.carparts_sample, args.seed, results / "carparts" / "data")
        sets.append(("carparts", read_table(folder / "demand.parquet"), read_table(folder / "items.csv"), "MS"))
    return sets


def publish(table: str, results: Path) -> None:
    """Write the summary table to ``results/summary.md`` and print it."""
    results.mkdir(parents=True, exist_ok=True)
    (results / "summary.md").write_text(table)
    print(table)


def main() -> None:
    parser = data_parser(__doc__.splitlines()[0])
    parser.add_argument("--origins", type=int, default=1, help="also time the shared replay pooled over k origins")
    args = parser.parse_args()
    sets = data_sets(args, RESULTS)
    rows = []
    for name, demand, items, freq in sets:
        load0 = os.getloadavg()[0]
        out = RESULTS / name
        out.mkdir(parents=True, exist_ok=True)
        r = timed_train(demand, items, freq, out / f"train-{time.strftime('%H%M%S')}", args.seed, args.origins)
        rows.append(
            r
            | {
                "name": name,
                "series": demand["unique_id"].nunique(),
                "periods": pd.to_datetime(demand["ds"]).nunique(),
                "origins": args.origins,
                "load0": load0,
                "load1": os.getloadavg()[0],
            }
        )
        print(f"{name}: {r}", flush=True)
    publish(render(rows), RESULTS)


if __name__ == "__main__":
    main()
