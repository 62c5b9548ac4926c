"""The per-series steps of the planning flow on blocks of series (:mod:`pipelines.flows.blocks`).

Two steps dominate a large run and are independent across series: the
cross-validation of the backtest and choosing, sizing and simulating a policy
per item (:func:`~pipelines.flows.plan_steps.select_step`, which runs its own
backtest, error models, sizing, selector features and inference and the
expected-outcome simulation). Both run here on hash buckets of ``unique_id``;
the cross-series parts (ABC classes, per-segment model choice, the error-model
pools of the backtest step) stay on the driver on the gathered table.

What depends on the blocks: ``select_step`` sees one block at a time, so its
error-model segment pools, forecast horizon (longest exposure in the block) and
random stream (:func:`~pipelines.flows.blocks.block_rng`) are per block. The
blocks are a function of the ids and ``block_size`` only, so local and Dask
runs with the same ``block_size`` give the same recommendations.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from forecasting import ErrorModelConfig, ForecastConfig
from pipelines.data.config import RunConfig
from pipelines.flows.blocks import BlockEngine, block_rng, map_blocks, n_blocks
from pipelines.flows.plan_steps import (
    Backtest,
    backtest_cv,
    backtest_horizon,
    backtest_step,
    chosen_forecast,
    future_step,
    phased_frame,
    phased_rows,
    phased_step,
    select_step,
    sizing_step,
)

__all__ = ["engine_of", "blocked_backtest", "blocked_select", "blocked_future", "blocked_phased"]


def engine_of(cfg: RunConfig) -> BlockEngine:
    """The block engine a run config asks for."""
    return BlockEngine(kind=cfg.engine, block_size=cfg.block_size, workers=cfg.workers, scheduler=cfg.scheduler)


def _in_process(engine: BlockEngine, demand: pd.DataFrame) -> bool:
    """One local block: run in this process and let statsforecast use every core itself."""
    return engine.kind == "local" and n_blocks(demand["unique_id"].nunique(), engine.block_size) == 1


def _cv_block(demand, items, block, cfg, freq, horizon, n_jobs):
    return backtest_cv(demand, cfg, freq, horizon, n_jobs=n_jobs)


def blocked_backtest(demand: pd.DataFrame, items: pd.DataFrame, cfg: RunConfig, freq: str) -> Backtest:
    """:func:`~pipelines.flows.plan_steps.backtest_step` with its cross-validation on blocks."""
    engine = engine_of(cfg)
    n_jobs = -1 if _in_process(engine, demand) else 1
    parts = map_blocks(
        _cv_block, demand, items, engine, cfg=cfg, freq=freq, horizon=backtest_horizon(items, cfg), n_jobs=n_jobs
    )
    cv = pd.concat(parts, ignore_index=True)
    return backtest_step(demand, items, cfg, freq, cv=cv)


def _select_block(
    demand, items, block, freq, selector, seed, n_jobs, refit_every=1, shrinkage=ErrorModelConfig.shrinkage
):
    rng = block_rng(seed, block)
    return select_step(
        demand,
        items,
        freq,
        selector,
        rng,
        n_jobs=n_jobs,
        refit_every=refit_every,
        shrinkage=shrinkage,
        choose_sizing=False,
    )


def blocked_select(demand: pd.DataFrame, items: pd.DataFrame, freq: str, selector, cfg: RunConfig) -> pd.DataFrame:
    """:func:`~pipelines.flows.plan_steps.select_step` per block, rows in ``unique_id`` order.

    The default path's sizing is chosen once on the driver (:func:`~pipelines.flows.plan_steps.sizing_step`,
    the same choice for every block and engine); its evidence is in ``attrs["sizing_choice"]``.
    """
    engine = engine_of(cfg)
    n_jobs = (os.cpu_count() or 1) if _in_process(engine, demand) else 1
    cores = os.cpu_count() or 1
    shrinkage = cfg.error_model.shrinkage
    selector, choice = sizing_step(
        demand,
        items,
        freq,
        selector,
        cfg.service,
        n_jobs=cores,
        refit_every=cfg.selector_refit_every,
        shrinkage=shrinkage,
    )
    parts = map_blocks(
        _select_block,
        demand,
        items,
        engine,
        freq=freq,
        selector=selector,
        seed=cfg.seed,
        n_jobs=n_jobs,
        refit_every=cfg.selector_refit_every,
        shrinkage=shrinkage,
    )
    out = pd.concat(parts, ignore_index=True).sort_values("unique_id", ignore_index=True)
    out.attrs = {} if choice is None else {"sizing_choice": choice.frame().to_dict("list")}
    return out


def _future_block(demand, items, block, choice, horizon, cfg, freq, n_jobs):
    mine = choice[choice["unique_id"].isin(demand["unique_id"].unique())]
    if mine.empty:
        return None
    return chosen_forecast(demand, mine, horizon, cfg, freq, n_jobs=n_jobs)


def blocked_future(demand: pd.DataFrame, items: pd.DataFrame, bt: Backtest, cfg: RunConfig, freq: str) -> pd.DataFrame:
    """:func:`~pipelines.flows.plan_steps.future_step` per block: the same table, the fits off the driver.

    Each series is forecast on its own by its chosen statistical model, so a block
    gives the rows the whole panel would. A global (LightGBM) model among the
    chosen ones is one fit over every series: then the whole panel runs here, as before.
    """
    models = tuple(sorted(set(bt.choice["model"])))
    engine = engine_of(cfg)
    if ForecastConfig(models=models, freq=freq).ml_models or _in_process(engine, demand):
        return future_step(demand, bt, cfg, freq)
    choice = bt.choice[["unique_id", "model"]]
    parts = map_blocks(
        _future_block, demand, items, engine, choice=choice, horizon=bt.horizon, cfg=cfg, freq=freq, n_jobs=1
    )
    return pd.concat([p for p in parts if p is not None]).sort_index()


#: recommendation columns the time-phasing reads (the block's rows travel as its "items")
_PHASED_REC = ("unique_id", "policy", "lead_time", "review_period", "reorder_point", "order_up_to", "forecaster")


def _phased_block(demand, rec, block, features, cfg, freq, frame):
    if rec.empty:
        return None
    mine = features[features["unique_id"].astype(str).isin(rec["unique_id"].astype(str))]
    return phased_rows(demand, rec, mine, cfg, freq, frame, n_jobs=1)


def blocked_phased(
    demand: pd.DataFrame, rec: pd.DataFrame, features: pd.DataFrame, cfg: RunConfig, freq: str
) -> pd.DataFrame:
    """:func:`~pipelines.flows.plan_steps.phased_step` per block: the same ``plan.parquet`` rows.

    Each item's forecast path and flags depend on its own series only; what the items share
    (the forecast length, the dates, whole units) is computed here once
    (:func:`~pipelines.flows.plan_steps.phased_frame`). The block's recommendation rows are
    passed where the other steps pass the item master. Rows come back in ``rec``'s order.
    """
    engine = engine_of(cfg)
    models = tuple(sorted(set(rec["forecaster"].dropna().astype(str)) - {"none"}))
    if _in_process(engine, demand) or not models or ForecastConfig(models=models, freq=freq).ml_models:
        return phased_step(demand, rec, features, cfg, freq)
    table = rec[list(_PHASED_REC)]
    frame = phased_frame(demand, rec, freq)
    parts = map_blocks(_phased_block, demand, table, engine, features=features, cfg=cfg, freq=freq, frame=frame)
    out = pd.concat([p for p in parts if p is not None], ignore_index=True)
    order = pd.Index(rec["unique_id"].astype(str)).get_indexer(out["unique_id"])
    return out.iloc[np.lexsort((out["step"].to_numpy(), order))].reset_index(drop=True)
