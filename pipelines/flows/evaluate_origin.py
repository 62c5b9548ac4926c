"""One origin of ``stockwise evaluate``'s decision backtest, for one decision path or several.

Each path recommends on the history before the origin with the plan's own steps, the work that
does not depend on the path done once for all of them (:func:`_recommend_paths`); per block of
the holdout (a new one every ``replan`` periods) its plan gets time-phased levels
(:func:`_phased_block`), and it is replayed, static and time-phased, on the actual demand next to
the baselines' frontiers (:func:`_one_origin`). :mod:`pipelines.flows.evaluate` runs the origins
and pools their scores.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping

import numpy as np
import pandas as pd

from forecasting import ForecastConfig, Forecaster
from pipelines.data.config import RunConfig
from pipelines.flows.plan_steps import Backtest, assemble, backtest_step, select_step, selector_step_config, sizing_step
from policy_selector.candidates import CandidateSpace
from policy_selector.config import SelectorConfig
from policy_selector.context import prepare_cutoff
from policy_selector.decision_eval import (
    BASELINES,
    baseline_levels,
    baseline_rows,
    phased_baseline_levels,
    phased_baseline_rows,
    replay_phased_table,
    replay_table,
)
from policy_selector.economics import Economics
from policy_selector.phased import (
    exposure_forecasts,
    forecast_paths,
    phased_items,
    phased_plan,
    policy_exposure,
    seasonal_forecasters,
)
from policy_selector.sizing import size_candidates

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
