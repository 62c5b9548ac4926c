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

This module is the front door: the settings, the run and the pooling of the origins' scores. The
replay of one origin is :mod:`pipelines.flows.evaluate_origin`'s, the outputs (and the planted
truth of the demo) :mod:`pipelines.flows.evaluate_report`'s.
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

from pipelines.data.config import RunConfig
from pipelines.data.validation import validate_items
from pipelines.flows.evaluate_origin import _one_origin
from pipelines.flows.evaluate_report import EvaluateResult, _score_truth, _truth, _write
from pipelines.flows.plan import load_data, load_selector, log_validation, stage_dir
from pipelines.flows.plan_steps import exposure_step
from pipelines.registry.tracking import start_run
from policy_selector.decision_eval import equal_service, summarise
from policy_selector.labels import _extra_shortage_cost

__all__ = [
    "EvaluateSettings",
    "EvaluateResult",
    "run_evaluate",
    "origin_positions",
    "replay_selectors",
    "replay_by_origin",
]


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
