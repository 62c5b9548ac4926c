"""Overhead of a Stockwise backtest over calling statsforecast directly, and peak memory.

Run: ``.venv/bin/python -m benchmarks.forecast_overhead [--series 2000] [--memory-series 30000]``

1. Throughput: the same generated weekly panel and the same statsforecast
   models, all cores, backtested (a) with ``StatsForecast.cross_validation``
   directly and (b) through ``Forecaster.cross_validation`` (validation,
   failure marking, fallback repair, column tidy-up), and (c) the full
   analysis a ``stockwise backtest`` does in memory (b + characterisation,
   metrics, error model and its quantile table). Runs alternate, the best of
   ``--repeats`` is kept, ratios are against (a) measured in the same run.
2. Peak memory: a fresh process backtests ``--memory-series`` weekly series
   (104 weeks, cheap models) through Stockwise and reports its peak RSS
   (``resource.getrusage``: the main process, and the largest worker).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

RESULTS = Path(__file__).resolve().parent / "results"
MODELS = ("Naive", "SeasonalNaive", "AutoETS", "CrostonSBA", "TSB", "ADIDA")
MEMORY_MODELS = ("Naive", "SeasonalNaive", "CrostonSBA", "TSB")


def weekly_panel(n_series: int, length: int = 104, seed: int = 0) -> pd.DataFrame:
    """Half smooth Poisson, half intermittent (Bernoulli x Poisson) weekly series."""
    rng = np.random.default_rng(seed)
    level = rng.uniform(1.0, 40.0, n_series)[:, None]
    t = np.arange(length)[None, :]
    season = 1.0 + 0.3 * np.sin(2 * np.pi * t / 52)
    smooth = rng.poisson(level * season, (n_series, length))
    sparse = (rng.random((n_series, length)) < 0.25) * (1 + rng.poisson(level / 8, (n_series, length)))
    y = np.where(np.arange(n_series)[:, None] % 2 == 0, smooth, sparse).astype(float)
    ids = np.array([f"SKU{i:06d}@DC1" for i in range(n_series)])
    return pd.DataFrame(
        {
            "unique_id": np.repeat(ids, length),
            "ds": np.tile(pd.date_range("2022-01-03", periods=length, freq="W-MON").to_numpy(), n_series),
            "y": y.ravel(),
        }
    )


def _direct(df, h, n_windows):
    from statsforecast import StatsForecast

    from forecasting.config import ForecastConfig
    from forecasting.models import build_stat_models

    cfg = ForecastConfig(models=MODELS, freq="W-MON")
    sf = StatsForecast(models=build_stat_models(cfg), freq="W-MON", n_jobs=-1)
    return sf.cross_validation(h=h, df=df, n_windows=n_windows, step_size=1)


def _stockwise(df, h, n_windows):
    from forecasting import ForecastConfig, Forecaster

    return Forecaster(ForecastConfig(models=MODELS, freq="W-MON")).cross_validation(df, h, n_windows)


def _full(df, h, n_windows):
    from forecasting import ErrorModel, characterise, evaluate, summarise

    cv = _stockwise(df, h, n_windows)
    segments = characterise(df, season_length=52, cv=cv).set_index("unique_id")["sbc_class"]
    summarise(evaluate(cv, df), segments)
    ErrorModel().fit(cv, segments=segments, history=df).table()
    return cv


def throughput(n_series: int, h: int, n_windows: int, repeats: int) -> pd.DataFrame:
    df = weekly_panel(n_series)
    runs = {"statsforecast direct": _direct, "Forecaster.cross_validation": _stockwise, "full backtest analysis": _full}
    best = {name: np.inf for name in runs}
    _direct(df.head(104 * 4), h, n_windows)  # warm-up: imports, numba compilation
    _stockwise(df.head(104 * 4), h, n_windows)
    for _ in range(repeats):
        for name, fn in runs.items():
            start = time.perf_counter()
            fn(df, h, n_windows)
            best[name] = min(best[name], time.perf_counter() - start)
    base = best["statsforecast direct"]
    return pd.DataFrame(
        {
            "run": list(best),
            "seconds (best of %d)" % repeats: [round(v, 2) for v in best.values()],
            "ratio vs direct": [round(v / base, 3) for v in best.values()],
            "overhead": [f"{v / base - 1:+.1%}" for v in best.values()],
        }
    )


def memory_child(n_series: int, h: int, n_windows: int) -> None:
    """Body of the fresh process measuring peak memory (prints JSON)."""
    from forecasting import ErrorModel, ForecastConfig, Forecaster

    start = time.perf_counter()
    df = weekly_panel(n_series)
    cfg = ForecastConfig(models=MEMORY_MODELS, freq="W-MON")
    cv = Forecaster(cfg).cross_validation(df, h=h, n_windows=n_windows)
    ErrorModel().fit(cv, history=df).table(quantiles=(0.9, 0.95))
    print(
        json.dumps(
            {
                "series": n_series,
                "rows": len(df),
                "cv_rows": len(cv),
                "seconds": round(time.perf_counter() - start, 1),
                "peak_rss_main_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "peak_rss_largest_worker_mb": resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024,
            }
        )
    )


def memory(n_series: int, h: int, n_windows: int) -> dict:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.forecast_overhead",
            "--memory-child",
            "--memory-series",
            str(n_series),
            "--horizon",
            str(h),
            "--n-windows",
            str(n_windows),
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--series", type=int, default=1000)
    parser.add_argument("--memory-series", type=int, default=30000)
    parser.add_argument("--horizon", type=int, default=8)
    parser.add_argument("--n-windows", type=int, default=4)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--memory-child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--skip-memory", action="store_true")
    args = parser.parse_args()
    if args.memory_child:
        memory_child(args.memory_series, args.horizon, args.n_windows)
        return
    table = throughput(args.series, args.horizon, args.n_windows, args.repeats)
    lines = [
        f"### Backtest overhead vs statsforecast ({args.series} weekly series x 104 weeks, "
        f"h={args.horizon}, {args.n_windows} windows, models {', '.join(MODELS)}, n_jobs=-1)",
        "",
        table.to_markdown(index=False),
    ]
    if not args.skip_memory:
        mem = memory(args.memory_series, args.horizon, args.n_windows)
        lines += [
            "",
            f"### Peak memory, {mem['series']:,} weekly series x 104 weeks "
            f"(models {', '.join(MEMORY_MODELS)}, h={args.horizon}, {args.n_windows} windows, "
            "backtest + error model + quantile table, fresh process)",
            "",
            pd.DataFrame([mem]).to_markdown(index=False),
        ]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "forecast_overhead.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
