"""Decision backtest: replay policies on held-out actual demand, against simple baselines.

A plan is judged by what its policies *achieve* on demand they did not see:
each item's policy (type and s / S / Q / R as in ``recommendations.csv``) is run
by :func:`optimization.simulate` on the actual demand of the held-out periods
(order of events and initial state as in that function: on-hand = S, or s + Q,
nothing on order), and the achieved service and stock are compared with the
formulas planners already use, each swept over the safety factor z so that it
traces a service-inventory frontier:

- ``textbook``: S = mu (L + R) + z sigma sqrt(L + R), mu and sigma the mean and
  standard deviation of the demand history (Silver, Pyke & Thomas 2017, sec. 6.9);
- ``AutoETS`` / ``CrostonSBA``: S = forecast over L + R + z RMSE of the model's
  backtested cumulative (L + R)-period errors (statsforecast, through
  :class:`forecasting.Forecaster`).

- ``AutoETS_phased``: the AutoETS baseline time-phased, S(t) = forecast over
  t .. t + L + R - 1 + z RMSE (the same RMSE), so that a gain of time-phased levels
  (:func:`replay_phased`, :mod:`policy_selector.phased`) is also measured against a
  phased formula.

Levels are rounded up to whole units (demand comes in units). With replanning
every ``k`` periods the levels of each block of k periods come from the history
up to its start, and the stock state (on hand, backlog, orders in transit)
carries over between blocks, as in a replenishment system.

Aggregates (one rule for Stockwise and the baselines, :func:`summarise`):
achieved CSL = mean over items with held-out demand of the share of review
cycles without a stockout; fill rate = units served from stock on arrival /
demand; inventory value = sum over items of average on-hand x unit cost
(averaged over origins); cost = holding + ordering + shortage + expired units
x unit cost. "Equal achieved service" reads each baseline's value off its
frontier by linear interpolation in service (NaN when the service lies
outside the frontier), and the headline ratio is Stockwise's value over the
best (lowest) baseline value there (:func:`equal_service`).

References
----------
E. A. Silver, D. F. Pyke and D. J. Thomas, *Inventory and Production Management
in Supply Chains*, 4th ed., CRC Press, 2017, ch. 6.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from forecasting import ForecastConfig, Forecaster
from optimization import InitialState, PolicyParams, mixed_policies, r_s_policy, simulate, simulate_events
from optimization.policies import POLICY_FIELDS
from policy_selector.economics import Economics

__all__ = [
    "Z_GRID",
    "BASELINES",
    "PHASED_BASELINE",
    "SEGMENT_KINDS",
    "POLICY_COLUMNS",
    "policies_from_table",
    "replay",
    "replay_table",
    "replay_phased",
    "replay_phased_table",
    "textbook_levels",
    "forecast_levels",
    "cumulative_backtest",
    "forecast_baseline_inputs",
    "baseline_levels",
    "baseline_rows",
    "phased_baseline_levels",
    "phased_baseline_rows",
    "summarise",
    "equal_service",
]

#: Safety factors of each baseline's frontier.
Z_GRID = tuple(float(z) for z in np.round(np.arange(-1.5, 4.01, 0.25), 2))
#: Baselines in the order they are reported.
BASELINES = ("textbook", "AutoETS", "CrostonSBA")
#: The time-phased AutoETS baseline: S(t) = AutoETS forecast over t .. t + H - 1 + z RMSE.
PHASED_BASELINE = "AutoETS_phased"
#: Segment columns of the segment table, besides the whole portfolio ("all"); absent ones are skipped.
SEGMENT_KINDS = ("sbc_class", "abc", "phased", "process")
#: Columns of a policy table (names as in recommendations.csv).
POLICY_COLUMNS = ("unique_id", "policy", "review_period", "reorder_point", "order_up_to", "order_quantity")
_KPIS = ("csl", "fill_rate", "demand", "served", "avg_on_hand", "inventory_value", "cost")


# --------------------------------------------------------------------------- policies


def policies_from_table(table: pd.DataFrame, econ: Economics) -> PolicyParams:
    """Policies of a recommendations-shaped table, aligned to ``econ.ids``.

    MOQ, order multiple and lost sales come from the economics (the item master),
    as in the plan's own simulation.

    Raises
    ------
    ValueError
        Missing columns, or items of ``econ`` without a row in ``table``.
    """
    missing = [c for c in POLICY_COLUMNS if c not in table.columns]
    if missing:
        raise ValueError(f"policy table lacks column(s) {missing}; needs {list(POLICY_COLUMNS)}")
    t = table.assign(unique_id=table["unique_id"].astype(str)).set_index("unique_id")
    absent = [str(i) for i in econ.ids if i not in t.index]
    if absent:
        raise ValueError(
            f"{len(absent)} items have no policy row, e.g. {absent[:10]}; "
            "recommend a policy for them or drop them from the items"
        )
    t = t.loc[econ.ids]
    return mixed_policies(
        t["policy"].to_numpy(),
        review_period=t["review_period"].fillna(1).to_numpy(int),
        reorder_level=t["reorder_point"].fillna(0).to_numpy(float),
        order_up_to=t["order_up_to"].fillna(0).to_numpy(float),
        order_quantity=t["order_quantity"].fillna(0).to_numpy(float),
        moq=econ.moq,
        order_multiple=econ.order_multiple,
        lost_sales=econ.lost_sales,
    )


def _up_to(levels: np.ndarray, econ: Economics) -> PolicyParams:
    """(R, S) policies of the baselines, with the items' review period, MOQ and multiple."""
    return r_s_policy(
        econ.review_period, levels, moq=econ.moq, order_multiple=econ.order_multiple, lost_sales=econ.lost_sales
    )


# --------------------------------------------------------------------------- replay


def _blocks(T: int, replan: int | None) -> list[tuple[int, int]]:
    k = T if replan is None else int(replan)
    if k < 1:
        raise ValueError(f"replan must be a positive number of periods, got {replan}")
    return [(a, min(a + k, T)) for a in range(0, T, k)]


def _carry(actual: np.ndarray, policy: PolicyParams, econ: Economics, initial) -> InitialState:
    """Stock state at the end of a block: on hand, backlog, and orders still in transit by arrival."""
    k = actual.shape[-1]
    ev = simulate_events(actual, policy, econ.lead_time, initial=initial, shelf_life=econ.shelf_life)
    batch = np.broadcast_shapes(actual.shape[:-1], policy.shape)
    shape = batch + (k,)
    ordered = ev["ordered"].to_numpy().reshape(shape)
    on_hand = ev["on_hand"].to_numpy().reshape(shape)[..., -1]
    backlog = ev["backlog"].to_numpy().reshape(shape)[..., -1]
    width = int(econ.lead_time.max(initial=0))
    pipeline = np.zeros(batch + (width,))
    for t in range(k):
        arrival = t + econ.lead_time - k  # position in the next block's pipeline
        idx = np.flatnonzero((arrival >= 0) & (arrival < width))  # each item once per t: no collisions
        pipeline[..., idx, arrival[idx]] += ordered[..., idx, t]
    if initial is not None and initial.pipeline is not None and width > k:
        # orders of earlier blocks still in transit after this one (blocks shorter than L)
        pipeline[..., : width - k] += np.broadcast_to(initial.pipeline, batch + (width,))[..., k:]
    return InitialState(on_hand=on_hand, backlog=backlog, pipeline=pipeline if width else None)


def replay(actual, plans: Sequence[PolicyParams], econ: Economics, replan: int | None = None) -> dict[str, np.ndarray]:
    """Achieved KPIs of policies run on actual demand; block j uses ``plans[j]``.

    Parameters
    ----------
    actual : array_like, shape (n_items, T)
        Held-out actual demand (>= 0, no NaN), items in the order of ``econ.ids``.
    plans : sequence of PolicyParams, batch shape (..., n_items)
        One per block of ``replan`` periods (one in all without replanning); a
        leading axis may hold candidate levels (e.g. a baseline's z grid).
    econ : Economics
        Lead times, shelf life and costs of the items.
    replan : int, optional
        Periods per block; default T (levels fixed over the whole holdout).

    Returns
    -------
    dict of str to ndarray
        ``csl, fill_rate, demand, served, avg_on_hand, inventory_value, cost``, each of
        the plans' batch shape; ``served`` = units served from stock on arrival.

    Raises
    ------
    ValueError
        When the number of plans is not the number of blocks.

    Examples
    --------
    >>> econ = Economics.from_items(items, ids, "MS")                       # doctest: +SKIP
    >>> replay(actual, [policies_from_table(rec, econ)], econ)["csl"]       # doctest: +SKIP
    """
    actual = np.asarray(actual, dtype=float)
    blocks = _blocks(actual.shape[-1], replan)
    if len(plans) != len(blocks):
        raise ValueError(f"{len(plans)} plans for {len(blocks)} blocks of {replan} periods; give one per block")
    acc = {k: 0.0 for k in ("cycles", "csl", "demand", "served", "on_hand", "cost")}
    initial = None
    for j, ((a, b), policy) in enumerate(zip(blocks, plans)):
        d = actual[..., a:b]
        res = simulate(d, policy, econ.lead_time, costs=econ.cost_params(), initial=initial, shelf_life=econ.shelf_life)
        cycles = np.ceil((b - a) / policy.review_period)
        acc["cycles"] = acc["cycles"] + cycles
        acc["csl"] = acc["csl"] + res.csl * cycles
        acc["demand"] = acc["demand"] + res.demand
        acc["served"] = acc["served"] + np.nan_to_num(res.fill_rate) * res.demand
        acc["on_hand"] = acc["on_hand"] + res.avg_on_hand * (b - a)
        acc["cost"] = acc["cost"] + (
            res.cost_holding + res.cost_ordering + res.cost_shortage + econ.unit_cost * res.expired
        )
        if j + 1 < len(blocks):
            initial = _carry(d, policy, econ, initial)
    with np.errstate(invalid="ignore", divide="ignore"):
        fill = np.where(acc["demand"] > 0, acc["served"] / acc["demand"], np.nan)
    avg = acc["on_hand"] / actual.shape[-1]
    return {
        "csl": acc["csl"] / acc["cycles"],
        "fill_rate": fill,
        "demand": acc["demand"],
        "served": acc["served"],
        "avg_on_hand": avg,
        "inventory_value": avg * econ.unit_cost,
        "cost": acc["cost"],
    }


def replay_table(actual, tables: Sequence[pd.DataFrame], econ: Economics, replan: int | None = None) -> pd.DataFrame:
    """:func:`replay` of recommendations-shaped tables (one per block), one row per item.

    Returns
    -------
    pandas.DataFrame
        ``unique_id, csl, fill_rate, demand, served, avg_on_hand, inventory_value, cost``.
    """
    out = replay(actual, [policies_from_table(t, econ) for t in tables], econ, replan)
    return pd.DataFrame({"unique_id": econ.ids} | {k: out[k] for k in _KPIS})


def replay_phased_table(actual, tables: Sequence[pd.DataFrame], econ: Economics) -> pd.DataFrame:
    """:func:`replay_phased` of recommendations-shaped tables, one per period (the levels of a
    ``plan.parquet`` period in ``reorder_point`` / ``order_up_to``), one row per item.

    Returns
    -------
    pandas.DataFrame
        As :func:`replay_table`.
    """
    out = replay_phased(actual, [policies_from_table(t, econ) for t in tables], econ)
    return pd.DataFrame({"unique_id": econ.ids} | {k: out[k] for k in _KPIS})


def _take(policy: PolicyParams, idx: np.ndarray) -> PolicyParams:
    """The items at positions ``idx`` (last axis) of a batch of policies."""
    return PolicyParams(**{f: np.asarray(getattr(policy, f))[..., idx] for f in POLICY_FIELDS})


def replay_phased(actual, plans: Sequence[PolicyParams], econ: Economics) -> dict[str, np.ndarray]:
    """:func:`replay` of time-phased levels: ``plans[t]`` holds the levels that apply in period t.

    A level only matters when an order is decided, so each item whose levels change is
    replayed in blocks of its review period R (R = 1 for (s, Q) and base stock), the levels
    of period a at the review of period a, with the stock state carried between blocks;
    review cycles and KPIs are then those of :func:`replay`. Items whose levels never change
    are replayed in one block: exactly the static replay (the carried on-hand counts as
    fresh stock, so for shelf-life items blocks would understate expiry).

    Parameters
    ----------
    actual : array_like, shape (n_items, T)
    plans : sequence of T PolicyParams, batch shape (..., n_items)
        Same policy types and review periods in every period; only levels change.
    econ : Economics

    Returns
    -------
    dict of str to ndarray
        As :func:`replay`.

    Raises
    ------
    ValueError
        When there is not one plan per period.
    """
    actual = np.asarray(actual, dtype=float)
    T = actual.shape[-1]
    if len(plans) != T:
        raise ValueError(f"{len(plans)} plans for {T} periods; give the levels of every period")
    n = len(econ)
    R = np.broadcast_to(plans[0].review_period, plans[0].shape).reshape(-1, n)[0]
    varies = np.zeros(n, dtype=bool)
    for p in plans[1:]:
        for f in ("reorder_level", "order_up_to"):
            diff = np.broadcast_to(getattr(p, f) != getattr(plans[0], f), p.shape)
            varies |= diff.reshape(-1, n).any(axis=0)
    groups = [(np.flatnonzero(~varies), None)] + [(np.flatnonzero(varies & (R == r)), int(r)) for r in np.unique(R)]
    out: dict[str, np.ndarray] = {}
    for idx, r in groups:
        if not idx.size:
            continue
        starts = range(0, T, r) if r else [0]
        sub = replay(actual[..., idx, :], [_take(plans[a], idx) for a in starts], econ.subset(idx), replan=r)
        for k, v in sub.items():
            if k not in out:
                out[k] = np.full(v.shape[:-1] + (len(econ),), np.nan)
            out[k][..., idx] = v
    return out


# --------------------------------------------------------------------------- baselines


def _wide(history: pd.DataFrame, ids: np.ndarray) -> np.ndarray:
    """Demand history as (n_items, periods), NaN where a series has no value."""
    return history.pivot(index="unique_id", columns="ds", values="y").reindex(ids).to_numpy(dtype=float)


def _mean_std(history) -> tuple[np.ndarray, np.ndarray]:
    """Mean and standard deviation (ddof 1; 0 with fewer than two values) per row, NaN ignored."""
    h = np.asarray(history, dtype=float)
    n_obs = np.isfinite(h).sum(axis=1)
    mu = np.where(n_obs > 0, np.nansum(h, axis=1) / np.maximum(n_obs, 1), 0.0)
    var = np.where(n_obs > 1, np.nansum((h - mu[:, None]) ** 2, axis=1) / np.maximum(n_obs - 1, 1), 0.0)
    return mu, np.sqrt(var)


def textbook_levels(history, exposure, z_grid: Sequence[float] = Z_GRID) -> np.ndarray:
    """S = mu H + z sigma sqrt(H) from the history's mean and std (ddof 1), rounded up, >= 0.

    Parameters
    ----------
    history : array_like, shape (n_items, periods)
        Demand history; NaN values are ignored.
    exposure : array_like, shape (n_items,)
        H = L + R in periods.
    z_grid : sequence of float

    Returns
    -------
    ndarray, shape (len(z_grid), n_items)

    Examples
    --------
    >>> textbook_levels([[1.0, 3.0]], [2], [0.0]).tolist()
    [[4.0]]
    """
    H = np.asarray(exposure, dtype=float)
    mu, sd = _mean_std(history)
    return forecast_levels(mu * H, sd * np.sqrt(H), z_grid)


def forecast_levels(point, rmse, z_grid: Sequence[float] = Z_GRID) -> np.ndarray:
    """S = point + z rmse, rounded up to whole units, >= 0; shape (len(z_grid), n_items).

    Examples
    --------
    >>> forecast_levels([2.2], [1.0], [-1.0, 1.0]).tolist()
    [[2.0], [4.0]]
    """
    z = np.asarray(z_grid, dtype=float)[:, None]
    level = np.asarray(point, dtype=float)[None, :] + z * np.asarray(rmse, dtype=float)[None, :]
    return np.maximum(np.ceil(level - 1e-9), 0.0)


def cumulative_backtest(cv: pd.DataFrame, model: str, exposure: pd.Series) -> pd.Series:
    """RMSE per series of the cumulative H-period forecast errors of ``model`` over the cutoffs.

    Parameters
    ----------
    cv : pandas.DataFrame
        ``Forecaster.cross_validation`` output (``unique_id, ds, cutoff, y, <model>``) with
        a horizon of at least each series' H.
    model : str
        Forecast column.
    exposure : pandas.Series
        H = L + R per unique_id.

    Returns
    -------
    pandas.Series
        RMSE indexed by unique_id (series of ``cv`` only).
    """
    if model not in cv.columns:
        raise ValueError(f"backtest has no column {model!r}; columns are {list(cv.columns)}")
    t = cv[["unique_id", "ds", "cutoff", "y", model]].sort_values(["unique_id", "cutoff", "ds"])
    step = t.groupby(["unique_id", "cutoff"]).cumcount() + 1
    t = t[step.to_numpy() <= exposure.reindex(t["unique_id"]).to_numpy()]
    cum = t.groupby(["unique_id", "cutoff"])[["y", model]].sum()
    err2 = (cum["y"] - cum[model]) ** 2
    return np.sqrt(err2.groupby(level="unique_id").mean())


def forecast_baseline_inputs(
    history: pd.DataFrame,
    econ: Economics,
    freq: str,
    models: Sequence[str] = BASELINES[1:],
    n_windows: int = 6,
    season_length: int | None = None,
    cv: pd.DataFrame | None = None,
    future: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """Forecast over H = L + R and the RMSE of its backtested cumulative errors, per model and series.

    Series too short to backtest (see ``Forecaster.cross_validation``) take the
    history's standard deviation x sqrt(H) instead; ``rmse_source`` says which.
    ``cv``: a backtest of the same history that already holds the models' columns
    (e.g. the plan's own) with a horizon of at least max H, reused instead of refitting;
    ``future``: likewise a forecast from the end of the history (``unique_id, ds, <models>``,
    at least max H steps).

    Returns
    -------
    pandas.DataFrame
        ``unique_id, model, point, rmse, rmse_source`` for every (model, econ.ids) pair.
    """
    H = pd.Series(econ.lead_time + econ.review_period, index=econ.ids)
    h = int(max(H.max(), 1))
    fc_cfg = ForecastConfig(models=tuple(models), freq=freq, season_length=season_length)
    data = history[history["unique_id"].isin(econ.ids)]
    reuse = (
        cv is not None
        and all(m in cv.columns for m in models)
        and len(cv)
        and cv.groupby(["unique_id", "cutoff"]).size().max() >= h
    )
    if not reuse:
        cv = Forecaster(fc_cfg).cross_validation(data, h=h, n_windows=n_windows)
    if future is None or not all(m in future.columns for m in models) or future.groupby("unique_id").size().min() < h:
        future = Forecaster(fc_cfg).forecast(data, h=h)
    future = future.sort_values(["unique_id", "ds"])
    future = future[
        (future.groupby("unique_id").cumcount() + 1).to_numpy() <= H.reindex(future["unique_id"]).to_numpy()
    ]
    fallback = _mean_std(_wide(data, econ.ids))[1] * np.sqrt(H.to_numpy())
    frames = []
    for m in models:
        point = future.groupby("unique_id")[m].sum().reindex(econ.ids)
        rmse = cumulative_backtest(cv, m, H).reindex(econ.ids) if len(cv) else pd.Series(np.nan, index=econ.ids)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": econ.ids,
                    "model": m,
                    "point": point.fillna(0.0).to_numpy(),
                    "rmse": np.where(rmse.isna(), fallback, rmse.to_numpy()),
                    "rmse_source": np.where(rmse.isna(), "history std (too short to backtest)", "backtest"),
                }
            )
        )
    return pd.concat(frames, ignore_index=True)


def baseline_levels(
    history: pd.DataFrame,
    econ: Economics,
    freq: str,
    z_grid: Sequence[float] = Z_GRID,
    n_windows: int = 6,
    season_length: int | None = None,
    cv: pd.DataFrame | None = None,
    future: pd.DataFrame | None = None,
) -> tuple[dict[str, np.ndarray], pd.DataFrame]:
    """Order-up-to levels of every baseline at every z, from the history only (``cv``, ``future``:
    see :func:`forecast_baseline_inputs`).

    Returns
    -------
    levels : dict of str to ndarray, shape (len(z_grid), n_items)
        Keyed by :data:`BASELINES`.
    inputs : pandas.DataFrame
        The forecast baselines' inputs (:func:`forecast_baseline_inputs`), to report fallbacks.
    """
    H = econ.lead_time + econ.review_period
    inputs = forecast_baseline_inputs(history, econ, freq, BASELINES[1:], n_windows, season_length, cv, future)
    levels = {"textbook": textbook_levels(_wide(history, econ.ids), H, z_grid)}
    for m, part in inputs.groupby("model", sort=False):
        part = part.set_index("unique_id").loc[econ.ids]
        levels[m] = forecast_levels(part["point"].to_numpy(), part["rmse"].to_numpy(), z_grid)
    return levels, inputs


def baseline_rows(
    actual,
    levels: Sequence[dict[str, np.ndarray]],
    econ: Economics,
    replan: int | None = None,
    z_grid: Sequence[float] = Z_GRID,
) -> pd.DataFrame:
    """Replay every baseline at every z; ``levels[j]`` holds block j's levels (:func:`baseline_levels`).

    Returns
    -------
    pandas.DataFrame
        ``method, z, unique_id`` and the KPIs of :func:`replay`, one row per (method, z, item).
    """
    frames = []
    for name in levels[0]:
        out = replay(actual, [_up_to(block[name], econ) for block in levels], econ, replan)
        nz, n = out["csl"].shape
        frame = {"method": name, "z": np.repeat(np.asarray(z_grid, dtype=float), n), "unique_id": np.tile(econ.ids, nz)}
        frames.append(pd.DataFrame(frame | {k: out[k].ravel() for k in _KPIS}))
    return pd.concat(frames, ignore_index=True)


def phased_baseline_levels(exposure_forecast, rmse, z_grid: Sequence[float] = Z_GRID) -> np.ndarray:
    """Time-phased forecast baseline: S(t) = forecast over t .. t + H - 1 + z rmse, rounded up, >= 0.

    Parameters
    ----------
    exposure_forecast : array_like, shape (n_items, T)
        F_t(H) per period (:func:`policy_selector.phased.exposure_forecasts` of the model's path).
    rmse : array_like, shape (n_items,)
        RMSE of the model's backtested cumulative H-period errors (as the static baseline).
    z_grid : sequence of float

    Returns
    -------
    ndarray, shape (len(z_grid), T, n_items)

    Examples
    --------
    >>> phased_baseline_levels([[2.2, 4.1]], [1.0], [0.0, 1.0])[:, :, 0].tolist()
    [[3.0, 5.0], [4.0, 6.0]]
    """
    F = np.asarray(exposure_forecast, dtype=float).T  # (T, n)
    z = np.asarray(z_grid, dtype=float)[:, None, None]
    level = F[None, :, :] + z * np.asarray(rmse, dtype=float)[None, None, :]
    return np.maximum(np.ceil(level - 1e-9), 0.0)


def phased_baseline_rows(
    actual, levels: np.ndarray, econ: Economics, name: str = PHASED_BASELINE, z_grid: Sequence[float] = Z_GRID
) -> pd.DataFrame:
    """Replay a time-phased baseline (levels of shape (len(z_grid), T, n_items)) with :func:`replay_phased`.

    Returns
    -------
    pandas.DataFrame
        As :func:`baseline_rows`, ``method`` = ``name``.
    """
    plans = [_up_to(levels[:, t, :], econ) for t in range(levels.shape[1])]
    out = replay_phased(actual, plans, econ)
    nz, n = out["csl"].shape
    frame = {"method": name, "z": np.repeat(np.asarray(z_grid, dtype=float), n), "unique_id": np.tile(econ.ids, nz)}
    return pd.DataFrame(frame | {k: out[k].ravel() for k in _KPIS})


# --------------------------------------------------------------------------- aggregates


def _aggregate(g: pd.DataFrame, n_origins: int) -> pd.Series:
    demanded = g["demand"] > 0
    return pd.Series(
        {
            "n_items": g["unique_id"].nunique(),
            "csl": g.loc[demanded, "csl"].mean(),
            "fill_rate": g["served"].sum() / g["demand"].sum() if g["demand"].sum() > 0 else np.nan,
            "inventory_value": g["inventory_value"].sum() / n_origins,
            "cost": g["cost"].sum() / n_origins,
        }
    )


def summarise(rows: pd.DataFrame, segments: pd.DataFrame | None = None) -> pd.DataFrame:
    """Portfolio and segment KPIs per method and z (aggregation rules of the module docstring).

    Parameters
    ----------
    rows : pandas.DataFrame
        ``origin, method, z, unique_id`` and the KPIs of :func:`replay` (z NaN for a plan).
    segments : pandas.DataFrame, optional
        ``unique_id`` [``origin``] and any of :data:`SEGMENT_KINDS`.

    Returns
    -------
    pandas.DataFrame
        ``method, z, segment_kind, segment, n_items, csl, fill_rate, inventory_value, cost``;
        ``segment_kind`` "all" is the whole portfolio.
    """
    rows = rows.copy()
    rows["all"] = "all"
    kinds = ["all"]
    if segments is not None:
        keys = ["origin", "unique_id"] if "origin" in segments.columns else ["unique_id"]
        kinds += [k for k in SEGMENT_KINDS if k in segments.columns]
        rows = rows.merge(segments[keys + kinds[1:]], on=keys, how="left")
    n_origins = max(rows["origin"].nunique(), 1) if "origin" in rows.columns else 1
    parts = []
    for kind in kinds:
        seg = rows[kind].fillna("unknown").astype(str)
        g = rows.assign(segment=seg).groupby(["method", "z", "segment"], dropna=False, sort=True)
        agg = g.apply(_aggregate, n_origins=n_origins, include_groups=False).reset_index()
        parts.append(agg.assign(segment_kind=kind))
    out = pd.concat(parts, ignore_index=True)
    return out[["method", "z", "segment_kind", "segment", "n_items", "csl", "fill_rate", "inventory_value", "cost"]]


def _value_at(frontier: pd.DataFrame, measure: str, service: float) -> float:
    """A frontier's inventory value at ``service`` by linear interpolation; NaN outside it."""
    f = frontier.sort_values("z")
    x = np.maximum.accumulate(f[measure].to_numpy(dtype=float))  # guard against flat noise
    y = f["inventory_value"].to_numpy(dtype=float)
    ok = np.isfinite(x)
    x, y = x[ok], y[ok]
    if not x.size or not np.isfinite(service) or service < x[0] - 1e-12 or service > x[-1] + 1e-12:
        return np.nan
    # cheapest point reaching the service (a service within rounding above the top reads the top)
    first = min(int(np.searchsorted(x, service, side="left")), x.size - 1)
    if x[first] == service or first == 0:
        return float(y[first])
    return float(np.interp(service, x[first - 1 : first + 1], y[first - 1 : first + 1]))


def equal_service(
    summary: pd.DataFrame, method: str = "stockwise", measures: Sequence[str] = ("csl", "fill_rate")
) -> pd.DataFrame:
    """Inventory value of ``method`` over each baseline's value at the same achieved service.

    Parameters
    ----------
    summary : pandas.DataFrame
        Output of :func:`summarise` holding ``method`` (z NaN) and baseline frontiers
        (every method with a z; other plans, z NaN, are not baselines).

    Returns
    -------
    pandas.DataFrame
        One row per (segment_kind, segment, measure): ``service, inventory_value`` of
        ``method``, ``value_<baseline>`` and ``ratio_<baseline>`` for each baseline,
        ``best_baseline``, ``best_value`` and ``ratio`` (NaN when the service is outside
        every frontier), and ``ratio_static``: the same against the best of the static
        :data:`BASELINES` only.
    """
    plan = summary[summary["method"] == method]
    base = summary[(summary["method"] != method) & summary["z"].notna()]
    rows = []
    for (kind, seg), p in plan.groupby(["segment_kind", "segment"], sort=False):
        for measure in measures:
            row = {
                "segment_kind": kind,
                "segment": seg,
                "measure": measure,
                "n_items": p["n_items"].iloc[0],
                "service": float(p[measure].iloc[0]),
                "inventory_value": float(p["inventory_value"].iloc[0]),
            }
            values = {}
            for name, f in base[(base["segment_kind"] == kind) & (base["segment"] == seg)].groupby(
                "method", sort=False
            ):
                values[name] = _value_at(f, measure, row["service"])
                row[f"value_{name}"] = values[name]
                row[f"ratio_{name}"] = row["inventory_value"] / values[name] if values[name] > 0 else np.nan
            finite = {k: v for k, v in values.items() if np.isfinite(v)}
            best = min(finite, key=finite.get) if finite else None
            row["best_baseline"] = best
            row["best_value"] = finite[best] if best else np.nan
            row["ratio"] = row["inventory_value"] / row["best_value"] if best and row["best_value"] > 0 else np.nan
            static = [v for k, v in finite.items() if k in BASELINES]
            row["ratio_static"] = row["inventory_value"] / min(static) if static and min(static) > 0 else np.nan
            rows.append(row)
    return pd.DataFrame(rows)
