"""Backtest accuracy: per-series metrics, segment summaries, ranking and model choice.

Per window (series x cutoff) the losses come from :mod:`utilsforecast.losses`
(MAE, RMSE, MASE, RMSSE, bias), scaled by the in-sample naive error of the
history up to that cutoff; per series they are averaged over windows.

References
----------
Hyndman, R. J. & Koehler, A. B. (2006). Another look at measures of forecast
accuracy. *International Journal of Forecasting* 22, 679-688 (MASE).
Makridakis, S., Spiliotis, E. & Assimakopoulos, V. (2022). M5 accuracy
competition. *International Journal of Forecasting* 38, 1346-1364 (RMSSE).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from utilsforecast import losses

__all__ = ["METRICS", "model_columns", "evaluate", "summarise", "rank_models", "select_models"]

#: Metric columns of :func:`evaluate` (lower is better; for ``scaled_bias`` lower in absolute value).
METRICS = ("mae", "rmse", "mase", "rmsse", "scaled_bias")
_KEYS = ("unique_id", "ds", "cutoff", "y")


def model_columns(cv: pd.DataFrame) -> list[str]:
    """Forecast columns of a cross-validation table (everything but the keys and ``y``)."""
    return [c for c in cv.columns if c not in _KEYS and "-lo-" not in c and "-hi-" not in c]


def cv_models(cv: pd.DataFrame, models=None) -> list[str]:
    """The model columns to score: ``models`` (all of ``cv``'s when None), each checked to exist.

    Raises
    ------
    ValueError
        When ``cv`` is not a cross-validation table or names no such model.
    """
    missing = [c for c in _KEYS if c not in cv.columns]
    if missing:
        raise ValueError(f"cv table lacks column(s) {missing}; pass Forecaster.cross_validation output")
    models = list(models) if models is not None else model_columns(cv)
    absent = [m for m in models if m not in cv.columns]
    if absent or not models:
        raise ValueError(f"model column(s) {absent or models} not in cv; available: {model_columns(cv)}")
    return models


def _long(wide: pd.DataFrame, models: list[str], name: str) -> pd.Series:
    return wide.melt(id_vars=["unique_id", "cutoff"], value_vars=models, var_name="model", value_name=name).set_index(
        ["unique_id", "cutoff", "model"]
    )[name]


def evaluate(
    cv: pd.DataFrame, history: pd.DataFrame, seasonality: int = 1, models: list[str] | None = None
) -> pd.DataFrame:
    """Accuracy of every model on every series, averaged over backtest windows.

    Parameters
    ----------
    cv : pandas.DataFrame
        ``unique_id, ds, cutoff, y, <models>`` from ``Forecaster.cross_validation``.
    history : pandas.DataFrame
        Demand ``unique_id, ds, y`` the backtest ran on; the scale of each
        window uses only the rows up to its cutoff.
    seasonality : int, default 1
        Lag of the naive forecast used as scale (1: M5-style, suits intermittent demand).
    models : list of str, optional
        Forecast columns to score; default all.

    Returns
    -------
    pandas.DataFrame
        ``unique_id, model, n_windows, mae, rmse, mase, rmsse, scaled_bias``.
        ``scaled_bias`` is mean(forecast - actual) / scale (positive: over-forecast).
        Scaled metrics are NaN where the history up to a cutoff is constant (zero scale).

    Raises
    ------
    ValueError
        When ``cv`` lacks its key columns or a named model.

    Examples
    --------
    >>> scores = evaluate(cv, demand)               # doctest: +SKIP
    >>> summarise(scores).sort_values("mase")       # doctest: +SKIP
    """
    models = cv_models(cv, models)
    train = history[["unique_id", "ds", "y"]]
    scored = cv[list(_KEYS) + models]
    # MASE of a forecast that misses by exactly 1 every period is 1/scale: the scale per window.
    unit = scored[list(_KEYS)].assign(_unit=scored["y"] + 1.0)
    inv_scale = losses.mase(unit, ["_unit"], seasonality, train)
    inv_scale = inv_scale.set_index(["unique_id", "cutoff"])["_unit"]
    parts = {
        "mae": losses.mae(scored, models),
        "rmse": losses.rmse(scored, models),
        "mase": losses.mase(scored, models, seasonality, train),
        "rmsse": losses.rmsse(scored, models, seasonality, train),
        "bias": losses.bias(scored, models),
    }
    table = pd.concat({k: _long(v, models, k) for k, v in parts.items()}, axis=1)
    inv = inv_scale.reindex(table.index.droplevel("model")).to_numpy()
    with np.errstate(invalid="ignore"):  # constant histories: 0 * inf -> NaN, reported as unscaled
        table["scaled_bias"] = table["bias"].to_numpy() * inv
    table = table.replace([np.inf, -np.inf], np.nan)
    g = table.groupby(level=["unique_id", "model"], sort=True)
    out = g[list(METRICS)].mean()
    out.insert(0, "n_windows", g.size())
    return out.reset_index()


def summarise(scores: pd.DataFrame, segments: pd.Series | None = None) -> pd.DataFrame:
    """Mean of each metric over series, by model (and segment).

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`evaluate`.
    segments : pandas.Series, optional
        Segment label per ``unique_id`` (e.g. ``characterise(...)["sbc_class"]``
        indexed by id); adds a ``segment`` level.

    Returns
    -------
    pandas.DataFrame
        ``[segment,] model, n_series, n_scaled, <METRICS>``; ``n_scaled`` counts
        series with a finite MASE (the others have constant history).
    """
    data = scores.copy()
    by = ["model"]
    if segments is not None:
        data["segment"] = data["unique_id"].map(segments)
        if data["segment"].isna().any():
            lost = data.loc[data["segment"].isna(), "unique_id"].unique()[:10].tolist()
            raise ValueError(f"segments lack series {lost}; give a segment for every unique_id")
        by = ["segment", "model"]
    g = data.groupby(by, sort=True)
    out = g[list(METRICS)].mean()
    out.insert(0, "n_scaled", g["mase"].count())
    out.insert(0, "n_series", g["unique_id"].nunique())
    return out.reset_index()


def rank_models(summary: pd.DataFrame, metric: str = "mase") -> pd.DataFrame:
    """Rank models (1 = best) by ``metric`` within each segment of a :func:`summarise` table."""
    if metric not in METRICS:
        raise ValueError(f"unknown metric {metric!r}; choose from {list(METRICS)}")
    out = summary.copy()
    key = out[metric].abs() if metric == "scaled_bias" else out[metric]
    groups = out["segment"] if "segment" in out.columns else pd.Series(0, index=out.index)
    out["rank"] = key.groupby(groups).rank(method="min").astype("Int64")
    sort = ["segment", "rank"] if "segment" in out.columns else ["rank"]
    return out.sort_values(sort, kind="stable").reset_index(drop=True)


def select_models(
    scores: pd.DataFrame,
    segments: pd.Series | None = None,
    metric: str = "mase",
    min_windows: int = 4,
    margin: float = 0.1,
) -> pd.DataFrame:
    """Choose one model per series, guarding against over-fitting the choice.

    Every series starts with its segment's best model (lowest mean ``metric``
    over the segment). It switches to its own best model only when it has at
    least ``min_windows`` backtest windows *and* its own best beats the
    segment's best on this series by a relative ``margin``.

    Parameters
    ----------
    scores : pandas.DataFrame
        Output of :func:`evaluate`.
    segments : pandas.Series, optional
        Segment label per ``unique_id``; one segment for all when omitted.
    metric : str, default "mase"
    min_windows : int, default 4
    margin : float, default 0.1
        Required relative improvement (0.1 = 10 % lower metric).

    Returns
    -------
    pandas.DataFrame
        ``unique_id, segment, segment_best, series_best, model, reason``.
    """
    if metric not in METRICS or metric == "scaled_bias":
        raise ValueError(f"metric must be one of mae, rmse, mase, rmsse; got {metric!r}")
    if not 0.0 <= margin < 1.0:
        raise ValueError(f"margin must lie in [0, 1), got {margin}")
    data = scores[["unique_id", "model", "n_windows", metric]].copy()
    data["segment"] = data["unique_id"].map(segments) if segments is not None else "all"
    seg_mean = data.groupby(["segment", "model"])[metric].mean().dropna()
    seg_best = seg_mean.groupby(level="segment").idxmin().map(lambda key: key[1])
    wide = data.pivot(index="unique_id", columns="model", values=metric)
    per = data.drop_duplicates("unique_id").set_index("unique_id")[["segment", "n_windows"]]
    per = per.reindex(wide.index)
    per["segment_best"] = per["segment"].map(seg_best)
    # a segment where no model has a finite metric (e.g. only all-zero histories) takes the
    # best model over all series, or the first model when no series has a finite metric
    overall = data.groupby("model")[metric].mean().dropna()
    fallback = overall.idxmin() if len(overall) else wide.columns[0]
    no_segment_best = per["segment_best"].isna().to_numpy()
    per["segment_best"] = per["segment_best"].fillna(fallback)
    filled = wide.fillna(np.inf)
    per["series_best"] = filled.idxmin(axis=1)
    own = filled.min(axis=1).to_numpy()
    cols = wide.columns.get_indexer(per["segment_best"])
    base = filled.to_numpy()[np.arange(len(wide)), cols]
    enough = per["n_windows"].to_numpy() >= min_windows
    wins = own <= (1.0 - margin) * base
    switch = enough & wins & np.isfinite(own)
    per["model"] = np.where(switch, per["series_best"], per["segment_best"])
    per["reason"] = np.select(
        [switch, no_segment_best, ~enough, ~np.isfinite(own)],
        [
            "series best beats segment best by margin",
            f"metric undefined on the whole segment (constant histories); {fallback} used",
            f"fewer than {min_windows} windows",
            "metric undefined (constant history)",
        ],
        f"series best within {margin:.0%} of segment best",
    )
    return per[["segment", "segment_best", "series_best", "model", "reason"]].reset_index()
