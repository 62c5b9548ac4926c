"""Accuracy on carparts (monthly spare parts, Hyndman 2008): by model, by SBC class, and model choice.

Run: ``.venv/bin/python -m benchmarks.forecast_carparts [--with-arima] [--models A,B,...]``

Protocol
--------
- Data: ``../shared/data/carparts/carparts.parquet``. Only the 2,509 complete
  series are used; the 165 with trailing NaN (stopped after 12-14 months) are
  excluded and counted.
- Holdout: the last 6 months (h = 6, one cutoff at 2001-09-01); every model is
  fitted on the 45 months before it. MASE/RMSSE are scaled by the in-sample
  one-step naive error of those 45 months; series whose training history is
  constant have no finite MASE and are counted, not averaged.
- SBC class from the training months only (no look-ahead).
- Model choice: an inner rolling-origin backtest on the training months
  (h = 6, 3 windows) feeds (a) Stockwise's guarded per-series choice
  (``select_models``: a series leaves its SBC segment's best model only with
  >= 3 windows and a 10 % lower MASE), (b) an unguarded per-series best,
  (c) the segment's best, (d) the single best model, against (e) the
  Syntetos-Boylan-Croston rule (Croston for "smooth", SBA elsewhere; Syntetos,
  Boylan & Croston 2005) and (f) the per-series best in hindsight (oracle).
  All are scored on the same holdout.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import ForecastConfig, Forecaster, characterise, evaluate, select_models, summarise
from forecasting.config import STAT_MODELS

DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "carparts" / "carparts.parquet"
RESULTS = Path(__file__).resolve().parent / "results"
H = 6
DEFAULT_MODELS = tuple(m for m in STAT_MODELS if m != "AutoARIMA") + ("LightGBM",)


def load() -> tuple[pd.DataFrame, dict]:
    raw = pd.read_parquet(DATA)
    complete = raw.groupby("unique_id")["y"].transform(lambda s: s.notna().all())
    kept = raw[complete].reset_index(drop=True)
    counts = {
        "series": raw["unique_id"].nunique(),
        "complete": kept["unique_id"].nunique(),
        "excluded (trailing NaN)": raw.loc[~complete, "unique_id"].nunique(),
    }
    return kept, counts


def holdout_scores(scores: pd.DataFrame) -> pd.DataFrame:
    """Series x model matrix of holdout MASE."""
    return scores.pivot(index="unique_id", columns="model", values="mase")


def strategy_table(choices: dict[str, pd.Series], mase: pd.DataFrame, classes: pd.Series) -> pd.DataFrame:
    rows = []
    for name, chosen in choices.items():
        chosen = chosen.reindex(mase.index)
        picked = mase.to_numpy()[np.arange(len(mase)), mase.columns.get_indexer(chosen)]
        frame = pd.DataFrame({"mase": picked, "cls": classes.reindex(mase.index).to_numpy()})
        row = {"strategy": name, "MASE (all)": frame["mase"].mean()}
        for cls, part in frame.groupby("cls"):
            row[f"MASE {cls}"] = part["mase"].mean()
        row["series scored"] = int(frame["mase"].notna().sum())
        rows.append(row)
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", default=None, help="comma-separated candidates")
    parser.add_argument("--with-arima", action="store_true", help="add AutoARIMA (slow: minutes per window)")
    parser.add_argument("--inner-windows", type=int, default=3)
    args = parser.parse_args()
    models = tuple(args.models.split(",")) if args.models else DEFAULT_MODELS
    if args.with_arima and "AutoARIMA" not in models:
        models = models + ("AutoARIMA",)
    timings = {}
    demand, counts = load()
    cfg = ForecastConfig(models=models, freq="MS")

    start = time.perf_counter()
    cv = Forecaster(cfg).cross_validation(demand, h=H, n_windows=1)
    timings["holdout backtest"] = time.perf_counter() - start
    cutoff = cv["cutoff"].max()
    train = demand[demand["ds"] <= cutoff]
    classes = characterise(train).set_index("unique_id")["sbc_class"]
    scores = evaluate(cv, demand)
    n_unscaled = int(scores.loc[scores["model"] == models[0], "mase"].isna().sum())

    overall = summarise(scores).sort_values("mase")
    by_class = summarise(scores, classes).pivot(index="model", columns="segment", values="mase")
    by_class = by_class.loc[overall["model"]]
    sizes = classes.reindex(scores["unique_id"].unique()).value_counts()

    start = time.perf_counter()
    inner = Forecaster(cfg).cross_validation(train, h=H, n_windows=args.inner_windows)
    timings["inner backtest (selection)"] = time.perf_counter() - start
    inner_scores = evaluate(inner, train)
    guarded = select_models(inner_scores, classes, min_windows=args.inner_windows, margin=0.1)
    unguarded = select_models(inner_scores, classes, min_windows=0, margin=0.0)
    single = summarise(inner_scores)["mase"].idxmin()
    single_name = summarise(inner_scores).loc[single, "model"]
    mase = holdout_scores(scores)
    sbc_rule = pd.Series(np.where(classes == "smooth", "CrostonClassic", "CrostonSBA"), index=classes.index)
    choices = {
        "Stockwise guarded per-series choice": guarded.set_index("unique_id")["model"],
        "unguarded per-series best (inner CV)": unguarded.set_index("unique_id")["series_best"],
        "SBC segment best (inner CV)": guarded.set_index("unique_id")["segment_best"],
        f"single best model ({single_name})": pd.Series(single_name, index=mase.index),
        "Syntetos-Boylan-Croston rule": sbc_rule,
        "oracle (best in hindsight)": mase.fillna(np.inf).idxmin(axis=1),
    }
    strategies = strategy_table(choices, mase, classes)
    switched = int((guarded["model"] != guarded["segment_best"]).sum())

    fmt = lambda df: df.to_markdown(index=False, floatfmt=".3f")  # noqa: E731
    lines = [
        f"### carparts: {counts['complete']:,} complete series of {counts['series']:,} "
        f"({counts['excluded (trailing NaN)']} excluded: trailing NaN), monthly, h = {H}, "
        f"holdout = last 6 months (cutoff {cutoff:%Y-%m})",
        "",
        f"SBC classes (training months): {', '.join(f'{k} {v}' for k, v in sizes.items())}; "
        f"{n_unscaled} series have a constant training history (no finite MASE, not averaged).",
        "",
        "#### Accuracy by model (mean over series; scaled bias > 0 = over-forecast)",
        "",
        fmt(overall[["model", "mase", "rmsse", "scaled_bias", "mae", "n_series", "n_scaled"]]),
        "",
        "#### MASE by SBC class",
        "",
        by_class.reset_index().to_markdown(index=False, floatfmt=".3f"),
        "",
        f"#### Model choice from an inner backtest ({args.inner_windows} windows), scored on the holdout",
        "",
        fmt(strategies),
        "",
        f"Guarded choice: {switched} of {len(guarded)} series left their segment's best model.",
        "",
        "Timings (s): " + ", ".join(f"{k} {v:.0f}" for k, v in timings.items()),
    ]
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "forecast_carparts.md").write_text(text + "\n")


if __name__ == "__main__":
    main()
