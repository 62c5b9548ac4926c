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
import json
import os
import shutil
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from enum import IntEnum
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.data.config import RunConfig
from pipelines.data.io import write_text_atomic
from pipelines.registry.lock import LockedError, exclusive_lock
from pipelines.registry.names import CHAMPION_ALIAS, DEFAULT_ALIAS, MODEL_NAME
from pipelines.registry.tracking import (
    end_stale_runs,
    fingerprint,
    get_alias_version,
    list_versions,
    resolve_tracking_uri,
    set_alias,
    set_version_tags,
    start_run,
    store_dir,
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

DECISION_FILE = "decision.json"
PAUSE_POINTS = ("after_lock", "after_train", "after_evaluate", "before_commit", "after_commit", "after_alias")
STATUS_TAG = "stockwise.status"
DECISION_TAG = "stockwise.decision_id"


class RetrainExit(IntEnum):
    """Process exit codes of ``stockwise retrain``."""

    PROMOTED = 0
    FAILED = 1
    KEPT = 3
    LOCKED = 75


@dataclass(frozen=True)
class RetrainConfig:
    """Champion-challenger settings; defaults live only here.

    Parameters
    ----------
    model_name : registered model holding champion and challengers.
    alias : registry alias that ``recommend`` uses.
    holdout_periods : latest periods held out for the comparison (never trained on by the challenger).
    margin : relative cost improvement the challenger needs (0.02 = 2 % cheaper).
    max_service_drop : service the challenger may lose against the champion (absolute).
    out : folder of decision records.
    tracking_uri : MLflow store (default per :func:`pipelines.registry.tracking.resolve_tracking_uri`).
    run : the run's settings (``RunConfig``: frequency, seed, service) the evaluation replays
        with, so the judgement uses the economics of the run; None = the evaluate step's defaults
        (the policy selector's: the frequency inferred from the data, the train seed, default service).
        The train step gets them too (the challenger trains with the run's seed and frequency).
    train_settings : the ``train:`` settings of the run's config file
        (:class:`pipelines.flows.train.TrainSettings`), given to the train step; None = the train
        step's defaults with the run's seed and frequency.
    """

    model_name: str = MODEL_NAME
    alias: str = CHAMPION_ALIAS
    holdout_periods: int = 13
    margin: float = 0.02
    max_service_drop: float = 0.005
    out: Path = Path("runs/retrain")
    tracking_uri: str | None = None
    run: RunConfig | None = None
    train_settings: Any = None

    def __post_init__(self) -> None:
        if self.holdout_periods < 1:
            raise ValueError(f"holdout_periods={self.holdout_periods} must be >= 1")
        if not 0 <= self.margin < 1 or not 0 <= self.max_service_drop < 1:
            raise ValueError(f"margin={self.margin} and max_service_drop={self.max_service_drop} must be in [0, 1)")


@dataclass(frozen=True)
class TrainRequest:
    """What the train callable gets: data up to ``cutoff`` only, and the run's settings
    (:attr:`RetrainConfig.run`, :attr:`RetrainConfig.train_settings`; None = the step's defaults)."""

    demand: pd.DataFrame
    items: pd.DataFrame
    cutoff: pd.Timestamp
    model_name: str
    tracking_uri: str
    items_subset: tuple[str, ...] | None = None
    run_config: RunConfig | None = None
    train_settings: Any = None


@dataclass(frozen=True)
class EvalRequest:
    """What the evaluate callable gets: the training data, the held-out window after it and the
    run's settings (``run_config``, :attr:`RetrainConfig.run`; None = the evaluate step's defaults)."""

    demand: pd.DataFrame
    holdout: pd.DataFrame
    items: pd.DataFrame
    cutoff: pd.Timestamp
    model_name: str
    tracking_uri: str
    run_config: RunConfig | None = None


TrainFn = Callable[[TrainRequest], str]
EvaluateFn = Callable[[str, EvalRequest], Mapping[str, float]]
Checkpoint = Callable[[str], None]


@dataclass(frozen=True)
class Decision:
    """One retrain decision, as written to ``<out>/<decision_id>/decision.json``."""

    decision_id: str
    created_at: str
    model_name: str
    alias: str
    champion_before: str | None
    challenger: str
    action: str  # "promote" | "keep"
    reason: str
    scores: dict[str, dict[str, float] | None]
    cutoff: str
    holdout_periods: int
    margin: float
    max_service_drop: float
    data: dict[str, str] = field(default_factory=dict)
    items_subset: list[str] | None = None
    mlflow_run_id: str | None = None
    alias_applied: bool = False
    #: what this run's recovery cleaned up after a killed retrain, in plain sentences
    recovered: list[str] | None = None
    #: what the challenger was judged against (``scores["champion"]``): the champion's version, else
    #: the ``default`` alias's that ``stockwise train`` registered, else ``"packaged"`` (the packaged
    #: default policy): what ``recommend`` used; None only when the evaluate step cannot judge it
    incumbent: str | None = None
    #: the run settings the evaluation replayed with (freq, seed, service), None = the step's defaults
    run_settings: dict[str, Any] | None = None

    @property
    def exit_code(self) -> RetrainExit:
        return RetrainExit.PROMOTED if self.action == "promote" else RetrainExit.KEPT


#: marker written while the challenger trains: its MLflow runs are only closed when train returns
_TRAINING = "training"


def lock_path_for(tracking_uri: str | None) -> Path:
    """``retrain.lock`` next to the sqlite store (else under ``mlruns/``)."""
    return store_dir(resolve_tracking_uri(tracking_uri)) / "retrain.lock"


def no_checkpoint(point: str) -> None:
    """The production checkpoint: nothing happens at the named points."""


def decide(
    champion: Mapping[str, float] | None, challenger: Mapping[str, float], config: RetrainConfig
) -> tuple[str, str]:
    """``("promote" | "keep", reason)`` from the two score sets (keys ``total_cost``, ``service``). Pure.

    The challenger is promoted when its ``total_cost`` is lower by at least ``config.margin``
    (relative) and its ``service`` at most ``config.max_service_drop`` lower. For the policy
    selector (:func:`pipelines.flows.train.evaluate_version`) these are the decision replay's
    yearly cost with shortages priced and its achieved CSL on the held-out periods. The reason
    names both numbers of each side, and the inventory value and fill rate when both sides have them.

    Raises
    ------
    ValueError
        When a score set lacks ``total_cost`` or ``service``.

    Examples
    --------
    >>> decide({"total_cost": 100.0, "service": 0.95}, {"total_cost": 90.0, "service": 0.95}, RetrainConfig())[0]
    'promote'
    """
    for name, scores in (("challenger", challenger), ("champion", champion)):
        if scores is not None and not {"total_cost", "service"} <= set(scores):
            raise ValueError(f"{name} scores need total_cost and service; got {sorted(scores)}")
    if champion is None:
        return "promote", "no champion yet: the first model becomes champion"
    cost_c, cost_n = float(champion["total_cost"]), float(challenger["total_cost"])
    serv_c, serv_n = float(champion["service"]), float(challenger["service"])
    gain = (cost_c - cost_n) / cost_c if cost_c > 0 else 0.0
    facts = (
        f"challenger cost {cost_n:,.2f} vs champion {cost_c:,.2f} ({gain:+.1%}), service {serv_n:.4f} vs {serv_c:.4f}"
    )
    for key, label, fmt in (("inventory_value", "inventory value", ",.0f"), ("fill_rate", "fill rate", ".4f")):
        if key in champion and key in challenger:
            facts += f", {label} {float(challenger[key]):{fmt}} vs {float(champion[key]):{fmt}}"
    if serv_n < serv_c - config.max_service_drop:
        return "keep", f"{facts}: service drops by more than {config.max_service_drop}"
    if gain < config.margin:
        return "keep", f"{facts}: cost gain below the {config.margin:.1%} margin"
    return "promote", f"{facts}: cheaper by at least the {config.margin:.1%} margin"


def _records(out: Path) -> list[tuple[Path, dict[str, Any]]]:
    found = []
    for path in sorted(out.glob(f"*/{DECISION_FILE}")):
        if path.parent.name.startswith("."):  # staging: not committed
            continue
        found.append((path, json.loads(path.read_text())))
    return found


def recover(config: RetrainConfig) -> list[str]:
    """Finish or discard what a killed retrain left; return what was done (call under the lock)."""
    out, uri, done = Path(config.out), config.tracking_uri, []
    for staging in sorted(out.glob(".staging-*")):
        shutil.rmtree(staging, ignore_errors=True)
        done.append(f"discarded uncommitted {staging.name}")
    done += [f"MLflow run {run_id} of a killed retrain marked KILLED" for run_id in end_stale_runs("retrain", uri)]
    for marker in sorted(out.glob(f".{_TRAINING}-*")):
        started = int(marker.read_text().strip() or 0)
        done += [
            f"MLflow run {run_id} of a training killed with its retrain marked KILLED"
            for run_id in end_stale_runs(None, uri, started_after=started)
        ]
        marker.unlink()
    committed = set()
    for path, record in _records(out):
        committed.add(record["decision_id"])
        if record.get("alias_applied"):
            continue
        _apply(Decision(**record), uri)
        write_text_atomic(json.dumps({**record, "alias_applied": True}, indent=2), path)
        done.append(f"completed {record['action']} of decision {record['decision_id']}")
    for version in list_versions(config.model_name, uri):
        tags = version["tags"]
        if tags.get(STATUS_TAG) == "challenger" and tags.get(DECISION_TAG) not in committed:
            set_version_tags(config.model_name, version["version"], {STATUS_TAG: "abandoned"}, uri)
            done.append(f"version {version['version']} abandoned (its retrain never decided)")
    return done


def _apply(decision: Decision, tracking_uri: str | None) -> None:
    """Move the alias for a promotion (idempotent) and tag the versions with the outcome."""
    name = decision.model_name
    if decision.action == "promote":
        set_alias(name, decision.alias, decision.challenger, tracking_uri)
        set_version_tags(name, decision.challenger, {STATUS_TAG: "champion"}, tracking_uri)
        if decision.champion_before and decision.champion_before != decision.challenger:
            set_version_tags(name, decision.champion_before, {STATUS_TAG: "retired"}, tracking_uri)
    else:
        set_version_tags(name, decision.challenger, {STATUS_TAG: "rejected"}, tracking_uri)


def _split(demand: pd.DataFrame, periods: int) -> tuple[pd.Timestamp, pd.DataFrame, pd.DataFrame]:
    dates = pd.Series(pd.to_datetime(demand["ds"]).unique()).sort_values()
    if len(dates) <= periods + 1:
        raise ValueError(f"demand has {len(dates)} periods; need more than holdout_periods={periods} + 1")
    cutoff = dates.iloc[-periods - 1]
    after = pd.to_datetime(demand["ds"]) > cutoff
    return cutoff, demand[~after], demand[after]


def _scores_table(decision: Decision) -> str:
    """``scores.csv``: one row per model judged (challenger, champion) with its version and scores."""
    versions = {"challenger": decision.challenger, "champion": decision.incumbent or decision.champion_before}
    rows = {k: v for k, v in decision.scores.items() if v is not None}
    table = pd.DataFrame(rows).T.rename_axis("model").reset_index()
    table.insert(1, "version", table["model"].map(versions))
    return table.to_csv(index=False)


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
    evaluate : callable ``(version, EvalRequest) -> mapping``
        Scores one registered version on ``request.holdout``; must return
        ``total_cost`` and ``service`` (higher is better), may add other numbers (the policy
        selector's adds the inventory value, fill rate, ...). Optional attribute ``many``:
        ``(versions, EvalRequest) -> {version: mapping}``, used to judge challenger and
        champion in one pass. Optional attribute ``with_selectors``: ``(versions, EvalRequest,
        {key: (selector, name)}) -> {key: mapping}``, which also judges selector objects: with
        neither a ``champion`` nor a ``default`` alias the challenger is judged through it against
        the packaged default (:func:`packaged_default`); an ``evaluate`` without it cannot, and
        the first challenger is then promoted unjudged (the reason says so).
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
    uri = resolve_tracking_uri(config.tracking_uri)
    config = replace(config, tracking_uri=uri)
    with exclusive_lock(lock_path_for(uri)):
        checkpoint("after_lock")
        recovered = recover(config)
        cutoff, train_part, holdout = _split(demand, config.holdout_periods)
        champion = get_alias_version(config.model_name, config.alias, uri)
        decision_id = f"{datetime.now(timezone.utc):%Y%m%dT%H%M%S%f}-{uuid.uuid4().hex[:6]}"
        subset = tuple(sorted(items_subset)) if items_subset is not None else None
        # train/evaluate open their own MLflow runs, so no run of ours is active around them
        challenger = _train_marked(
            train,
            TrainRequest(train_part, items, cutoff, config.model_name, uri, subset, config.run, config.train_settings),
            Path(config.out) / f".{_TRAINING}-{decision_id}",
        )
        set_version_tags(config.model_name, challenger, {STATUS_TAG: "challenger", DECISION_TAG: decision_id}, uri)
        checkpoint("after_train")
        request = EvalRequest(train_part, holdout, items, cutoff, config.model_name, uri, config.run)
        incumbent, judged, prefix = _judge(evaluate, challenger, champion, request)
        scores = {"challenger": judged[0], "champion": judged[1] if len(judged) > 1 else None}
        checkpoint("after_evaluate")
        action, reason = decide(scores["champion"], scores["challenger"], config)
        reason = prefix + reason
        with start_run("retrain", uri, tags={DECISION_TAG: decision_id}) as run:
            decision = Decision(
                decision_id=decision_id,
                created_at=datetime.now(timezone.utc).isoformat(),
                model_name=config.model_name,
                alias=config.alias,
                champion_before=champion,
                challenger=challenger,
                action=action,
                reason=reason,
                scores=scores,
                cutoff=str(cutoff),
                holdout_periods=config.holdout_periods,
                margin=config.margin,
                max_service_drop=config.max_service_drop,
                items_subset=list(subset) if subset else None,
                data={"train": fingerprint(train_part), "holdout": fingerprint(holdout), "items": fingerprint(items)},
                mlflow_run_id=run.run_id,
                recovered=recovered or None,
                incumbent=incumbent,
                run_settings=_run_settings(config.run),
            )
            final = _commit(decision, Path(config.out), uri, checkpoint)
            run.log_params(
                {
                    "action": action,
                    "challenger": challenger,
                    "champion_before": champion,
                    "margin": config.margin,
                    "cutoff": str(cutoff),
                }
            )
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


def _run_settings(run: RunConfig | None) -> dict[str, Any] | None:
    """The run settings a decision record keeps (those the evaluation's economics depend on)."""
    if run is None:
        return None
    return {"freq": run.freq, "seed": run.seed, "service": run.service.model_dump(mode="json")}


def _train_marked(train: TrainFn, request, marker: Path) -> str:
    """Train with a marker on disk holding the start time, so a kill -9 inside train is recoverable."""
    write_text_atomic(str(int(time.time() * 1000)), marker)
    version = str(train(request))
    marker.unlink()
    return version


def _commit(decision: Decision, out: Path, uri: str, checkpoint: Checkpoint = no_checkpoint) -> Decision:
    """Stage the record, rename it into place (commit), apply the alias, mark it applied."""
    staging = out / f".staging-{decision.decision_id}"
    staging.mkdir(parents=True)
    write_text_atomic(json.dumps(asdict(decision), indent=2), staging / DECISION_FILE)
    write_text_atomic(_scores_table(decision), staging / "scores.csv")
    checkpoint("before_commit")
    final_dir = out / decision.decision_id
    os.replace(staging, final_dir)
    checkpoint("after_commit")
    _apply(decision, uri)
    checkpoint("after_alias")
    done = replace(decision, alias_applied=True)
    write_text_atomic(json.dumps(asdict(done), indent=2), final_dir / DECISION_FILE)
    return done


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
