"""Scaled pinball loss of lead-time demand quantiles at service levels.

The quantile forecast of cumulative demand over H periods after a cutoff is
the cumulative point forecast plus the error model's p-quantile,
``Q_p = F_H + q_E(H, p)``. Its pinball loss against the realised cumulative
demand ``D_H`` is scaled by H times the in-sample naive MAE of the series
(history up to its first backtest cutoff), as in the M5 uncertainty
competition's scaled pinball loss.

References
----------
Makridakis, S. et al. (2022). The M5 uncertainty competition: results,
findings and conclusions. *International Journal of Forecasting* 38, 1365-1385.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from forecasting.error_model import ErrorModel
from forecasting.windows import cumulative_windows

__all__ = ["naive_scale", "scaled_pinball"]


def naive_scale(history: pd.DataFrame, until: pd.Series | None = None, seasonality: int = 1) -> pd.Series:
    """Mean absolute ``seasonality``-lag difference of each series' history (up to ``until`` per id)."""
    data = history[["unique_id", "ds", "y"]].sort_values(["unique_id", "ds"])
    if until is not None:
        data = data[data["ds"].to_numpy() <= data["unique_id"].map(until).to_numpy()]
    lagged = data.groupby("unique_id", sort=False)["y"].shift(seasonality)
    diffs = (data["y"] - lagged).abs()
    return diffs.groupby(data["unique_id"], sort=True).mean().rename("scale")


def scaled_pinball(
    cv: pd.DataFrame,
    error_model: ErrorModel,
    history: pd.DataFrame,
    quantiles=(0.8, 0.9, 0.95, 0.99),
    H: int | None = None,
    seasonality: int = 1,
) -> pd.DataFrame:
    """Scaled pinball loss of cumulative-demand quantiles, per series and model.

    Parameters
    ----------
    cv : pandas.DataFrame
        Backtest windows to score (preferably held out from ``error_model``'s fit).
    error_model : ErrorModel
        Fitted on backtest windows of the same models.
    history : pandas.DataFrame
        Demand the backtest ran on (for the scale).
    quantiles : sequence of float
        Service levels.
    H : int, optional
        Exposure; default the backtest horizon.

    Returns
    -------
    pandas.DataFrame
        ``unique_id, model, n_windows, spl_<p> ...``; NaN where the scale is zero.
    """
    models = [m for m in error_model.models_ if m in cv.columns]
    win = cumulative_windows(cv, models)
    H = H or win.actual.shape[1]
    if not 1 <= H <= win.actual.shape[1]:
        raise ValueError(f"H must lie in [1, {win.actual.shape[1]}], got {H}")
    first_cut = cv.groupby("unique_id")["cutoff"].min()
    scale = naive_scale(history, first_cut, seasonality).reindex(win.ids).to_numpy()
    scale = np.where(scale > 0, scale, np.nan) * H
    ids = win.ids[win.code]
    demand = win.actual[:, H - 1]
    frames = []
    for m in models:
        frame = pd.DataFrame({"unique_id": ids, "model": m})
        forecast = win.forecast[m][:, H - 1]
        for p in quantiles:
            diff = demand - (forecast + error_model.quantile(ids, H, p, model=m))
            frame[f"spl_{p:g}"] = np.maximum(p * diff, (p - 1) * diff) / scale[win.code]
        frames.append(frame)
    table = pd.concat(frames, ignore_index=True)
    g = table.groupby(["unique_id", "model"], sort=True)
    out = g.mean()
    out.insert(0, "n_windows", g.size())
    return out.reset_index()
