"""Segment and portfolio targets met out of time, and the front door :func:`recommend_with_target`.

The allocation (:mod:`policy_selector.portfolio`) meets its target in the sizing's model, which
is optimistic out of time where it lowers levels. :func:`backtest_target` runs the same
recommendation and allocation at an earlier origin, replays it on the demand after it, and
measures per segment how far the target must be raised for the *replayed* service to meet it
(and, for fill-rate targets, a demand scale per calibration group that corrects the curves).
:func:`recommend_with_target` recommends, backtests, allocates and re-simulates.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimization import ServiceType
from optimization.allocation import Allocation
from policy_selector.config import SelectorConfig
from policy_selector.context import prepare_cutoff, wide_panel
from policy_selector.decision_eval import replay_table
from policy_selector.economics import periods_per_year
from policy_selector.outcomes import expected_outcomes
from policy_selector.portfolio import (
    MAX_TARGET,
    ServiceMode,
    allocate_levels,
    exchange_curve,
    policy_params,
    portfolio_policy,
    relevel,
)
from policy_selector.recommend import recommend_policies
from policy_selector.service_curves import ItemCurves, calibration_groups, group_scale, item_curves

__all__ = ["MIN_BACKTEST_ITEMS", "SCALE_GRID", "TargetBacktest", "backtest_target", "recommend_with_target"]

logger = logging.getLogger(__name__)

#: Items with demand in the backtest's held-out periods a segment needs for its own shortfall (else the pooled one).
MIN_BACKTEST_ITEMS = 30


@dataclass(frozen=True)
class TargetBacktest:
    """The allocation run at an earlier origin and replayed on the periods after it.

    Attributes
    ----------
    origin : pandas.Timestamp or None
        Last period of the history the earlier allocation saw (None: not run, see ``reason``).
    periods : int
        Held-out periods replayed after ``origin``.
    table : pandas.DataFrame
        ``segment, items, model, achieved, shortfall, raise_by``: per segment (and ``all``,
        every allocated item) the items with demand in the held-out periods, the allocation's
        service in its own model at the target, the replayed service, their difference, and
        the raise (see :func:`backtest_target`; the pooled one for segments under
        :data:`MIN_BACKTEST_ITEMS` items; never below 0).
    reason : str or None
        Why no raise was measured.
    calibration : pandas.DataFrame or None
        ``group, items, model, achieved, factor``: per calibration group (:func:`calibration_groups`)
        the items with demand, the allocation's service at the target in the uncorrected model and
        replayed, and the scale its demand samples are multiplied by (:func:`group_scale`); None
        when not measured.
    """

    origin: pd.Timestamp | None
    periods: int
    table: pd.DataFrame
    reason: str | None = None
    calibration: pd.DataFrame | None = None

    @property
    def raise_by(self) -> dict[str, float]:
        """Points to raise each segment's target by."""
        return dict(zip(self.table["segment"].astype(str), self.table["raise_by"].astype(float)))

    @property
    def factors(self) -> dict[str, float] | None:
        """Demand scale per calibration group (``"all"``: the pooled one), or None."""
        if self.calibration is None or self.calibration.empty:
            return None
        return dict(zip(self.calibration["group"].astype(str), self.calibration["factor"].astype(float)))


def _no_backtest(periods: int, reason: str) -> TargetBacktest:
    cols = ["segment", "items", "model", "achieved", "shortfall", "raise_by"]
    return TargetBacktest(origin=None, periods=periods, table=pd.DataFrame(columns=cols), reason=reason)


#: Targets the backtest allocates to: the target and this many steps up to :data:`MAX_TARGET`.
_TARGET_STEPS = 8


def _replayed(kpis: pd.DataFrame, measure: ServiceType) -> tuple[int, float]:
    """Items with demand and the replayed service as ``stockwise evaluate`` measures it."""
    sold = kpis["demand"].to_numpy() > 0
    if not sold.any():
        return 0, np.nan
    if measure is ServiceType.FILL_RATE:
        return int(sold.sum()), float(kpis["served"].sum() / kpis["demand"].sum())
    return int(sold.sum()), float(kpis.loc[sold, "csl"].mean())


def _first_reaching(grid: np.ndarray, achieved: np.ndarray, target: float) -> float:
    """Raise: the smallest grid target (linear between points) whose replayed service reaches ``target``."""
    if not np.isfinite(achieved[0]) or achieved[0] >= target:
        return 0.0
    hit = np.flatnonzero(achieved >= target)
    if not hit.size:
        return float(grid[-1] - grid[0])
    j = hit[0]
    a0, a1 = achieved[j - 1], achieved[j]
    step = (target - a0) / (a1 - a0) if np.isfinite(a0) and a1 > a0 else 1.0
    return float(grid[j - 1] + (grid[j] - grid[j - 1]) * step - grid[0])


#: Demand scales a calibration group's correction is read from (model service at fixed levels falls with
#: each); none below 1, as a raise never lowers a target (:func:`_scale_reaching`).
SCALE_GRID = np.array([1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0])


def _group_service(curves: ItemCurves, rows: np.ndarray) -> float:
    """Weighted service of ``rows`` at their current levels (a point of every curve) in the curves' model."""
    rows = rows[np.isfinite(curves.level[rows]).any(axis=1) & (curves.weight[rows] > 0)]
    if not rows.size:
        return np.nan
    col = np.argmax(curves.level[rows] == curves.current[rows, None], axis=1)
    s, w = curves.service[rows, col], curves.weight[rows]
    return float((s * w).sum() / w.sum())


def _scale_reaching(model: np.ndarray, achieved: float) -> float:
    """The demand scale at which the model's service (falling along :data:`SCALE_GRID`) equals ``achieved``.

    At least 1, as a raise never lowers a target: a group the replay served better than its model
    keeps its curves (on the demo a group of 42 intermittent items read 0.72 and, scaled down,
    lost 15 points of fill rate in the held-out quarter).
    """
    ok = np.isfinite(model)
    if not ok.any() or not np.isfinite(achieved):
        return np.nan
    x, y = SCALE_GRID[ok], np.minimum.accumulate(model[ok])
    return float(np.interp(-achieved, -y, x))  # clamped to the grid's ends: 1 and its top


def _calibration(data, out: pd.DataFrame, config, kpis: pd.DataFrame, groups: np.ndarray, measure) -> pd.DataFrame:
    """Per group (and ``"all"``) of the allocated rows of ``out``: items with demand, model and replayed
    service, and the demand scale at which the model serves what the replay served.

    The model's service at the allocated levels is recomputed with every item's demand samples
    scaled by each :data:`SCALE_GRID` value; the factor is read off that falling curve at the
    replayed service (linear between grid points, clamped to the grid). Groups with fewer than
    :data:`MIN_BACKTEST_ITEMS` items with demand take the pooled factor.
    """
    moved = out["service_mode"].ne(ServiceMode.ITEM).to_numpy()
    names = [*sorted(set(groups[moved])), "all"]
    members = {g: np.flatnonzero(moved & ((groups == g) | (g == "all"))) for g in names}
    model = np.full((len(names), len(SCALE_GRID)), np.nan)
    for j, m in enumerate(SCALE_GRID):
        curves = item_curves(data, out, config, measure, np.full(len(out), m))
        model[:, j] = [_group_service(curves, members[g]) for g in names]
    rows = []
    for i, g in enumerate(names):
        n, achieved = _replayed(kpis.iloc[members[g]], measure)
        rows.append({"group": g, "items": n, "model": model[i, SCALE_GRID == 1.0][0], "achieved": achieved})
        rows[-1]["raw"] = _scale_reaching(model[i], achieved)
    table = pd.DataFrame(rows)
    pooled = table["raw"].iloc[-1]
    pooled = float(pooled) if np.isfinite(pooled) else 1.0
    own = table["raw"].notna() & (table["items"] >= MIN_BACKTEST_ITEMS)
    table["factor"] = np.where(own, table["raw"].fillna(1.0), pooled)
    return table[["group", "items", "model", "achieved", "factor"]]


def _backtest_table(grid, model: dict, achieved: dict, items: dict, target: float) -> pd.DataFrame:
    """Per segment (``"all"`` pooled): model service and replayed service at ``target``, and the raise.

    ``achieved[g]`` is the replayed service of segment g when allocated to each ``grid`` target;
    the raise is the smallest grid target whose replay reaches ``target``, minus ``target``
    (the pooled one for segments with fewer than :data:`MIN_BACKTEST_ITEMS` items with demand).
    """
    grid = np.asarray(grid, dtype=float)
    rows = []
    for g in model:
        a = np.asarray(achieved[g], dtype=float)
        rows.append({"segment": g, "items": items[g], "model": model[g], "achieved": a[0], "raise": a})
    table = pd.DataFrame(rows)
    pooled = _first_reaching(grid, np.asarray(achieved["all"], dtype=float), target) if "all" in achieved else 0.0
    table["raise_by"] = [
        _first_reaching(grid, r["raise"], target) if r["items"] >= MIN_BACKTEST_ITEMS else pooled
        for _, r in table.iterrows()
    ]
    table["shortfall"] = table["model"] - table["achieved"]
    return table[["segment", "items", "model", "achieved", "shortfall", "raise_by"]]


def backtest_target(
    selector,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    target: float,
    measure: ServiceType | str = ServiceType.CSL,
    segment_by: str | None = None,
    periods: int | None = None,
    calibrate: bool = True,
) -> TargetBacktest:
    """How far to raise a target so that the *replayed* service meets it, from an earlier origin.

    The allocation meets its target in the sizing's model, and the model is least reliable
    where the allocation lowers levels (carparts: 0.95 in the model, 0.924 replayed). Run the
    same recommendation at the date ``periods`` before the last one, allocate it to the
    target and to :data:`_TARGET_STEPS` targets above it (up to :data:`MAX_TARGET`), replay
    each allocation on the actual demand of the ``periods`` after that date
    (:func:`policy_selector.decision_eval.replay_table`; CSL over items with demand as
    ``stockwise evaluate`` measures it, fill rate = served / demand) and take per segment the
    smallest target whose replay reached the target (linear between grid points): that
    target minus the target is the raise (0 when the replay already met it). Measured on a
    grid, not as one shortfall added on, because the model's optimism shrinks as levels rise.

    For a fill-rate target, with ``calibrate`` (the default), the curves are first corrected per calibration group
    (:func:`calibration_groups`): the allocation at the target is replayed, and each group's
    demand samples are scaled by the factor at which the model serves, at the same levels,
    what the replay served (:func:`_calibration`); the grid above is run on the corrected
    curves, so the raise is what remains after the correction. The correction moves stock to
    the groups whose model is optimistic; the raise alone lifted every group by the
    portfolio's shortfall.

    Parameters
    ----------
    periods : int, optional
        Held-out periods; default one year, at most a quarter of the history's periods.
    calibrate : bool, default True
        For a fill-rate target, measure the per-group demand scales (``TargetBacktest.calibration``).
        Not for CSL: on carparts its optimism is about even across groups (demand scales 1.2-1.46)
        and the raise alone does better (0.81x the best baseline at equal CSL; 0.84x with the scales).

    Returns
    -------
    TargetBacktest
        With ``reason`` set (and no raise) when the history is too short for an earlier
        origin with its own forecast backtest, or no item had demand after it.
    """
    measure = ServiceType(measure)
    dates = np.sort(pd.to_datetime(demand["ds"]).unique())
    periods = periods or int(min(round(periods_per_year(config.freq)), len(dates) // 4))
    if periods < 1 or len(dates) <= periods:
        return _no_backtest(periods, f"{len(dates)} periods of history leave none before an earlier origin")
    origin = pd.Timestamp(dates[-periods - 1])
    data = prepare_cutoff(demand, items, origin, config)
    if data.cv.empty:
        return _no_backtest(periods, f"no series has history for a forecast backtest before {origin.date()}")
    rec = recommend_policies(selector, demand, items, config, rng, cutoff=origin, data=data)
    wide = wide_panel(demand).reindex(index=data.ids)
    actual = wide.loc[:, wide.columns > origin].iloc[:, :periods].fillna(0.0).to_numpy(float)  # after its end: 0
    curves = item_curves(data, rec, config, measure)
    groups = rec[segment_by].astype(str).to_numpy() if segment_by else np.full(len(rec), "all", dtype=object)
    calibration = None
    if calibrate and measure is ServiceType.FILL_RATE:  # the uncorrected allocation first: each group's demand scale
        levels, _ = allocate_levels(curves, target, None if segment_by is None else groups)
        out = relevel(rec, data, curves, levels, target, measure, segment_by)
        cal_groups = calibration_groups(rec)
        kpis = replay_table(actual, [out], data.economics)
        calibration = _calibration(data, out, config, kpis, cal_groups, measure)
        scale = group_scale(cal_groups, dict(zip(calibration["group"], calibration["factor"])))
        curves = item_curves(data, rec, config, measure, scale)
    grid = target + (max(target, MAX_TARGET) - target) * np.arange(_TARGET_STEPS + 1) / _TARGET_STEPS
    model, achieved, count = {}, {}, {}
    for t in grid:
        levels, allocations = allocate_levels(curves, t, None if segment_by is None else groups)
        out = relevel(rec, data, curves, levels, t, measure, segment_by)
        kpis = replay_table(actual, [out], data.economics)
        moved = np.isfinite(levels)
        for g in dict.fromkeys([*allocations, "all"]):
            n, a = _replayed(kpis[moved & ((groups == g) | (g == "all"))], measure)
            achieved.setdefault(g, []).append(a)
            if t == grid[0]:
                count[g] = n
                model[g] = allocations[g].service if g in allocations else np.nan
    if count.get("all", 0) == 0:
        return _no_backtest(periods, f"no stocked item had demand in the {periods} periods after {origin.date()}")
    table = _backtest_table(grid, model, achieved, count, target)
    return TargetBacktest(origin=origin, periods=periods, table=table, calibration=calibration)


def _backtest_frame(check: TargetBacktest) -> pd.DataFrame:
    """The backtest's table with its origin, held-out periods and reason on every row (one row when not run)."""
    table = check.table
    if table.empty:
        table = pd.DataFrame([{"segment": "all", "items": 0, "raise_by": 0.0}], columns=check.table.columns)
    origin = str(check.origin.date()) if check.origin is not None else None
    return table.assign(origin=origin, periods=check.periods, reason=check.reason)


def recommend_with_target(
    selector,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    target: float,
    measure: ServiceType | str = ServiceType.CSL,
    segment_by: str | None = None,
    backtest: bool = True,
) -> tuple[pd.DataFrame, dict[str, Allocation]]:
    """:func:`recommend_policies`, then re-levelled to a segment / portfolio target and re-simulated.

    With ``backtest`` (the default) the target is first raised per segment by the
    allocation's held-out shortfall at an earlier origin (:func:`backtest_target`; one more
    forecast backtest), so that the *replayed* service, not only the modelled one, meets it.

    Returns
    -------
    (pandas.DataFrame, dict)
        Recommendations as :func:`recommend_policies` returns them plus ``service_mode``;
        ``expected_*`` columns are those of the re-levelled policies; ``service_target`` is
        ``target``. ``attrs["exchange_curve"]`` holds :func:`exchange_curve` and
        ``attrs["target_backtest"]`` the :class:`TargetBacktest` table, as plain lists
        (what the plan's report draws).
    """
    cutoff = pd.Timestamp(pd.to_datetime(demand["ds"]).max())
    data = prepare_cutoff(demand, items, cutoff, config)
    rec = recommend_policies(selector, demand, items, config, rng, cutoff=cutoff, data=data)
    check = backtest_target(selector, demand, items, config, rng, target, measure, segment_by) if backtest else None
    raise_by = check.raise_by if check is not None else None
    factors = check.factors if check is not None else None
    if check is not None:
        logger.info(
            "%s target %.3f, backtest at %s (%d periods, %s):\n%s\ncurve calibration:\n%s",
            measure,
            target,
            check.origin,
            check.periods,
            check.reason or "measured",
            check.table.round(4).to_string(index=False),
            "none" if check.calibration is None else check.calibration.round(4).to_string(index=False),
        )
    out, allocations = portfolio_policy(data, rec, config, target, measure, segment_by, raise_by, factors)
    outcomes = expected_outcomes(data, policy_params(out, data), out["candidate"].to_numpy(), config, rng)
    for col in outcomes.columns:
        out[col] = outcomes[col].to_numpy()
    # for the report, which sees only the frame (plain lists: attrs are serialised with parquet)
    out.attrs["exchange_curve"] = exchange_curve(allocations).to_dict("list")
    if check is not None:
        out.attrs["target_backtest"] = _backtest_frame(check).to_dict("list")
    return out, allocations
