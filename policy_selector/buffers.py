"""Safety-stock buffers for the GSM from the forecasting layer (forecasting -> optimization glue).

Every stage of a network serves the aggregated demand of the customer-facing stages below it
(:func:`stage_demand`). Backtesting a forecaster on that aggregated series and fitting an
:class:`forecasting.ErrorModel` on its errors gives, for every net replenishment time tau, the
safety stock that covers the cumulative forecast error at the target quantile: a
:class:`optimization.TabulatedSafetyStock` the GSM solver reads (:func:`forecast_error_buffers`).
This captures the correlation between the series a stage pools, instead of assuming independence.

This module lives in ``policy_selector`` because it is the one package allowed to import both
``forecasting`` and ``optimization``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting import ErrorModel, ErrorModelConfig, ForecastConfig, Forecaster
from optimization import Network, TabulatedSafetyStock, bom_multipliers

__all__ = [
    "active_periods",
    "error_model_buffers",
    "forecast_error_buffers",
    "peak_rate",
    "recent_rate",
    "stage_demand",
]


def stage_demand(network: Network, demand: pd.DataFrame) -> pd.DataFrame:
    """Demand each stage sees, long format with ``unique_id`` = stage id.

    Stage j's series is sum_k Phi_jk y_k over the demand stages k it serves
    (matched on the stages' ``unique_id``), so backtesting these series gives
    internal stages the errors of their *aggregated* demand, correlation included.

    Raises
    ------
    ValueError
        No demand stage of the network has a series in ``demand``.
    """
    wide = demand.pivot_table(index="ds", columns="unique_id", values="y", aggfunc="sum").sort_index()
    cols = [uid if uid in wide.columns else None for uid in network.unique_ids]
    if not any(c is not None for c in cols):
        raise ValueError("no stage unique_id appears in demand['unique_id']; link stages to demand series")
    external = np.column_stack([wide[c].to_numpy() if c is not None else np.zeros(len(wide)) for c in cols])
    seen = np.nan_to_num(external) @ bom_multipliers(network).T.toarray()
    out = pd.DataFrame(seen, index=wide.index, columns=list(network.stage_ids))
    out = out.loc[:, np.abs(out).sum(axis=0) > 0]
    return out.reset_index().melt(id_vars="ds", var_name="unique_id", value_name="y")[["unique_id", "ds", "y"]]


def error_model_buffers(
    network: Network,
    error_model,
    target: float,
    max_tau: int,
    model: str | None = None,
    demand_mean: np.ndarray | None = None,
) -> TabulatedSafetyStock:
    """Safety stock over tau = 0..max_tau from a fitted ``forecasting.ErrorModel``.

    ``error_model`` must be fitted on backtests of :func:`stage_demand` (ids =
    stage ids, horizon >= ``max_tau``); stage j's buffer for tau periods is
    max(0, p-quantile of its cumulative forecast error over tau). Stages
    without a fitted series (no demand) get zero.
    """
    fitted = set(np.asarray(getattr(error_model, "ids_", [])).tolist())
    taus = np.arange(max_tau + 1, dtype=float)
    table = np.zeros((network.n_stages, max_tau + 1))
    for j, sid in enumerate(network.stage_ids):
        if fitted and sid not in fitted:
            continue
        q = error_model.quantile(np.repeat(sid, max_tau), taus[1:], target, model=model)
        table[j, 1:] = np.maximum.accumulate(np.maximum(np.asarray(q, dtype=float), 0.0))
    mean = np.zeros(network.n_stages) if demand_mean is None else np.asarray(demand_mean, dtype=float)
    return TabulatedSafetyStock(taus, table, mean)


def forecast_error_buffers(
    network: Network,
    demand: pd.DataFrame,
    target: float,
    freq: str = "W-MON",
    n_windows: int = 52,
    model: str | tuple[str, ...] = ("WindowAverage", "SeasonalNaive"),
    rate_window: int = 13,
    plan_periods: int = 13,
    error_model: ErrorModelConfig | None = None,
) -> TabulatedSafetyStock:
    """Buffers from the forecasting layer for every stage of ``network``.

    Every stage's aggregated demand (:func:`stage_demand`) is backtested with
    ``model`` over ``n_windows`` rolling origins up to the longest inbound time,
    an ``ErrorModel`` is fitted on those errors and its ``target`` quantile over
    tau is the stage's buffer.

    ``model`` may name several candidates (a tuple, the default): each stage then uses the
    one with the lowest backtest mean absolute error (ties and stages without
    a backtest: the first), buffers from that model's errors, and its base-stock rate is that model's peak forecast rate over the plan's
    life (:func:`peak_rate`: the plan stays in force ``plan_periods`` periods,
    the re-plan cadence). With one ``WindowAverage`` model the rate is
    :func:`recent_rate` over ``rate_window`` periods (a 13-week moving average
    that ignores weeks before launch). ``SeasonalNaive`` is not chosen for a
    stage with less than a season plus ``n_windows`` periods since its first demand.
    Defaults (52 windows, one seasonal cycle of backtest; WindowAverage or
    SeasonalNaive per stage) were measured on the demo network's held-out year
    (``benchmarks/gsm_demo.py``). ``error_model``: how the error model is fitted (the stages are one
    pool), default :class:`~forecasting.ErrorModelConfig`'s.
    """
    models = (model,) if isinstance(model, str) else tuple(model)
    series = stage_demand(network, demand)
    max_tau = max(int(np.ceil(network.longest_inbound_time().max())), 1)
    periods = series["ds"].nunique()
    n_windows = max(2, min(n_windows, periods - max_tau - 2))
    forecaster = Forecaster(ForecastConfig(models=models, freq=freq, n_jobs=1))
    cv = forecaster.cross_validation(series, h=max_tau, n_windows=n_windows, step=1)
    em = ErrorModel(error_model).fit(cv, history=series)
    stage_ids = list(network.stage_ids)
    rate = recent_rate(series, stage_ids, rate_window)
    if models == ("WindowAverage",):
        return error_model_buffers(network, em, target, max_tau, model=models[0], demand_mean=rate)
    tables = [error_model_buffers(network, em, target, max_tau, model=m).table for m in models]
    exposure = np.clip(np.ceil(network.longest_inbound_time()).astype(int), 1, max_tau)
    rows = np.arange(network.n_stages)
    mae = cv[list(models)].sub(cv["y"], axis=0).abs().groupby(cv["unique_id"]).mean().reindex(stage_ids)
    choice = np.argmin(mae.fillna(np.inf).to_numpy(), axis=1)
    if "SeasonalNaive" in models and "WindowAverage" in models:
        # A season-old copy of a series launched less than a season ago is its pre-launch zeros.
        season = forecaster.config.resolved_season_length
        young = active_periods(series, stage_ids) < season + n_windows
        choice = np.where(young & (choice == models.index("SeasonalNaive")), models.index("WindowAverage"), choice)
    forecast = forecaster.forecast(series, h=plan_periods + max_tau - 1)
    for k, m in enumerate(models):
        if m != "WindowAverage":
            wide = forecast.pivot(index="unique_id", columns="ds", values=m).reindex(stage_ids)
            rate = np.where(
                choice == k, peak_rate(np.clip(wide.fillna(0.0).to_numpy(), 0, None), exposure, plan_periods), rate
            )
    table = np.stack(tables)[choice, rows]
    return TabulatedSafetyStock(np.arange(max_tau + 1, dtype=float), table, rate)


def peak_rate(forecast: np.ndarray, exposure: np.ndarray, plan_periods: int) -> np.ndarray:
    """Highest mean forecast per period over any exposure window starting in the plan's life.

    Row j of ``forecast`` (stages x periods, at least ``plan_periods + exposure_j - 1``
    columns) is averaged over every window of ``exposure_j`` periods that starts within the
    first ``plan_periods`` periods; the largest average is the rate whose base stock
    covers the forecast demand over the exposure throughout the plan's life (e.g. the
    seasonal peak of the next quarter).
    """
    n, h = forecast.shape
    exposure = np.clip(np.asarray(exposure, dtype=int), 1, None)
    if plan_periods < 1 or np.any(plan_periods + exposure - 1 > h):
        raise ValueError(
            f"forecast has {h} periods; need plan_periods ({plan_periods}) + exposure - 1 "
            f"(up to {int(plan_periods + exposure.max() - 1)})"
        )
    csum = np.column_stack([np.zeros(n), np.cumsum(forecast, axis=1)])
    start = np.arange(plan_periods)[None, :]
    rows = np.arange(n)[:, None]
    sums = csum[rows, start + exposure[:, None]] - csum[rows, start]
    return sums.max(axis=1) / exposure


def active_periods(series: pd.DataFrame, stage_ids: list[str]) -> np.ndarray:
    """Periods since each stage's first non-zero demand (inclusive); 0 for stages without demand."""
    data = series.sort_values(["unique_id", "ds"])
    started = data["y"].ne(0).astype(int).groupby(data["unique_id"]).cumsum() > 0
    return data[started].groupby("unique_id").size().reindex(stage_ids).fillna(0).to_numpy(dtype=int)


def recent_rate(series: pd.DataFrame, stage_ids: list[str], window: int = 13) -> np.ndarray:
    """Mean demand per period over each stage's last ``window`` periods since its first demand.

    Periods before a series' first non-zero demand (an item not yet launched)
    are not averaged in, so a stage launched 3 periods ago gets its 3-period
    mean rather than a rate diluted by ten leading zeros. Stages without demand get 0.
    """
    if window < 1:
        raise ValueError(f"window must be >= 1 period, got {window}")
    data = series.sort_values(["unique_id", "ds"])
    started = data["y"].ne(0).astype(int).groupby(data["unique_id"]).cumsum() > 0
    active = data[started].groupby("unique_id").tail(window)
    rate = active.groupby("unique_id")["y"].mean()
    return rate.reindex(stage_ids).fillna(0.0).to_numpy(dtype=float)
