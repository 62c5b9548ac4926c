"""Scheduled retrain with champion-challenger: ``stockwise retrain``.

A challenger is trained on data up to a cutoff; challenger and champion are
scored on the same latest held-out window (with no champion: the ``default`` alias that
``stockwise train`` registered, else the packaged default policy: what ``recommend`` uses then;
for the policy selector: the decision
replay of ``stockwise evaluate``, each model recommending at the cutoff and its
time-phased plan replayed on the actual demand of the window, with the run's own settings
(:attr:`RetrainConfig.run`: frequency, seed, service), giving the yearly
cost with shortages priced, the achieved CSL and the inventory value); the
challenger is promoted, by moving the registry alias, only when it is cheaper by
``margin`` without losing more than ``max_service_drop`` of service. Every run
leaves a decision record.

Exit codes (for cron and orchestrators)
---------------------------------------
====  =========================================================
0     challenger promoted (over the champion, else the default path, else the packaged default)
3     champion (or, with none, the default path or the packaged default) kept: the challenger did not win
1     failed (bad input, training or evaluation error)
75    another retrain holds the lock (EX_TEMPFAIL): try again later
====  =========================================================

Crash safety (``kill -9`` at any moment)
----------------------------------------
One retrain at a time: an ``fcntl.flock`` on ``retrain.lock`` next to the
tracking store; the kernel frees it when the holder dies. Outputs are staged
in ``<out>/.staging-<id>/`` and renamed to ``<out>/<id>/`` in one
``os.replace``: that rename is the commit point. The alias moves only after
it, and the record is then rewritten (atomically) with ``alias_applied: true``.
The next run first recovers: it deletes uncommitted staging folders (their
challenger versions are tagged ``abandoned``), marks the MLflow runs a killed
retrain left RUNNING as KILLED (its ``retrain`` run, and the ``train`` runs of a
challenger killed mid-training, found through the ``<out>/.training-<id>`` marker
holding the training's start time), and rolls forward a committed promotion
whose alias was not yet moved. What it did is printed (``RECOVERED: ...``) and
kept in the decision record. So the champion alias changes only when a whole
decision completed, and a rerun after a crash always succeeds.

``retrain`` calls an injected ``checkpoint(point)`` at each named point of
:data:`PAUSE_POINTS` (a no-op by default), so tests can stop the process there and kill it.
"""

from __future__ import annotations

import importlib
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, replace
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.flows.retrain_commit import (
    DECISION_FILE,
    DECISION_TAG,
    PAUSE_POINTS,
    STATUS_TAG,
    TRAINING,
    commit,
    lock_path_for,
    no_checkpoint,
    recover,
    train_marked,
)
from pipelines.flows.retrain_decision import (
    Checkpoint,
    Decision,
    EvalRequest,
    EvaluateFn,
    RetrainConfig,
    RetrainExit,
    TrainFn,
    TrainRequest,
    decide,
    run_settings,
)
from pipelines.registry.lock import LockedError, exclusive_lock
from pipelines.registry.names import DEFAULT_ALIAS, GATE_TAG, PATH_TAG
from pipelines.registry.tracking import (
    fingerprint,
    get_alias_version,
    get_version_tags,
    resolve_tracking_uri,
    set_version_tags,
    start_run,
)

__all__ = [
    "RetrainExit",
    "RetrainConfig",
    "TrainRequest",
    "EvalRequest",
    "Decision",
    "retrain",
    "run_retrain",
    "load_run_data",
    "recover",
    "lock_path_for",
    "decide",
    "PAUSE_POINTS",
    "DECISION_FILE",
    "no_checkpoint",
]


def _split(demand: pd.DataFrame, periods: int) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    dates = pd.Series(pd.to_datetime(demand["ds"]).unique()).sort_values()
    if len(dates) <= periods + 1:
        raise ValueError(f"demand has {len(dates)} periods; need more than holdout_periods={periods} + 1")
    cutoff = dates.iloc[-periods - 1]
    after = pd.to_datetime(demand["ds"]) > cutoff
    return cutoff, demand[~after], demand[after]


#: the incumbent key when neither alias exists: the packaged default policy ``recommend`` then uses
PACKAGED = "packaged"


def packaged_default() -> tuple[object, str]:
    """What ``recommend`` uses with neither a ``champion`` nor a ``default`` alias: (selector, name)."""
    from pipelines.flows.plan import load_selector  # the plan's own definition of the packaged default

    return load_selector(PACKAGED, None)


def _evaluate_all(
    evaluate: EvaluateFn,
    versions: Sequence[str],
    request: EvalRequest,
    selectors: Mapping[str, tuple[object, str]] | None = None,
) -> list[dict[str, float]]:
    """The scores of each version, then of each of ``selectors`` (objects, not registry versions).

    An ``evaluate`` with a ``many`` attribute, ``many(versions, request) -> {version: scores}``,
    judges the versions in one pass (the policy selector's decision replay shares its
    path-independent work); otherwise one call per version. ``selectors`` need the attribute
    ``with_selectors(versions, request, selectors) -> {key: scores}`` (the caller checks).
    """
    if selectors:
        scored = evaluate.with_selectors(list(versions), request, selectors)
        return [dict(scored[str(k)]) for k in (*versions, *selectors)]
    many = getattr(evaluate, "many", None)
    if many is None:
        return [dict(evaluate(v, request)) for v in versions]
    scored = many(list(versions), request)
    return [dict(scored[str(v)]) for v in versions]


def retrain(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    train: TrainFn,
    evaluate: EvaluateFn,
    config: RetrainConfig = RetrainConfig(),
    items_subset: Sequence[str] | None = None,
    checkpoint: Checkpoint = no_checkpoint,
) -> Decision:
    """Train a challenger, compare it with the champion on the latest held-out window, decide.

    Parameters
    ----------
    demand, items : DataFrame
        Validated demand (long format) and item master.
    train : callable ``(TrainRequest) -> str``
        Trains on ``request.demand`` (up to the cutoff), registers a new version
        of ``request.model_name`` and returns that version. It must not move the alias.
        The version's tags :data:`~pipelines.registry.names.PATH_TAG` / ``GATE_TAG``, when set, say which
        of train's paths it is and why (the record's ``challenger_path`` / ``challenger_why``).
    evaluate : callable ``(version, EvalRequest) -> mapping``
        Scores one registered version on ``request.holdout``; must return ``total_cost`` and
        ``service`` (higher is better), may add other numbers. Optional attributes ``many`` and
        ``with_selectors`` (:data:`~pipelines.flows.retrain_decision.EvaluateFn`); without the
        latter a first challenger with neither alias set is promoted unjudged (the reason says so).
    config : RetrainConfig
    items_subset : sequence of str, optional
        Limit retraining to these items (e.g. from :func:`pipelines.flows.triggers.detect_triggers`).
    checkpoint : callable ``(point) -> None``
        Called at each point of :data:`PAUSE_POINTS`; tests inject one that waits there to be killed.

    Returns
    -------
    Decision
        The completed decision (``alias_applied`` true), also on disk.

    Raises
    ------
    LockedError
        When another retrain holds the lock.
    ValueError
        On too little data or malformed scores.

    Examples
    --------
    >>> decision = retrain(demand, items, train_fn, evaluate_fn, RetrainConfig(margin=0.02))  # doctest: +SKIP
    >>> decision.action, decision.exit_code
    ('promote', <RetrainExit.PROMOTED: 0>)
    """
    config = replace(config, tracking_uri=resolve_tracking_uri(config.tracking_uri))
    with exclusive_lock(lock_path_for(config.tracking_uri)):
        checkpoint("after_lock")
        return _decide_locked(demand, items, train, evaluate, config, items_subset, checkpoint)


def _decide_locked(demand, items, train, evaluate, config: RetrainConfig, items_subset, checkpoint) -> Decision:
    """:func:`retrain` under the lock: recover, train, judge, decide, commit."""
    uri = config.tracking_uri
    recovered = recover(config)
    cutoff, train_part, holdout = _split(demand, config.holdout_periods)
    champion = get_alias_version(config.model_name, config.alias, uri)
    decision_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
    subset = tuple(sorted(items_subset)) if items_subset is not None else None
    # train/evaluate open their own MLflow runs, so no run of ours is active around them
    request = TrainRequest(train_part, items, cutoff, config.model_name, uri, subset, config.run, config.train_settings)
    challenger, path, why = _challenger(train, request, config, decision_id)
    checkpoint("after_train")
    request = EvalRequest(train_part, holdout, items, cutoff, config.model_name, uri, config.run)
    incumbent, judged, prefix = _judge(evaluate, challenger, champion, request)
    scores = {"challenger": judged[0], "champion": judged[1] if len(judged) > 1 else None}
    checkpoint("after_evaluate")
    action, reason = decide(scores["champion"], scores["challenger"], config)
    said = (
        "" if path is None else f" | challenger v{challenger} is train's path {path!r}: {(why or '').split(': ', 1)[0]}"
    )
    fields = {
        "decision_id": decision_id,
        "champion_before": champion,
        "challenger": challenger,
        "action": action,
        "reason": prefix + reason + said,
        "scores": scores,
        "cutoff": str(cutoff),
        "items_subset": list(subset) if subset else None,
        "data": {"train": fingerprint(train_part), "holdout": fingerprint(holdout), "items": fingerprint(items)},
        "recovered": recovered or None,
        "incumbent": incumbent,
        "challenger_path": path,
        "challenger_why": why,
    }
    return _record(config, fields, checkpoint)


def _challenger(train: TrainFn, request: TrainRequest, config: RetrainConfig, decision_id: str) -> tuple[str, ...]:
    """Train and tag the challenger: (version, train's path it holds, why), the path and why from the version's
    tags :data:`PATH_TAG` / :data:`GATE_TAG` (None when the train step sets none)."""
    uri = config.tracking_uri
    version = train_marked(train, request, Path(config.out) / f".{TRAINING}-{decision_id}")
    tags = get_version_tags(config.model_name, version, uri)
    set_version_tags(config.model_name, version, {STATUS_TAG: "challenger", DECISION_TAG: decision_id}, uri)
    return version, tags.get(PATH_TAG), tags.get(GATE_TAG)


def _record(config: RetrainConfig, fields: dict[str, Any], checkpoint: Checkpoint) -> Decision:
    """The decision record of ``fields`` in a ``retrain`` MLflow run, committed (:func:`commit`, the one
    commit point) and logged."""
    uri = config.tracking_uri
    with start_run("retrain", uri, tags={DECISION_TAG: fields["decision_id"]}) as run:
        decision = Decision(
            created_at=datetime.now(timezone.utc).isoformat(),
            model_name=config.model_name,
            alias=config.alias,
            holdout_periods=config.holdout_periods,
            margin=config.margin,
            max_service_drop=config.max_service_drop,
            mlflow_run_id=run.run_id,
            run_settings=run_settings(config.run),
            **fields,
        )
        final = commit(decision, Path(config.out), uri, checkpoint)
        run.log_params(
            {
                "action": decision.action,
                "challenger": decision.challenger,
                "challenger_path": decision.challenger_path or "",
                "champion_before": decision.champion_before,
                "margin": config.margin,
                "cutoff": decision.cutoff,
            }
        )
        scores = decision.scores
        run.log_metrics({f"{who}.{k}": v for who, s in scores.items() if s for k, v in s.items()})
        run.log_dict(asdict(final), DECISION_FILE)
    return final


def _judge(
    evaluate: EvaluateFn, challenger: str, champion: str | None, request: EvalRequest
) -> tuple[str | None, list[dict[str, float]], str]:
    """(incumbent, [challenger scores, incumbent scores], reason prefix): the challenger against what
    ``recommend`` uses now: the champion, else the ``default`` alias, else the packaged default."""
    incumbent = champion or get_alias_version(request.model_name, DEFAULT_ALIAS, request.tracking_uri)
    if incumbent:
        prefix = (
            "" if champion else f"no champion; judged against the default path v{incumbent} (alias {DEFAULT_ALIAS!r}): "
        )
        return incumbent, _evaluate_all(evaluate, [challenger, incumbent], request), prefix
    if not hasattr(evaluate, "with_selectors"):
        prefix = "unjudged (the evaluate step cannot judge the packaged default): "
        return None, _evaluate_all(evaluate, [challenger], request), prefix
    packaged = packaged_default()
    prefix = f"no champion or default alias; judged against what recommend uses, the {packaged[1]}: "
    return PACKAGED, _evaluate_all(evaluate, [challenger], request, {PACKAGED: packaged}), prefix


def run_retrain(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    train: TrainFn,
    evaluate: EvaluateFn,
    config: RetrainConfig = RetrainConfig(),
    items_subset: Sequence[str] | None = None,
    echo: Callable[[str], None] = print,
    checkpoint: Checkpoint = no_checkpoint,
) -> RetrainExit:
    """:func:`retrain` for schedulers: never raises, returns the documented exit code."""
    try:
        decision = retrain(demand, items, train, evaluate, config, items_subset, checkpoint)
    except LockedError as exc:
        echo(f"LOCKED: {exc}")
        return RetrainExit.LOCKED
    except Exception as exc:  # noqa: BLE001 - a scheduler needs an exit code, not a traceback
        echo(f"FAILED: {type(exc).__name__}: {exc}")
        return RetrainExit.FAILED
    for line in decision.recovered or ():
        echo(f"RECOVERED: {line}")
    echo(f"{decision.action.upper()}: {decision.reason}; record {Path(config.out) / decision.decision_id}")
    return decision.exit_code


# --- command line -------------------------------------------------------------------------------


def default_steps() -> tuple[TrainFn, EvaluateFn]:
    """The policy-selector train/evaluate pair from :mod:`pipelines.flows.train`."""
    try:
        train_module = importlib.import_module("pipelines.flows.train")
    except ImportError as exc:
        raise ValueError(f"pipelines.flows.train is not available ({exc}); retrain needs its train step") from exc
    missing = [n for n in ("train_challenger", "evaluate_version") if not hasattr(train_module, n)]
    if missing:
        raise ValueError(
            f"pipelines.flows.train lacks {missing}: retrain calls train_challenger(TrainRequest) -> "
            "version and evaluate_version(version, EvalRequest) -> scores"
        )
    return train_module.train_challenger, train_module.evaluate_version


def load_run_data(config_path: Path | None) -> tuple[pd.DataFrame, pd.DataFrame, Any]:
    """Demand, items and the RunConfig of a config file (its data folder, else the seeded demo)."""
    from pipelines.data.config import load_config
    from pipelines.data.demo_data import DemoConfig
    from pipelines.data.inputs import load_inputs

    cfg = load_config(config_path)
    data = load_inputs(
        cfg.data,
        demo=DemoConfig(seed=cfg.seed, n_items=cfg.demo_items, n_weeks=cfg.demo_weeks),
        freq=cfg.freq,
        min_length=cfg.min_length,
        fill_gaps=cfg.fill_gaps,
        strict=cfg.strict,
    )
    return data.demand, data.items, cfg
