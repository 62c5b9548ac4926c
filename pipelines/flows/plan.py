"""End-to-end planning flow behind ``stockwise demo`` and ``stockwise recommend``.

validate -> backtest of the configured forecasters (accuracy, segments) ->
forecast-error model over L + R -> policy per item from the champion policy
selector (the Syntetos-Boylan rule when none is registered), sized from
forecast error, with expected cost and service by simulation ->
recommendations table (:mod:`pipelines.report.schema`) -> planner report.

Steps are plain functions over DataFrames; :func:`run_plan` wires them, owns
the I/O and opens one MLflow parent run with a nested run per step. The per-series
steps (backtest cross-validation; choosing, sizing and simulating the policies)
run on blocks of series locally or on Dask (:mod:`pipelines.flows.plan_blocks`);
MLflow and the run folder are written here, by the driver only. The run
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

from forecasting.panel import Issue, ValidationReport
from pipelines.data.config import SELECTOR_FORMS, ConfigError, RunConfig, ScenarioSettings
from pipelines.data.demo_data import DemoConfig
from pipelines.data.inputs import load_inputs
from pipelines.data.io import write_table_atomic, write_text_atomic
from pipelines.data.validation import DataSet
from pipelines.flows.blocks import engine_session
from pipelines.flows.plan_blocks import blocked_backtest, blocked_future, blocked_phased, blocked_select, engine_of
from pipelines.flows.plan_steps import (
    add_meio,
    assemble,
    error_step,
    excluded_items,
    exposure_step,
    meio_step,
    report_inputs,
    select_step,
)
from pipelines.registry.names import CHAMPION_ALIAS, DEFAULT_ALIAS, MODEL_NAME
from pipelines.registry.tracking import (
    get_alias_version,
    list_versions,
    load_model_version,
    resolve_tracking_uri,
    start_run,
)
from pipelines.report.render import write_report
from policy_selector.candidates import CandidateSpace
from policy_selector.selector import PACKAGED_DEFAULT, FixedSelector, RuleSelector

__all__ = [
    "PlanResult",
    "run_plan",
    "apply_scenario",
    "load_champion",
    "load_selector",
    "stage_dir",
    "load_data",
    "log_validation",
]


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
    #: series or items left out, counted by the first reason (validation_report.csv has each one)
    excluded: dict[str, int] = dataclasses.field(default_factory=dict)
    #: steps skipped or degraded, in plain sentences (also MLflow tags)
    notes: tuple[str, ...] = ()


def stage_dir(out: Path, command: str) -> tuple[Path, Path]:
    """Hidden staging folder and the final run folder it is renamed to when complete."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    final = out / f"{command}-{stamp}-{os.getpid()}"
    staging = out / f".{final.name}.partial"
    staging.mkdir(parents=True, exist_ok=False)
    return staging, final


def load_data(cfg: RunConfig, staging: Path) -> DataSet:
    """The validated data folder (or the generated demo, written under ``staging``) after the scenario,
    without the items whose lead time the history cannot back-test (a finding says which)."""
    demo = DemoConfig(seed=cfg.seed, n_items=cfg.demo_items, n_weeks=cfg.demo_weeks)
    data = load_inputs(
        cfg.data,
        demo=demo,
        freq=cfg.freq,
        min_length=cfg.min_length,
        fill_gaps=cfg.fill_gaps,
        demo_folder=staging / "data",
    )
    items = apply_scenario(data.items, cfg.scenario)
    demand, items, issue = exposure_step(data.demand, items, cfg, Path(data.files["items"]).name)
    if issue is not None:
        data.report.add(issue)
        if items.empty:
            data.report.add(
                Issue(
                    "error",
                    "no_data",
                    str(cfg.data or staging / "data"),
                    "every item was excluded by the checks above; no series is long enough for its lead time",
                )
            )
    return dataclasses.replace(data, demand=demand, items=items)


def apply_scenario(items: pd.DataFrame, scenario: ScenarioSettings) -> pd.DataFrame:
    """Item master after the what-if changes (a new frame; the input is not mutated)."""
    out = items.copy()
    if scenario.service_target is not None:
        out["service_target"] = scenario.service_target
    out["lead_time"] = out["lead_time"] * scenario.lead_time_factor
    out["lead_time_std"] = out["lead_time_std"] * scenario.lead_time_factor
    out["holding_rate"] = out["holding_rate"] * scenario.holding_rate_factor
    out["order_cost"] = out["order_cost"] * scenario.order_cost_factor
    return out


def load_champion(tracking_uri: str | None) -> tuple[object | None, str]:
    """The selector ``recommend`` uses and its name: the ``champion``, else the ``default`` path
    that ``train`` registered, else None (the packaged default policy)."""
    for alias in (CHAMPION_ALIAS, DEFAULT_ALIAS):
        version = get_alias_version(MODEL_NAME, alias, tracking_uri)
        if version is not None:
            selector = load_model_version(MODEL_NAME, f"@{alias}", tracking_uri)
            label = "" if alias == CHAMPION_ALIAS else f" (default path {_path_name(selector)}; no champion registered)"
            return selector, f"{MODEL_NAME} v{version}{label}"
    return None, f"packaged default policy (first of {list(PACKAGED_DEFAULT)}; no champion or default registered)"


def _path_name(selector) -> str:
    """A registered default path in the outputs: its fixed policy, or what a tuned path says of itself."""
    chosen = getattr(selector, "chosen_", None)
    if chosen is None and hasattr(selector, "describe"):
        return selector.describe()
    return repr(chosen or "")


def load_selector(spec: str, tracking_uri: str | None) -> tuple[object | None, str]:
    """The selector a decision path names (``RunConfig.selector``) and how it is named in the outputs.

    ``registry``: :func:`load_champion`. ``packaged``: the packaged default policy.
    ``sbc``: the Syntetos-Boylan rule. ``policy:<candidate>``: that candidate for every item
    (items without any demand follow the rule's ``no_stock``, as under every fixed policy).
    ``model:<version>`` / ``model:<alias>``: a registered version of the selector, champion or not.

    Raises
    ------
    ConfigError
        Unknown form, candidate, version or alias; the message lists what exists.
    """
    kind, _, arg = spec.partition(":")
    space = pd.DataFrame(columns=list(CandidateSpace().names))
    if spec == "registry":
        return load_champion(tracking_uri)
    if spec == "packaged":
        packaged = FixedSelector().fit(None, None, space)
        return packaged, f"packaged default policy {packaged.chosen_!r} (--selector packaged)"
    if spec == "sbc":
        return RuleSelector().fit(None, None, space), "Syntetos-Boylan rule (--selector sbc)"
    if kind == "policy" and arg:
        if arg not in space.columns:
            try:  # a shortfall variant of a default candidate (``<candidate>_x<scale>``)
                space = space.reindex(columns=[*space.columns, CandidateSpace.from_names([arg]).names[0]])
            except ValueError as err:
                why = "" if str(err).startswith("unknown candidate") else f" ({err})"
                raise ConfigError(
                    f"--selector {spec}: unknown candidate {arg!r}; choose from {list(space.columns)}{why}"
                ) from None
        return FixedSelector(arg).fit(None, None, space), f"fixed policy {arg!r} for every item (--selector {spec})"
    if kind == "model" and arg:
        return _registered(arg, tracking_uri)
    raise ConfigError(f"unknown --selector {spec!r}; use one of {list(SELECTOR_FORMS)}")


def _registered(ref: str, tracking_uri: str | None) -> tuple[object, str]:
    """A registered version (``3``) or alias (``champion``, ``@default``) of the selector."""
    alias = None if ref.isdigit() else ref.removeprefix("@")
    version = ref if alias is None else get_alias_version(MODEL_NAME, alias, tracking_uri)
    known = [str(v["version"]) for v in list_versions(MODEL_NAME, tracking_uri)]
    if version is None or version not in known:
        what = f"version {ref}" if alias is None else f"alias {alias!r}"
        raise ConfigError(
            f"--selector model:{ref}: {MODEL_NAME} has no {what} in {resolve_tracking_uri(tracking_uri)}; "
            f"registered versions: {known or 'none (run stockwise train)'}"
        )
    selector = load_model_version(MODEL_NAME, version, tracking_uri)
    aliases = [a for a in (CHAMPION_ALIAS, DEFAULT_ALIAS) if get_alias_version(MODEL_NAME, a, tracking_uri) == version]
    note = f"alias {', '.join(aliases)}" if aliases else "not champion"
    return selector, f"{MODEL_NAME} v{version} ({note}; --selector model:{ref})"


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


def run_plan(
    cfg: RunConfig, command: str = "recommend", progress: Callable[[str], None] = lambda _: None
) -> PlanResult:
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
    staging, final = stage_dir(Path(cfg.out), command)
    try:
        with (
            start_run(command, cfg.tracking_uri, tags={"stockwise.command": command}) as run,
            engine_session(engine_of(cfg)),
        ):
            result = _run_steps(cfg, command, staging, final, run, progress)
        os.replace(staging, final)
        return result
    finally:
        if staging.exists():
            shutil.rmtree(staging, ignore_errors=True)


def _run_steps(cfg, command, staging, final, run, progress) -> PlanResult:
    progress("validating data")
    data = load_data(cfg, staging)
    run.log_params(cfg.model_dump(mode="json") | {"freq": data.freq})
    run.log_fingerprints({"demand": data.demand, "items": data.items})
    log_validation(run, data.report, staging)
    if cfg.strict:
        data.report.raise_if_errors()
    data.report.raise_if_blocking()  # no frequency, no series left, or nothing but zeros
    with start_run("backtest", nested=True) as step:
        progress(f"backtesting {len(cfg.forecast.models)} models on {data.demand['unique_id'].nunique()} series")
        bt = blocked_backtest(data.demand, data.items, cfg, data.freq)
        write_table_atomic(bt.cv, staging / "cv.parquet")
        step.log_params(
            {
                "horizon": bt.horizon,
                "n_windows": cfg.forecast.n_windows,
                "models": list(cfg.forecast.models),
                "n_excluded_short": len(bt.excluded),
            }
        )
        step.log_metrics({f"mase.{m}": v for m, v in bt.scores.groupby("model")["mase"].mean().items()})
        step.log_artifact(staging / "cv.parquet")
    with start_run("error_model", nested=True) as step:
        progress("fitting forecast-error distributions over L + R")
        em = error_step(bt, data.demand, cfg.error_model.config())
        write_table_atomic(em.table(), staging / "error_quantiles.parquet")
        step.log_artifact(staging / "error_quantiles.parquet")
        step.log_metrics({f"family.{k}": float(v) for k, v in em.family_.stack().value_counts().items()})
    with start_run("policy", nested=True) as step:
        selector, selector_name = load_selector(cfg.selector, cfg.tracking_uri)
        progress(f"choosing, sizing and simulating a policy per item with the {selector_name}")
        if cfg.service.mode == "item":
            recs = blocked_select(data.demand, data.items, data.freq, selector, cfg)
        else:  # a segment / portfolio target allocates over all items at once, so it does not run in blocks
            recs = select_step(
                data.demand,
                data.items,
                data.freq,
                selector,
                np.random.default_rng(cfg.seed),
                service=cfg.service,
                refit_every=cfg.selector_refit_every,
                shrinkage=cfg.error_model.shrinkage,
            )
        exchange = recs.attrs.pop("exchange_curve", None)  # segment / portfolio mode: the report draws it
        exchange = pd.DataFrame(exchange) if exchange is not None else None
        target_check = recs.attrs.pop("target_backtest", None)  # how far the target was raised, and why
        sizing = recs.attrs.pop("sizing_choice", None)  # default path: each segment's buffer family, and why
        sizing = pd.DataFrame(sizing) if sizing is not None else None
        target_check = pd.DataFrame(target_check) if target_check is not None else None
        if target_check is not None:
            raised = ", ".join(f"{r.segment} +{r.raise_by:.3f}" for r in target_check.itertuples())
            progress(f"target raised by its backtest at {target_check['origin'].iloc[0]}: {raised}")
        rec = assemble(data.items, bt.features, recs, run.run_id, selector_name)
        kpis = _kpis(rec, data.items)
        step.log_params({"selector": selector_name})
        step.log_metrics(kpis | {f"policy.{k}": float(v) for k, v in rec["policy"].value_counts().items()})
    notes = _meio_skipped(data)
    if notes:
        progress(notes[0])
        run.set_tags({"meio.skipped": notes[0]})
    elif data.stages is not None:
        with start_run("meio", nested=True) as step:
            progress(f"placing safety stock over the {len(data.stages)}-stage network (guaranteed service)")
            meio = meio_step(data.stages, data.edges, data.demand, data.items, data.freq, cfg.error_model.config())
            rec = add_meio(rec, meio)
            write_table_atomic(meio.to_frame(), staging / "meio_stages.csv")
            step.log_metrics({f"meio.{k}": float(v) for k, v in meio.summary().items() if k != "method"})
            step.log_artifact(staging / "meio_stages.csv")
    if exchange is not None and not exchange.empty:
        write_table_atomic(exchange, staging / "exchange_curve.csv")
    if target_check is not None:
        write_table_atomic(target_check, staging / "target_backtest.csv")
    if sizing is not None:
        write_table_atomic(sizing, staging / "sizing_choice.csv")
    path = write_table_atomic(rec, staging / "recommendations.csv")
    write_table_atomic(rec, staging / "recommendations.parquet")
    progress("time-phasing the levels of items with a trend or season")
    plan = blocked_phased(data.demand, rec, bt.features, cfg, data.freq)
    run.log_artifact(write_table_atomic(plan, staging / "plan.parquet"))
    kpis["n_phased"] = float(plan.drop_duplicates("unique_id")["phased"].sum())
    run.log_metrics(kpis)
    run.log_artifact(path)
    progress("forecasting each series with its chosen model for the planner report")
    future = blocked_future(data.demand, data.items, bt, cfg, data.freq)
    progress("replaying the recommended policies and the service frontier on the last year")
    extras = report_inputs(rec, data.demand, data.items, bt, em, future, data.freq)
    progress("writing the planner report")
    write_report(
        staging,
        rec,
        data.demand,
        items=data.items,
        run=run,
        exports=("xlsx",),
        title=f"Stockwise {command}: {len(rec)} stocking points",
        exchange_curve=exchange,
        **extras,
    )
    write_text_atomic(
        f"run_id: {run.run_id}\ntracking_uri: {run.tracking_uri}\nselector: {selector_name}\n", staging / "RUN.txt"
    )
    return PlanResult(
        run_dir=final,
        run_id=run.run_id,
        tracking_uri=run.tracking_uri,
        recommendations=final / "recommendations.csv",
        validation_report=final / "validation_report.csv",
        n_items=len(rec),
        kpis=kpis,
        excluded=excluded_items(data.report, rec["unique_id"]).to_dict(),
        notes=notes,
    )


def _meio_skipped(data: DataSet) -> tuple[str, ...]:
    """Why the network step cannot run (a broken or incomplete network), as one note; () when it can."""
    broken = [i for i in data.report.errors if i.check in ("network", "network_incomplete")]
    if not broken:
        return ()
    return (
        f"WARNING: multi-echelon placement (MEIO) skipped: {broken[0].message} "
        "(single-echelon policies are still recommended; `stockwise validate` shows the finding)",
    )


def log_validation(run, report: ValidationReport, staging: Path) -> None:
    """Write the validation report into the run folder and log its counts."""
    path = write_table_atomic(report.to_frame(), staging / "validation_report.csv")
    run.log_metrics(
        {
            "validation.errors": len(report.errors),
            "validation.warnings": len(report.warnings),
            "validation.excluded_rows": report.n_excluded_rows,
        }
    )
    run.log_artifact(path)
