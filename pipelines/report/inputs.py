"""Adapters from what other steps produce to the planner report's inputs.

Each returns the long DataFrame :func:`pipelines.report.render.write_report` expects:
forecasts ``unique_id, ds, forecast, lo, hi``; simulated on-hand
``unique_id, ds, on_hand``; frontier ``service, inventory_value, cost, chosen``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

__all__ = ["forecasts_from_models", "forecasts_from_wide", "sim_paths_from_events", "frontier_points"]


def forecasts_from_models(forecasts: pd.DataFrame, recommendations: pd.DataFrame, level: int = 90) -> pd.DataFrame:
    """Pick each item's own forecaster from Nixtla output (one column per model alias).

    Parameters
    ----------
    forecasts : DataFrame
        ``unique_id, ds, <Model>[, <Model>-lo-<level>, <Model>-hi-<level>] ...``.
    recommendations : DataFrame
        Gives the ``forecaster`` of each ``unique_id``.
    level : int, default 90
        Prediction-interval level used for the band.

    Returns
    -------
    DataFrame
        ``unique_id, ds, forecast, lo, hi`` (lo/hi NaN when the model has no interval).
    """
    models = recommendations.set_index("unique_id")["forecaster"].astype("string")
    long = forecasts.melt(id_vars=["unique_id", "ds"], var_name="column", value_name="value")
    long["model"] = long["column"].str.replace(rf"-(lo|hi)-{level}$", "", regex=True)
    long["part"] = np.select(
        [long["column"].str.endswith(f"-lo-{level}"), long["column"].str.endswith(f"-hi-{level}")],
        ["lo", "hi"],
        "forecast",
    )
    mine = long[long["model"].to_numpy() == long["unique_id"].map(models).to_numpy()]
    wide = mine.pivot_table(index=["unique_id", "ds"], columns="part", values="value", aggfunc="first")
    return wide.reindex(columns=["forecast", "lo", "hi"]).reset_index().rename_axis(columns=None)


def frontier_points(
    summary: pd.DataFrame, service: str = "fill_rate", cost: str = "cost_operating", chosen_target: float | None = None
) -> pd.DataFrame:
    """Frontier points for the report from ``optimization.summarise_frontier`` output.

    Parameters
    ----------
    summary : DataFrame
        One row per target with ``target``, ``inventory_value``, ``<service>`` and ``<cost>``.
    service : str, default "fill_rate"
        Service column to plot (``fill_rate`` or ``csl``).
    cost : str, default "cost_operating"
        Cost column shown in the tooltips (``cost_operating`` excludes purchasing).
    chosen_target : float, optional
        The target this run used; its point is highlighted.

    Returns
    -------
    DataFrame
        ``service, inventory_value, cost, chosen, target``.

    Raises
    ------
    ValueError
        When a needed column is missing.
    """
    missing = sorted({"target", "inventory_value", service, cost} - set(summary.columns))
    if missing:
        raise ValueError(f"frontier summary lacks columns {missing}; pass optimization.summarise_frontier output")
    target = summary["target"].to_numpy(float)
    chosen = np.isclose(target, chosen_target) if chosen_target is not None else np.zeros(len(summary), bool)
    return pd.DataFrame(
        {
            "service": summary[service].to_numpy(float),
            "inventory_value": summary["inventory_value"].to_numpy(float),
            "cost": summary[cost].to_numpy(float),
            "chosen": chosen,
            "target": target,
        }
    )


def sim_paths_from_events(events: pd.DataFrame, start: str | pd.Timestamp, freq: str, batch: int = 0) -> pd.DataFrame:
    """Simulated on-hand paths for the report from ``optimization.simulate_events`` output.

    Parameters
    ----------
    events : DataFrame
        ``batch, unique_id, period, on_hand`` (period 0 is the first simulated period).
    start : date
        Date of period 0.
    freq : str
        Period frequency of the data, e.g. ``"W-MON"``.
    batch : int, default 0
        Which simulated path (batch) to show.

    Returns
    -------
    DataFrame
        ``unique_id, ds, on_hand``.
    """
    missing = sorted({"unique_id", "period", "on_hand"} - set(events.columns))
    if missing:
        raise ValueError(f"events lack columns {missing}; pass optimization.simulate_events output")
    ev = events[events["batch"] == batch] if "batch" in events.columns else events
    dates = pd.date_range(start, periods=int(ev["period"].max()) + 1 if len(ev) else 0, freq=freq)
    return pd.DataFrame(
        {
            "unique_id": ev["unique_id"].astype(str).to_numpy(),
            "ds": dates[ev["period"].to_numpy(int)],
            "on_hand": ev["on_hand"].to_numpy(float),
        }
    )


def forecasts_from_wide(
    mean: pd.DataFrame,
    start: str | pd.Timestamp,
    freq: str,
    lo: pd.DataFrame | None = None,
    hi: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Long forecasts for the report from wide frames (index ``unique_id``, columns steps 1..h).

    Parameters
    ----------
    mean : DataFrame
        Point forecasts, one row per item, one column per step ahead.
    start : date
        Date of step 1 (the period after the last observation).
    freq : str
        Period frequency, e.g. ``"W-MON"``.
    lo, hi : DataFrame, optional
        Lower and upper band per step (same shape as ``mean``), e.g. forecast
        plus the 5 % and 95 % quantiles of the one-step error.

    Returns
    -------
    DataFrame
        ``unique_id, ds, forecast, lo, hi``.
    """
    dates = pd.date_range(start, periods=mean.shape[1], freq=freq)
    n_items, n_steps = mean.shape
    out = pd.DataFrame(
        {
            "unique_id": np.repeat(mean.index.astype(str).to_numpy(), n_steps),
            "ds": np.tile(dates, n_items),
            "forecast": mean.to_numpy(float).ravel(),
        }
    )
    for name, band in (("lo", lo), ("hi", hi)):
        out[name] = (
            band.reindex(index=mean.index, columns=mean.columns).to_numpy(float).ravel() if band is not None else np.nan
        )
    return out
