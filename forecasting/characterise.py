"""Demand characterisation: one row of descriptive features per series.

Intermittence (ADI, CV² and the Syntetos-Boylan-Croston class), importance
(ABC by value), predictability (XYZ by backtest forecast-error CV), trend and
seasonal strength, zero share, history length and last demand date.

References
----------
Syntetos, A. A., Boylan, J. E. & Croston, J. D. (2005). On the categorization
of demand patterns. *Journal of the Operational Research Society* 56, 495-503.
Wang, X., Smith, K. A. & Hyndman, R. J. (2006). Characteristic-based
clustering for time series data. *Data Mining and Knowledge Discovery* 13, 335-364.
Hyndman, R. J. & Athanasopoulos, G. (2021). *Forecasting: Principles and
Practice*, 3rd ed., section 4.3 (strength of trend and seasonality).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["characterise", "sbc_class", "SBC_CLASSES", "ADI_CUTOFF", "CV2_CUTOFF"]

ADI_CUTOFF = 1.32
CV2_CUTOFF = 0.49
SBC_CLASSES = ("smooth", "erratic", "intermittent", "lumpy", "no_demand")


def sbc_class(adi: np.ndarray, cv2: np.ndarray) -> np.ndarray:
    """Syntetos-Boylan-Croston class from ADI and CV² (cut-offs 1.32 and 0.49).

    Series without any demand (ADI infinite) are ``"no_demand"``.

    Examples
    --------
    >>> sbc_class(np.array([1.0, 2.0, 1.0, 2.0]), np.array([0.1, 0.1, 0.9, 0.9])).tolist()
    ['smooth', 'intermittent', 'erratic', 'lumpy']
    """
    adi = np.asarray(adi, dtype=float)
    cv2 = np.nan_to_num(np.asarray(cv2, dtype=float), nan=0.0)
    index = 2 * (adi >= ADI_CUTOFF) + (cv2 >= CV2_CUTOFF)
    out = np.asarray(SBC_CLASSES[:4], dtype=object)[index]
    out[~np.isfinite(adi)] = "no_demand"
    return out


def _strengths(y: np.ndarray, m: int) -> tuple[float, float]:
    """Trend and seasonal strength of one series by classical additive decomposition."""
    n = len(y)
    if n < 4:
        return np.nan, np.nan
    # The centred moving average loses m/2 points at each end; each season
    # position then needs two detrended values or the remainder is zero by construction.
    seasonal = m > 1 and n >= 3 * m
    if seasonal:
        w = np.r_[0.5, np.ones(m - 1), 0.5] / m if m % 2 == 0 else np.ones(m) / m
    else:
        w = np.ones(3) / 3
    half = len(w) // 2
    trend = np.full(n, np.nan)
    trend[half : n - half] = np.convolve(y, w, mode="valid")
    detrended = y - trend
    season = np.zeros(n)
    if seasonal:
        pos = np.arange(n) % m
        ok = np.isfinite(detrended)
        sums = np.bincount(pos[ok], weights=detrended[ok], minlength=m)
        means = sums / np.maximum(np.bincount(pos[ok], minlength=m), 1)
        season = (means - means.mean())[pos]
    ok = np.isfinite(trend)
    rest = (y - trend - season)[ok]
    var_r = np.var(rest)
    f_t = _strength(var_r, np.var(trend[ok] + rest))
    f_s = _strength(var_r, np.var(season[ok] + rest)) if seasonal else np.nan
    return f_t, f_s


def _strength(var_remainder: float, var_total: float) -> float:
    return float(max(0.0, 1.0 - var_remainder / var_total)) if var_total > 0 else 0.0


def _abc(value: pd.Series, cutoffs: tuple[float, float]) -> pd.Series:
    """A/B/C by cumulative share of value, largest first."""
    total = value.sum()
    ordered = value.sort_values(ascending=False, kind="stable")
    share_before = (ordered.cumsum() - ordered) / total if total > 0 else ordered * 0.0
    labels = np.select([share_before < cutoffs[0], share_before < cutoffs[1]], ["A", "B"], "C")
    return pd.Series(labels, index=ordered.index).reindex(value.index)


def _xyz(cv: pd.DataFrame, model: str | None, cutoffs: tuple[float, float]) -> pd.DataFrame:
    """Forecast-error CV per series: std(y - forecast) / mean(y) over all backtest rows."""
    models = [c for c in cv.columns if c not in ("unique_id", "ds", "cutoff", "y")]
    model = model or (models[0] if models else None)
    if model not in cv.columns:
        raise ValueError(f"model {model!r} not a forecast column of the cv table; choose from {models}")
    err = (cv["y"] - cv[model]).rename("e")
    g = pd.concat([cv["unique_id"], err, cv["y"]], axis=1).groupby("unique_id", sort=True)
    std = g["e"].std(ddof=0)
    mean = g["y"].mean()
    error_cv = np.where(mean > 0, std / mean.where(mean > 0, 1.0), np.inf)
    label = np.select([error_cv < cutoffs[0], error_cv < cutoffs[1]], ["X", "Y"], "Z")
    return pd.DataFrame({"error_cv": error_cv, "xyz": label}, index=std.index)


def characterise(
    df: pd.DataFrame,
    season_length: int = 1,
    unit_value: pd.Series | None = None,
    cv: pd.DataFrame | None = None,
    xyz_model: str | None = None,
    abc_cutoffs: tuple[float, float] = (0.8, 0.95),
    xyz_cutoffs: tuple[float, float] = (0.5, 1.0),
) -> pd.DataFrame:
    """Describe every demand series.

    Parameters
    ----------
    df : pandas.DataFrame
        Long-format demand ``unique_id, ds, y`` (NaN = unknown, ignored).
    season_length : int, default 1
        Periods per season for the seasonal strength (1: no seasonality);
        seasonal strength is NaN for series shorter than three seasons.
    unit_value : pandas.Series, optional
        Value of one unit, indexed by ``unique_id``; ABC ranks by demand x value
        (by units when omitted).
    cv : pandas.DataFrame, optional
        Backtest table (``Forecaster.cross_validation``) for XYZ by forecast-error CV.
    xyz_model : str, optional
        Forecast column of ``cv`` used for XYZ; default its first model.
    abc_cutoffs, xyz_cutoffs : tuple of float
        Cumulative value shares for A/B and error-CV limits for X/Y.

    Returns
    -------
    pandas.DataFrame
        One row per series: ``unique_id, n_periods, n_demand, zero_share, mean,
        adi, cv2, sbc_class, trend_strength, seasonal_strength, first_date,
        last_demand_date, value, abc`` and, with ``cv``, ``error_cv, xyz``.

    Raises
    ------
    ValueError
        When columns are missing or ``unit_value`` lacks some series.

    Examples
    --------
    >>> demand = pd.DataFrame({"unique_id": "A", "ds": pd.date_range("2024-01", periods=4, freq="MS"),
    ...                        "y": [0.0, 3.0, 0.0, 3.0]})
    >>> row = characterise(demand).iloc[0]
    >>> float(row["adi"]), float(row["cv2"]), row["sbc_class"]
    (2.0, 0.0, 'intermittent')
    """
    missing = [c for c in ("unique_id", "ds", "y") if c not in df.columns]
    if missing:
        raise ValueError(f"demand lacks column(s) {missing}; need unique_id, ds, y")
    out, y = _occurrence_stats(df)
    bounds = np.r_[0, np.cumsum(out["n_periods"].to_numpy())]
    strengths = np.array([_strengths(y[a:b], season_length) for a, b in zip(bounds[:-1], bounds[1:])])
    out["trend_strength"], out["seasonal_strength"] = strengths[:, 0], strengths[:, 1]
    out["value"] = _value(out["total"], unit_value)
    out["abc"] = _abc(out["value"], abc_cutoffs)
    if cv is not None:
        out = out.join(_xyz(cv, xyz_model, xyz_cutoffs))
    cols = [
        "n_periods",
        "n_demand",
        "zero_share",
        "mean",
        "adi",
        "cv2",
        "sbc_class",
        "trend_strength",
        "seasonal_strength",
        "first_date",
        "last_demand_date",
        "value",
        "abc",
    ]
    cols += ["error_cv", "xyz"] if cv is not None else []
    return out[cols].rename_axis("unique_id").reset_index()


def _occurrence_stats(df: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """Per-series counts, mean, ADI, CV² and SBC class over the observed periods; and the sorted y."""
    obs = df.loc[df["y"].notna(), ["unique_id", "ds", "y"]].sort_values(["unique_id", "ds"])
    ids = obs["unique_id"].astype(str).to_numpy()
    y = obs["y"].to_numpy(dtype=float)
    pos = y > 0
    g = pd.DataFrame(
        {
            "unique_id": ids,
            "y": y,
            "pos": pos,
            "size": np.where(pos, y, np.nan),
            "ds": obs["ds"].to_numpy(),
            "demand_ds": obs["ds"].where(pos).to_numpy(),
        }
    ).groupby("unique_id", sort=True)
    out = pd.DataFrame(
        {
            "n_periods": g.size(),
            "n_demand": g["pos"].sum().astype(int),
            "mean": g["y"].mean(),
            "total": g["y"].sum(),
            "size_mean": g["size"].mean(),
            "size_std": g["size"].std(ddof=0),
            "first_date": g["ds"].min(),
            "last_demand_date": g["demand_ds"].max(),
        }
    )
    out["zero_share"] = 1.0 - out["n_demand"] / out["n_periods"]
    out["adi"] = np.where(out["n_demand"] > 0, out["n_periods"] / out["n_demand"].clip(lower=1), np.inf)
    out["cv2"] = np.where(out["n_demand"] > 0, (out["size_std"] / out["size_mean"]) ** 2, np.nan)
    out["sbc_class"] = sbc_class(out["adi"].to_numpy(), out["cv2"].to_numpy())
    return out, y


def _value(total: pd.Series, unit_value: pd.Series | None) -> pd.Series:
    """Demand value per series (units when no unit value is given), the ABC ranking key."""
    if unit_value is None:
        return total
    absent = total.index.difference(unit_value.index)
    if len(absent):
        raise ValueError(
            f"unit_value lacks {len(absent)} series, e.g. {list(absent[:10])}; give a unit value for every unique_id"
        )
    return total * unit_value.reindex(total.index).to_numpy(dtype=float)
