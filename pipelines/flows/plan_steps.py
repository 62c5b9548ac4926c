"""Steps of the planning flow: plain functions over DataFrames, no MLflow, no files.

:mod:`pipelines.flows.plan` wires them into ``stockwise demo`` / ``recommend``.
"""

from __future__ import annotations

import dataclasses
import zlib
from dataclasses import dataclass

import numpy as np
import pandas as pd

from forecasting import ErrorModel, ErrorModelConfig, ForecastConfig, Forecaster, select_models
from forecasting.panel import Issue, ValidationReport
from optimization import (
    GSMResult,
    efficient_frontier,
    r_s_policy,
    simulate_events,
    solve_gsm,
    summarise_frontier,
)
from pipelines.data.config import RunConfig, ServiceSettings
from pipelines.data.network_io import network_from_frames
from pipelines.flows.backtest import backtest_models
from pipelines.report.inputs import forecasts_from_wide, frontier_points, sim_paths_from_events
from pipelines.report.schema import conform_recommendations
from policy_selector import CandidateSpace, CutoffData, SelectorConfig, SizedCandidates, recommend_policies
from policy_selector.buffers import forecast_error_buffers
from policy_selector.decision_eval import policies_from_table
from policy_selector.economics import Economics, periods_per_year
from policy_selector.phased import forecast_paths, phased_items, phased_plan, policy_exposure, seasonal_forecasters
from policy_selector.service_target import recommend_with_target
from policy_selector.sizing_choice import SizingChoiceSelector, with_sizing_choice

__all__ = [
    "Backtest",
    "exposure_step",
    "excluded_items",
    "backtest_horizon",
    "backtest_cv",
    "backtest_step",
    "recommend_step",
    "error_step",
    "future_step",
    "chosen_forecast",
    "select_step",
    "selector_step_config",
    "meio_step",
    "add_meio",
    "assemble",
    "phased_step",
    "PhasedFrame",
    "phased_frame",
    "phased_rows",
    "report_inputs",
    "replay_recommended",
    "FRONTIER_TARGETS",
]

FRONTIER_TARGETS = (0.8, 0.85, 0.9, 0.93, 0.95, 0.97, 0.98, 0.99, 0.995)


@dataclass(frozen=True)
class Backtest:
    """Output of :func:`backtest_step`."""

    cv: pd.DataFrame
    scores: pd.DataFrame
    choice: pd.DataFrame
    features: pd.DataFrame
    horizon: int
    excluded: pd.Index


def meio_step(
    stages: pd.DataFrame,
    edges: pd.DataFrame,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    freq: str,
    error_model: ErrorModelConfig | None = None,
) -> GSMResult:
    """Guaranteed-service placement over the network, buffers from forecast error.

    One service target for the network: the median of the item master's targets
    (the GSM sizes every stage against the same quantile). ``error_model``: the run's
    (``RunConfig.error_model``), default :class:`~forecasting.ErrorModelConfig`'s.
    """
    network = network_from_frames(stages, edges)
    target = float(items["service_target"].median())
    return solve_gsm(network, forecast_error_buffers(network, demand, target, freq=freq, error_model=error_model))


def add_meio(rec: pd.DataFrame, result: GSMResult) -> pd.DataFrame:
    """Service and net replenishment times of the customer-facing stages onto their items."""
    stages = result.to_frame().set_index("stage_id")
    out = rec.copy()
    out["meio_service_time"] = stages["service_time"].reindex(out["unique_id"]).to_numpy()
    out["meio_net_replenishment_time"] = stages["net_replenishment_time"].reindex(out["unique_id"]).to_numpy()
    return out


def _exposure(items: pd.DataFrame) -> np.ndarray:
    """H = L + R per item, in periods."""
    return (items["lead_time"] + items["review_period"]).to_numpy(dtype=float)


def exposure_step(
    demand: pd.DataFrame, items: pd.DataFrame, cfg: RunConfig, source: str = "items"
) -> tuple[pd.DataFrame, pd.DataFrame, Issue | None]:
    """Drop the items whose exposure L + R is longer than the backtest can cover.

    The backtest horizon is the longest exposure, and every series needs
    horizon + n_windows periods of history; one item with a lead time of 1000
    periods would otherwise exclude every series as too short. Returns the kept
    demand and items and the finding naming the dropped items (None when none).
    """
    n_periods = int(demand.groupby("unique_id").size().max()) if len(demand) else 0
    cap = n_periods - (cfg.forecast.n_windows - 1) * cfg.forecast.step - 1
    exposure = np.ceil(_exposure(items))
    too_long = exposure > max(cap, 0)
    if not too_long.any():
        return demand, items, None
    ids = items.loc[too_long, "unique_id"].astype(str).tolist()
    shown = ", ".join(
        f"{u} (lead_time {lt:g} + review_period {r:g})"
        for u, lt, r in items.loc[too_long, ["unique_id", "lead_time", "review_period"]]
        .head(10)
        .itertuples(index=False)
    )
    issue = Issue(
        "warning",
        "exposure_too_long",
        source,
        f"{len(ids)} item(s) need a forecast over more than the {max(cap, 0)} periods the history "
        f"supports ({n_periods} periods, {cfg.forecast.n_windows} backtest windows): {shown}; "
        "excluded. Check the lead time units (periods of the demand file) or give more history.",
        column="lead_time",
        series=tuple(ids),
        n_excluded=len(ids),
    )
    keep = items[~too_long].reset_index(drop=True)
    return demand[demand["unique_id"].isin(keep["unique_id"])].reset_index(drop=True), keep, issue


def excluded_items(report: ValidationReport, kept) -> pd.Series:
    """Series named by an error or warning and absent from ``kept``, counted by their first check."""
    kept, first = set(map(str, kept)), {}
    for issue in report.issues:
        if issue.severity in ("error", "warning"):
            for uid in issue.series:
                if uid not in kept:
                    first.setdefault(uid, issue.check)
    return pd.Series(first, dtype=object).value_counts()


def backtest_horizon(items: pd.DataFrame, cfg: RunConfig) -> int:
    """Backtest horizon: the configured one, else the longest exposure H = L + R rounded up."""
    return cfg.forecast.horizon or int(np.ceil(_exposure(items).max()))


def backtest_cv(demand: pd.DataFrame, cfg: RunConfig, freq: str, horizon: int, n_jobs: int = -1) -> pd.DataFrame:
    """Rolling-origin cross-validation of the configured models (the per-series part of the backtest)."""
    fc_cfg = ForecastConfig(
        models=tuple(cfg.forecast.models), freq=freq, season_length=cfg.forecast.season_length, n_jobs=n_jobs
    )
    return Forecaster(fc_cfg).cross_validation(
        demand, h=horizon, n_windows=cfg.forecast.n_windows, step=cfg.forecast.step
    )


def backtest_step(
    demand: pd.DataFrame, items: pd.DataFrame, cfg: RunConfig, freq: str, cv: pd.DataFrame | None = None
) -> Backtest:
    """Rolling-origin backtest of the configured models; per-series model choice.

    The horizon covers the longest exposure H = L + R (rounded up), so the error
    model can answer for every item's own H. ``cv``: the cross-validation table
    when already computed (on blocks of series, :mod:`pipelines.flows.plan_blocks`).
    """
    horizon = backtest_horizon(items, cfg)
    fc_cfg = ForecastConfig(models=tuple(cfg.forecast.models), freq=freq, season_length=cfg.forecast.season_length)
    bt = backtest_models(
        demand,
        fc_cfg,
        horizon,
        cfg.forecast.n_windows,
        cfg.forecast.step,
        unit_value=items.set_index("unique_id")["unit_cost"],
        cv=cv,
    )
    choice = select_models(bt.scores, segments=bt.segments.reindex(bt.scores["unique_id"].unique()))
    excluded = pd.Index(sorted(set(demand["unique_id"]) - set(bt.cv["unique_id"])))
    return Backtest(cv=bt.cv, scores=bt.scores, choice=choice, features=bt.features, horizon=horizon, excluded=excluded)


def error_step(bt: Backtest, demand: pd.DataFrame, config: ErrorModelConfig | None = None) -> ErrorModel:
    """Cumulative forecast-error distributions, shrunk toward the SBC-class pool.

    ``config``: the run's (``RunConfig.error_model``), default :class:`~forecasting.ErrorModelConfig`'s:
    the credibility the policy step sizes the buffers with, so the published quantiles are the same model's.
    """
    segments = bt.features.set_index("unique_id")["sbc_class"]
    ids = bt.cv["unique_id"].unique()
    return ErrorModel(config).fit(bt.cv, segments=segments.reindex(ids), history=demand)


def future_step(demand: pd.DataFrame, bt: Backtest, cfg: RunConfig, freq: str) -> pd.DataFrame:
    """Forecast of every backtested series with its chosen model: columns 1..horizon."""
    return chosen_forecast(demand, bt.choice, bt.horizon, cfg, freq)


def chosen_forecast(
    demand: pd.DataFrame, choice: pd.DataFrame, horizon: int, cfg: RunConfig, freq: str, n_jobs: int = -1
) -> pd.DataFrame:
    """:func:`future_step` on the series of ``choice`` (``unique_id, model``); a block of series passes its own rows."""
    models = tuple(sorted(set(choice["model"])))
    fc = Forecaster(ForecastConfig(models=models, freq=freq, season_length=cfg.forecast.season_length, n_jobs=n_jobs))
    pred = fc.forecast(demand[demand["unique_id"].isin(choice["unique_id"])], h=horizon)
    chosen = choice.set_index("unique_id")["model"]
    pred["step"] = pred.groupby("unique_id").cumcount() + 1
    pred["value"] = pred.to_numpy()[np.arange(len(pred)), pred.columns.get_indexer(chosen.reindex(pred["unique_id"]))]
    return pred.pivot(index="unique_id", columns="step", values="value").clip(lower=0.0)


#: Series the default path's sizing choice is measured on: above it, the first ``SIZING_SAMPLE`` ids in
#: CRC-32 order (a stable sample, the same in every run and engine), so its cost is bounded at scale.
SIZING_SAMPLE = 4000


def sizing_step(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    freq: str,
    selector,
    service: ServiceSettings | None = None,
    n_jobs: int = 1,
    refit_every: int | str = 1,
    shrinkage: float | str = ErrorModelConfig.shrinkage,
):
    """The default path's buffer chosen per segment, once for the whole run (issue 12, item 2).

    :func:`policy_selector.sizing_choice.with_sizing_choice` on all series, or on a stable sample of
    :data:`SIZING_SAMPLE` of them; ``service.sizing_choice`` is the rule (``off``: no choice). With a
    segment or portfolio target the options are judged on its measure and level (a fill-rate
    target: on the fill rate the replay gives them), not on the items' own targets.
    Any selector other than the packaged default path is returned unchanged.

    Returns
    -------
    (selector, SizingChoice or None)
        The selector to recommend with (a :class:`~policy_selector.sizing_choice.SizingChoiceSelector`
        when a choice was made) and the choice with its evidence.
    """
    rule = "yardstick" if service is None else service.sizing_choice
    if rule == "off":
        return selector, None
    ids = np.sort(demand["unique_id"].unique())
    if len(ids) > SIZING_SAMPLE:
        crc = np.array([zlib.crc32(str(i).encode()) for i in ids], dtype=np.int64)
        ids = ids[np.sort(np.argsort(crc, kind="stable")[:SIZING_SAMPLE])]
        demand, items = demand[demand["unique_id"].isin(ids)], items[items["unique_id"].isin(ids)]
    judged = {} if service is None or service.mode == "item" else {"measure": service.measure, "target": service.target}
    selector, _, choice = with_sizing_choice(
        selector, demand, items, selector_step_config(selector, freq, n_jobs, refit_every, shrinkage), rule, **judged
    )
    return selector, choice


def selector_step_config(
    selector, freq: str, n_jobs: int, refit_every: int | str, shrinkage: float | str = ErrorModelConfig.shrinkage
) -> SelectorConfig:
    """The selector's candidate space (the one it was trained with, plus a sizing choice's options), with the
    run's ``refit_every`` (``selector_refit_every``) and credibility ``shrinkage`` (``error_model.shrinkage``)."""
    names = getattr(selector, "candidates_", None)
    config = SelectorConfig(
        space=CandidateSpace(), freq=freq, n_jobs=n_jobs, refit_every=refit_every, shrinkage=shrinkage
    )
    if isinstance(selector, SizingChoiceSelector):
        return selector.config_for(
            dataclasses.replace(config, space=CandidateSpace.from_names(list(selector.base.candidates_)))
        )
    return config if names is None else dataclasses.replace(config, space=CandidateSpace.from_names(list(names)))


def select_step(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    freq: str,
    selector,
    rng: np.random.Generator,
    n_jobs: int = 1,
    service: ServiceSettings | None = None,
    refit_every: int | str = 1,
    shrinkage: float | str = ErrorModelConfig.shrinkage,
    choose_sizing: bool = True,
    data: CutoffData | None = None,
    sized: SizedCandidates | None = None,
) -> pd.DataFrame:
    """Policy per item from ``selector`` (the champion, or the registered default path) or, when None,
    the packaged default policy (:class:`policy_selector.FixedSelector`).

    The candidate space is the one the selector was trained with, so it can never
    recommend a policy outside it. With a segment or portfolio ``service`` target the
    levels are then allocated by :func:`policy_selector.service_target.recommend_with_target`.
    ``refit_every`` is :attr:`policy_selector.SelectorConfig.refit_every` (the run config's
    ``selector_refit_every``), ``shrinkage`` its :attr:`~policy_selector.SelectorConfig.shrinkage`
    (``error_model.shrinkage``). The default path's sizing is chosen here by :func:`sizing_step`
    (its evidence in ``attrs["sizing_choice"]``) unless ``choose_sizing`` is False: a block of
    series gets the selector the driver's :func:`sizing_step` already wrapped.

    ``data`` / ``sized`` (item targets only): the cutoff already prepared on ``demand`` and the
    candidates already sized on it, in a space holding this selector's
    (:func:`~policy_selector.recommend.recommend_policies`); several decision paths judged at one
    origin share them (``stockwise evaluate``'s replay). A segment or portfolio target re-levels
    on its own cutoff and refuses them.
    """
    choice = None
    if choose_sizing:
        selector, choice = sizing_step(demand, items, freq, selector, service, n_jobs, refit_every, shrinkage)
    config = selector_step_config(selector, freq, n_jobs, refit_every, shrinkage)
    if service is None or service.mode == "item":
        out = recommend_policies(selector, demand, items, config, rng, data=data, sized=sized)
        out = out.assign(service_mode="item")
    elif data is not None or sized is not None:
        raise ValueError(
            f"a {service.mode} service target prepares its own cutoff; call select_step without data/sized"
        )
    else:
        segment_by = service.segment_by if service.mode == "segment" else None
        out = recommend_with_target(
            selector, demand, items, config, rng, service.target, service.measure, segment_by, backtest=service.backtest
        )[0]
    if choice is not None:
        out.attrs["sizing_choice"] = choice.frame().to_dict("list")
    return out


def recommend_step(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    cfg: RunConfig,
    freq: str,
    selector,
    selector_name: str,
    run_id: str,
    rng: np.random.Generator,
) -> tuple[Backtest, pd.DataFrame]:
    """The recommendations ``stockwise recommend`` makes on ``demand``, without I/O or MLflow.

    :func:`backtest_step` (accuracy, ABC/XYZ segments), :func:`select_step` and
    :func:`assemble`, as :func:`pipelines.flows.plan.run_plan` runs them; ``stockwise
    evaluate`` calls this on the history before each origin.

    Returns
    -------
    (Backtest, pandas.DataFrame)
        The backtest and the schema-conformed recommendations.
    """
    bt = backtest_step(demand, items, cfg, freq)
    recs = select_step(
        demand,
        items,
        freq,
        selector,
        rng,
        service=cfg.service,
        refit_every=cfg.selector_refit_every,
        shrinkage=cfg.error_model.shrinkage,
    )
    return bt, assemble(items, bt.features, recs, run_id, selector_name)


def assemble(
    items: pd.DataFrame, features: pd.DataFrame, recs: pd.DataFrame, run_id: str, selector_name: str
) -> pd.DataFrame:
    """Add segments, stranded stock and lineage to the selector's rows; conform to the schema."""
    f = features.set_index("unique_id")
    rec = recs.copy()
    for col in ("abc", "xyz"):
        rec[col] = f[col].reindex(rec["unique_id"]).to_numpy() if col in f else None
    master = items.set_index("unique_id").reindex(rec["unique_id"])
    unit_cost = master["unit_cost"].to_numpy()
    rec["on_hand"] = master["on_hand"].to_numpy()
    # the most a policy ever holds after ordering: S, or s + Q for (s, Q)
    top = np.where(rec["policy"].eq("s_Q"), rec["reorder_point"] + rec["order_quantity"], rec["order_up_to"])
    rec["excess_units"] = np.maximum(rec["on_hand"] - top, 0.0)
    rec["shortfall_units"] = np.maximum(rec["safety_stock"] - rec["on_hand"], 0.0)
    rec["excess_value"] = rec["excess_units"] * unit_cost
    rec["shortfall_value"] = rec["shortfall_units"] * unit_cost
    rec["selector"] = selector_name
    rec["run_id"] = run_id
    return conform_recommendations(rec)


@dataclass(frozen=True)
class PhasedFrame:
    """What every item's time-phased plan shares (:func:`phased_frame`): computed once over the whole panel."""

    periods: int
    #: forecast steps: periods + the longest exposure of any item - 1
    h: int
    dates: pd.DatetimeIndex
    #: whole-unit shifts (every demand value of the panel is whole)
    integral: bool


def phased_frame(demand: pd.DataFrame, rec: pd.DataFrame, freq: str, periods: int | None = None) -> PhasedFrame:
    """The panel-wide part of :func:`phased_step`; ``periods`` defaults to one year of the frequency."""
    periods = periods or int(round(periods_per_year(freq)))
    H = policy_exposure(rec["policy"], rec["lead_time"], rec["review_period"])
    start = pd.Timestamp(demand["ds"].max()) + pd.tseries.frequencies.to_offset(freq)
    y = demand["y"].dropna().to_numpy(dtype=float)
    return PhasedFrame(
        periods=periods,
        h=periods + int(H.max(initial=1)) - 1,
        dates=pd.date_range(start, periods=periods, freq=freq),
        integral=bool(np.all(y == np.round(y))),
    )


def phased_rows(
    demand: pd.DataFrame,
    rec: pd.DataFrame,
    features: pd.DataFrame,
    cfg: RunConfig,
    freq: str,
    frame: PhasedFrame,
    known: pd.DataFrame | None = None,
    n_jobs: int = -1,
) -> pd.DataFrame:
    """:func:`phased_step` for the items of ``rec`` (all of them, or one block's) under a shared ``frame``."""
    forecaster = rec.set_index(rec["unique_id"].astype(str))["forecaster"]
    paths = forecast_paths(demand, forecaster, freq, frame.h, cfg.forecast.season_length, known, n_jobs=n_jobs)
    m = ForecastConfig(freq=freq, season_length=cfg.forecast.season_length).resolved_season_length
    able = seasonal_forecasters(forecaster, freq, cfg.forecast.season_length)
    flags = phased_items(features, m, able, forecaster).merge(
        rec[["unique_id"]].astype(str), on="unique_id", how="right"
    )
    return phased_plan(rec, paths, flags, frame.dates, integral=frame.integral)


def phased_step(
    demand: pd.DataFrame,
    rec: pd.DataFrame,
    features: pd.DataFrame,
    cfg: RunConfig,
    freq: str,
    periods: int | None = None,
    known: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """``plan.parquet``: each item's reorder point and order-up-to level in each of the next periods.

    Items with a trend or a season (:func:`policy_selector.phased.phased_items` on the
    backtest's characterisation) follow their chosen forecaster's path; the others keep
    their recommended levels. ``periods`` defaults to one year of the frequency; ``known``:
    a forecast of the same history to reuse (see :func:`policy_selector.phased.forecast_paths`).
    Each item's rows depend only on its own series and the shared :func:`phased_frame`, so
    :func:`pipelines.flows.plan_blocks.blocked_phased` runs the same on blocks of series.
    """
    return phased_rows(demand, rec, features, cfg, freq, phased_frame(demand, rec, freq, periods), known)


def _replay_inputs(demand: pd.DataFrame, items: pd.DataFrame, ids, freq: str):
    """Last year of actual demand (items x periods) and the selector's economics for the replays."""
    wide = demand.pivot(index="unique_id", columns="ds", values="y").reindex(ids)
    wide = wide.iloc[:, -int(periods_per_year(freq)) :]
    econ = Economics.from_items(items, np.asarray(ids, dtype=str), freq)
    return wide.fillna(0.0).to_numpy(), wide.columns[0], econ


def replay_recommended(rec: pd.DataFrame, demand: pd.DataFrame, items: pd.DataFrame, freq: str):
    """The recommended policies replayed on the last year of actual demand: (events, date of period 0).

    The policies are read as every other replay reads a recommendations table
    (``policy_selector.decision_eval.policies_from_table``): MOQ, order multiple and
    lost sales come from the item master, as in the plan's own simulation.
    """
    rids = rec["unique_id"].astype(str).to_numpy()
    paths, first, econ = _replay_inputs(demand, items, rids, freq)
    policy = policies_from_table(rec, econ)
    return simulate_events(paths, policy, econ.lead_time, costs=econ.cost_params(), unique_id=rids), first


def _frontier(
    em: ErrorModel, future: pd.DataFrame, model: np.ndarray, demand, items, freq, chosen: float
) -> pd.DataFrame:
    """(R, S) sized from forecast error at each CSL target, replayed on the last year."""
    ids = future.index.to_numpy()
    paths, _, econ = _replay_inputs(demand, items, ids, freq)
    lead, R = econ.lead_time, econ.review_period
    H = np.clip(lead + R, 1, em.horizon_).astype(float)
    cum = np.cumsum(future.to_numpy(), axis=1)[np.arange(len(ids)), H.astype(int) - 1]

    def size(target: float):
        level = np.ceil(np.maximum(cum + em.quantile(ids, H, target, model=model), 0.0))
        return r_s_policy(R, level, moq=econ.moq, order_multiple=econ.order_multiple, lost_sales=econ.lost_sales)

    frame = efficient_frontier(paths, size, FRONTIER_TARGETS, lead, costs=econ.cost_params(), unique_id=ids)
    return frontier_points(summarise_frontier(frame, by=None), chosen_target=chosen)


def report_inputs(
    rec: pd.DataFrame,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    bt: Backtest,
    em: ErrorModel,
    future: pd.DataFrame,
    freq: str,
) -> dict[str, pd.DataFrame]:
    """Forecast bands, replayed stock paths and the service frontier for the planner report.

    Bands are the one-step 5-95% forecast-error quantiles of each series' most accurate
    backtested model; stock paths replay the recommended policies on the last year of
    actual demand (:func:`replay_recommended`); the frontier sizes (R, S) from forecast
    error at each CSL target and replays it on the same year, with the items' MOQ,
    order multiple and lost sales.
    """
    ids = future.index.to_numpy()
    model = bt.choice.set_index("unique_id")["model"].reindex(ids).to_numpy()
    start = pd.Timestamp(demand["ds"].max()) + pd.tseries.frequencies.to_offset(freq)
    lo = future + em.quantile(ids[:, None], 1.0, 0.05, model=model[:, None])
    hi = future + em.quantile(ids[:, None], 1.0, 0.95, model=model[:, None])
    forecasts = forecasts_from_wide(future, start, freq, lo=lo.clip(lower=0.0), hi=hi)
    events, first = replay_recommended(rec, demand, items, freq)
    chosen = float(np.round(items["service_target"].median(), 3))
    return {
        "forecasts": forecasts,
        "sim_paths": sim_paths_from_events(events, first, freq),
        "frontier": _frontier(em, future, model, demand, items, freq, chosen),
    }
