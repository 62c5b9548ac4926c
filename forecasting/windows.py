"""Backtest windows as arrays: the one place a cross-validation table is reshaped.

``cumulative_windows`` turns ``unique_id, ds, cutoff, y, <models>`` into
cumulative actuals and forecasts of shape (windows, H) once; the error model
and the quantile metrics work on these arrays only.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting.metrics import cv_models

__all__ = ["Windows", "cumulative_windows", "split_cv"]


@dataclass(frozen=True)
class Windows:
    """Backtest windows as arrays: cumulative actuals/forecasts, shape (windows, H)."""

    ids: np.ndarray  # (S,) series ids, sorted
    code: np.ndarray  # (W,) series index of each window
    ordinal: np.ndarray  # (W,) window number within its series
    cutoff: np.ndarray  # (W,)
    actual: np.ndarray  # (W, H) cumulative actual demand
    forecast: dict  # model -> (W, H) cumulative forecast
    integral: np.ndarray  # (S,) True when every actual of the series is an integer
    step: np.ndarray  # (S,) periods between a series' consecutive cutoffs (1 when unknown)

    def pad(self, values: np.ndarray) -> np.ndarray:
        """(W, H) -> (S, max windows, H), NaN where a series has fewer windows."""
        out = np.full((len(self.ids), self.ordinal.max() + 1, values.shape[1]), np.nan)
        out[self.code, self.ordinal] = values
        return out


def cumulative_windows(cv: pd.DataFrame, models: list[str] | None = None) -> Windows:
    """Turn a cross-validation table into cumulative per-window arrays (one pass, no pandas after).

    Raises
    ------
    ValueError
        When columns are missing or windows have different lengths.
    """
    models = cv_models(cv, models)
    data = cv.sort_values(["unique_id", "cutoff", "ds"], kind="stable")
    sizes = data.groupby(["unique_id", "cutoff"], sort=False).size().to_numpy()
    if len(sizes) == 0:
        raise ValueError("cv table is empty; run a backtest with at least one window first")
    horizon = int(sizes[0])
    if (sizes != horizon).any():
        raise ValueError(
            f"backtest windows have different lengths {sorted(set(sizes.tolist()))}; "
            "every (unique_id, cutoff) needs the same number of forecast steps"
        )
    y = data["y"].to_numpy(dtype=float).reshape(-1, horizon)
    if np.isnan(y).any():
        raise ValueError("cv table has NaN actuals; drop those windows or fill the demand first")
    win_ids = data["unique_id"].astype(str).to_numpy()[::horizon]
    code, ids = pd.factorize(win_ids, sort=True)
    starts = np.r_[0, np.flatnonzero(code[1:] != code[:-1]) + 1]
    ordinal = np.arange(len(code)) - np.repeat(starts, np.diff(np.r_[starts, len(code)]))
    forecast = {}
    for m in models:
        f = data[m].to_numpy(dtype=float).reshape(-1, horizon)
        if not np.isfinite(f).all():
            raise ValueError(f"model {m} has non-finite backtest forecasts; refit with a fallback model")
        forecast[m] = np.cumsum(f, axis=1)
    non_integral = np.bincount(code, weights=(y != np.round(y)).any(axis=1), minlength=len(ids))
    cutoffs = data["cutoff"].to_numpy()[::horizon]
    return Windows(
        np.asarray(ids, dtype=str),
        code,
        ordinal,
        cutoffs,
        np.cumsum(y, axis=1),
        forecast,
        non_integral == 0,
        _step(data, cutoffs, code),
    )


def _step(data: pd.DataFrame, cutoffs: np.ndarray, code: np.ndarray) -> np.ndarray:
    """Cutoff spacing in periods per series, shape (S,): the series' median cutoff gap over the
    median gap between forecast dates; 1 for a series with one window or when unknown.

    Per series because the selector's backtest spaces some series' windows wider than others'
    (:attr:`policy_selector.config.SelectorConfig.spread_season_blind`).
    """
    n_series = int(code.max()) + 1
    out = np.ones(n_series, dtype=int)
    same = code[1:] == code[:-1]
    period = np.diff(data["ds"].to_numpy())
    period = period[period > period.dtype.type(0)]
    if not same.any() or len(period) == 0:
        return out
    gaps = pd.Series(np.diff(cutoffs)[same]).groupby(code[1:][same]).median()
    ratio = np.round(gaps.to_numpy() / np.median(period)).astype(int)
    out[gaps.index.to_numpy()] = np.maximum(ratio, 1)
    return out


def split_cv(cv: pd.DataFrame, n_holdout: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split a backtest table by cutoff: the last ``n_holdout`` cutoffs of each series are held out.

    Returns
    -------
    (fit_part, holdout_part) : tuple of pandas.DataFrame
    """
    rank = cv.groupby("unique_id")["cutoff"].rank(method="dense", ascending=False)
    if n_holdout < 1 or (rank > n_holdout).sum() == 0:
        raise ValueError(f"n_holdout={n_holdout} leaves no windows to fit on; use 1 <= n_holdout < number of cutoffs")
    held = rank <= n_holdout
    return cv[~held].reset_index(drop=True), cv[held].reset_index(drop=True)
