"""Features of every item at a cutoff, from data up to the cutoff only.

Four groups:

- demand characterisation: ADI, CV² of sizes, zero share, SBC class code,
  mean, CV, recent-to-overall level, periods since the last demand, trend strength
  (:func:`forecasting.characterise`);
- forecastability: scaled MAE and scaled bias of each base forecaster in the
  rolling-origin backtest before the cutoff (NaN for series too short to backtest);
- economics: unit cost, demand value per year, h, K/(h mu) (the EOQ cover),
  critical ratio b/(b+h), service target and type, lead time, its variability,
  review period, MOQ cover, lost sales, shelf life;
- history length.

References
----------
Syntetos, Boylan & Croston (2005), *JORS* 56, 495-503 (ADI, CV², SBC classes).
Hyndman & Koehler (2006), Another look at measures of forecast accuracy,
*IJF* 22, 679-688 (scaled errors).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecasting import characterise
from policy_selector.context import CutoffData

__all__ = ["build_features", "FEATURE_GROUPS", "CORE_FEATURES", "SBC_CODES"]

SBC_CODES = {"smooth": 0, "erratic": 1, "intermittent": 2, "lumpy": 3, "no_demand": 4}
CORE_FEATURES = ("n_periods", "adi", "cv2", "sbc_code", "mean_demand", "zero_share")
FEATURE_GROUPS = {
    "characterisation": (
        "adi",
        "cv2",
        "sbc_code",
        "zero_share",
        "mean_demand",
        "demand_cv",
        "recent_level",
        "since_last_demand",
        "trend_strength",
    ),
    "economics": (
        "unit_cost",
        "value_per_year",
        "holding_cost",
        "eoq_cover",
        "critical_ratio",
        "service_target",
        "fill_rate_target",
        "lead_time",
        "lead_time_std",
        "review_period",
        "moq_cover",
        "lost_sales",
        "shelf_life",
    ),
    "history": ("n_periods",),
}


def _history_features(data: CutoffData, season_length: int) -> pd.DataFrame:
    """Characterisation columns from the history matrix (observed periods only)."""
    h = data.history
    long = pd.DataFrame(
        {"unique_id": np.repeat(data.ids, h.shape[1]), "ds": np.tile(np.arange(h.shape[1]), len(h)), "y": h.ravel()}
    )
    chars = characterise(long, season_length=season_length).set_index("unique_id").reindex(data.ids)
    observed = np.isfinite(h)
    y = np.nan_to_num(h)
    n_obs = observed.sum(axis=1)
    recent = np.array([row[ok][-13:].mean() if ok.any() else np.nan for row, ok in zip(y, observed)])
    last_pos = np.where((y > 0).any(axis=1), h.shape[1] - 1 - np.argmax((y > 0)[:, ::-1], axis=1), -1)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(np.nanvar(h, axis=1))
        mean = chars["mean"].to_numpy(dtype=float)
        out = pd.DataFrame(
            {
                "n_periods": n_obs.astype(float),
                "adi": np.where(np.isfinite(chars["adi"]), chars["adi"], n_obs + 1.0),
                "cv2": chars["cv2"].to_numpy(dtype=float),
                "sbc_code": chars["sbc_class"].map(SBC_CODES).to_numpy(dtype=float),
                "zero_share": chars["zero_share"].to_numpy(dtype=float),
                "mean_demand": mean,
                "demand_cv": np.where(mean > 0, std / np.where(mean > 0, mean, 1.0), np.nan),
                "recent_level": np.where(mean > 0, recent / np.where(mean > 0, mean, 1.0), np.nan),
                "since_last_demand": np.where(last_pos >= 0, h.shape[1] - 1 - last_pos, n_obs).astype(float),
                "trend_strength": chars["trend_strength"].to_numpy(dtype=float),
            },
            index=pd.Index(data.ids, name="unique_id"),
        )
    return out


def _forecastability(data: CutoffData) -> pd.DataFrame:
    """Scaled MAE and bias of each forecaster over the backtest windows (MAE of naive-1 as scale)."""
    models = list(data.cum_forecast)
    cols = {f"smae_{m}": np.nan for m in models} | {f"sbias_{m}": np.nan for m in models}
    out = pd.DataFrame(cols, index=pd.Index(data.ids, name="unique_id"))
    if data.cv.empty:
        return out
    h = data.history
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # series with one observation: no scale
        scale = pd.Series(np.nanmean(np.abs(np.diff(h, axis=1)), axis=1), index=data.ids)
    scale = scale.where(scale > 0, pd.Series(np.nanmean(h, axis=1), index=data.ids)).where(lambda s: s > 0, 1.0)
    cv = data.cv
    for m in models:
        err = cv["y"] - cv[m]
        mae = err.abs().groupby(cv["unique_id"]).mean()
        bias = err.groupby(cv["unique_id"]).mean()
        out.loc[mae.index, f"smae_{m}"] = (mae / scale.reindex(mae.index)).to_numpy()
        out.loc[bias.index, f"sbias_{m}"] = (bias / scale.reindex(bias.index)).to_numpy()
    return out


def _economics(data: CutoffData, mean: np.ndarray) -> pd.DataFrame:
    e = data.economics
    rate = np.maximum(mean, 1e-9)
    return pd.DataFrame(
        {
            "unit_cost": e.unit_cost,
            "value_per_year": e.unit_cost * np.nan_to_num(mean) * e.periods_per_year,
            "holding_cost": e.holding_cost,
            "eoq_cover": np.sqrt(2 * e.order_cost / (e.holding_cost * rate)),
            "critical_ratio": e.shortage_cost / (e.shortage_cost + e.holding_cost),
            "service_target": e.service_target,
            "fill_rate_target": (e.service_type == "fill_rate").astype(float),
            "lead_time": e.lead_time.astype(float),
            "lead_time_std": e.lead_time_std,
            "review_period": e.review_period.astype(float),
            "moq_cover": e.moq / rate,
            "lost_sales": e.lost_sales.astype(float),
            "shelf_life": np.where(e.shelf_life > 0, e.shelf_life, np.nan).astype(float),
        },
        index=pd.Index(data.ids, name="unique_id"),
    )


def build_features(data: CutoffData, season_length: int = 1) -> pd.DataFrame:
    """One row of features per item of ``data`` (index ``unique_id``).

    Uses ``data.history``, ``data.cv`` and the item economics only, all of
    which end at ``data.cutoff``: no held-out period can leak in.

    Parameters
    ----------
    data : CutoffData
    season_length : int, default 1
        For the trend strength of the characterisation.

    Returns
    -------
    pandas.DataFrame
        Float columns of :data:`FEATURE_GROUPS` plus ``smae_<model>``/``sbias_<model>``.

    Examples
    --------
    >>> feats = build_features(prepare_cutoff(demand, items, cutoff, cfg))   # doctest: +SKIP
    >>> feats[["adi", "cv2", "lead_time"]].head()                          # doctest: +SKIP
    """
    hist = _history_features(data, season_length)
    econ = _economics(data, hist["mean_demand"].to_numpy())
    return pd.concat([hist, _forecastability(data), econ], axis=1).astype(float)
