"""Is a window's label predictable? The item's own past windows vs the classifier and the best single policy.

Run: ``python -m benchmarks.selector_memory [--carparts-sample 400] [--skip-demo] [--skip-carparts]``

The selector's labels are each item's least expected-cost candidate on one held-out
window (:mod:`policy_selector.labels`). This benchmark asks where the oracle's advantage
over the best single policy could come from, with the study's own cutoffs
(:func:`policy_selector.workflow.plan_study`: c1, the extra training cutoffs before it,
c2 = c1 + T):

- ``memory_last``: each item's label on the last window already over at the judged
  cutoff (for c2 that is c1's window; for c1 the extra cutoff T periods earlier);
- ``own_sum_th<x>``: each item's least *summed* expected cost over every window over at
  the judged cutoff, kept only when it saves more than x of the best single policy's
  summed cost for that item (x = 0: always; large x: the best single policy);
- ``classifier`` / ``classifier_memory``: :class:`PolicySelector` fitted on the training
  cutoffs (as ``run_study``'s held-out-time model) / on c1 alone with the item's last
  finished window's expected costs (log ratio to the row's least) as extra features;
- ``ceiling``: the judged window's own label (its expected-cost argmin: it saw the window,
  so it bounds what any predictor of the label could reach).

Controllable regret (%) to the realised hindsight oracle, realised and on the expected
cost matrix, as in :func:`policy_selector.evaluation.evaluate_choices`. carparts uses the
seeded synthetic item master of :mod:`benchmarks.selector_eval`.
"""

from __future__ import annotations

import argparse

import numpy as np
import pandas as pd

from benchmarks.selector_eval import carparts
from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import PolicySelector, SelectorConfig
from policy_selector.context import wide_panel
from policy_selector.economics import periods_per_year
from policy_selector.selector import RuleSelector
from policy_selector.workflow import default_cutoffs, plan_study, study_cutoff

THRESHOLDS = (0.0, 0.05, 0.1, 0.2, 0.5)


def label_cutoffs(demand, items, freq: str, seed: int) -> tuple[dict, list, int, str]:
    """Label c1, the extra training cutoffs and c2; (labels and features by cutoff, cutoffs, T, plan)."""
    plan = plan_study(wide_panel(demand).shape[1], periods_per_year(freq))
    config = SelectorConfig(freq=freq, test_periods=plan.test_periods, n_windows=plan.n_windows)
    c1, c2 = default_cutoffs(demand, config.test_periods)
    step = pd.tseries.frequencies.to_offset(freq) * max(1, config.test_periods // 2)
    cutoffs = [c1 - step * k for k in range(plan.extra_train_cutoffs, 0, -1)] + [c1, c2]
    rng = np.random.default_rng(seed)
    studies = {c: study_cutoff(demand, items, c, config, rng) for c in cutoffs}
    return studies, cutoffs, config.test_periods, plan.reason


def regret(study, choice: pd.Series) -> tuple[float, float]:
    """Controllable regret % (realised, expected) of ``choice`` on ``study``'s window."""
    labels = study.labels
    priced, expected = labels.priced, labels.expected
    cols = priced.columns.get_indexer(choice.reindex(priced.index))
    rows = np.arange(len(priced))
    best = priced.min(axis=1).to_numpy()
    base = labels.baseline.reindex(priced.index).to_numpy()
    e_best = expected.min(axis=1).to_numpy()
    e_base = labels.expected_baseline.reindex(priced.index).to_numpy()
    realised = 100 * (priced.to_numpy()[rows, cols] - best).sum() / (best - base).sum()
    exp = 100 * (expected.to_numpy()[rows, cols] - e_best).sum() / (e_best - e_base).sum()
    return float(realised), float(exp)


def own_sum(past: list, ids: pd.Index, single: str, threshold: float) -> pd.Series:
    """Each item's least summed expected cost over ``past`` studies, kept if it saves > threshold vs ``single``."""
    total = sum(s.labels.expected.reindex(ids).fillna(0.0) for s in past)
    saving = 1 - total.min(axis=1) / total[single].replace(0, np.nan)
    return total.idxmin(axis=1).where(saving.fillna(0) > threshold, single)


def memory_features(features: pd.DataFrame, past) -> pd.DataFrame:
    """``features`` plus the past window's expected cost per candidate as log ratio to its row's least."""
    e = past.labels.expected.reindex(features.index)
    ratio = np.log(e.div(e.min(axis=1), axis=0).clip(lower=1e-9))
    return pd.concat([features, ratio.add_prefix("memory_")], axis=1)


def judge(studies: dict, cutoffs: list, T: int, step_periods: int, unit: str, seed: int) -> pd.DataFrame:
    """Rows (split, method, realised, expected, share_best_single) for held-out time (c2) and c1."""
    c1, c2 = cutoffs[-2], cutoffs[-1]
    training = [studies[c] for c in cutoffs[:-1]]
    single = str(sum(s.labels.expected.sum() for s in training).idxmin())
    rows = []

    def add(split, method, study, choice):
        r, e = regret(study, choice)
        rows.append((split, method, r, e, float((choice == single).mean())))

    test = studies[c2]
    ids = test.labels.priced.index
    feats = pd.concat([s.features.rename(index=lambda i, k=k: f"{i}|{k}") for k, s in enumerate(training)])
    labs = pd.concat([s.labels.label.rename(index=lambda i, k=k: f"{i}|{k}") for k, s in enumerate(training)])
    costs = pd.concat([s.labels.expected.rename(index=lambda i, k=k: f"{i}|{k}") for k, s in enumerate(training)])
    clf = PolicySelector(period_name=unit, random_state=seed).fit(feats, labs, costs)
    add("held_out_time", "best_single", test, pd.Series(single, index=ids))
    add("held_out_time", "sbc_rule", test, RuleSelector().fit(None, None, costs).predict(test.features))
    add("held_out_time", "classifier", test, clf.predict(test.features))
    add("held_out_time", "memory_last", test, studies[c1].labels.label.reindex(ids).fillna(single))
    for th in THRESHOLDS:
        add("held_out_time", f"own_sum_th{th}", test, own_sum(training, ids, single, th))
    # the cutoffs whose window is over at c1 (T periods or more before it)
    before_c1 = [studies[c] for k, c in enumerate(cutoffs[:-2]) if (len(cutoffs) - 2 - k) * step_periods >= T]
    if before_c1:
        mem = before_c1[-1]
        clf_m = PolicySelector(period_name=unit, random_state=seed).fit(
            memory_features(studies[c1].features, mem), studies[c1].labels.label, studies[c1].labels.expected
        )
        add("held_out_time", "classifier_memory", test, clf_m.predict(memory_features(test.features, studies[c1])))
        at_c1 = studies[c1]
        ids1 = at_c1.labels.priced.index
        add("at_c1_from_own_past", "best_single", at_c1, pd.Series(single, index=ids1))
        add("at_c1_from_own_past", "memory_last", at_c1, mem.labels.label.reindex(ids1).fillna(single))
        for th in THRESHOLDS:
            add("at_c1_from_own_past", f"own_sum_th{th}", at_c1, own_sum(before_c1, ids1, single, th))
    for split, study in (("held_out_time", test), ("at_c1_from_own_past", studies[c1])):
        add(split, "ceiling (the window's own label)", study, study.labels.label)
    return pd.DataFrame(rows, columns=["split", "method", "realised_pct", "expected_pct", "share_best_single"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--carparts-sample", type=int, default=400, help="carparts series (0 = all complete)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--skip-carparts", action="store_true")
    parser.add_argument("--skip-demo", action="store_true")
    args = parser.parse_args()
    sets = []
    if not args.skip_carparts:
        demand, items = carparts(args.carparts_sample, args.seed)
        sets.append((f"carparts ({demand['unique_id'].nunique()})", demand, items, "MS", "month"))
    if not args.skip_demo:
        demo = generate_demo(DemoConfig(seed=args.seed))
        sets.append((f"demo (seed {args.seed})", demo.demand, demo.items, "W-MON", "week"))
    for name, demand, items, freq, unit in sets:
        studies, cutoffs, T, reason = label_cutoffs(demand, items, freq, args.seed)
        step = max(1, T // 2)
        table = judge(studies, cutoffs, T, step, unit, args.seed)
        print(f"\n{name}: {reason}\n")
        print(table.round(2).to_markdown(index=False), flush=True)


if __name__ == "__main__":
    main()
