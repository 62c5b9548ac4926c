"""CPU cost of the seasonal forecaster in the selector's data step (issue 12 / issue 14).

Run: ``PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m benchmarks.seasonal_cost [--weeks 169] [--repeats 2]``

:func:`policy_selector.prepare_cutoff` (forecast, rolling-origin backtest, error models) on the
demo network's history, default candidate space, single process, with the seasonal forecaster
off (every series season-blind, as before) and on (:func:`policy_selector.phased.seasonal_gate`,
then MSTL fitted and backtested on the gated series only). CPU seconds of this process
(``time.process_time``; statsforecast runs in-process with ``n_jobs=1``); runs alternate and the
best of ``--repeats`` is kept, so the ratio on / off is measured in the same run.
"""

from __future__ import annotations

import argparse
import time
import warnings

import pandas as pd

from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import SelectorConfig, prepare_cutoff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--weeks", type=int, default=169, help="history length (the demo evaluation's: 169)")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    demo = generate_demo(DemoConfig(seed=args.seed))
    demand = demo.demand
    cutoff = pd.DatetimeIndex(sorted(demand["ds"].unique()))[args.weeks - 1]
    best, gated = {}, None
    for _ in range(args.repeats):
        for on in (False, True):
            t0 = time.process_time()
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                data = prepare_cutoff(demand, demo.items, cutoff, SelectorConfig(freq="W-MON", seasonal_model=on))
            best[on] = min(best.get(on, float("inf")), time.process_time() - t0)
            if on:
                gated = data.seasonal
    n_tested = int(gated["seasonal_strength"].notna().sum())
    n_swapped = int(gated["seasonal"].sum())
    print(f"{len(gated)} series, {args.weeks} weeks: STL strength measured on {n_tested}, MSTL kept on {n_swapped}")
    print(f"prepare_cutoff CPU s: season-blind {best[False]:.1f}, seasonal {best[True]:.1f}")
    print(f"ratio seasonal / season-blind: {best[True] / best[False]:.2f}")


if __name__ == "__main__":
    main()
