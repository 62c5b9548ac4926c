"""``stockwise backtest``: rolling-origin backtest of a demand file, tracked in MLflow.

Reads demand (CSV/Parquet), validates it, backtests every chosen model,
scores it (overall and by SBC segment), fits the error model and writes
``DIR/metrics.csv``, ``DIR/cv.parquet`` and ``DIR/error_quantiles.parquet``
(plus segment metrics, calibration, fallbacks and exclusions) atomically.
One MLflow parent run holds the params, metrics and these artifacts; the
LightGBM forecaster, when chosen, is logged as an MLflow model.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from forecasting import (
    ErrorModel,
    ErrorModelConfig,
    ForecastConfig,
    Forecaster,
    characterise,
    evaluate,
    split_cv,
    summarise,
)
from forecasting.panel import DataValidationError, ValidationReport, validate_demand
from forecasting.quantile_metrics import scaled_pinball
from pipelines.data.io import write_table_atomic
from pipelines.registry.tracking import start_run

__all__ = ["BacktestResult", "run_backtest", "DEFAULT_MODELS", "SERVICE_LEVELS"]

DEFAULT_MODELS = ("Naive", "SeasonalNaive", "AutoETS", "CrostonSBA", "TSB", "ADIDA")
SERVICE_LEVELS = (0.8, 0.9, 0.95, 0.99)


@dataclass
class BacktestResult:
    """What one backtest produced (tables in memory, files on disk, MLflow run id)."""

    metrics: pd.DataFrame
    metrics_by_segment: pd.DataFrame
    cv: pd.DataFrame
    error_quantiles: pd.DataFrame
    calibration: pd.DataFrame
    fallbacks: pd.DataFrame
    validation: ValidationReport
    run_id: str
    paths: dict[str, Path] = field(default_factory=dict)


def _metrics_table(scores: pd.DataFrame, pinball: pd.DataFrame) -> pd.DataFrame:
    overall = summarise(scores).rename(
        columns={"mase": "MASE", "rmsse": "RMSSE", "scaled_bias": "bias", "mae": "MAE", "rmse": "RMSE"}
    )
    spl = pinball.drop(columns=["unique_id", "n_windows"]).groupby("model").mean()
    out = overall.merge(spl.reset_index(), on="model", how="left")
    first = ["model", "MASE", "RMSSE", "bias", "n_series"]
    return out[first + [c for c in out.columns if c not in first]].sort_values("MASE").reset_index(drop=True)


@dataclass(frozen=True)
class ModelBacktest:
    """What every backtest computes: the fitted front door, its CV, characteristics and scores."""

    forecaster: Forecaster
    cv: pd.DataFrame
    features: pd.DataFrame
    segments: pd.Series
    scores: pd.DataFrame


def backtest_models(
    demand: pd.DataFrame,
    config: ForecastConfig,
    horizon: int,
    n_windows: int,
    step: int,
    unit_value: pd.Series | None = None,
    cv: pd.DataFrame | None = None,
) -> ModelBacktest:
    """Rolling-origin CV of ``config.models``, demand characteristics (SBC class per series) and scores.

    The one backtest orchestration: ``stockwise backtest`` and the planning flow
    (:func:`pipelines.flows.plan_steps.backtest_step`) both start here. ``cv``: the
    cross-validation table when already computed on blocks of series
    (:mod:`pipelines.flows.plan_blocks`); only the cross-series parts then run here.
    """
    forecaster = Forecaster(config)
    if cv is None:
        cv = forecaster.cross_validation(demand, h=horizon, n_windows=n_windows, step=step)
    features = characterise(demand, season_length=config.resolved_season_length, unit_value=unit_value, cv=cv)
    segments = features.set_index("unique_id")["sbc_class"]
    return ModelBacktest(forecaster, cv, features, segments, evaluate(cv, demand))


def run_backtest(
    demand: pd.DataFrame,
    freq: str,
    horizon: int,
    out: str | Path,
    models: tuple[str, ...] = DEFAULT_MODELS,
    n_windows: int = 6,
    step: int = 1,
    season_length: int | None = None,
    tracking_uri: str | None = None,
    source: str = "demand",
    n_jobs: int = -1,
    error_model: ErrorModelConfig | None = None,
) -> BacktestResult:
    """Backtest ``models`` on ``demand`` and write the outputs to ``out``.

    Parameters
    ----------
    demand : pandas.DataFrame
        Long-format ``unique_id, ds, y``.
    freq : str
        Pandas frequency (``W-MON``, ``D``, ``MS``).
    horizon : int
        Backtest horizon H (periods); the error model covers every H up to it.
    out : path
        Output folder (created).
    models : tuple of str
        Candidate names (``forecasting.config.STAT_MODELS`` and ``LightGBM``).
    n_windows, step : int
        Rolling-origin cutoffs and their spacing. With >= 4 windows the last
        quarter of them is held out to measure calibration.
    error_model : forecasting.ErrorModelConfig, optional
        How the error quantiles are fitted (the run config's ``error_model``); default
        :class:`~forecasting.ErrorModelConfig`'s, the credibility the plan sizes its buffers with.
    tracking_uri : str, optional
        MLflow store; default ``pipelines.registry.tracking.resolve_tracking_uri``.

    Returns
    -------
    BacktestResult

    Raises
    ------
    DataValidationError
        When the demand has errors (rows to fix) or no usable series.
    """
    out = Path(out)
    cfg = ForecastConfig(models=tuple(models), freq=freq, season_length=season_length, n_jobs=n_jobs, validate=False)
    min_length = horizon + (n_windows - 1) * step + 1
    clean, report = validate_demand(demand, source=source, freq=freq, min_length=min_length)
    report.raise_if_errors()
    if clean.empty:
        raise DataValidationError(report)
    bt = backtest_models(clean, cfg, horizon, n_windows, step)
    forecaster, cv, chars, segments, scores = bt.forecaster, bt.cv, bt.features, bt.segments, bt.scores
    by_segment = summarise(scores, segments)
    em_cfg = error_model or ErrorModelConfig()
    fitted = ErrorModel(em_cfg).fit(cv, segments=segments, history=clean)
    calibration, pinball = _calibration(cv, clean, segments, fitted, n_holdout=n_windows // 4)
    quantiles = fitted.table(quantiles=(0.5, *SERVICE_LEVELS))
    metrics = _metrics_table(scores, pinball)
    spl = (
        pinball.assign(segment=pinball["unique_id"].map(segments))
        .drop(columns=["unique_id", "n_windows"])
        .groupby(["segment", "model"])
        .mean()
        .reset_index()
    )
    by_segment = by_segment.merge(spl, on=["segment", "model"], how="left")
    tables = {
        "metrics.csv": metrics,
        "metrics_by_segment.csv": by_segment,
        "cv.parquet": cv,
        "error_quantiles.parquet": quantiles,
        "calibration.csv": calibration,
        "fallbacks.csv": forecaster.fallbacks_,
        "characteristics.csv": chars,
        "validation.csv": report.to_frame(),
    }
    paths = {name: write_table_atomic(df, out / name) for name, df in tables.items()}
    run_id = _track(
        tracking_uri,
        cfg,
        clean,
        cv,
        metrics,
        by_segment,
        calibration,
        forecaster,
        report,
        paths,
        horizon=horizon,
        n_windows=n_windows,
        step=step,
        shrinkage=em_cfg.shrinkage,
    )
    return BacktestResult(metrics, by_segment, cv, quantiles, calibration, forecaster.fallbacks_, report, run_id, paths)


def _calibration(
    cv: pd.DataFrame, clean: pd.DataFrame, segments: pd.Series, error_model: ErrorModel, n_holdout: int
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Coverage and scaled pinball of the error model's quantiles on the last ``n_holdout`` cutoffs.

    The model scored there is refitted without those cutoffs, on history up to the last fitted
    cutoff only (no held-out leakage); with no cutoff to spare it is scored in sample and says so.
    """
    if not n_holdout:
        calibration = error_model.calibration(cv, SERVICE_LEVELS).assign(in_sample=True)
        return calibration, scaled_pinball(cv, error_model, clean, SERVICE_LEVELS)
    fit_part, holdout = split_cv(cv, n_holdout)
    history = clean[clean["ds"] <= fit_part["cutoff"].max()]
    held_out_model = ErrorModel(error_model.config).fit(fit_part, segments=segments, history=history)
    return (
        held_out_model.calibration(holdout, SERVICE_LEVELS),
        scaled_pinball(holdout, held_out_model, clean, SERVICE_LEVELS),
    )


def _track(tracking_uri, cfg, clean, cv, metrics, by_segment, calibration, forecaster, report, paths, **params) -> str:
    """One MLflow parent run: params, metrics by model and segment, artifacts, LightGBM model."""
    with start_run("backtest", tracking_uri=tracking_uri) as run:
        run.log_params(
            {
                **params,
                "freq": cfg.freq,
                "models": ",".join(cfg.models),
                "season_length": cfg.resolved_season_length,
                "fallback_model": cfg.fallback_model,
                "n_series": clean["unique_id"].nunique(),
            }
        )
        run.log_fingerprints({"demand": clean})
        for row in metrics.itertuples(index=False):
            run.log_metrics({f"{row.model}.{k}": getattr(row, k) for k in ("MASE", "RMSSE", "bias")})
        for row in by_segment.itertuples(index=False):
            run.log_metrics({f"{row.segment}.{row.model}.{k}": getattr(row, k) for k in ("mase", "rmsse")})
        for row in calibration.itertuples(index=False):
            run.log_metrics({f"{row.model}.coverage_{int(round(row.level * 100))}": row.coverage})
        run.log_metrics({"fallbacks": len(forecaster.fallbacks_), "excluded_rows": report.n_excluded_rows})
        for path in paths.values():
            run.log_artifact(path)
        if "LightGBM" in cfg.models:
            _log_lightgbm(run, cfg, clean)
        return run.run_id


def _log_lightgbm(run, cfg: ForecastConfig, clean: pd.DataFrame) -> None:
    """Refit LightGBM on the whole history; log its booster and its feature recipe."""
    only_ml = ForecastConfig(
        models=("LightGBM",),
        freq=cfg.freq,
        season_length=cfg.season_length,
        n_jobs=cfg.n_jobs,
        lightgbm=cfg.lightgbm,
        validate=False,
    )
    mlf = Forecaster(only_ml).fit(clean).mlforecast_
    run.log_model(mlf.models_["LightGBM"], name="lightgbm_forecaster", flavor="lightgbm")
    run.log_dict(
        {
            "freq": cfg.freq,
            "lags": list(mlf.ts.lags) if hasattr(mlf.ts, "lags") else None,
            "features": list(mlf.ts.features_order_),
            "lightgbm": vars(cfg.lightgbm),
        },
        "lightgbm_forecaster/feature_recipe.json",
    )
