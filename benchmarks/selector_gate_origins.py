"""Train's replay gate over one origin and over two (issue 13): the time it costs and whether the verdict moves.

Run: ``PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m benchmarks.selector_gate_origins
[--carparts-sample 200] [--demo-items 16] [--skip-demo] [--skip-carparts]``

For each data set, ``stockwise train`` (:func:`pipelines.flows.train.run_train`, default settings,
a fresh MLflow store each) runs twice in the same process: ``gate_origins=1`` (the held-out-time
origin) and ``gate_origins=2`` (that origin and the one ``T`` periods before it, each judging a
classifier fitted only on labels before it, pooled). Timed: the whole of train and its gate (the
fits of the earlier origins plus the replay: ``replay.seconds``). Reported: the verdicts (the
default path and whether the classifier is promoted) pooled and at each origin alone. Writes
``benchmarks/results/selector_gate_origins/summary.md`` and prints it.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import mlflow
import pandas as pd

from benchmarks.selector_replay_shared import data_parser, data_sets, publish
from pipelines.flows.train import TrainSettings, origin_verdicts, run_train

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "selector_gate_origins"


def timed_train(demand: pd.DataFrame, items: pd.DataFrame, freq: str, out: Path, seed: int, origins: int) -> dict:
    """One train with ``gate_origins=origins``: wall time, the gate's time, the verdicts."""
    uri = f"sqlite:///{out}/mlflow.db"
    settings = TrainSettings(seed=seed, freq=freq, gate_origins=origins)
    t0 = time.perf_counter()
    result = run_train(demand, items, freq, settings, out, uri)
    wall = time.perf_counter() - t0
    gate = mlflow.MlflowClient(uri).get_run(result.run_id).data.metrics.get("replay.seconds", float("nan"))
    if result.replay is None:
        raise RuntimeError(f"train ran no replay: {result.decision}")
    verdict = f"default {result.default or 'none'}, classifier {'promoted' if result.champion else 'not promoted'}"
    by_origin = result.replay_origins.set_index(["origin", "path"])
    each = origin_verdicts(
        pd.concat([by_origin, pd.concat({"pooled": result.replay}, names=["origin", "path"])]), settings
    )
    return {"train": wall, "gate": gate, "verdict": verdict, "each": each, "plan": result.plan}


def render(rows: list[dict]) -> str:
    lines = [
        "| data | series | periods | gate origins | train s | gate s (fits + replay) | train / 1 origin | gate / 1 origin "
        "| verdict (pooled) | each origin alone | load (1 min) at start / end |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    base = {}
    for r in rows:
        one = base.setdefault(r["name"], r)
        lines.append(
            f"| {r['name']} | {r['series']} | {r['periods']} | {r['origins']} | {r['train']:,.0f} | {r['gate']:,.0f} "
            f"| {r['train'] / one['train']:.2f}x | {r['gate'] / one['gate']:.2f}x | {r['verdict']} | {r['each']} "
            f"| {r['load0']:.1f} / {r['load1']:.1f} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    args = data_parser(__doc__.splitlines()[0]).parse_args()
    sets = data_sets(args, RESULTS)
    rows = []
    for name, demand, items, freq in sets:
        for origins in (1, 2):
            load0 = os.getloadavg()[0]
            out = RESULTS / name / f"train-{origins}-{time.strftime('%H%M%S')}"
            out.mkdir(parents=True, exist_ok=True)
            r = timed_train(demand, items, freq, out, args.seed, origins)
            r |= {
                "name": name,
                "series": demand["unique_id"].nunique(),
                "periods": pd.to_datetime(demand["ds"]).nunique(),
                "origins": origins,
                "load0": load0,
                "load1": os.getloadavg()[0],
            }
            rows.append(r)
            print(f"{name}: {r}", flush=True)
    publish(render(rows), RESULTS)


if __name__ == "__main__":
    main()
