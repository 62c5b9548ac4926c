"""Policy selector vs oracle, SBC rule and best single policy, on carparts and the demo.

Run: ``.venv/bin/python -m benchmarks.selector_eval [--carparts-sample 800] [--seed 7] [--label-paths 40] [--abstain]
[--shortfall-scales 0.5,2 [--scale-candidates tsb_rss_negbin,ets_sq_normal]] [--out PATH]``

``--shortfall-scales`` adds, for each candidate of ``--scale-candidates``, variants sized to those
multiples of the item's shortfall (:meth:`CandidateSpace.with_shortfall_scales`); the labels
still price the shortfall at the item's own target.

For each data set two cutoffs are labelled by simulation (see
:mod:`policy_selector.workflow`): held-out items = GroupKFold by item at the
first cutoff; held-out time = trained at the first cutoff, judged at the second.

carparts (Hyndman, monthly, 2,674 series) has no item master: the economics are
*synthetic* and seeded (unit cost lognormal, holding 25 %/year, order cost 5-40,
shortage cost 0.3-1.5 x unit cost, CSL 90/95 %, lead time 1-3 months, R = 1).
The 165 series with trailing NaN are dropped and a seeded sample of the rest is
used to keep the runtime reasonable on 2 cores (``--carparts-sample``).
Prints a markdown table and writes it to ``benchmarks/results/selector_eval.md``.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import PolicySelector, SelectorConfig, run_study
from policy_selector.candidates import CandidateSpace
from policy_selector.context import wide_panel
from policy_selector.economics import periods_per_year
from policy_selector.shortfall_tuning import ShortfallTuned
from policy_selector.workflow import plan_study, stack_studies

ROOT = Path(__file__).resolve().parents[1]
CARPARTS = ROOT.parent / "shared" / "data" / "carparts" / "carparts.parquet"
RESULTS = ROOT / "benchmarks" / "results" / "selector_eval.md"


def carparts(sample: int, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Complete carparts series (sampled) and a seeded synthetic item master."""
    df = pd.read_parquet(CARPARTS)
    complete = df.groupby("unique_id")["y"].apply(lambda s: s.notna().all())
    ids = np.sort(complete.index[complete].to_numpy())
    rng = np.random.default_rng(seed)
    if sample and sample < len(ids):
        ids = np.sort(rng.choice(ids, sample, replace=False))
    demand = df[df["unique_id"].isin(ids)].reset_index(drop=True)
    n = len(ids)
    unit = np.round(rng.lognormal(3.0, 1.0, n), 2)
    items = pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": unit,
            "holding_rate": 0.25,
            "order_cost": np.round(rng.uniform(5, 40, n), 2),
            "shortage_cost": np.round(unit * rng.uniform(0.3, 1.5, n), 2),
            "service_target": rng.choice([0.9, 0.95], n),
            "service_type": "csl",
            "lead_time": rng.integers(1, 4, n),
            "lead_time_std": rng.choice([0.0, 0.0, 0.3], n),
            "review_period": 1,
            "moq": 0.0,
            "order_multiple": 1.0,
            "lost_sales": False,
        }
    )
    return demand, items


def space(args) -> CandidateSpace:
    """The default candidate space, plus the shortfall variants asked for on the command line."""
    if not args.shortfall_scales:
        return CandidateSpace()
    scales = [float(x) for x in args.shortfall_scales.split(",")]
    names = args.scale_candidates.split(",") if args.scale_candidates else None
    return CandidateSpace().with_shortfall_scales(scales, names)


def challengers(args, unit: str) -> dict:
    """More decision rules judged on the same labels: abstention, and with shortfall variants the
    per-segment tuning (:class:`ShortfallTuned`) and the space without variants (``*_base``)."""

    def make(**kw):
        return lambda: PolicySelector(period_name=unit, random_state=args.seed, **kw)

    out = {"classifier_abstain": make(abstain=True)} if args.abstain else {}
    if args.shortfall_scales:
        out |= {
            "classifier_tuned": lambda: ShortfallTuned(make()()),
            "best_single_tuned": lambda: ShortfallTuned("best_single"),
            "classifier_base": lambda: ShortfallTuned(make()(), tune=False),
            "best_single_base": lambda: ShortfallTuned("best_single", tune=False),
        }
    return out


def evaluate(name: str, demand, items, freq: str, args, unit: str) -> tuple[pd.DataFrame, dict]:
    """run_study on one data set with windows from :func:`plan_study`; its evaluation rows and timings."""
    plan = plan_study(wide_panel(demand).shape[1], periods_per_year(freq), extra_train_cutoffs=args.extra_cutoffs)
    config = SelectorConfig(
        space=space(args),
        freq=freq,
        test_periods=plan.test_periods,
        n_windows=plan.n_windows,
        label_paths=args.label_paths,
    )
    print(f"{name}: {plan.reason}; label_paths={args.label_paths}; candidates {list(config.space.names)}", flush=True)
    t0 = time.perf_counter()
    study = run_study(
        demand,
        items,
        config,
        np.random.default_rng(args.seed),
        make_selector=lambda: PolicySelector(period_name=unit, random_state=args.seed, decision=args.decision),
        extra_train_cutoffs=plan.extra_train_cutoffs,
        challengers=challengers(args, unit) or None,
    )
    total = time.perf_counter() - t0
    t1 = time.perf_counter()
    study.selector.select(study.test.features)
    predict = time.perf_counter() - t1
    table = study.evaluation.assign(data=name)
    counts = study.train.labels.label.value_counts()
    info = {
        "data": name,
        "series": len(study.train.labels.ids),
        "study_s": total,
        "predict_explain_s": predict,
        "labels": ", ".join(f"{k} {v}" for k, v in counts.items()),
        "best_single": study.best_single,
        "infeasible": study.train.labels.n_infeasible,
        "plan": plan.reason,
    }
    if args.shortfall_scales:  # per segment, the scale each varied candidate's tuning chose on the training cutoffs
        f, lab, cost = stack_studies([study.train, *study.extra])
        tuned = ShortfallTuned("best_single").fit(f, lab, cost)
        varied = {b: t for b, t in tuned.tuning_.items() if len(tuned.groups_[b]) > 1}
        info["plan"] += "; per-segment scales (training cutoffs): " + "; ".join(
            f"{b}: " + ", ".join(f"{seg} {v.removeprefix(b + '_') or 'x1'}" for seg, v in sorted(t.items()))
            for b, t in varied.items()
        )
    return table, info


def render(tables: pd.DataFrame, infos: list[dict]) -> str:
    cols = [
        "data",
        "split",
        "method",
        "n_items",
        "total_cost",
        "controllable_cost",
        "regret_pct",
        "controllable_regret_pct",
        "expected_regret_pct",
        "service_met",
        "mean_service",
        "accuracy",
    ]
    t = tables[cols].copy()
    for c in ("total_cost", "controllable_cost"):
        t[c] = t[c].map(lambda v: f"{v:,.0f}")
    for c in ("regret_pct", "controllable_regret_pct", "expected_regret_pct"):
        t[c] = t[c].map(lambda v: f"{v:.2f}")
    for c in ("service_met", "mean_service", "accuracy"):
        t[c] = t[c].map(lambda v: f"{v:.3f}")
    lines = ["| " + " | ".join(cols) + " |", "|" + "---|" * len(cols)]
    lines += ["| " + " | ".join(map(str, row)) + " |" for row in t.itertuples(index=False)]
    lines += [
        "",
        "| data | series | study (s) | predict+explain / study | train labels | best single | "
        "items with no feasible candidate |",
        "|---|---|---|---|---|---|---|",
    ]
    lines += [
        f"| {i['data']} | {i['series']} | {i['study_s']:.0f} | {i['predict_explain_s'] / i['study_s']:.4f} | "
        f"{i['labels']} | {i['best_single']} | {i['infeasible']} |"
        for i in infos
    ]
    lines += [""] + [f"- {i['data']}: {i['plan']}" for i in infos]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carparts-sample", type=int, default=800, help="carparts series (0 = all complete)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-carparts", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument(
        "--label-paths",
        type=int,
        default=SelectorConfig.label_paths,
        help="demand paths per item for expected-cost labels (0 = realised path only)",
    )
    parser.add_argument(
        "--decision", default="bayes", choices=["bayes", "argmax", "regression"], help="PolicySelector decision rule"
    )
    parser.add_argument(
        "--abstain",
        action="store_true",
        help="also judge the abstaining Bayes rule (method classifier_abstain) on the same labels",
    )
    parser.add_argument(
        "--extra-cutoffs",
        type=int,
        default=None,
        help="training cutoffs before the first (default: chosen from the history length)",
    )
    parser.add_argument(
        "--shortfall-scales",
        default="",
        help="comma-separated multiples of the item's shortfall 1 - alpha to add as candidate variants (e.g. 0.5,2)",
    )
    parser.add_argument(
        "--scale-candidates",
        default="",
        help="candidates to vary (comma-separated; default every stocking candidate)",
    )
    parser.add_argument("--out", type=Path, default=RESULTS, help="markdown table written here")
    args = parser.parse_args()
    tables, infos = [], []
    if not args.skip_carparts:
        demand, items = carparts(args.carparts_sample, args.seed)
        t, i = evaluate(f"carparts ({demand['unique_id'].nunique()} sampled)", demand, items, "MS", args, "month")
        tables.append(t)
        infos.append(i)
    if not args.skip_demo:
        demo = generate_demo(DemoConfig(seed=args.seed))
        t, i = evaluate("demo (seed %d)" % args.seed, demo.demand, demo.items, "W-MON", args, "week")
        tables.append(t)
        infos.append(i)
    text = render(pd.concat(tables, ignore_index=True), infos)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)


if __name__ == "__main__":
    main()
