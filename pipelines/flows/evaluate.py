"""``stockwise evaluate``: the decision backtest a data scientist runs before trusting a plan.

For each rolling origin, recommend on the history before it with the plan's own
steps (the ones ``stockwise recommend`` runs: :func:`backtest_step`,
:func:`select_step`, :func:`assemble`), replay the recommended policies on the
actual demand of the next ``holdout`` periods, and replay the simple baselines
(textbook, AutoETS and CrostonSBA + z RMSE, each over a z grid) on the same
periods and economics (:mod:`policy_selector.decision_eval`). With ``replan k``
the levels are recomputed from the history every k periods and the stock state
carries over. On the demo data (a ``truth`` table of planted processes) the
recommended policies are also scored by simulation on fresh paths of the planted
processes: their *true* expected service.

Outputs, in a run folder written atomically like ``recommend``'s:
``evaluation.csv`` (KPIs by method, z, segment: Stockwise and every baseline
frontier), ``evaluation_ratios.csv`` (the headline: inventory value / best
baseline's at equal achieved CSL and fill rate, overall and by segment),
``evaluation_items.csv`` (per item and origin; on the demo with ``true_csl``,
``true_fill_rate`` and the planted ``process``), ``evaluation.md``; MLflow metrics through :mod:`pipelines.registry.tracking`.

Each origin replays two plans: ``stockwise``, the time-phased levels of the recommendations
(:mod:`policy_selector.phased`, as in ``plan.parquet``), and ``stockwise_static``, the same
recommendations with fixed levels; the baselines gain ``AutoETS_phased``, the AutoETS baseline
with its forecast over each period's own L + R (docs/methods/time-phased.md).
"""

from __future__ import annotations

import dataclasses
import os
import shutil
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import ForecastConfig, Forecaster
from pipelines.data.config import RunConfig
from pipelines.data.demo_data import sample_truth_paths
from pipelines.data.io import read_table, write_table_atomic, write_text_atomic
from pipelines.data.validation import validate_items
from pipelines.flows.plan import load_data, load_selector, log_validation, stage_dir
from pipelines.flows.plan_steps import (
    Backtest,
    assemble,
    backtest_step,
    exposure_step,
    select_step,
    selector_step_config,
    sizing_step,
)
from pipelines.registry.tracking import start_run
from policy_selector.candidates import CandidateSpace
from policy_selector.config import SelectorConfig
from policy_selector.context import prepare_cutoff
from policy_selector.decision_eval import (
    BASELINES,
    PHASED_BASELINE,
    baseline_levels,
    baseline_rows,
    equal_service,
    phased_baseline_levels,
    phased_baseline_rows,
    policies_from_table,
    replay,
    replay_phased,
    replay_phased_table,
    replay_table,
    summarise,
)
from policy_selector.economics import Economics
from policy_selector.labels import _extra_shortage_cost
from policy_selector.phased import (
    exposure_forecasts,
    forecast_paths,
    phased_items,
    phased_plan,
    policy_exposure,
    seasonal_forecasters,
)
from policy_selector.sizing import size_candidates

__all__ = [
    "EvaluateSettings",
    "EvaluateResult",
    "run_evaluate",
    "origin_positions",
    "replay_selectors",
    "replay_by_origin",
]

TRUTH_PATHS = 200
#: The plans replayed: time-phased levels (the headline) and the same plan with fixed levels.
PLANS = ("stockwise", "stockwise_static")
#: Recommendation columns kept in evaluation_items.csv (the first plan of each origin).
_ITEM_COLUMNS = (
    "unique_id",
    "sbc_class",
    "abc",
    "candidate",
    "selected_by",
    "policy",
    "forecaster",
    "review_period",
    "lead_time",
    "service_type",
    "service_target",
    "service_mode",
    "expected_csl",
    "expected_fill_rate",
    "order_up_to",
    "reorder_point",
    "order_quantity",
)


@dataclass(frozen=True)
class EvaluateSettings:
    """Held-out periods, rolling origins and replanning of one evaluation.

    Parameters
    ----------
    holdout : int
        Periods replayed after each origin.
    origins : int, default 1
        Rolling origins; the last one leaves exactly ``holdout`` periods.
    origin_step : int, optional
        Periods between origins; default ``holdout`` (non-overlapping windows).
    replan : int, optional
        Recompute levels every ``replan`` periods; default never (``holdout``).
    """

    holdout: int
    origins: int = 1
    origin_step: int | None = None
    replan: int | None = None

    def __post_init__(self) -> None:
        for name in ("holdout", "origins", "origin_step", "replan"):
            value = getattr(self, name)
            if value is not None and (not isinstance(value, (int, np.integer)) or value < 1):
                raise ValueError(f"{name} must be a positive whole number of periods, got {value!r}")

    @property
    def step(self) -> int:
        return self.origin_step or self.holdout


@dataclass(frozen=True)
class EvaluateResult:
    """Where the evaluation went and its headline numbers."""

    run_dir: Path
    run_id: str
    tracking_uri: str
    metrics: dict[str, float]
    ratios: pd.DataFrame


def origin_positions(n_periods: int, settings: EvaluateSettings, min_history: int) -> list[int]:
    """Index (in the period grid) of each origin's first held-out period, oldest first.

    Raises
    ------
    ValueError
        When the first origin leaves fewer than ``min_history`` periods of history.
    """
    last = n_periods - settings.holdout
    first = last - (settings.origins - 1) * settings.step
    if first < min_history:
        raise ValueError(
            f"{settings.origins} origin(s) {settings.step} periods apart with a holdout of "
            f"{settings.holdout} leave {first} periods of history out of {n_periods}; "
            f"need >= {min_history}: lower --holdout or --origins"
        )
    return [first + j * settings.step for j in range(settings.origins)]


def run_evaluate(
    cfg: RunConfig,
    settings: EvaluateSettings,
    command: str = "evaluate",
    progress: Callable[[str], None] = lambda _: None,
) -> EvaluateResult:
    """Recommend at each origin, replay against the baselines, write and log the evaluation.

    Parameters
    ----------
    cfg : RunConfig
        Data folder (``None``: the generated demo), models, tracking store.
    settings : EvaluateSettings
    command : str, default "evaluate"
    progress : callable, optional
        Called with a short message as each step starts.

    Returns
    -------
    EvaluateResult

    Raises
    ------
    DataValidationError
        When ``cfg.strict`` and validation found errors.
    ValueError
        When the history is too short for the origins asked for.
    ConfigError
        When ``cfg.selector`` names no known decision path, candidate or registered version.
    """
    selector = load_selector(cfg.selector, cfg.tracking_uri)  # an unknown path fails before any run starts
    staging, final = stage_dir(Path(cfg.out), command)
    try:
        tags = {"stockwise.command": command, "stockwise.selector": cfg.selector}
        with start_run(command, cfg.tracking_uri, tags=tags) as run:
            result = _evaluate(cfg, settings, staging, final, run, progress, selector)
        os.replace(staging, final)
        return dataclasses.replace(result, run_dir=final)
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def replay_selectors(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    freq: str,
    cfg: RunConfig,
    holdout: int,
    selectors: Mapping[str, tuple[object | None, str]] | Sequence[Mapping[str, tuple[object | None, str]]],
    progress: Callable[[str], None] = lambda _: None,
    shared: bool = True,
    origins: int = 1,
) -> pd.DataFrame:
    """Several decision paths judged on one origin, as ``stockwise evaluate --selector`` judges each.

    The origin leaves the last ``holdout`` periods of ``demand``: each path recommends on the
    history before it (the plan's own steps) and its time-phased plan is replayed on the actual
    demand after it, next to the baselines' frontiers (:func:`_one_origin`, with the same seed
    for every path). The work that does not depend on the path (forecast backtest, the selector's
    cutoff preparation and candidate sizing, the baselines' forecasts, levels and replay) is done
    once for all paths; each path's numbers are those of judging it alone. No files, no MLflow:
    the caller logs.

    Parameters
    ----------
    demand, items : pandas.DataFrame
        Validated long demand and item master.
    freq : str
    cfg : RunConfig
        Forecast, service and seed settings (its ``data`` and ``selector`` are not used).
    holdout : int
        Periods replayed.
    selectors : mapping of str -> (selector, name), or a sequence of them, one per origin
        Path key -> what :func:`pipelines.flows.plan.load_selector` returns (or any fitted selector).
        A sequence (oldest origin first, the same keys in each) judges at each origin what could be
        known there: e.g. a classifier fitted only on labels before that origin (``stockwise
        train``'s gate over several origins).
    shared : bool, default True
        False: judge one path at a time, repeating the shared work (the reference the shared
        replay is tested and timed against).
    origins : int, default 1
        Rolling origins ``holdout`` periods apart, the last one leaving the last ``holdout``
        periods; the scores are pooled over them (CSL over item-origins, inventory, cost and
        yearly cost averaged over the origins). Each path keeps one generator across its origins.

    Returns
    -------
    pandas.DataFrame
        One row per path (index = the key): ``name, origins, n_items`` (replayed at some
        origin), ``n_excluded`` (lead time beyond what the history can back-test, or a held-out
        period missing at every origin), ``n_not_planned`` (items the recommendation step made
        no row for at any origin), ``csl, fill_rate,
        inventory_value, cost`` (the replay's cost over the holdout), ``yearly_cost`` (that cost
        a year with every unit short priced at least at the shortage cost its service target
        implies, as the selector's labels price it), ``ratio_csl`` / ``ratio_fill_rate``
        (inventory value over the best baseline's at the same achieved service) and
        ``best_baseline_csl``.

    Raises
    ------
    ValueError
        When the history before the origin is shorter than ``cfg.min_length``, no item
        can be planned, the item master has errors (``DataValidationError``, naming them), or a
        sequence of ``selectors`` does not hold ``origins`` mappings with the same keys.
    """
    table = replay_by_origin(demand, items, freq, cfg, holdout, selectors, progress, shared, origins)
    return table.xs("pooled", level="origin")


def replay_by_origin(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    freq: str,
    cfg: RunConfig,
    holdout: int,
    selectors: Mapping[str, tuple[object | None, str]] | Sequence[Mapping[str, tuple[object | None, str]]],
    progress: Callable[[str], None] = lambda _: None,
    shared: bool = True,
    origins: int = 1,
) -> pd.DataFrame:
    """:func:`replay_selectors` with each origin's own scores next to the pooled ones.

    Returns
    -------
    pandas.DataFrame
        Index (``origin``, ``path``): ``origin`` is the first held-out date of each origin
        (``YYYY-MM-DD``, oldest first; its columns those of :func:`replay_selectors` on that origin
        alone), then ``"pooled"`` (:func:`replay_selectors`'s table).

    Raises
    ------
    ValueError
        As :func:`replay_selectors`.
    """
    per_origin = _selectors_by_origin(selectors, origins)
    items, report = validate_items(items)  # the item master as evaluate reads it (optional columns filled)
    report.raise_if_errors()
    n_given = items["unique_id"].nunique()
    demand, items, issue = exposure_step(demand, items, cfg)
    dropped = n_given - items["unique_id"].nunique()  # lead time longer than the history can back-test
    if items.empty:
        raise ValueError(f"no item can be replayed: {issue.message if issue else 'no items'}")
    data = dataclasses.make_dataclass("ReplayData", ["demand", "items", "freq"])(demand, items, freq)
    grid = pd.DatetimeIndex(np.sort(demand["ds"].unique()))
    settings = EvaluateSettings(holdout, origins=origins)
    starts = origin_positions(len(grid), settings, cfg.min_length)
    keys = list(per_origin[-1])
    judged = {}
    for group in [keys] if shared else [[k] for k in keys]:
        rngs = {k: np.random.default_rng(cfg.seed) for k in group}  # each path as if judged alone
        for j, start in enumerate(starts):
            paths = {k: per_origin[j][k] for k in group}
            names = ", ".join(name for _, name in paths.values())
            progress(f"replaying the {names} on the {holdout} periods from {grid[start].date()}")
            for key, origin in _one_origin(data, cfg, settings, grid, start, paths, "replay", rngs, progress).items():
                judged.setdefault(key, []).append(origin)
    n_items = items["unique_id"].nunique()
    frames = {str(grid[s].date()): [j] for j, s in enumerate(starts)} | {"pooled": list(range(len(starts)))}
    rows = {}
    for label, picked in frames.items():
        for key in keys:
            scores = _path_scores([judged[key][j] for j in picked], holdout)
            never = scores.pop("excluded_ids")
            rows[(label, key)] = scores | {
                "name": per_origin[picked[-1]][key][1],
                "origins": len(picked),
                "n_excluded": len(never) + dropped,
                # recommend made no row at any of these origins (e.g. history too short)
                "n_not_planned": n_items - scores["n_items"] - len(never),
            }
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index = pd.MultiIndex.from_tuples(table.index, names=["origin", "path"])
    return table


def _selectors_by_origin(selectors, origins: int) -> list[dict]:
    """One mapping of paths per origin (oldest first): the same mapping at each, or the sequence given, checked."""
    if isinstance(selectors, Mapping):
        return [dict(selectors)] * origins
    per_origin = [dict(m) for m in selectors]
    keys = [list(m) for m in per_origin]
    if len(per_origin) != origins or any(k != keys[-1] for k in keys):
        raise ValueError(
            f"selectors by origin: expected {origins} mappings with the same path keys, got {len(per_origin)} "
            f"with keys {keys}"
        )
    return per_origin


def _path_scores(origins: list[dict], holdout: int) -> dict:
    """Headline of one path's replay, pooled over its origins: service, inventory, priced yearly cost,
    ratios at equal service (:func:`summarise`: CSL over item-origins, inventory and cost per origin)."""
    rows = pd.concat([o["rows"].assign(origin=j) for j, o in enumerate(origins)], ignore_index=True)
    summary = summarise(rows)
    ratios = equal_service(summary, "stockwise").set_index("measure")
    head = summary[(summary["method"] == "stockwise") & (summary["segment_kind"] == "all")].iloc[0]
    priced = 0.0
    for o in origins:
        mine, econ = o["rows"][o["rows"]["method"] == "stockwise"], o["econ"]
        extra = pd.Series(_extra_shortage_cost(econ), index=econ.ids).reindex(mine["unique_id"]).to_numpy()
        priced += float((mine["cost"].to_numpy() + (mine["demand"] - mine["served"]).to_numpy() * extra).sum())
    replayed = set(rows.loc[rows["method"] == "stockwise", "unique_id"])
    excluded = set().union(*(set(o["excluded"]["unique_id"]) for o in origins)) - replayed
    return {
        "n_items": int(head["n_items"]),
        "excluded_ids": sorted(excluded),
        "csl": float(head["csl"]),
        "fill_rate": float(head["fill_rate"]),
        "inventory_value": float(head["inventory_value"]),
        "cost": float(head["cost"]),
        "yearly_cost": priced / len(origins) * origins[0]["econ"].periods_per_year / holdout,
        "ratio_csl": float(ratios.loc["csl", "ratio"]),
        "ratio_fill_rate": float(ratios.loc["fill_rate", "ratio"]),
        "best_baseline_csl": ratios.loc["csl", "best_baseline"],
    }


def _evaluate(cfg, settings, staging, final, run, progress, selector) -> EvaluateResult:
    progress("validating data")
    data = load_data(cfg, staging)
    run.log_params(cfg.model_dump(mode="json") | dataclasses.asdict(settings) | {"freq": data.freq})
    run.log_fingerprints({"demand": data.demand, "items": data.items})
    log_validation(run, data.report, staging)
    if cfg.strict or data.freq is None:
        data.report.raise_if_errors()
    grid = pd.DatetimeIndex(np.sort(data.demand["ds"].unique()))
    starts = origin_positions(len(grid), settings, cfg.min_length)
    selector, selector_name = selector
    run.log_params({"selector_name": selector_name})
    rng = np.random.default_rng(cfg.seed)
    rows, items_out, excluded, truth_rows, sizing = [], [], [], [], []
    truth = _truth(cfg, data)
    for j, start in enumerate(starts):
        window = grid[start : start + settings.holdout]
        progress(
            f"origin {j + 1}/{len(starts)}: recommending on the {start} periods before {window[0].date()} "
            f"with the {selector_name}"
        )
        path = {"path": (selector, selector_name)}
        origin = _one_origin(data, cfg, settings, grid, start, path, run.run_id, {"path": rng}, progress)["path"]
        rows += [origin["rows"].assign(origin=j)]
        items_out.append(origin["items"].assign(origin=j, origin_ds=window[0]))
        excluded.append(origin["excluded"].assign(origin=j))
        if truth is not None:
            truth_rows.append(_score_truth(truth, origin, data, grid, start, settings, rng).assign(origin=j))
        if origin["sizing_choice"] is not None:
            choice = pd.DataFrame(origin["sizing_choice"]).rename(columns={"origin": "choice_origin"})
            sizing.append(choice.assign(origin=j, origin_ds=window[0]))  # the choice's own, earlier origin kept
    return _write(
        staging,
        final,
        run,
        settings,
        pd.concat(rows, ignore_index=True),
        pd.concat(items_out, ignore_index=True),
        pd.concat(excluded, ignore_index=True),
        pd.concat(truth_rows, ignore_index=True) if truth_rows else None,
        (cfg.selector, selector_name),
        pd.concat(sizing, ignore_index=True) if sizing else None,
    )


def _one_origin(data, cfg, settings, grid, start, paths, run_id, rngs, progress) -> dict[str, dict]:
    """Plans of every block of one origin, their replay (static and time-phased) and the baselines' frontiers,
    for every decision path of ``paths`` (key -> (selector, name); ``rngs``: key -> its generator).

    The work that does not depend on the decision path is done once per block for all of them
    (:func:`_recommend_paths`: the forecast backtest, the selector's cutoff and the sizing of every
    candidate; here: the baselines' forecast, levels and replay); per path only the choice, the
    simulation of the chosen policies, their time-phased levels and their replay. The numbers of each
    path are those of judging it alone (tested).
    """
    window = grid[start : start + settings.holdout]
    step = settings.replan or settings.holdout
    acc = {k: {"plans": [], "levels": [], "periods": [], "ets": [], "flags": [], "tables": None} for k in paths}
    for b in range(start, start + settings.holdout, step):
        history = data.demand[data.demand["ds"] < grid[b]]
        bt, recs = _recommend_paths(history, data.items, cfg, data.freq, paths, run_id, rngs)
        for k, rec in recs.items():
            if not acc[k]["plans"]:
                ids, actual, excluded = _held_out(data.demand, rec["unique_id"].to_numpy(), window)
                econ = Economics.from_items(data.items, ids, data.freq)
                acc[k] |= {"rec": rec, "ids": ids, "actual": actual, "excluded": excluded, "econ": econ}
            acc[k]["plans"].append(_align(rec, acc[k]["ids"]))
        if b > start:
            progress(f"  replanning at {grid[b].date()}")
        dates = grid[b : start + settings.holdout]
        n_block = min(step, start + settings.holdout - b)
        horizon = {k: _block_horizon(a["plans"][-1], a["econ"], len(dates)) for k, a in acc.items()}
        all_ids = np.unique(np.concatenate([a["ids"] for a in acc.values()]))
        future = _baseline_future(history, all_ids, max(horizon.values()), cfg, data.freq)
        baselines = {}  # the baselines' levels depend on the items only: once per set of items
        for k, a in acc.items():
            econ, ids = a["econ"], a["ids"]
            fut = _future_of(future, ids, horizon[k])
            block = _phased_block(history, a["plans"][-1], bt, cfg, data.freq, econ, dates, fut)
            key = tuple(ids)
            if key not in baselines:
                baselines[key] = baseline_levels(
                    history,
                    econ,
                    data.freq,
                    n_windows=cfg.forecast.n_windows,
                    season_length=cfg.forecast.season_length,
                    cv=bt.cv,
                    future=fut,
                )
            lv, inputs = baselines[key]
            a["levels"].append(lv)
            a["tables"] = block["tables"] if a["tables"] is None else a["tables"]
            a["periods"] += block["tables"][:n_block]
            ets = inputs[inputs["model"] == "AutoETS"].set_index("unique_id").loc[ids, "rmse"].to_numpy()
            a["ets"].append(phased_baseline_levels(block["ets_exposure"][:, :n_block], ets))
            a["flags"].append(block["flags"])
    replayed = {}  # the baselines' replay depends on the items only
    out = {}
    for k, a in acc.items():
        ids, econ, actual = a["ids"], a["econ"], a["actual"]
        progress(f"  replaying {len(ids)} items, static and time-phased, and {len(BASELINES) + 1} baselines")
        key = tuple(ids)
        if key not in replayed:
            replayed[key] = pd.concat(
                [
                    baseline_rows(actual, a["levels"], econ, settings.replan),
                    phased_baseline_rows(actual, np.concatenate(a["ets"], axis=1), econ),
                ],
                ignore_index=True,
            )
        out[k] = _path_origin(a, econ, actual, settings, replayed[key])
    return out


def _path_origin(a: dict, econ, actual, settings, baselines: pd.DataFrame) -> dict:
    """One path's replay (static and time-phased) next to the baselines' rows, its per-item table."""
    static = replay_table(actual, a["plans"], econ, settings.replan).assign(method="stockwise_static", z=np.nan)
    mine = replay_phased_table(actual, a["periods"], econ).assign(method="stockwise", z=np.nan)
    per_item = (
        _align(a["rec"], a["ids"])[list(_ITEM_COLUMNS)]
        .merge(a["flags"][0][["unique_id", "phased", "phase_reason"]], on="unique_id", how="left")
        .merge(mine.drop(columns=["method", "z"]), on="unique_id")
        .merge(
            static.drop(columns=["method", "z"]).add_prefix("static_"), left_on="unique_id", right_on="static_unique_id"
        )
        .drop(columns="static_unique_id")
    )
    return {
        "rows": pd.concat([mine, static, baselines], ignore_index=True),
        "items": per_item,
        "excluded": a["excluded"],
        "plan": a["plans"][0],
        "sizing_choice": a["rec"].attrs.get("sizing_choice"),  # the first plan's, as recommend writes it
        "periods": a["tables"],
        "econ": econ,
    }


def _recommend_paths(history, items, cfg, freq, paths, run_id, rngs) -> tuple[Backtest, dict[str, pd.DataFrame]]:
    """What :func:`recommend_step` makes of ``history`` for each path, the path-independent work done once.

    The forecast backtest (:func:`backtest_step`) runs once. Each path makes its own sizing choice
    (:func:`sizing_step`: the default path's, per segment) and so has its own candidate space;
    paths whose spaces need the same forecasters share one :func:`prepare_cutoff` (backtest,
    forecasts, error models) and one :func:`size_candidates` of the union of their candidates;
    per path only the choice and the simulation of the chosen policies (:func:`select_step`, recommend's
    own, given ``data`` and ``sized``). A segment or portfolio service
    target re-levels inside :func:`select_step` (which prepares its own cutoff): those paths share
    only the forecast backtest.
    """
    bt = backtest_step(history, items, cfg, freq)
    refit, k_cred = cfg.selector_refit_every, cfg.error_model.shrinkage
    if cfg.service.mode != "item":
        recs = {
            k: select_step(history, items, freq, s, rngs[k], service=cfg.service, refit_every=refit, shrinkage=k_cred)
            for k, (s, _) in paths.items()
        }
        return bt, {k: _assembled(items, bt, recs[k], run_id, name) for k, (_, name) in paths.items()}
    own = {k: sizing_step(history, items, freq, s, cfg.service, 1, refit, k_cred) for k, (s, _) in paths.items()}
    configs = {k: selector_step_config(selector, freq, 1, refit, k_cred) for k, (selector, _) in own.items()}
    recs = {}
    for group in _cutoff_groups(configs):
        data = prepare_cutoff(history, items, pd.Timestamp(pd.to_datetime(history["ds"]).max()), group["config"])
        sized = size_candidates(data, group["config"])
        for k in group["keys"]:
            selector, choice = own[k]
            rec = select_step(
                history,
                items,
                freq,
                selector,
                rngs[k],
                refit_every=refit,
                shrinkage=k_cred,
                choose_sizing=False,
                data=data,
                sized=sized,
            )
            if choice is not None:  # the sizing choice made above, as select_step records its own
                rec.attrs["sizing_choice"] = choice.frame().to_dict("list")
            recs[k] = _assembled(items, bt, rec, run_id, paths[k][1])
    return bt, {k: recs[k] for k in paths}


def _assembled(items, bt: Backtest, rec: pd.DataFrame, run_id: str, name: str) -> pd.DataFrame:
    """:func:`assemble`, keeping the sizing choice's evidence (``attrs["sizing_choice"]``) for sizing_choice.csv."""
    out = assemble(items, bt.features, rec, run_id, name)
    if rec.attrs.get("sizing_choice") is not None:
        out.attrs["sizing_choice"] = rec.attrs["sizing_choice"]
    return out


def _cutoff_groups(configs: Mapping[str, SelectorConfig]) -> list[dict]:
    """Paths whose cutoff preparation is the same: equal settings and forecasters (the only part of the
    space :func:`prepare_cutoff` reads), candidates of one name alike. Each group: its keys and a config
    whose space is the union of theirs."""
    groups: list[dict] = []
    for k, config in configs.items():
        same = dataclasses.replace(config, space=CandidateSpace())
        for g in groups:
            known = {c.name: c for c in g["config"].space.candidates}
            fits = g["same"] == same and g["config"].space.forecasters == config.space.forecasters
            if fits and all(known.get(c.name, c) == c for c in config.space.candidates):
                extra = tuple(c for c in config.space.candidates if c.name not in known)
                space = CandidateSpace(g["config"].space.candidates + extra)
                g["config"] = dataclasses.replace(g["config"], space=space)
                g["keys"].append(k)
                break
        else:
            groups.append({"same": same, "config": config, "keys": [k]})
    return groups


def _block_horizon(rec: pd.DataFrame, econ: Economics, periods: int) -> int:
    """Forecast steps a block's time-phased plan and the phased baseline need: the periods + the longest exposure - 1."""
    H_items = policy_exposure(rec["policy"], rec["lead_time"], rec["review_period"])
    H_base = econ.lead_time + econ.review_period
    return periods + int(max(H_items.max(initial=1), H_base.max(initial=1))) - 1


def _baseline_future(history: pd.DataFrame, ids: np.ndarray, h: int, cfg: RunConfig, freq: str) -> pd.DataFrame:
    """The baselines' forecast models over ``h`` steps from the end of ``history``, for ``ids``."""
    part = history[history["unique_id"].isin(ids)]
    fc_cfg = ForecastConfig(models=BASELINES[1:], freq=freq, season_length=cfg.forecast.season_length)
    return Forecaster(fc_cfg).forecast(part, h=h)


def _future_of(future: pd.DataFrame, ids: np.ndarray, h: int) -> pd.DataFrame:
    """The rows of ``future`` (:func:`_baseline_future`) one path's block needs: its items, ``h`` steps
    (a series' forecast does not depend on the other series or on the steps after)."""
    part = future[future["unique_id"].isin(ids)].sort_values(["unique_id", "ds"], kind="stable")
    return part[part.groupby("unique_id").cumcount().to_numpy() < h].reset_index(drop=True)


def _phased_block(history, rec, bt, cfg, freq, econ, dates, future) -> dict:
    """Time-phased levels of one block's plan over ``dates`` (the rest of the holdout), and AutoETS's F_t(L + R).

    One forecast of the baselines' models over the block (``future``, :func:`_future_of`) serves the
    static baselines, the phased AutoETS baseline and the items whose own forecaster is one of them.
    """
    T = len(dates)
    h = _block_horizon(rec, econ, T)
    part = history[history["unique_id"].isin(econ.ids)]
    forecaster = rec.set_index("unique_id")["forecaster"]
    paths = forecast_paths(part, forecaster, freq, h, cfg.forecast.season_length, known=future)
    able = seasonal_forecasters(forecaster, freq, cfg.forecast.season_length)
    season = ForecastConfig(models=BASELINES[1:], freq=freq, season_length=cfg.forecast.season_length)
    flags = phased_items(bt.features, season.resolved_season_length, able, forecaster).merge(
        rec[["unique_id"]], on="unique_id", how="right"
    )
    y = part["y"].dropna().to_numpy(dtype=float)
    plan = phased_plan(rec, paths, flags, dates, integral=bool(np.all(y == np.round(y))))
    tables = [_with_levels(rec, p) for _, p in plan.groupby("step", sort=True)]
    # unclipped, as the static AutoETS baseline: its first period is that baseline's level
    ets = future.sort_values(["unique_id", "ds"]).assign(step=lambda f: f.groupby("unique_id").cumcount() + 1)
    ets_path = ets.pivot(index="unique_id", columns="step", values="AutoETS").reindex(econ.ids).fillna(0.0).to_numpy()
    H_base = econ.lead_time + econ.review_period
    return {"tables": tables, "flags": flags, "ets_exposure": exposure_forecasts(ets_path, H_base, T)}


def _with_levels(rec: pd.DataFrame, period: pd.DataFrame) -> pd.DataFrame:
    """``rec`` with the reorder point and order-up-to level of one period of a phased plan."""
    levels = period.set_index("unique_id").loc[rec["unique_id"], ["reorder_point", "order_up_to"]]
    return rec.assign(reorder_point=levels["reorder_point"].to_numpy(), order_up_to=levels["order_up_to"].to_numpy())


def _align(rec: pd.DataFrame, ids: np.ndarray) -> pd.DataFrame:
    return rec.set_index("unique_id").loc[ids].reset_index()


def _held_out(demand: pd.DataFrame, ids: np.ndarray, window: pd.DatetimeIndex):
    """Actual demand of the window for the planned items; items missing a held-out period are excluded."""
    wide = demand[demand["ds"].isin(window)].pivot(index="unique_id", columns="ds", values="y")
    wide = wide.reindex(index=ids, columns=window)
    gaps = wide.isna().any(axis=1)
    excluded = pd.DataFrame({"unique_id": wide.index[gaps], "reason": "missing held-out periods"})
    keep = wide.index[~gaps].to_numpy(dtype=str)
    return keep, wide.loc[~gaps].to_numpy(dtype=float), excluded


# --------------------------------------------------------------------------- planted truth (demo)


def _truth(cfg: RunConfig, data) -> pd.DataFrame | None:
    folder = Path(data.files["demand"]).parent
    path = next((folder / f"truth{s}" for s in (".parquet", ".csv") if (folder / f"truth{s}").is_file()), None)
    return None if path is None else read_table(path)


def _score_truth(truth, origin, data, grid, start, settings, rng) -> pd.DataFrame:
    """True expected service of the origin's first plan, time-phased and static: replayed on paths of
    the planted processes (``true_*`` for the phased levels, ``static_true_*`` for the static ones)."""
    econ, plan = origin["econ"], origin["plan"]
    paths = sample_truth_paths(truth, econ.ids, grid, TRUTH_PATHS, rng)[..., start : start + settings.holdout]
    outs = {
        "": replay_phased(paths, [policies_from_table(t, econ) for t in origin["periods"]], econ),
        "static_": replay(paths, [policies_from_table(plan, econ)], econ),
    }
    frame = pd.DataFrame({"unique_id": econ.ids})
    for prefix, out in outs.items():
        demand = out["demand"].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):  # no planted demand in the window: no service to score
            frame[f"{prefix}true_csl"] = np.where(demand > 0, out["csl"].mean(axis=0), np.nan)
            frame[f"{prefix}true_fill_rate"] = np.where(demand > 0, out["served"].sum(axis=0) / demand, np.nan)
    t = truth.set_index("unique_id")["process"]
    return frame.assign(process=t.reindex(econ.ids).to_numpy())


# --------------------------------------------------------------------------- outputs


def _metrics(summary: pd.DataFrame, ratios: pd.DataFrame, truth: pd.DataFrame | None) -> dict[str, float]:
    """``stockwise.*`` / ``ratio.*``: the time-phased plan (the headline); ``stockwise_static.*`` /
    ``static.ratio.*``: the same plan with fixed levels; ``ratio_static.*``: against the static baselines only."""
    out = {}
    for r in summary[summary["method"].isin(PLANS)].itertuples():
        key = "" if r.segment_kind == "all" else f".{r.segment_kind}.{r.segment}"
        out |= {
            f"{r.method}{key}.{k}": getattr(r, k) for k in ("n_items", "csl", "fill_rate", "inventory_value", "cost")
        }
    for r in ratios.itertuples():
        key = "" if r.segment_kind == "all" else f".{r.segment_kind}.{r.segment}"
        prefix = "" if r.method == "stockwise" else "static."
        out[f"{prefix}ratio.{r.measure}{key}"] = r.ratio
        out[f"{prefix}ratio_static.{r.measure}{key}"] = r.ratio_static
        if r.segment_kind == "all" and r.method == "stockwise":
            out |= {
                f"value_at_{r.measure}.{b}": getattr(r, f"value_{b}")
                for b in (*BASELINES, PHASED_BASELINE)
                if hasattr(r, f"value_{b}")
            }
    if truth is not None and len(truth):
        out |= {f"truth.{k}": v for k, v in _truth_summary(truth).loc["all"].items()}
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(float(v))}


def _truth_summary(truth: pd.DataFrame) -> pd.DataFrame:
    """True expected service (of each item's service type) by planted process and overall: time-phased
    levels (``true_service``, ``within_1pt``, ``mean_gap``) and static ones (``static_true_service``)."""
    fill = truth["service_type"].eq("fill_rate")
    t = truth.assign(
        true_service=np.where(fill, truth["true_fill_rate"], truth["true_csl"]),
        static_true_service=np.where(fill, truth["static_true_fill_rate"], truth["static_true_csl"]),
        expected_service=np.where(fill, truth["expected_fill_rate"], truth["expected_csl"]),
    )
    t = t[t["service_type"].isin(["csl", "fill_rate"]) & t["true_service"].notna()]
    t = t.assign(gap=t["true_service"] - t["service_target"])

    def agg(g):
        return pd.Series(
            {
                "n_items": float(len(g)),
                "true_service": g["true_service"].mean(),
                "static_true_service": g["static_true_service"].mean(),
                "expected_service": g["expected_service"].mean(),
                "target": g["service_target"].mean(),
                "within_1pt": (g["gap"].abs() <= 0.01).mean(),
                "mean_gap": g["gap"].mean(),
            }
        )

    by = t.groupby("process").apply(agg, include_groups=False)
    by.loc["all"] = agg(t)
    return by


def _fmt(df: pd.DataFrame, digits: int = 3) -> str:
    """A frame as a markdown table: counts as integers, other numbers rounded, NaN blank."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [
            ("" if not np.isfinite(v) else f"{v:,.0f}" if c == "n_items" else f"{v:,.{digits}f}")
            if isinstance(v, float)
            else str(v)
            for c, v in zip(cols, row)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(settings, summary, ratios, excluded, truth, selector) -> str:
    spec, selector_name = selector
    mine = summary[summary["method"].isin(PLANS)].drop(columns=["z"])
    head = ratios[
        ["method", "segment_kind", "segment", "measure", "n_items", "service", "inventory_value"]
        + [f"value_{b}" for b in (*BASELINES, PHASED_BASELINE) if f"value_{b}" in ratios.columns]
        + ["best_baseline", "ratio", "ratio_static"]
    ]
    front = summary[(~summary["method"].isin(PLANS)) & (summary["segment_kind"] == "all")]
    parts = [
        "# Decision backtest (stockwise evaluate)",
        "",
        f"Policies recommended by the {selector_name} on the history before each origin, replayed on the "
        f"actual demand of the next {settings.holdout} periods ({settings.origins} origin(s), levels "
        f"{'recomputed every %d periods' % settings.replan if settings.replan else 'fixed over the holdout'}). "
        "Baselines: textbook mu(L+R) + z sigma sqrt(L+R); AutoETS / CrostonSBA forecast over L+R + z RMSE of "
        "backtested cumulative errors; AutoETS_phased the same with the forecast over each period's own "
        "L+R (time-phased); each swept over z. `stockwise`: levels time-phased for items with a trend or "
        "season (policy_selector.phased), `stockwise_static`: the same plan with fixed levels. Ratio = "
        "inventory value / the best baseline's value at the same achieved service (read off its frontier; "
        "blank when outside it); ratio_static: against the best static baseline only.",
        "",
        f"Decision path: `--selector {spec}` ({selector_name}).",
        "",
        "## Headline",
        "",
        _fmt(head),
        "",
        "## Stockwise achieved, by segment",
        "",
        _fmt(mine),
        "",
        "## Baseline frontiers (whole portfolio)",
        "",
        _fmt(front.drop(columns=["segment_kind", "segment"])),
        "",
        f"## Excluded items: {len(excluded)}",
        "",
    ]
    if len(excluded):
        parts += [_fmt(excluded.groupby("reason").size().rename("items").reset_index()), ""]
    if truth is not None and len(truth):
        parts += [
            "## Against the planted truth (demo)",
            "",
            f"True expected service (CSL or fill rate, each item's own type) of the first plan of each origin "
            f"over {TRUTH_PATHS} fresh paths of the item's planted process, against the plan's own expected "
            "service; within_1pt = share of items within 1 point of their target.",
            "",
            _fmt(_truth_summary(truth).reset_index()),
            "",
        ]
    return "\n".join(parts)


def _write(staging, final, run, settings, rows, items, excluded, truth, selector, sizing=None) -> EvaluateResult:
    """Tables, evaluation.md, metrics and RUN.txt; ``selector`` = (decision path as asked, its name);
    ``sizing``: the default path's buffer choice per segment at each origin (sizing_choice.csv, as recommend's)."""
    if truth is not None:
        truth = truth.merge(
            items[["origin", "unique_id", "service_type", "service_target", "expected_csl", "expected_fill_rate"]],
            on=["origin", "unique_id"],
        )
        items = items.merge(
            truth[
                ["origin", "unique_id", "true_csl", "true_fill_rate", "static_true_csl", "static_true_fill_rate"]
            ].merge(truth[["origin", "unique_id", "process"]], on=["origin", "unique_id"]),
            on=["origin", "unique_id"],
            how="left",
        )
    segments = items[["origin", "unique_id", "sbc_class", "abc", "phased"] + (["process"] if truth is not None else [])]
    summary = summarise(rows, segments)
    ratios = pd.concat([equal_service(summary, m).assign(method=m) for m in PLANS], ignore_index=True)
    ratios = ratios[["method"] + [c for c in ratios.columns if c != "method"]]
    paths = [
        write_table_atomic(summary, staging / "evaluation.csv"),
        write_table_atomic(ratios, staging / "evaluation_ratios.csv"),
        write_table_atomic(items, staging / "evaluation_items.csv"),
        write_text_atomic(_markdown(settings, summary, ratios, excluded, truth, selector), staging / "evaluation.md"),
    ]
    if len(excluded):
        paths.append(write_table_atomic(excluded, staging / "evaluation_excluded.csv"))
    if sizing is not None:
        paths.append(write_table_atomic(sizing, staging / "sizing_choice.csv"))
    metrics = _metrics(summary, ratios, truth) | {"n_excluded": float(len(excluded))}
    run.log_metrics(metrics)
    for p in paths:
        run.log_artifact(p)
    write_text_atomic(
        f"run_id: {run.run_id}\ntracking_uri: {run.tracking_uri}\nselector: {selector[1]}\n", staging / "RUN.txt"
    )
    return EvaluateResult(
        run_dir=final, run_id=run.run_id, tracking_uri=run.tracking_uri, metrics=metrics, ratios=ratios
    )
