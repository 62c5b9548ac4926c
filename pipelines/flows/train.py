"""``stockwise train``: label policies by simulation, train the selector, evaluate, register.

Steps (one MLflow parent run ``train`` with nested runs per step):

1. data: a data folder (validated) or the seeded demo;
2. the study plan: test window, backtest windows and training cutoffs chosen from
   the history length (:func:`policy_selector.workflow.plan_study`; printed and logged);
3. labels at the cutoffs (backtests, sizing, expected cost of every candidate);
4. features, the cost-sensitive LightGBM selector, evaluation on held-out items
   (GroupKFold by item) and held-out time against the oracle, the SBC rule, the
   best single policy and the packaged default;
5. the final selector is logged and registered as a new version of
   ``stockwise-policy-selector``, always. With no champion yet, the decision replay
   (``stockwise evaluate``'s, :func:`pipelines.flows.evaluate.replay_by_origin`) judges the
   paths at the held-out-time origin: the held-out-time classifier (fitted before it), the
   packaged default, the best single policy of the labels of the same training cutoffs and the
   SBC rule recommend on the history before it and are replayed on the held-out window (the
   path-independent work, from the forecast backtest to the baselines, done once for the four).
   With ``gate_origins`` k > 1 the same at k origins ``T`` apart, each with a classifier and a
   best single policy fitted only on labels before it
   (:func:`policy_selector.workflow.origin_fits`), pooled; each origin's verdict is said too.
   The replay runs with the run's settings when ``--config`` is a ``stockwise.yaml``.
   :func:`policy_selector.evaluation.replay_gate` picks the ``default`` alias (the packaged
   default unless a path is cheaper by the retrain margin at no worse CSL) and whether the
   classifier takes the ``champion`` alias (it must beat the default path and the best single
   policy the same way). ``--no-replay``: the label-based gate
   (:func:`policy_selector.evaluation.gate`) instead. When the replay cannot run, nothing is
   aliased and the output says why. Later promotions go through ``stockwise retrain``.

   With ``shortfall_scales`` (``--shortfall-scales 0.5,2``, YAML ``train: shortfall_scales:``) the
   space gains shortfall variants of ``scale_candidates`` and every fit is a
   :class:`~policy_selector.shortfall_tuning.ShortfallPaths`: the gate replays the shortfall-tuned
   classifier and tuned best single policy next to the four paths (the classifier and best single
   policy those of the base candidates, as without the setting); the tuned classifier is
   registered too and takes ``champion`` if it is the one promoted; a winning tuned best single
   policy is registered as the ``default`` path.

Outputs in ``--out``: ``labels.parquet``, ``outcomes.parquet`` (full cost
matrix: every candidate's cost by type and service per item and cutoff),
``features.parquet``, ``evaluation.csv`` (the label-based evaluation), ``confusion.csv``,
``choices.parquet``, ``replay.csv`` (the decision replay of every path, pooled over the
origins, when it ran), ``replay_origins.csv`` (each origin's own), ``decision.txt`` (what the
gate decided and why), ``shortfall_tuning.json`` (with ``shortfall_scales``: the scale chosen per
base candidate and segment).

Also provides ``train_challenger`` / ``evaluate_version`` for ``stockwise retrain``: the
challenger and the champion are judged by the same decision replay, at the retrain's cutoff on
its held-out periods (:func:`evaluate_versions`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from functools import partial
from operator import attrgetter
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.config import RunConfig
from pipelines.data.io import write_table_atomic, write_text_atomic
from pipelines.flows.evaluate import replay_selectors
from pipelines.flows.train_gate import (
    GateInputs,
    GateOutcome,
    choose_paths,
    gate_champion,
    gate_winner,
    origin_verdicts,
    replay_paths,
    replay_run_config,
)
from pipelines.flows.train_log import log_selector, log_study, log_tuning, study_metrics
from pipelines.flows.train_settings import (
    AUTO_GATE_ORIGINS,
    TrainSettings,
    load_train_config,
    load_train_inputs,
    load_train_settings,
    parse_list,
    period_name,
    selector_config,
    settings_from_run,
    study_plan,
    with_options,
)
from pipelines.registry.names import GATE_TAG, MODEL_NAME, PATH_TAG
from pipelines.registry.tracking import (
    load_model_version,
    register_version,
    resolve_tracking_uri,
    start_run,
    store_dir,
)
from policy_selector import PolicySelector, run_study
from policy_selector.shortfall_tuning import ShortfallPaths
from policy_selector.workflow import plan_gate_origins

__all__ = [
    "TrainSettings",
    "TrainResult",
    "run_train",
    "train_challenger",
    "evaluate_version",
    "evaluate_versions",
    "selector_config",
    "study_plan",
    "period_name",
    "load_train_settings",
    "load_train_config",
    "load_train_inputs",
    "settings_from_run",
    "with_options",
    "parse_list",
    "choose_paths",
    "replay_paths",
    "origin_verdicts",
    "GateInputs",
    "AUTO_GATE_ORIGINS",
    "MODEL_NAME",
]


@dataclass
class TrainResult:
    """What one ``stockwise train`` produced."""

    run_id: str
    version: str | None
    champion: str | None
    evaluation: pd.DataFrame
    paths: dict[str, Path] = field(default_factory=dict)
    plan: str = ""
    decision: str = ""
    default: str | None = None
    #: the decision replay of every path (``replay_selectors``), None when skipped or it could not run
    replay: pd.DataFrame | None = None
    #: "replay", "labels" (--no-replay), "none" (the replay could not run) or "" (a champion exists / not registered)
    gate_basis: str = ""
    #: each origin's own replay (columns ``origin``, ``path`` and the scores of ``replay``), None as ``replay``
    replay_origins: pd.DataFrame | None = None
    #: the registered shortfall-tuned classifier (``shortfall_scales`` set), else None
    tuned_version: str | None = None
    #: every version registered, the alias it got and why (:class:`pipelines.flows.train_log.Registered`)
    registered: tuple = ()
    #: ``choose`` without ``register``: the path the gate chose and its logged artifact, (replay key, artifact)
    winner: tuple[str, str] | None = None
    #: the registered model's name (``TrainSettings.model_name``)
    model_name: str = MODEL_NAME


def run_train(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    freq: str,
    settings: TrainSettings,
    out: Path,
    tracking_uri: str | None = None,
    register: bool = True,
    run_config: RunConfig | None = None,
    choose: bool = False,
) -> TrainResult:
    """Label, train, evaluate, log and register the policy selector; gate the first champion.

    ``run_config`` (the run's ``stockwise.yaml``: ``stockwise train --config``) sets the decision
    replay's forecast, service and seed settings, as ``recommend`` runs with them; None = a
    default ``RunConfig`` with this frequency and ``settings.seed``. ``choose`` (with ``register``
    False: ``stockwise retrain``'s challenger): run the gate's judgement anyway, move no alias, and
    say in :attr:`TrainResult.winner` which path it chose and the artifact logged for it.

    Returns
    -------
    TrainResult
        MLflow run id, registered versions (each with its alias and why), champion version after
        the run, evaluation table, written paths, the study plan, the champion decision and the
        default path.

    Raises
    ------
    ValueError
        When the history is too short to learn anything (see :func:`study_plan`).
    """
    uri = resolve_tracking_uri(tracking_uri)
    plan = study_plan(demand, freq, settings)
    gated = (register or choose) and settings.replay  # the replay gate runs (unless a champion exists)
    n_origins, origins_reason = plan_gate_origins(plan, settings.gate_origins, AUTO_GATE_ORIGINS) if gated else (0, "")
    plan_reason = plan.reason + (f"; {origins_reason}" if gated else "")
    cfg = selector_config(settings, freq, plan)
    fit_paths, views = _fitters(settings, freq)
    rng = np.random.default_rng(settings.seed)
    out = Path(out)
    with start_run("train", uri) as run:
        run.log_params(_params(settings, cfg, plan, plan_reason, n_origins))
        run.log_fingerprints({"demand": demand, "items": items})
        extra = plan.extra_train_cutoffs
        study = run_study(demand, items, cfg, rng, fit_paths, settings.n_splits, extra_train_cutoffs=extra, views=views)
        paths = log_study(study, out)
        run.log_metrics(study_metrics(study.evaluation))
        run.log_params({"best_single": study.best_single})
        version, tuned_version = _log_models(run, study, settings.model_name if register else None, out, paths)
        inputs = GateInputs(demand, items, freq, cfg, rng, fit_paths, n_origins, extra, run_config)
        outcome = GateOutcome()
        if register:
            outcome = gate_champion(run, study, settings, version, uri, inputs, tuned_version)
        elif choose:
            outcome = gate_winner(run, study, settings, uri, inputs)
        paths |= _write_outcome(outcome, out)
        result = _result(run.run_id, (version, tuned_version), study, paths, plan_reason, outcome)
        return replace(result, model_name=settings.model_name)


def _result(run_id: str, versions: tuple, study, paths: dict, plan: str, outcome: GateOutcome) -> TrainResult:
    """The :class:`TrainResult` of a run: its (plain, tuned) registered versions, study and gate outcome."""
    version, tuned = (None if v is None else str(v) for v in versions)
    gate = ("champion", "decision", "default", "replay", "replay_origins", "registered", "winner")
    said = {k: getattr(outcome, k) for k in gate} | {"gate_basis": outcome.basis}
    return TrainResult(
        run_id, version, evaluation=study.evaluation, paths=paths, plan=plan, tuned_version=tuned, **said
    )


def _fitters(settings: TrainSettings, freq: str) -> tuple[Callable, dict | None]:
    """(selector factory, views): with ``shortfall_scales`` a :class:`ShortfallPaths` per fit, the tuned paths
    read off each fitted one (one fit per fold, not one more per path: :func:`run_study`'s ``views``)."""
    make = partial(PolicySelector, period_name=period_name(freq), random_state=settings.seed)
    if settings.shortfall_scales is None:
        return make, None
    return partial(ShortfallPaths, make()), {
        "classifier_tuned": attrgetter("tuned_"),
        "best_single_tuned": attrgetter("tuned_single_"),
    }


def _params(settings: TrainSettings, cfg, plan, plan_reason: str, n_origins: int) -> dict:
    """The train run's MLflow params."""
    tuned = settings.shortfall_scales is not None
    return {
        "seed": settings.seed,
        "freq": cfg.freq,
        "candidates": ",".join(cfg.space.names),
        "test_periods": cfg.test_periods,
        "n_windows": cfg.n_windows,
        "extra_train_cutoffs": plan.extra_train_cutoffs,
        "label_paths": cfg.label_paths,
        "service_tolerance": cfg.service_tolerance,
        "refit_every": settings.refit_every,
        "shrinkage": settings.shrinkage,
        "n_splits": settings.n_splits,
        "plan": plan_reason,
        "gate_origins": n_origins,
        "shortfall_scales": "" if not tuned else ",".join(f"{x:g}" for x in settings.shortfall_scales),
        "scale_candidates": ",".join(settings.scale_candidates or ()) if tuned else "",
    }


def _log_models(run, study, registered: str | None, out: Path, paths: dict) -> tuple[str | None, str | None]:
    """Log (and register under ``registered``) the classifier, and with ``shortfall_scales`` the tuned one and
    ``shortfall_tuning.json`` (added to ``paths``): (version, tuned version)."""
    bundle = study.selector if isinstance(study.selector, ShortfallPaths) else None
    model = study.selector if bundle is None else bundle.classifier_
    version = log_selector(run, model, "policy_selector", registered)
    if bundle is None:
        return version, None
    paths["shortfall_tuning"] = log_tuning(run, bundle, out)
    return version, log_selector(run, bundle.tuned_, "policy_selector_tuned", registered)


def _write_outcome(outcome: GateOutcome, out: Path) -> dict[str, Path]:
    """``decision.txt``, ``replay.csv`` and ``replay_origins.csv`` of what the gate did."""
    paths = {}
    if outcome.decision:
        paths["decision"] = write_text_atomic(outcome.decision + "\n", out / "decision.txt")
    if outcome.replay is not None:
        paths["replay"] = write_table_atomic(outcome.replay.rename_axis("path").reset_index(), out / "replay.csv")
    if outcome.replay_origins is not None:
        paths["replay_origins"] = write_table_atomic(outcome.replay_origins, out / "replay_origins.csv")
    return paths


# -- retrain hooks (pipelines.flows.retrain) ----------------------------------------------------------


def _freq_of(demand: pd.DataFrame) -> str:
    dates = pd.DatetimeIndex(sorted(pd.to_datetime(demand["ds"]).unique()))
    freq = pd.infer_freq(dates[-min(len(dates), 30) :])
    if freq is None:
        raise ValueError(
            "cannot infer the demand frequency from the last 30 dates; set freq in the train config (e.g. freq: W-MON)"
        )
    return freq


def train_challenger(request) -> str:
    """Train on ``request.demand`` (up to ``request.cutoff``), register a new version; never moves an alias.

    The settings are the request's (the retrain's ``train:`` settings), else those of the run
    (:func:`settings_from_run`: its seed and frequency), else the defaults; the model name is the request's.
    The version is the plain classifier; with ``shortfall_scales`` it is the path train's own gate chose
    among the trained paths (``run_train(choose=True)``: the promoted classifier, plain or tuned, else the
    default path), the version ``stockwise train`` would have registered as its winner. Its tags
    :data:`~pipelines.registry.names.PATH_TAG` and :data:`~pipelines.registry.names.GATE_TAG` say which
    path and why (``stockwise retrain``'s decision record repeats them).
    """
    run = getattr(request, "run_config", None)
    settings = getattr(request, "train_settings", None)
    if settings is None:
        settings = TrainSettings() if run is None else settings_from_run(run)
    settings = settings.model_copy(update={"model_name": request.model_name})
    store = store_dir(resolve_tracking_uri(request.tracking_uri))
    result = run_train(
        request.demand,
        request.items,
        settings.freq or _freq_of(request.demand),
        settings,
        store / "train-challenger",
        request.tracking_uri,
        register=False,
        run_config=run,
        choose=settings.shortfall_scales is not None,
    )
    path, artifact = getattr(result, "winner", None) or ("classifier", "policy_selector")
    why = (
        getattr(result, "decision", "")
        or "the plain classifier (train's gate judges the paths only with shortfall_scales)"
    )
    tags = {PATH_TAG: path, GATE_TAG: why[:5000]}
    return register_version(request.model_name, result.run_id, artifact, request.tracking_uri, tags)


#: the numbers of a decision replay that ``evaluate_version`` returns (with ``total_cost`` and ``service``)
REPLAY_SCORES = ("yearly_cost", "csl", "fill_rate", "inventory_value", "cost", "ratio_csl", "ratio_fill_rate")


def evaluate_versions(versions, request, selectors=None) -> dict[str, dict[str, float]]:
    """The decision replay of registered selectors on ``request.holdout``, judged together.

    Each version recommends at ``request.cutoff`` on ``request.demand`` (``recommend``'s own
    steps) and its time-phased plan is replayed on the actual demand of the held-out periods,
    next to the baselines, with the same seed (:func:`pipelines.flows.evaluate.replay_selectors`,
    the replay ``stockwise train`` gates on and ``stockwise evaluate`` runs); the
    path-independent work is done once for all versions. The run settings are
    ``request.run_config`` (the retrain's: frequency, seed, service) when given, else the
    frequency inferred from the data, the train seed and the default service settings.

    Parameters
    ----------
    versions : iterable of str
        Registered versions of ``request.model_name``.
    request : EvalRequest
    selectors : mapping of str -> (selector, name), optional
        More paths judged in the same replay, as objects (what
        :func:`pipelines.flows.plan.load_selector` returns; e.g. the packaged default that
        ``recommend`` uses with nothing registered), keyed apart from the versions.

    Returns
    -------
    dict of key -> scores (the versions, then the keys of ``selectors``)
        ``total_cost`` (the replay's yearly cost with every unit short priced at least at the
        shortage cost its service target implies: ``yearly_cost``), ``service`` (the achieved
        CSL: ``csl``), ``fill_rate``, ``inventory_value``, ``cost`` (over the window),
        ``ratio_csl`` / ``ratio_fill_rate`` (inventory over the best baseline's at equal achieved
        service; left out when that service lies outside every baseline's frontier), ``n_items``,
        ``n_excluded``, ``n_not_planned``, ``holdout_periods``.

    Raises
    ------
    ValueError
        When the replay cannot run (history before the cutoff too short, no item plannable).
    """
    demand = pd.concat([request.demand, request.holdout], ignore_index=True)
    periods = int(pd.to_datetime(request.holdout["ds"]).nunique())
    cfg = _replay_config(request)
    paths = {
        v: (load_model_version(request.model_name, v, request.tracking_uri), f"{request.model_name} v{v}")
        for v in dict.fromkeys(map(str, versions))
    }
    clash = set(paths) & set(selectors or {})
    if clash:
        raise ValueError(f"selector key(s) {sorted(clash)} clash with the registered versions judged")
    paths |= dict(selectors or {})
    table = replay_selectors(demand, request.items, cfg.freq, cfg, periods, paths)
    counts = ("n_items", "n_excluded", "n_not_planned")
    out = {}
    for v, row in table.iterrows():
        numbers = {k: float(row[k]) for k in (*REPLAY_SCORES, *counts)}
        # a ratio is NaN when the path's service lies outside every baseline's frontier: left out
        # (decision.json stays standard JSON)
        numbers = {k: x for k, x in numbers.items() if np.isfinite(x)}
        out[v] = {"total_cost": float(row["yearly_cost"]), "service": float(row["csl"])} | numbers
        out[v]["holdout_periods"] = float(periods)
    return out


def _replay_config(request) -> RunConfig:
    """The run settings of the replay: the request's (its tracking store), the freq inferred when unset."""
    run = getattr(request, "run_config", None)
    freq = run.freq if run is not None and run.freq else _freq_of(request.demand)
    return replay_run_config(
        run, freq, request.tracking_uri, getattr(request, "train_settings", None) or TrainSettings()
    )


def evaluate_version(version: str, request) -> dict[str, float]:
    """The decision replay of one registered selector on ``request.holdout`` (:func:`evaluate_versions`).

    ``evaluate_version.many`` and ``evaluate_version.with_selectors`` are :func:`evaluate_versions`:
    ``stockwise retrain`` judges the challenger and the champion (or, with nothing registered,
    the packaged default selector) in one replay.
    """
    return evaluate_versions([version], request)[str(version)]


evaluate_version.many = evaluate_versions
evaluate_version.with_selectors = evaluate_versions
