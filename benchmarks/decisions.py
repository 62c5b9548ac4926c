"""Decision backtest (``stockwise evaluate``) on carparts and the demo: Stockwise vs simple baselines.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.decisions [--carparts-sample 400] [--skip-demo]``
(``--carparts-sample 0`` = every complete series).

carparts (Hyndman, monthly) has no item master: the unit costs are the seeded
synthetic ones of :func:`benchmarks.selector_eval.carparts` (lognormal, holding
25 %/year), with the issue-12 economics on top: target CSL 0.95 for every item,
L = 1, R = 1, no lead-time variability, order cost 0, shortage cost implied by
the target. The 165 series with trailing NaN are excluded (counted). The data
folder is written to ``benchmarks/results/decisions/carparts_data`` so the same
run is ``stockwise evaluate --data <that folder> --freq MS --holdout 12``.
The demo is the generated network with ``service_target`` 0.95 for every item
(its own service types, lead times, MOQs), held out 13 weeks.

Each run uses a fresh MLflow store, so no trained selector is registered: this is
the default path (the Syntetos-Boylan rule). Writes the evaluation folders and a
markdown summary to ``benchmarks/results/decisions/`` and prints it.
"""

from __future__ import annotations

import argparse
import logging
import tempfile
import time
from pathlib import Path

import pandas as pd

from benchmarks.selector_eval import carparts
from pipelines.data.config import RunConfig, ScenarioSettings, ServiceSettings, service_override
from pipelines.flows.evaluate import EvaluateSettings, run_evaluate

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "decisions"
N_COMPLETE_EXCLUDED = 165  # carparts series with trailing NaN (see shared/data/carparts/README.md)


def carparts_folder(sample: int, seed: int, folder: Path) -> Path:
    """Write the carparts demand and its issue-12 item master as a stockwise data folder."""
    demand, items = carparts(sample, seed)
    items = items.drop(columns=["shortage_cost"]).assign(
        service_target=0.95, service_type="csl", lead_time=1, lead_time_std=0.0, review_period=1, order_cost=0.0
    )
    folder.mkdir(parents=True, exist_ok=True)
    demand.to_parquet(folder / "demand.parquet", index=False)
    items.to_csv(folder / "items.csv", index=False)
    return folder


def run(name: str, cfg: RunConfig, settings: EvaluateSettings) -> dict:
    t0 = time.perf_counter()
    result = run_evaluate(cfg, settings, progress=lambda m: print(f"  [{name}] {m}", flush=True))
    return {"name": name, "seconds": time.perf_counter() - t0, "result": result}


def render(runs: list[dict]) -> str:
    lines = []
    for r in runs:
        res = r["result"]
        m = res.metrics
        lines += [
            f"## {r['name']}",
            "",
            f"run folder `{res.run_dir}`, {r['seconds']:.0f} s; items {m['stockwise.n_items']:.0f}, "
            f"excluded {m.get('n_excluded', 0):.0f}",
            "",
            "`stockwise`: time-phased levels for items with a trend or season; `stockwise_static`: the same "
            "plan with fixed levels. ratio: against the best of every baseline (incl. AutoETS_phased); "
            "vs static: against the best static baseline; vs ETS phased: against AutoETS_phased alone.",
            "",
            "| plan | segment | measure | items | service | value | best baseline | its value | ratio "
            "| vs static | vs ETS phased |",
            "|---|---|---|---|---|---|---|---|---|---|---|",
        ]
        for row in res.ratios.itertuples():
            lines.append(
                f"| {row.method} | {row.segment_kind}:{row.segment} | {row.measure} | {row.n_items:.0f} | "
                f"{row.service:.3f} | {row.inventory_value:,.0f} | {row.best_baseline} | "
                f"{row.best_value:,.0f} | {row.ratio:.2f} | {row.ratio_static:.2f} | "
                f"{getattr(row, 'ratio_AutoETS_phased', float('nan')):.2f} |"
            )
        truth = {k: v for k, v in m.items() if k.startswith("truth.")}
        if truth:
            lines += ["", "planted truth: " + ", ".join(f"{k[6:]} {v:.3f}" for k, v in truth.items())]
        lines.append("")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carparts-sample", type=int, default=400, help="carparts series (0 = all complete)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout", type=int, default=12)
    parser.add_argument("--demo-holdout", type=int, default=13)
    parser.add_argument("--origins", type=int, default=1)
    parser.add_argument("--replan", type=int, default=None)
    parser.add_argument("--skip-carparts", action="store_true")
    parser.add_argument(
        "--selector-refit-every", type=int, default=None, help="RunConfig.selector_refit_every (default: its default)"
    )
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument(
        "--portfolio-target",
        type=float,
        default=None,
        help="portfolio target mode (marginal allocation) instead of per-item targets",
    )
    parser.add_argument("--segment-target", type=float, default=None, help="the same per SBC segment")
    parser.add_argument("--service-measure", choices=("csl", "fill_rate"), default=None)
    parser.add_argument(
        "--demo-order-cost-factor",
        type=float,
        default=1.0,
        help="scale the demo's order costs (0 = issue 12's condition: ordering is free, no EOQ batches)",
    )
    parser.add_argument(
        "--no-target-backtest",
        action="store_true",
        help="allocate to the target as given (no raise by the held-out shortfall at an earlier origin)",
    )
    parser.add_argument(
        "--sizing-choice",
        choices=("yardstick", "target", "off"),
        default="yardstick",
        help="the default path's per-segment buffer choice at an earlier origin (off: the default candidate for all)",
    )
    args = parser.parse_args()
    logging.basicConfig(format="%(name)s: %(message)s")
    logging.getLogger("policy_selector.service_target").setLevel(logging.INFO)  # the target backtest's table
    logging.getLogger("policy_selector.sizing_choice").setLevel(logging.INFO)  # the sizing choice's table
    service = ServiceSettings(
        **(service_override(args.portfolio_target, args.segment_target, args.service_measure) or {}),
        backtest=not args.no_target_backtest,
        sizing_choice=args.sizing_choice,
    )
    refit = {} if args.selector_refit_every is None else {"selector_refit_every": args.selector_refit_every}
    RESULTS.mkdir(parents=True, exist_ok=True)
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{Path(tmp) / 'mlflow.db'}"  # fresh store: no champion, the default path
        if not args.skip_carparts:
            folder = carparts_folder(args.carparts_sample, args.seed, RESULTS / "carparts_data")
            cfg = RunConfig(
                data=folder, freq="MS", out=RESULTS, tracking_uri=uri, seed=args.seed, service=service, **refit
            )
            n = pd.read_csv(folder / "items.csv").shape[0]
            runs.append(
                run(
                    f"carparts ({n} complete series; {N_COMPLETE_EXCLUDED} with trailing NaN not used)",
                    cfg,
                    EvaluateSettings(args.holdout, args.origins, replan=args.replan),
                )
            )
        if not args.skip_demo:
            cfg = RunConfig(
                out=RESULTS,
                tracking_uri=uri,
                seed=args.seed,
                service=service,
                scenario=ScenarioSettings(service_target=0.95, order_cost_factor=args.demo_order_cost_factor),
                **refit,
            )
            costs = "" if args.demo_order_cost_factor == 1.0 else f", order costs x {args.demo_order_cost_factor:g}"
            runs.append(
                run(
                    f"demo (seed {args.seed}, every target 0.95{costs})",
                    cfg,
                    EvaluateSettings(args.demo_holdout, args.origins, replan=args.replan),
                )
            )
    text = render(runs)
    (RESULTS / "summary.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
