"""Cost and consistency of the expected outcomes (issue 12 item 2) on carparts.

Run: ``PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m benchmarks.expected_outcomes [--sample 0]``

At one cutoff (the end of the history; target CSL 0.95, L = 1, R = 1, order cost 0, the
default path) it times, in the same run, the expected outcomes of the chosen policies

- *before*: ``sim_paths`` (30) paths of last year's resampled demand (the old model), and
- *now*: one path per quantile-grid point (200) of the sizing's own distribution
  (:func:`policy_selector.outcomes.sizing_paths`),

and prints the ratio, the mean expected CSL under each, how many stocked items are more than
a point from the target and how many of those carry no reason (``service_notes``).
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import pandas as pd

from benchmarks.selector_eval import carparts
from policy_selector import SelectorConfig
from policy_selector.context import prepare_cutoff
from policy_selector.features import build_features
from policy_selector.outcomes import bootstrap_paths, simulated_outcomes, sizing_paths
from policy_selector.recommend import _pick
from policy_selector.selector import FixedSelector
from policy_selector.sizing import service_notes, size_candidates


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=400, help="carparts series (0 = all complete)")
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    demand, items = carparts(args.sample, args.seed)
    items = items.drop(columns=["shortage_cost"]).assign(
        service_target=0.95, service_type="csl", lead_time=1, lead_time_std=0.0, review_period=1, order_cost=0.0
    )
    config = SelectorConfig(freq="MS")
    cutoff = pd.Timestamp(pd.to_datetime(demand["ds"]).max())
    data = prepare_cutoff(demand, items, cutoff, config)
    selector = FixedSelector().fit(None, None, pd.DataFrame(columns=list(config.space.names)))
    choice = selector.select(build_features(data, config.season_length)).candidate.to_numpy()
    sized = size_candidates(data, config)
    policy = _pick(sized, choice)
    rng = np.random.default_rng(args.seed)

    t0 = time.perf_counter()
    window = int(round(data.economics.periods_per_year))
    old = simulated_outcomes(
        data, policy, bootstrap_paths(data.history, config.sim_paths, config.sim_periods, window, rng), rng
    )
    t_old = time.perf_counter() - t0
    t0 = time.perf_counter()
    paths, totals = sizing_paths(data, choice, config, config.sim_periods, rng, policy)
    new = simulated_outcomes(data, policy, paths, rng)
    t_new = time.perf_counter() - t0

    table = sized.table.set_index(["unique_id", "candidate"])
    chosen = table.loc[list(zip(data.ids, choice))].reset_index()
    notes = service_notes(data, chosen, new.reset_index(drop=True), totals)
    stocked = chosen["policy"].ne("no_stock").to_numpy()
    off = stocked & (np.abs(new["expected_csl"].to_numpy() - 0.95) > 0.01)
    kinds = pd.Series(notes[off]).str.split(":").str[0].value_counts()
    print(f"{len(data.ids)} series; stocked {stocked.sum()}")
    print(
        f"last year's resampled demand ({config.sim_paths} paths): {t_old:.1f} s, mean expected CSL "
        f"{old['expected_csl'][stocked].mean():.3f}"
    )
    print(
        f"sizing's own model ({paths.shape[0]} paths): {t_new:.1f} s ({t_new / t_old:.1f}x), mean expected CSL "
        f"{new['expected_csl'][stocked].mean():.3f}"
    )
    print(f"more than 1 point from 0.95: {off.sum()}; without a reason: {(off & (notes == '')).sum()}")
    print(kinds.to_string())


if __name__ == "__main__":
    main()
