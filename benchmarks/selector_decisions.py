"""Each decision path of the policy selector through ``stockwise evaluate``, on the same data and origin.

Run: ``nice -n 10 .venv/bin/python -m benchmarks.selector_decisions [--carparts-sample 400] [--skip-demo]``

For each data set (carparts with the issue-12 economics of
:func:`benchmarks.decisions.carparts_folder`; the demo network of ``DemoConfig(seed)``):

1. write the data folder, and a training folder holding only the history before
   the evaluation origin (the last ``holdout`` periods are never seen in training);
2. ``stockwise train --data <training folder>`` (:func:`pipelines.flows.train.run_train`)
   into a fresh MLflow store for that data set: the classifier is registered; the gate
   decides whether it becomes champion or a default path is registered;
3. ``stockwise evaluate --data <folder> --holdout H --selector S`` for every path S:
   ``model:<classifier version>`` (the trained classifier, champion or not),
   ``registry`` (what ``recommend`` uses: champion, else the default path),
   ``packaged`` (the packaged default), ``policy:<best single of the training
   evaluation>`` and ``sbc`` (the Syntetos-Boylan rule).

Writes ``benchmarks/results/selector_decisions/<data>/`` (folders, store, evaluation runs)
and ``summary.md`` there, and prints the table. ``--reuse`` skips training when the data
set's store already has a trained version.

``--shortfall-scales 0.5,2 [--scale-candidates a,b]`` (issue 13, service tuned inside the
candidates) replaces steps 2-3: the selector study (:func:`policy_selector.run_study`, windows
from :func:`plan_study`) on the training folder with the shortfall variants in the space, then
one shared decision replay (:func:`pipelines.flows.evaluate.replay_selectors`, the replay of
``stockwise evaluate``) of the paths fitted on all its cutoffs, on the last ``holdout`` periods:
the classifier over the space without variants, with them, and over the per-segment tuned
candidates (:class:`~policy_selector.shortfall_tuning.ShortfallTuned`); the best single policy
without variants (a ``FixedSelector``: the replay gives it the default path's sizing choice, as
``--selector policy:<name>``) and tuned; the packaged default. Writes ``shortfall.md``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pandas as pd

from benchmarks.decisions import carparts_folder
from pipelines.data.config import RunConfig
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.data.io import read_table
from pipelines.flows.evaluate import EvaluateSettings, replay_selectors, run_evaluate
from pipelines.flows.train import TrainSettings, run_train
from policy_selector import PolicySelector, SelectorConfig, run_study
from policy_selector.candidates import CandidateSpace
from policy_selector.context import wide_panel
from policy_selector.economics import periods_per_year
from policy_selector.selector import FixedSelector
from policy_selector.shortfall_tuning import ShortfallTuned
from policy_selector.workflow import plan_study, stack_studies

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "selector_decisions"


def _table(folder: Path, name: str) -> Path:
    return next(folder / f"{name}{s}" for s in (".parquet", ".csv") if (folder / f"{name}{s}").is_file())


def training_folder(folder: Path, holdout: int, out: Path) -> Path:
    """``demand`` before the last ``holdout`` periods of ``folder``, and its ``items``: what train may see."""
    demand = read_table(_table(folder, "demand"))
    demand["ds"] = pd.to_datetime(demand["ds"])
    dates = sorted(demand["ds"].unique())
    out.mkdir(parents=True, exist_ok=True)
    demand[demand["ds"] < dates[-holdout]].to_parquet(out / "demand.parquet", index=False)
    read_table(_table(folder, "items")).to_csv(out / "items.csv", index=False)
    return out


def train(folder: Path, freq: str, uri: str, out: Path, seed: int, reuse: bool) -> dict:
    """The trained classifier's version, the best single policy and the gate's decision."""
    if reuse and (out / "train.json").is_file():
        return json.loads((out / "train.json").read_text())
    demand = read_table(_table(folder, "demand"))
    items = read_table(_table(folder, "items"))
    t0 = time.perf_counter()
    result = run_train(demand, items, freq, TrainSettings(seed=seed, freq=freq), out / "train", uri)
    info = {
        "version": result.version,
        "champion": result.champion or "",
        "default": result.default or "",
        "best_single": _run_param(uri, result.run_id, "best_single"),
        "decision": result.decision,
        "plan": result.plan,
        "seconds": time.perf_counter() - t0,
        "gate_basis": result.gate_basis,
        "replay_seconds": _run_metric(uri, result.run_id, "replay.seconds"),
        "replay": None if result.replay is None else result.replay.drop(columns="name").to_dict(orient="index"),
    }
    out.mkdir(parents=True, exist_ok=True)
    (out / "train.json").write_text(json.dumps(info, indent=1))
    return info


def _run_metric(uri: str, run_id: str, key: str) -> float:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.metrics.get(key, float("nan"))


def _run_param(uri: str, run_id: str, key: str) -> str:
    import mlflow

    return mlflow.MlflowClient(tracking_uri=uri).get_run(run_id).data.params[key]


def paths(info: dict) -> list[tuple[str, str]]:
    """(label, --selector) of every decision path: the trained classifier, the registry, the packaged
    default, the best single policy of the training evaluation and the SBC rule."""
    return [
        ("trained classifier", f"model:{info['version']}"),
        ("registry (recommend)", "registry"),
        ("packaged default", "packaged"),
        (f"best single ({info['best_single']})", f"policy:{info['best_single']}"),
        ("SBC rule", "sbc"),
    ]


def evaluate(d: dict, uri: str, base: Path, seed: int, spec: str) -> dict:
    """``stockwise evaluate --data <folder> --holdout H --selector spec``; its headline row."""
    cfg = RunConfig(data=d["folder"], freq=d["freq"], out=base / "runs", tracking_uri=uri, seed=seed, selector=spec)
    t0 = time.perf_counter()
    res = run_evaluate(cfg, EvaluateSettings(d["holdout"]), progress=lambda m: print(f"  [{spec}] {m}", flush=True))
    m = res.metrics
    row = {
        "selector": spec,
        "seconds": time.perf_counter() - t0,
        "run_dir": str(res.run_dir),
        "name": (res.run_dir / "RUN.txt").read_text().split("selector: ", 1)[1].strip(),
    }
    for plan, prefix in (("stockwise", ""), ("stockwise_static", "static.")):
        row |= {f"{plan}.{k}": m.get(f"{plan}.{k}", float("nan")) for k in ("n_items", "csl", "fill_rate")}
        row |= {f"{plan}.{k}": m.get(f"{plan}.{k}", float("nan")) for k in ("inventory_value", "cost")}
        row |= {f"{plan}.ratio.{k}": m.get(f"{prefix}ratio.{k}", float("nan")) for k in ("csl", "fill_rate")}
    best = res.ratios[(res.ratios["segment_kind"] == "all") & (res.ratios["method"] == "stockwise")]
    row |= {f"best_baseline.{r.measure}": r.best_baseline for r in best.itertuples()}
    return row


def render(label: str, info: dict, rows: list[dict]) -> str:
    """Markdown table of one data set: each path's achieved service, value and ratios (time-phased plan)."""
    single = next(r for r in rows if r["selector"].startswith("policy:"))
    lines = [
        f"### {label}",
        "",
        f"train: {info['plan']}; {info['seconds']:.0f} s, of which the decision replay "
        f"{info.get('replay_seconds', float('nan')):.0f} s (gate basis: {info.get('gate_basis', '')}). "
        f"{info['decision']}",
        "",
        "| path | --selector | items | CSL | fill rate | inventory value | yearly cost | ratio @CSL | ratio @fill "
        "| vs best single @CSL | vs best single @fill | static ratio @CSL | static ratio @fill |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (name, _), r in zip(paths(info), rows):
        p = "stockwise"
        lines.append(
            f"| {name} | `{r['selector']}` | {r[p + '.n_items']:.0f} | {r[p + '.csl']:.3f} | "
            f"{r[p + '.fill_rate']:.3f} | {r[p + '.inventory_value']:,.0f} | {r[p + '.cost']:,.0f} | "
            f"{r[p + '.ratio.csl']:.3f} | {r[p + '.ratio.fill_rate']:.3f} | "
            f"{r[p + '.ratio.csl'] / single[p + '.ratio.csl']:.3f} | "
            f"{r[p + '.ratio.fill_rate'] / single[p + '.ratio.fill_rate']:.3f} | "
            f"{r['stockwise_static.ratio.csl']:.3f} | {r['stockwise_static.ratio.fill_rate']:.3f} |"
        )
    lines += [
        "",
        "best baseline at the classifier's service: "
        + ", ".join(f"{k[14:]} {v}" for k, v in rows[0].items() if k.startswith("best_baseline.")),
        "",
        "runs: " + "; ".join(f"`{r['selector']}` {r['seconds']:.0f} s ({r['name']})" for r in rows),
        "",
    ]
    return "\n".join(lines)


def shortfall_paths(folder: Path, freq: str, seed: int, scales, names) -> tuple[dict, str]:
    """The decision paths of the shortfall comparison, fitted on every cutoff of the study on ``folder``."""
    demand = read_table(_table(folder, "demand"))
    demand["ds"] = pd.to_datetime(demand["ds"])
    items = read_table(_table(folder, "items"))
    plan = plan_study(wide_panel(demand).shape[1], periods_per_year(freq))
    space = CandidateSpace().with_shortfall_scales(scales, names)
    config = SelectorConfig(space=space, freq=freq, test_periods=plan.test_periods, n_windows=plan.n_windows)
    make = lambda: PolicySelector(random_state=seed)  # noqa: E731
    study = run_study(
        demand, items, config, np.random.default_rng(seed), make, extra_train_cutoffs=plan.extra_train_cutoffs
    )
    f, lab, cost = stack_studies([study.train, *study.extra, study.test])
    base = ShortfallTuned("best_single", tune=False).fit(f, lab, cost).inner_.chosen_
    fitted = {
        "classifier (no variants)": ShortfallTuned(make(), tune=False).fit(f, lab, cost),
        "classifier (variants as classes)": study.selector,
        "classifier (tuned per segment)": ShortfallTuned(make()).fit(f, lab, cost),
        f"best single, no variants ({base})": FixedSelector(base).fit(None, None, cost),
        "best single (tuned per segment)": ShortfallTuned("best_single").fit(f, lab, cost),
        "packaged default": FixedSelector().fit(None, None, cost),
    }
    tuned = fitted["best single (tuned per segment)"]
    note = (
        f"{plan.reason}; candidates {list(space.names)}; labels {study.train.labels.label.value_counts().to_dict()}; "
        f"tuned best single {tuned.inner_.chosen_}: {tuned.tuning_[tuned.inner_.chosen_]}"
    )
    return {k: (v, k) for k, v in fitted.items()}, note


def shortfall_replay(d: dict, base: Path, args) -> str:
    """Study on the training folder, then every shortfall path replayed on the unseen last ``holdout`` periods."""
    scales = [float(x) for x in args.shortfall_scales.split(",")]
    names = args.scale_candidates.split(",") if args.scale_candidates else None
    t0 = time.perf_counter()
    train_folder = training_folder(d["folder"], d["holdout"], base / "train_data")
    selectors, note = shortfall_paths(train_folder, d["freq"], args.seed, scales, names)
    study_s = time.perf_counter() - t0
    demand = read_table(_table(d["folder"], "demand"))
    demand["ds"] = pd.to_datetime(demand["ds"])
    items = read_table(_table(d["folder"], "items"))
    cfg = RunConfig(data=d["folder"], freq=d["freq"], seed=args.seed)
    table = replay_selectors(demand, items, d["freq"], cfg, d["holdout"], selectors, progress=print)
    table.to_csv(base / "shortfall_replay.csv")
    ref = table.loc[next(k for k in table.index if k.startswith("best single, no variants"))]
    lines = [
        f"### {d['label']}: shortfall variants {args.shortfall_scales} of {args.scale_candidates or 'all'}",
        "",
        f"{note}. Study {study_s:.0f} s, replay {time.perf_counter() - t0 - study_s:.0f} s.",
        "",
        "| path | items | CSL | fill rate | inventory value | yearly cost (priced) | ratio @CSL | ratio @fill "
        "| vs best single (no variants) @CSL | yearly cost vs it |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for key, r in table.iterrows():
        lines.append(
            f"| {key} | {r['n_items']:.0f} | {r['csl']:.3f} | {r['fill_rate']:.3f} | {r['inventory_value']:,.0f} | "
            f"{r['yearly_cost']:,.0f} | {r['ratio_csl']:.3f} | {r['ratio_fill_rate']:.3f} | "
            f"{r['ratio_csl'] / ref['ratio_csl']:.3f} | {r['yearly_cost'] / ref['yearly_cost'] - 1:+.1%} |"
        )
    return "\n".join(lines) + "\n"


def datasets(args) -> list[dict]:
    """Name, data folder, frequency and holdout of each data set (folders written under RESULTS)."""
    out = []
    if not args.skip_carparts:
        folder = carparts_folder(args.carparts_sample, args.seed, RESULTS / "carparts" / "data")
        n = len(read_table(folder / "items.csv"))
        out.append(
            {
                "name": "carparts",
                "label": f"carparts ({n} series)",
                "folder": folder,
                "freq": "MS",
                "holdout": args.holdout,
            }
        )
    if not args.skip_demo:
        folder = RESULTS / "demo" / "data"
        write_demo(generate_demo(DemoConfig(seed=args.seed)), folder)
        out.append(
            {
                "name": "demo",
                "label": f"demo (seed {args.seed})",
                "folder": folder,
                "freq": "W-MON",
                "holdout": args.demo_holdout,
            }
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carparts-sample", type=int, default=400, help="carparts series (0 = all complete)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--holdout", type=int, default=12)
    parser.add_argument("--demo-holdout", type=int, default=13)
    parser.add_argument("--skip-carparts", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    parser.add_argument("--train-only", action="store_true")
    parser.add_argument("--reuse", action="store_true", help="reuse a data set's trained model (train.json)")
    parser.add_argument(
        "--shortfall-scales", default="", help="replay the shortfall comparison instead (e.g. 0.5,2; see above)"
    )
    parser.add_argument("--scale-candidates", default="", help="candidates to vary (default every stocking one)")
    args = parser.parse_args()
    for d in datasets(args):
        base = RESULTS / d["name"]
        if args.shortfall_scales:
            text = shortfall_replay(d, base, args)
            (base / "shortfall.md").write_text(text)
            print(text, flush=True)
            continue
        uri = f"sqlite:///{base / 'mlflow.db'}"
        train_folder = training_folder(d["folder"], d["holdout"], base / "train_data")
        info = train(train_folder, d["freq"], uri, base, args.seed, args.reuse)
        print(f"{d['label']}: {json.dumps(info)}", flush=True)
        if args.train_only:
            continue
        rows = [evaluate(d, uri, base, args.seed, spec) for _, spec in paths(info)]
        pd.DataFrame(rows).to_csv(base / "paths.csv", index=False)
        (base / "summary.md").write_text(render(d["label"], info, rows))
        print((base / "summary.md").read_text(), flush=True)
    parts = [(RESULTS / n / "summary.md") for n in ("carparts", "demo")]
    (RESULTS / "summary.md").write_text("\n".join(p.read_text() for p in parts if p.is_file()))


if __name__ == "__main__":
    main()
