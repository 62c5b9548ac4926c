"""End-to-end planning flow behind ``stockwise demo`` and ``stockwise recommend``.

validate -> backtest (rolling origin) -> forecast-error model over L + R ->
policy sizing from that error -> expected cost and service by simulation ->
recommendations table (:mod:`pipelines.schema`).

Steps are plain functions over DataFrames; :func:`run_plan` wires them, owns
the I/O and opens one MLflow parent run with a nested run per step. The run
folder is staged under a hidden temporary name and renamed into place only
when complete, so a killed run never leaves a half-written result.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from forecasting import ErrorModel, ForecastConfig, Forecaster, characterise, evaluate, select_models
from forecasting.panel import ValidationReport
from optimization import (
    CostParams,
    EmpiricalDemand,
    ServiceTarget,
    r_s_policy,
    sample_lead_times,
    simulate,
    size_policy,
)
from pipelines.config import RunConfig, ScenarioSettings
from pipelines.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.io import write_table_atomic, write_text_atomic
from pipelines.schema import conform_recommendations
from pipelines.tracking import start_run
from pipelines.validation import DataSet, load_dataset

__all__ = ["PlanResult", "run_plan", "backtest_step", "error_step", "policy_step", "periods_per_year"]

_P_GRID = (np.arange(200) + 0.5) / 200
_PERIODS_PER_YEAR = {"D": 365.0, "B": 260.0, "W": 52.0, "M": 12.0, "Q": 4.0}


@dataclass(frozen=True)
class PlanResult:
    """Where one run's outputs went."""

    run_dir: Path
    run_id: str
    tracking_uri: str
    recommendations: Path
    validation_report: Path
    n_items: int
    kpis: dict[str, float]


@dataclass(frozen=True)
class Backtest:
    """Output of :func:`backtest_step`."""

    cv: pd.DataFrame
    scores: pd.DataFrame
    choice: pd.DataFrame
    features: pd.DataFrame
    horizon: int
    excluded: pd.Index


def periods_per_year(freq: str) -> float:
    """52 for weekly data, 12 for monthly, 365 for daily ..."""
    key = freq.upper().lstrip("0123456789")[:1]
    if key not in _PERIODS_PER_YEAR:
        raise ValueError(f"no periods-per-year for frequency {freq!r}; use D, B, W-*, MS/ME or QS/QE")
    return _PERIODS_PER_YEAR[key]


def _exposure(items: pd.DataFrame) -> np.ndarray:
    """H = L + R per item, in periods."""
    return (items["lead_time"] + items["review_period"]).to_numpy(dtype=float)


def backtest_step(demand: pd.DataFrame, items: pd.DataFrame, cfg: RunConfig, freq: str) -> Backtest:
    """Rolling-origin backtest of the configured models; per-series model choice.

    The horizon covers the longest exposure H = L + R (rounded up), so the error
    model can answer for every item's own H.
    """
    horizon = cfg.forecast.horizon or int(np.ceil(_exposure(items).max()))
    fc_cfg = ForecastConfig(models=tuple(cfg.forecast.models), freq=freq,
                            season_length=cfg.forecast.season_length)
    forecaster = Forecaster(fc_cfg)
    cv = forecaster.cross_validation(demand, h=horizon, n_windows=cfg.forecast.n_windows,
                                     step=cfg.forecast.step)
    features = characterise(demand, season_length=fc_cfg.resolved_season_length,
                            unit_value=items.set_index("unique_id")["unit_cost"], cv=cv)
    segments = features.set_index("unique_id")["sbc_class"]
    scores = evaluate(cv, demand)
    choice = select_models(scores, segments=segments.reindex(scores["unique_id"].unique()))
    excluded = pd.Index(sorted(set(demand["unique_id"]) - set(cv["unique_id"])))
    return Backtest(cv=cv, scores=scores, choice=choice, features=features, horizon=horizon,
                    excluded=excluded)


def error_step(bt: Backtest, demand: pd.DataFrame) -> ErrorModel:
    """Cumulative forecast-error distributions, shrunk toward the SBC-class pool."""
    segments = bt.features.set_index("unique_id")["sbc_class"]
    ids = bt.cv["unique_id"].unique()
    return ErrorModel().fit(bt.cv, segments=segments.reindex(ids), history=demand)


def _future_mean(demand: pd.DataFrame, bt: Backtest, cfg: RunConfig, freq: str) -> pd.DataFrame:
    """Forecast of every backtested series with its chosen model: columns 1..horizon."""
    models = tuple(sorted(set(bt.choice["model"])))
    fc = Forecaster(ForecastConfig(models=models, freq=freq, season_length=cfg.forecast.season_length))
    pred = fc.forecast(demand[demand["unique_id"].isin(bt.choice["unique_id"])], h=bt.horizon)
    chosen = bt.choice.set_index("unique_id")["model"]
    pred["step"] = pred.groupby("unique_id").cumcount() + 1
    pred["value"] = pred.to_numpy()[np.arange(len(pred)), pred.columns.get_indexer(chosen.reindex(pred["unique_id"]))]
    return pred.pivot(index="unique_id", columns="step", values="value").clip(lower=0.0)


def _cumulative(paths: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Sum of per-period values over a fractional H (linear within the last period)."""
    cum = np.concatenate([np.zeros((len(paths), 1)), np.cumsum(paths, axis=1)], axis=1)
    lo = np.floor(H).astype(int)
    hi = np.minimum(lo + 1, cum.shape[1] - 1)
    frac = H - lo
    rows = np.arange(len(paths))
    return cum[rows, lo] * (1 - frac) + cum[rows, hi] * frac


def _horizon_samples(items, demand, bt, em, future) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Samples of demand over H per item (forecast + error quantiles); short series from history."""
    H = _exposure(items)
    ids = items["unique_id"].to_numpy()
    samples = np.empty((len(ids), len(_P_GRID)))
    rate = np.empty(len(ids))
    basis = []
    modelled = np.isin(ids, em.ids_)
    if modelled.any():
        mids = ids[modelled]
        mean_path = future.reindex(mids).to_numpy()
        base = _cumulative(mean_path, H[modelled])
        model = bt.choice.set_index("unique_id")["model"].reindex(mids).to_numpy()
        q = em.quantile(mids[:, None], H[modelled][:, None], _P_GRID[None, :], model=model[:, None],
                        lead_time_std=items["lead_time_std"].to_numpy()[modelled][:, None])
        samples[modelled] = np.maximum(base[:, None] + q, 0.0)
        rate[modelled] = mean_path.mean(axis=1)
        basis += ["forecast error"] * int(modelled.sum())
    short = ~modelled
    if short.any():
        # too little history for a backtest: demand over H from the observed mean and variance
        g = demand[demand["unique_id"].isin(ids[short])].groupby("unique_id")["y"]
        mu, var = g.mean().reindex(ids[short]).to_numpy(), g.var().fillna(0).reindex(ids[short]).to_numpy()
        h = H[short]
        var_h = np.maximum(var, mu) * h + (mu * items["lead_time_std"].to_numpy()[short]) ** 2
        from scipy.stats import norm

        samples[short] = np.maximum(mu[:, None] * h[:, None]
                                    + np.sqrt(var_h)[:, None] * norm.ppf(_P_GRID)[None, :], 0.0)
        rate[short] = mu
    order = {uid: "forecast error" for uid in ids[modelled]} | {uid: "demand history" for uid in ids[short]}
    return samples, rate, [order[u] for u in ids]


def _size(items: pd.DataFrame, samples: np.ndarray, rate: np.ndarray, ppy: float):
    """(R, S) order-up-to level per item at its own service target, and mean demand over H."""
    dist = EmpiricalDemand(samples)
    h = (items["unit_cost"] * items["holding_rate"] / ppy).to_numpy()
    common = dict(demand_rate=rate, review_period=items["review_period"].to_numpy(), integer=True,
                  order_cost=items["order_cost"].to_numpy(), holding_cost=h,
                  lost_sales=items["lost_sales"].to_numpy(), moq=items["moq"].to_numpy(),
                  order_multiple=items["order_multiple"].to_numpy())
    target = items["service_target"].to_numpy()
    by_csl = size_policy("R_S", dist, ServiceTarget("csl", target), **common)
    by_fill = size_policy("R_S", dist, ServiceTarget("fill_rate", target), **common)
    is_fill = (items["service_type"] == "fill_rate").to_numpy()
    return np.where(is_fill, by_fill.order_up_to, by_csl.order_up_to), dist.mean


def _bootstrap_paths(demand, ids, n_paths, n_periods, rng, block=4, window=26) -> np.ndarray:
    """Moving-block bootstrap of each series' recent history: (paths, items, periods).

    Only the last ``window`` periods are resampled so the paths carry the
    current level (a discontinued item's recent zeros, a trend's latest level).
    """
    wide = demand.pivot(index="unique_id", columns="ds", values="y").reindex(ids)
    hist = wide.to_numpy()[:, -window:]
    out = np.empty((n_paths, len(ids), n_periods))
    n_blocks = int(np.ceil(n_periods / block))
    for i, row in enumerate(hist):
        obs = row[~np.isnan(row)]
        starts = rng.integers(0, max(len(obs) - block, 0) + 1, size=(n_paths, n_blocks))
        idx = (starts[..., None] + np.arange(block)).reshape(n_paths, -1)[:, :n_periods]
        out[:, i, :] = obs[np.minimum(idx, len(obs) - 1)]
    return out


def policy_step(items: pd.DataFrame, demand: pd.DataFrame, bt: Backtest, em: ErrorModel,
                future: pd.DataFrame, freq: str, rng: np.random.Generator,
                n_paths: int = 20, n_periods: int = 104) -> pd.DataFrame:
    """Size (R, S) from forecast error and simulate it on bootstrapped demand paths."""
    ppy = periods_per_year(freq)
    samples, rate, basis = _horizon_samples(items, demand, bt, em, future)
    S, mean_h = _size(items, samples, rate, ppy)
    policy = r_s_policy(items["review_period"].to_numpy(), S, moq=items["moq"].to_numpy(),
                        order_multiple=items["order_multiple"].to_numpy(),
                        lost_sales=items["lost_sales"].to_numpy())
    ids = items["unique_id"].to_numpy()
    paths = _bootstrap_paths(demand, ids, n_paths, n_periods, rng)
    L = items["lead_time"].to_numpy().round().astype(int)
    lt_std = items["lead_time_std"].to_numpy()
    sampled = sample_lead_times(L, lt_std, paths.shape, rng) if (lt_std > 0).any() else None
    h = (items["unit_cost"] * items["holding_rate"] / ppy).to_numpy()
    costs = CostParams(unit_cost=items["unit_cost"].to_numpy(), order_cost=items["order_cost"].to_numpy(),
                       holding_cost=h, shortage_cost=items["shortage_cost"].fillna(0).to_numpy(),
                       expiry_cost=items["unit_cost"].to_numpy())
    warmup = int(np.ceil(_exposure(items).max())) + 1
    shelf = items["shelf_life"].fillna(0).to_numpy().astype(int)
    res = simulate(paths, policy, L if sampled is None else L + 3 * np.ceil(lt_std).astype(int),
                   costs=costs, sampled_lead_times=sampled, shelf_life=shelf, warmup=warmup)
    years = (n_periods - warmup) / ppy
    unit_cost = items["unit_cost"].to_numpy()
    safety = S - mean_h
    return pd.DataFrame({
        "unique_id": ids, "policy": "R_S", "review_period": items["review_period"].to_numpy(),
        "lead_time": items["lead_time"].to_numpy(), "order_up_to": S, "safety_stock": safety,
        "safety_stock_value": safety * unit_cost,
        "expected_csl": np.nanmean(res.csl, axis=0), "expected_fill_rate": np.nanmean(res.fill_rate, axis=0),
        "expected_avg_on_hand": res.avg_on_hand.mean(axis=0),
        "expected_holding_cost": res.cost_holding.mean(axis=0) / years,
        "expected_ordering_cost": res.cost_ordering.mean(axis=0) / years,
        "expected_shortage_cost": res.cost_shortage.mean(axis=0) / years,
        "expected_total_cost": (res.cost_holding + res.cost_ordering + res.cost_shortage
                                + res.cost_expiration).mean(axis=0) / years,
        "_basis": basis, "_mean_h": mean_h,
    })


def _reasons(rec: pd.DataFrame) -> pd.Series:
    """Plain-sentence reasons for the baseline policy."""
    parts = []
    for r in rec.rename(columns=lambda c: c.lstrip("_")).itertuples():
        every = f"one demand every {r.adi:.1f} periods on average" if r.adi > 1.05 else "demand every period"
        cv = f"size variability CV2 {r.cv2:.2f}"
        why = f"{r.sbc_class}: {every}, {cv}"
        src = (f"buffer covers {r.forecaster} forecast error over L + R = "
               f"{r.lead_time + r.review_period:g} periods" if r.basis == "forecast error"
               else "history too short to backtest: buffer from demand variance over L + R")
        parts.append(f"{why}; {src}; target {r.service_type} {r.service_target:.0%}.")
    return pd.Series(parts, index=rec.index)


def assemble(items: pd.DataFrame, features: pd.DataFrame, choice: pd.DataFrame,
             sized: pd.DataFrame, run_id: str) -> pd.DataFrame:
    """Join item master, characterisation, model choice and policy into the schema."""
    f = features.set_index("unique_id")
    rec = sized.merge(items[["unique_id", "unit_cost", "service_target", "service_type", "on_hand"]],
                      on="unique_id")
    rec["item_id"] = rec["unique_id"].str.split("@").str[0]
    rec["location"] = rec["unique_id"].str.split("@").str[1]
    for col in ("abc", "xyz", "sbc_class"):
        rec[col] = f[col].reindex(rec["unique_id"]).to_numpy() if col in f else None
    rec["_adi"] = f["adi"].reindex(rec["unique_id"]).to_numpy()
    rec["_cv2"] = f["cv2"].reindex(rec["unique_id"]).to_numpy()
    rec["forecaster"] = choice.set_index("unique_id")["model"].reindex(rec["unique_id"]).fillna(
        "demand history").to_numpy()
    rec["reasons"] = _reasons(rec)
    rec["excess_units"] = np.maximum(rec["on_hand"] - rec["order_up_to"], 0.0)
    rec["shortfall_units"] = np.maximum(rec["safety_stock"] - rec["on_hand"], 0.0)
    rec["excess_value"] = rec["excess_units"] * rec["unit_cost"]
    rec["shortfall_value"] = rec["shortfall_units"] * rec["unit_cost"]
    rec["run_id"] = run_id
    return conform_recommendations(rec.drop(columns=[c for c in rec.columns if c.startswith("_")]
                                            + ["unit_cost"]))


def _stage_dir(out: Path, command: str) -> tuple[Path, Path]:
    stamp = time.strftime("%Y%m%d-%H%M%S")
    final = out / f"{command}-{stamp}-{os.getpid()}"
    staging = out / f".{final.name}.partial"
    staging.mkdir(parents=True, exist_ok=False)
    return staging, final


def _load(cfg: RunConfig, staging: Path) -> DataSet:
    folder = cfg.data
    if folder is None:
        demo = DemoConfig(seed=cfg.seed, n_items=cfg.demo_items, n_weeks=cfg.demo_weeks)
        folder = staging / "data"
        write_demo(generate_demo(demo), folder)
    data = load_dataset(folder, freq=cfg.freq, min_length=cfg.min_length, fill_gaps=cfg.fill_gaps)
    return dataclasses.replace(data, items=apply_scenario(data.items, cfg.scenario))


def apply_scenario(items: pd.DataFrame, scenario: ScenarioSettings) -> pd.DataFrame:
    """Item master after the what-if changes (a new frame; the input is not mutated)."""
    out = items.copy()
    if scenario.service_target is not None:
        out["service_target"] = scenario.service_target
    out["lead_time"] = out["lead_time"] * scenario.lead_time_factor
    out["lead_time_std"] = out["lead_time_std"] * scenario.lead_time_factor
    out["holding_rate"] = out["holding_rate"] * scenario.holding_rate_factor
    return out


def _kpis(rec: pd.DataFrame, items: pd.DataFrame) -> dict[str, float]:
    value = items.set_index("unique_id")["unit_cost"].reindex(rec["unique_id"]).to_numpy()
    return {
        "n_items": float(len(rec)),
        "mean_expected_csl": float(rec["expected_csl"].mean()),
        "mean_expected_fill_rate": float(rec["expected_fill_rate"].mean()),
        "safety_stock_value": float(rec["safety_stock_value"].sum()),
        "expected_inventory_value": float((rec["expected_avg_on_hand"] * value).sum()),
        "expected_total_cost": float(rec["expected_total_cost"].sum()),
        "excess_value": float(rec["excess_value"].sum()),
        "shortfall_value": float(rec["shortfall_value"].sum()),
    }


def run_plan(cfg: RunConfig, command: str = "recommend",
             progress: Callable[[str], None] = lambda _: None) -> PlanResult:
    """Run the whole flow once: one MLflow parent run, one run folder.

    Parameters
    ----------
    cfg : RunConfig
        Data folder (``None``: generate the demo data), models, tracking store.
    command : str, default "recommend"
        Name of the MLflow run and prefix of the run folder.
    progress : callable, optional
        Called with a short message as each step starts.

    Returns
    -------
    PlanResult

    Raises
    ------
    DataValidationError
        When ``cfg.strict`` and validation found errors.
    """
    staging, final = _stage_dir(Path(cfg.out), command)
    try:
        with start_run(command, cfg.tracking_uri, tags={"stockwise.command": command}) as run:
            result = _run_steps(cfg, command, staging, final, run, progress)
        os.replace(staging, final)
        return result
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _run_steps(cfg, command, staging, final, run, progress) -> PlanResult:
    progress("validating data")
    data = _load(cfg, staging)
    run.log_params(cfg.model_dump(mode="json") | {"freq": data.freq})
    run.log_fingerprints({"demand": data.demand, "items": data.items})
    _log_validation(run, data.report, staging)
    if cfg.strict:
        data.report.raise_if_errors()
    rng = np.random.default_rng(cfg.seed)
    with start_run("backtest", nested=True) as step:
        progress(f"backtesting {len(cfg.forecast.models)} models on {data.demand['unique_id'].nunique()} series")
        bt = backtest_step(data.demand, data.items, cfg, data.freq)
        write_table_atomic(bt.cv, staging / "cv.parquet")
        step.log_params({"horizon": bt.horizon, "n_windows": cfg.forecast.n_windows,
                         "models": list(cfg.forecast.models), "n_excluded_short": len(bt.excluded)})
        mase = bt.scores.groupby("model")["mase"].mean()
        step.log_metrics({f"mase.{m}": v for m, v in mase.items()})
        step.log_artifact(staging / "cv.parquet")
    with start_run("error_model", nested=True) as step:
        progress("fitting forecast-error distributions over L + R")
        em = error_step(bt, data.demand)
        table = em.table()
        write_table_atomic(table, staging / "error_quantiles.parquet")
        step.log_artifact(staging / "error_quantiles.parquet")
        step.log_metrics({f"family.{k}": float(v) for k, v in em.family_.stack().value_counts().items()})
    with start_run("policy", nested=True) as step:
        progress("sizing policies and simulating them")
        future = _future_mean(data.demand, bt, cfg, data.freq)
        sized = policy_step(data.items, data.demand, bt, em, future, data.freq, rng)
        rec = assemble(data.items, bt.features, bt.choice, sized, run.run_id)
        kpis = _kpis(rec, data.items)
        step.log_metrics(kpis)
    path = write_table_atomic(rec, staging / "recommendations.csv")
    write_table_atomic(rec, staging / "recommendations.parquet")
    run.log_metrics(kpis)
    run.log_artifact(path)
    write_text_atomic(f"run_id: {run.run_id}\ntracking_uri: {run.tracking_uri}\n", staging / "RUN.txt")
    return PlanResult(run_dir=final, run_id=run.run_id, tracking_uri=run.tracking_uri,
                      recommendations=final / "recommendations.csv",
                      validation_report=final / "validation_report.csv", n_items=len(rec), kpis=kpis)


def _log_validation(run, report: ValidationReport, staging: Path) -> None:
    path = write_table_atomic(report.to_frame(), staging / "validation_report.csv")
    run.log_metrics({"validation.errors": len(report.errors), "validation.warnings": len(report.warnings),
                     "validation.excluded_rows": report.n_excluded_rows})
    run.log_artifact(path)
