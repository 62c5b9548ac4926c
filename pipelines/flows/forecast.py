"""``stockwise forecast``: future demand per series with quantiles, from each series' chosen model.

The same steps as the plan: validate, rolling-origin backtest of the configured
models and the per-series model choice (:func:`pipelines.flows.plan_steps.backtest_step`),
then the chosen model's forecast over the horizon (:func:`future_step`). The quantile of
period h is the forecast plus the h-step-ahead error quantile of that model, from the
backtest's h-th forecast step of every window, fitted with the plan's error model
(:class:`forecasting.ErrorModel`: family by likelihood, shrinkage to the SBC segment with
the run's ``error_model`` credibility, the one the plan sizes its buffers with) and floored at
zero demand.

Output ``forecast.parquet`` (atomic): ``unique_id, ds, model, mean, q0.05, ...``, one row
per series and horizon step; series too short for the backtest are listed in
``excluded.csv`` with the reason.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import ErrorModel
from pipelines.data.config import RunConfig
from pipelines.data.io import write_table_atomic, write_text_atomic
from pipelines.flows.plan import load_data, stage_dir
from pipelines.flows.plan_steps import Backtest, backtest_step, future_step
from pipelines.registry.tracking import start_run

__all__ = ["ForecastResult", "DEFAULT_QUANTILES", "quantile_forecast", "run_forecast"]

DEFAULT_QUANTILES = (0.05, 0.1, 0.25, 0.5, 0.75, 0.9, 0.95)


@dataclass(frozen=True)
class ForecastResult:
    """Where ``stockwise forecast`` wrote its outputs."""

    run_dir: Path
    forecast: Path
    run_id: str
    tracking_uri: str
    n_series: int
    n_excluded: int


def _step_cv(cv: pd.DataFrame, h: int) -> pd.DataFrame:
    """The backtest rows of forecast step h: one-period windows of h-step-ahead errors."""
    step = cv.sort_values(["unique_id", "cutoff", "ds"]).groupby(["unique_id", "cutoff"]).cumcount() + 1
    return cv.loc[step[step == h].index]


def _column(q: float) -> str:
    return f"q{q:g}"


def quantile_forecast(
    demand: pd.DataFrame, bt: Backtest, cfg: RunConfig, freq: str, quantiles=DEFAULT_QUANTILES
) -> pd.DataFrame:
    """Long future forecast with quantiles: ``unique_id, ds, model, mean, q<p>...`` (no I/O).

    Raises
    ------
    ValueError
        A quantile outside (0, 1).
    """
    qs = np.sort(np.unique(np.asarray(quantiles, dtype=float)))
    if qs.size == 0 or (qs <= 0).any() or (qs >= 1).any():
        raise ValueError(f"quantiles must be in (0, 1), got {list(quantiles)}")
    future = future_step(demand, bt, cfg, freq)
    ids = future.index.to_numpy(dtype=str)
    model = bt.choice.set_index("unique_id")["model"].reindex(ids).to_numpy()
    segments = bt.features.set_index("unique_id")["sbc_class"]
    start = pd.Timestamp(demand["ds"].max()) + pd.tseries.frequencies.to_offset(freq)
    dates = pd.date_range(start, periods=bt.horizon, freq=freq)
    frames = []
    for h in range(1, bt.horizon + 1):
        cv_h = _step_cv(bt.cv, h)
        em = ErrorModel(cfg.error_model.config()).fit(
            cv_h, segments=segments.reindex(cv_h["unique_id"].unique()), history=demand
        )
        err = em.quantile(ids[:, None], 1.0, qs[None, :], model=model[:, None])
        mean = future[h].to_numpy()
        block = pd.DataFrame(np.maximum(mean[:, None] + err, 0.0), columns=[_column(q) for q in qs])
        block.insert(0, "mean", mean)
        block.insert(0, "model", model)
        block.insert(0, "ds", dates[h - 1])
        block.insert(0, "unique_id", ids)
        frames.append(block)
    out = pd.concat(frames, ignore_index=True).sort_values(["unique_id", "ds"], ignore_index=True)
    # floor at 0 keeps the order; the cumulative max guards against ties broken by rounding
    cols = [_column(q) for q in qs]
    out[cols] = np.maximum.accumulate(out[cols].to_numpy(), axis=1)
    return out


def run_forecast(
    cfg: RunConfig, quantiles=DEFAULT_QUANTILES, progress: Callable[[str], None] = lambda _: None
) -> ForecastResult:
    """Validate, backtest, choose a model per series, forecast with quantiles; one run folder, one MLflow run."""
    staging, final = stage_dir(Path(cfg.out), "forecast")
    try:
        with start_run("forecast", cfg.tracking_uri, tags={"stockwise.command": "forecast"}) as run:
            progress("validating data")
            data = load_data(cfg, staging)
            if cfg.strict or data.freq is None:
                data.report.raise_if_errors()
            run.log_params(cfg.model_dump(mode="json") | {"freq": data.freq, "quantiles": list(quantiles)})
            progress(f"backtesting {len(cfg.forecast.models)} models on {data.demand['unique_id'].nunique()} series")
            bt = backtest_step(data.demand, data.items, cfg, data.freq)
            progress(f"forecasting {bt.horizon} periods with each series' chosen model")
            fc = quantile_forecast(data.demand, bt, cfg, data.freq, quantiles)
            path = write_table_atomic(fc, staging / "forecast.parquet")
            excluded = pd.DataFrame({"unique_id": bt.excluded, "reason": "history too short for the backtest"})
            write_table_atomic(excluded, staging / "excluded.csv")
            run.log_metrics(
                {
                    "n_series": float(fc["unique_id"].nunique()),
                    "n_excluded": float(len(excluded)),
                    **{f"series.{m}": float(v) for m, v in bt.choice["model"].value_counts().items()},
                }
            )
            run.log_artifact(path)
            write_text_atomic(f"run_id: {run.run_id}\ntracking_uri: {run.tracking_uri}\n", staging / "RUN.txt")
            result = ForecastResult(
                run_dir=final,
                forecast=final / "forecast.parquet",
                run_id=run.run_id,
                tracking_uri=run.tracking_uri,
                n_series=int(fc["unique_id"].nunique()),
                n_excluded=len(excluded),
            )
        os.replace(staging, final)
        return result
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)
