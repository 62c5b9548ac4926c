"""The first-champion gate of ``stockwise train``: judge the decision paths by the replay, move the aliases.

With no champion registered, :func:`gate_champion` fits a classifier and a best single policy
before each origin (:func:`policy_selector.workflow.origin_fits`), replays the four paths of
:data:`REPLAY_PATHS` on the held-out windows (:func:`replay_paths`, through
:func:`pipelines.flows.evaluate.replay_by_origin`), decides with the pure :func:`choose_paths`
(:func:`policy_selector.evaluation.replay_gate`, or the label-based :func:`~policy_selector.evaluation.gate`
with ``--no-replay``) and then sets the ``champion`` or ``default`` alias at one point. Each
origin's verdict is said beside the pooled one (:func:`origin_verdicts`).
With train's ``shortfall_scales`` the fits are :class:`ShortfallPaths` and the two paths of
:data:`TUNED_PATHS` are replayed and judged too (:func:`_gate_paths`).
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from pipelines.data.config import RunConfig
from pipelines.flows.evaluate import replay_by_origin
from pipelines.flows.plan import load_selector
from pipelines.flows.train_log import Registered, registered_line, registrations, tag_registered
from pipelines.registry.names import CHAMPION_ALIAS, DEFAULT_ALIAS
from pipelines.registry.tracking import get_alias_version, set_alias
from policy_selector import PolicySelector, SelectorConfig
from policy_selector.evaluation import ReplayDecision, gate, replay_gate
from policy_selector.selector import FixedSelector
from policy_selector.shortfall_tuning import ShortfallPaths
from policy_selector.workflow import OriginFit, origin_fits

if TYPE_CHECKING:
    from pipelines.flows.train_settings import TrainSettings

__all__ = [
    "GateInputs",
    "GateOutcome",
    "REPLAY_PATHS",
    "TUNED_PATHS",
    "choose_paths",
    "default_path",
    "gate_champion",
    "gate_winner",
    "judge_paths",
    "Verdict",
    "origin_verdicts",
    "replay_paths",
    "replay_run_config",
]


def default_path(evaluation: pd.DataFrame, best_single: str, candidates) -> str:
    """The default policy: the best single policy or the packaged default, whichever evaluated cheaper.

    Cheaper = lower controllable cost summed over the splits of ``evaluation`` (rows
    ``best_single`` and ``default``); the packaged default only when one of it is a candidate.
    """
    packaged = FixedSelector().fit(None, None, pd.DataFrame(columns=list(candidates))).chosen_
    if packaged is None:
        return best_single
    cost = evaluation.groupby("method")["controllable_cost"].sum()
    return packaged if cost.get("default", np.inf) < cost.get("best_single", np.inf) else best_single


@dataclass(frozen=True)
class GateOutcome:
    """What the gate of ``train`` did: champion after the run, its sentence, the default alias's policy."""

    champion: str | None = None
    decision: str = ""
    default: str | None = None
    replay: pd.DataFrame | None = None
    basis: str = ""
    replay_origins: pd.DataFrame | None = None
    #: every version registered, its alias and why (:func:`registrations`)
    registered: tuple[Registered, ...] = ()
    #: without registering (``stockwise retrain``'s challenger): the path the gate chose, (replay key, artifact)
    winner: tuple[str, str] | None = None


@dataclass(frozen=True)
class GateInputs:
    """What the replay gate needs besides the study: the data, the study's config and generator (to fit
    the classifier of earlier origins), how many origins, and the run's settings (None = defaults)."""

    demand: pd.DataFrame
    items: pd.DataFrame
    freq: str
    config: SelectorConfig
    rng: np.random.Generator
    make_selector: Callable[[], PolicySelector]
    n_origins: int = 1
    extra_train_cutoffs: int = 0
    run_config: RunConfig | None = None


#: the paths the decision replay judges (keys of ``replay.csv`` and of :func:`replay_gate`)
REPLAY_PATHS = ("classifier", "packaged", "best_single", "sbc_rule")
#: the paths it judges besides when train fits shortfall variants (``shortfall_scales``: :class:`ShortfallPaths`)
TUNED_PATHS = ("classifier_tuned", "best_single_tuned")
#: the ``default`` spec :func:`choose_paths` returns for the tuned best single policy (an object, no --selector form)
TUNED_SINGLE = "tuned:best_single"


def path_keys(tuned: bool) -> tuple[str, ...]:
    """The replayed paths, the tuned ones after the four of :data:`REPLAY_PATHS` when ``tuned``."""
    return REPLAY_PATHS + (TUNED_PATHS if tuned else ())


def _origin_paths(fit: OriginFit, uri: str, fixed: dict) -> dict:
    """The paths replayed at ``fit``'s origin: the four of :data:`REPLAY_PATHS`, and, when ``fit.selector`` is a
    :class:`ShortfallPaths`, its plain classifier and best single base policy plus the two tuned paths."""
    when = f"fitted on labels up to {fit.origin.date()}"
    bundle = fit.selector if isinstance(fit.selector, ShortfallPaths) else None
    paths = {
        "classifier": (fit.selector if bundle is None else bundle.classifier_, f"trained classifier ({when})"),
        "packaged": fixed["packaged"],
        "best_single": load_selector(_spec("best_single", fit.best_single), uri),
        "sbc_rule": fixed["sbc"],
    }
    if bundle is not None:
        single = bundle.tuned_single_
        paths["classifier_tuned"] = (bundle.tuned_, f"shortfall-tuned classifier ({when})")
        paths["best_single_tuned"] = (single, f"shortfall-tuned best single policy {single.inner_.chosen_!r} ({when})")
    return paths


def replay_paths(fits: list[OriginFit], settings: TrainSettings, uri: str, inputs: GateInputs) -> pd.DataFrame:
    """The decision replay of every path at each origin of ``fits`` and pooled over them.

    Origin ``j`` leaves the periods after ``fits[j].origin``: the last one is the held-out-time
    cutoff of the study (its window the last ``T`` periods), earlier ones ``T`` periods apart.
    Every path is judged as it could have been known at its origin: the classifier and the best
    single policy of each origin are fitted only on labels whose windows end by it
    (:func:`policy_selector.workflow.origin_fits`; at the last origin the study's held-out-time
    model and the best single policy of its training cutoffs). (If the best single path wins, the
    ``default`` alias gets the best single policy of *all* cutoffs, refitted as the registered
    classifier is: :func:`choose_paths`.) When that policy is the packaged default at every origin
    it is replayed once.

    When the fits' selectors are :class:`ShortfallPaths` (train's ``shortfall_scales``), the
    classifier and the best single policy are those of the base candidates (as without variants)
    and the tuned classifier and tuned best single policy of the same labels are replayed too
    (:data:`TUNED_PATHS`).

    Returns
    -------
    pandas.DataFrame
        :func:`pipelines.flows.evaluate.replay_by_origin`'s table, paths in :func:`path_keys` order.

    Raises
    ------
    ValueError
        When the replay cannot run (history before the first origin too short, no item plannable).
    """
    tuned = isinstance(fits[-1].selector, ShortfallPaths)
    if tuned:  # the best single policy of the base candidates (the one of all columns may be a variant)
        fits = [dataclasses.replace(fit, best_single=fit.selector.best_single_) for fit in fits]
    fixed = {k: load_selector(k, uri) for k in ("packaged", "sbc")}
    per_origin = [_origin_paths(fit, uri, fixed) for fit in fits]
    same = all(getattr(fixed["packaged"][0], "chosen_", None) == fit.best_single for fit in fits)
    for paths in per_origin if same else []:
        del paths["best_single"]
    cfg = replay_run_config(inputs.run_config, inputs.freq, uri, settings)
    holdout = inputs.config.test_periods
    table = replay_by_origin(inputs.demand, inputs.items, cfg.freq, cfg, holdout, per_origin, origins=len(fits))
    _check_origins(table, fits, cfg.freq)
    parts = []
    for origin, part in table.groupby(level="origin", sort=False):
        part = part.droplevel("origin")
        if same:
            part.loc["best_single"] = part.loc["packaged"]
        parts.append(part.loc[list(path_keys(tuned))].assign(origin=origin))
    return pd.concat(parts).set_index("origin", append=True).swaplevel().rename_axis(["origin", "path"])


def _check_origins(table: pd.DataFrame, fits: list[OriginFit], freq: str) -> None:
    """Each replayed window starts the period after its fit's origin (the demand on one regular grid)."""
    step = pd.tseries.frequencies.to_offset(freq)
    expected = [str((fit.origin + step).date()) for fit in fits]
    replayed = [o for o in table.index.unique("origin") if o != "pooled"]
    if replayed != expected:
        raise ValueError(
            f"the replay's windows start at {replayed}, not the periods after the fits' origins {expected}: "
            f"the demand's dates are not one regular {freq} grid"
        )


def replay_run_config(run: RunConfig | None, freq: str, uri: str | None, settings) -> RunConfig:
    """The run settings of a replay: the run's (its own freq when set), else defaults with the train
    ``settings``' seed, refit rule and credibility (what the study sized with); the store ``uri``."""
    if run is None:
        run = RunConfig(
            seed=settings.seed,
            selector_refit_every=settings.refit_every,
            error_model={"shrinkage": settings.shrinkage},
        )
    return run.model_copy(update={"freq": run.freq or freq, "tracking_uri": uri})


def _spec(key: str, best_single: str) -> str:
    """The ``--selector`` form (:func:`load_selector`) of a replayed fixed path (:data:`TUNED_SINGLE` for the tuned one)."""
    return {
        "packaged": "packaged",
        "best_single": f"policy:{best_single}",
        "sbc_rule": "sbc",
        "best_single_tuned": TUNED_SINGLE,
    }[key]


def _gate_paths(paths) -> dict:
    """:func:`replay_gate`'s path arguments for the replayed ``paths``: with :data:`TUNED_PATHS` the tuned best
    single policy may become the default, and the tuned classifier is a challenger that must beat, as the
    classifier must, the default path and both best single policies."""
    if not set(TUNED_PATHS) <= set(paths):
        return {}
    return {
        "fixed": ("best_single", "best_single_tuned", "sbc_rule"),
        "challenger": ("classifier", "classifier_tuned"),
        "singles": ("best_single", "best_single_tuned"),
    }


def choose_paths(
    study_evaluation: pd.DataFrame,
    best_single: str,
    candidates,
    settings: TrainSettings,
    replay: pd.DataFrame | None,
    failure: str | None,
) -> tuple[str, str | None, str, str]:
    """(action "promote" | "promote_tuned" | "keep", the default path as a ``--selector`` form or None, reason,
    basis). Pure.

    Basis ``replay``: :func:`replay_gate` on the replay. The default is the path it chose; for
    ``best_single`` that is ``best_single`` here, the best single policy of all cutoffs (the
    replay judged the one of the training cutoffs, :func:`origin_best_single`: the path as it
    could be known at the origin; registered with all the data, as the classifier is); for
    ``best_single_tuned`` :data:`TUNED_SINGLE`. With the tuned paths in ``replay``
    (:data:`TUNED_PATHS`), ``promote_tuned`` when the tuned classifier is the one promoted.
    ``labels`` (``settings.replay`` off): the label-based :func:`gate` and :func:`default_path`.
    ``none`` (the replay could not run): nothing is aliased.
    """
    if not settings.replay:
        action, why = gate(study_evaluation, settings.margin, settings.max_service_drop)
        default = None if action == "promote" else default_path(study_evaluation, best_single, candidates)
        spec = None if default is None else f"policy:{default}"
        return action, spec, f"label gate (decision replay skipped: --no-replay): {why}", "labels"
    if replay is None:
        return "keep", None, f"the decision replay could not run: {failure}", "none"
    d: ReplayDecision = replay_gate(replay, settings.margin, settings.max_service_drop, **_gate_paths(replay.index))
    action = {None: "keep", "classifier": "promote", "classifier_tuned": "promote_tuned"}[d.champion]
    return action, (None if d.promote else _spec(d.default, best_single)), d.reason, "replay"


@dataclass(frozen=True)
class Verdict:
    """What :func:`judge_paths` found: :func:`choose_paths`' action, default spec, reason and basis, and the
    replay by origin (None when skipped or it could not run)."""

    action: str
    spec: str | None
    why: str
    basis: str
    by_origin: pd.DataFrame | None = None


def judge_paths(run, study, settings: TrainSettings, uri, inputs: GateInputs) -> Verdict:
    """The gate's judgement without moving an alias: fits before each origin, the decision replay of every path
    (unless ``--no-replay``) and :func:`choose_paths`; each origin's verdict added when there are several."""
    by_origin = replay = failure = None
    if settings.replay:
        t0 = time.perf_counter()
        try:
            fits = origin_fits(
                study,
                inputs.demand,
                inputs.items,
                inputs.config,
                inputs.rng,
                inputs.n_origins,
                inputs.extra_train_cutoffs,
                inputs.make_selector,
            )
            by_origin = replay_paths(fits, settings, uri, inputs)
            replay = by_origin.xs("pooled", level="origin")
        except ValueError as exc:
            failure = str(exc)
        _log_replay(run, by_origin, time.perf_counter() - t0)
    bundle = _bundle(study)
    best_single = study.best_single if bundle is None else bundle.best_single_
    candidates = study.selector.candidates_
    action, spec, why, basis = choose_paths(study.evaluation, best_single, candidates, settings, replay, failure)
    if by_origin is not None and inputs.n_origins > 1:
        why += " | " + origin_verdicts(by_origin, settings)
    return Verdict(action, spec, why, basis, by_origin)


def _bundle(study) -> ShortfallPaths | None:
    """The study's :class:`ShortfallPaths` (train's ``shortfall_scales``), else None."""
    return study.selector if isinstance(study.selector, ShortfallPaths) else None


def gate_champion(run, study, settings: TrainSettings, version, uri, inputs, tuned_version=None) -> GateOutcome:
    """Judge the paths (decision replay unless skipped), then move the aliases at one point.

    ``tuned_version``: the registered tuned classifier (train's ``shortfall_scales``; ``study.selector``
    is then a :class:`ShortfallPaths`), champion when the replay promotes it. The decision ends with
    every registered version, the alias it got and why (:func:`registered_line`; MLflow: :func:`tag_registered`).
    """
    kept = get_alias_version(settings.model_name, CHAMPION_ALIAS, uri)
    if kept is not None:
        decision = f"champion v{kept} kept: promotions go through `stockwise retrain`"
        return _said(
            run,
            settings,
            uri,
            GateOutcome(kept, decision),
            registrations("keep", "", version, tuned_version, kept=kept),
        )
    v = judge_paths(run, study, settings, uri, inputs)
    champion = default = registered_default = None
    promoted = {"promote": version, "promote_tuned": tuned_version}.get(v.action)
    if promoted is not None:
        set_alias(settings.model_name, CHAMPION_ALIAS, str(promoted), uri)
        what = " (the shortfall-tuned classifier)" if v.action == "promote_tuned" else ""
        champion, decision = str(promoted), f"v{promoted}{what} is champion: {v.why}"
    elif v.spec is None:
        decision = (
            f"v{version} registered, not champion; nothing aliased: {v.why}. recommend uses the packaged default "
            "until `stockwise train` is rerun on a longer history, or with --no-replay (the label gate)"
        )
    else:
        default, dv = _register_default(run, v.spec, _bundle(study), settings, uri)
        registered_default = (dv, _path_of(v.spec), default)
        decision = (
            f"v{version} registered, not champion: {v.why}. recommend uses the default path "
            f"{default!r} (v{dv}, alias {DEFAULT_ALIAS!r})"
        )
    if tuned_version is not None and v.action != "promote_tuned":
        decision = decision.replace(f"v{version} registered,", f"v{version} and v{tuned_version} (tuned) registered,")
    run.log_params({"gate.action": v.action, "gate.basis": v.basis, "default_policy": default or ""})
    origins = None if v.by_origin is None else v.by_origin.drop(index="pooled", level="origin").reset_index()
    replay = None if v.by_origin is None else v.by_origin.xs("pooled", level="origin")
    outcome = GateOutcome(champion, decision, default, replay, v.basis, origins)
    registered = registrations(v.action, v.basis, version, tuned_version, registered_default)
    return _said(run, settings, uri, outcome, registered)


def _said(run, settings: TrainSettings, uri, outcome: GateOutcome, registered: list[Registered]) -> GateOutcome:
    """``outcome`` with its decision ending in the registered versions, said in MLflow too."""
    line = registered_line(registered)
    decision = f"{outcome.decision}\n{line}" if line else outcome.decision
    tag_registered(run, registered, settings.model_name, uri)
    version = next((r.version for r in registered if r.path == "classifier"), None)
    run.set_tags(
        {"selector.version": version, "selector.champion": outcome.champion, "selector.decision": decision[:5000]}
    )
    return dataclasses.replace(outcome, decision=decision, registered=tuple(registered))


def _path_of(spec: str) -> str:
    """The replay key of a default path given as :func:`choose_paths`' ``--selector`` form."""
    if spec == TUNED_SINGLE:
        return "best_single_tuned"
    return {"packaged": "packaged", "sbc": "sbc_rule"}.get(spec, "best_single")


#: the logged artifact of each path :func:`gate_winner` may choose (the default paths: ``default_policy``)
WINNER_ARTIFACTS = {"classifier": "policy_selector", "classifier_tuned": "policy_selector_tuned"}


def gate_winner(run, study, settings: TrainSettings, uri, inputs: GateInputs) -> GateOutcome:
    """The path train's gate would register as its winner, moving no alias and registering nothing
    (``stockwise retrain``'s challenger with ``shortfall_scales``): the promoted classifier (plain or tuned),
    else the default path (logged as ``default_policy``), else (the replay could not run) the plain classifier.
    :attr:`GateOutcome.winner` = (replay key, logged artifact); the decision says which and why."""
    v = judge_paths(run, study, settings, uri, inputs)
    path = {"promote": "classifier", "promote_tuned": "classifier_tuned"}.get(v.action)
    if path is None and v.spec is not None:
        path = _path_of(v.spec)
        _log_default(run, v.spec, _bundle(study), uri)
        artifact = "default_policy"
    else:
        path = path or "classifier"
        artifact = WINNER_ARTIFACTS[path]
    head = "the plain classifier (the gate chose no path)" if v.spec is None and v.action == "keep" else path
    decision = f"train's gate chose {head}: {v.why}"
    run.log_params({"gate.action": v.action, "gate.basis": v.basis, "gate.winner": path})
    run.set_tags({"selector.decision": decision[:5000]})
    replay = None if v.by_origin is None else v.by_origin.xs("pooled", level="origin")
    return GateOutcome(None, decision, None, replay, v.basis, None, winner=(path, artifact))


def _log_default(run, spec: str, bundle: ShortfallPaths | None, uri, registered_name: str | None = None):
    """Log the default path ``spec`` as ``default_policy`` (registered under ``registered_name`` when given):
    (its name, the model logged, its registered version or None)."""
    if spec == TUNED_SINGLE:
        fixed = bundle.tuned_single_
        name = f"{fixed.inner_.chosen_} (shortfall scale tuned per segment)"
    else:
        fixed = load_selector(spec, uri)[0]
        name = getattr(fixed, "chosen_", None) or "Syntetos-Boylan rule"
    dv = run.log_model(
        fixed,
        name="default_policy",
        flavor="sklearn",
        registered_name=registered_name,
        serialization_format="cloudpickle",
    )
    return name, fixed, dv


def _register_default(run, spec: str, bundle: ShortfallPaths | None, settings: TrainSettings, uri) -> tuple[str, str]:
    """Log and register the default path ``spec`` (the tuned best single policy of ``bundle`` for
    :data:`TUNED_SINGLE`) and give it the ``default`` alias: (its name, its version)."""
    name, _, dv = _log_default(run, spec, bundle, uri, settings.model_name)
    set_alias(settings.model_name, DEFAULT_ALIAS, str(dv), uri)
    return name, str(dv)


def origin_verdicts(by_origin: pd.DataFrame, settings: TrainSettings) -> str:
    """What :func:`replay_gate` decides on each origin alone (is the pooled verdict stable?). Pure."""
    verdicts = []
    for origin, part in by_origin.drop(index="pooled", level="origin").groupby(level="origin", sort=False):
        part = part.droplevel("origin")
        d = replay_gate(part, settings.margin, settings.max_service_drop, **_gate_paths(part.index))
        verdicts.append(
            f"{origin}: default {d.default!r}, {d.champion + ' promoted' if d.promote else 'classifier not promoted'}"
        )
    stable = len({v.split(": ", 1)[1] for v in verdicts}) == 1
    return f"each origin alone ({'the same verdict' if stable else 'verdicts differ'}): " + "; ".join(verdicts)


def _log_replay(run, by_origin: pd.DataFrame | None, seconds: float) -> None:
    """The replay's scores as metrics (or only its time when it failed): pooled ``replay.<path>.<kpi>``,
    each origin's ``replay.origin<j>.<path>.<kpi>`` (j = 1 the oldest; params ``replay.origin<j>`` its date);
    the tables ``replay.csv`` (pooled) and ``replay_origins.csv``."""
    run.log_metrics({"replay.seconds": seconds})
    if by_origin is None:
        return
    kpis = ("csl", "fill_rate", "inventory_value", "yearly_cost", "ratio_csl", "ratio_fill_rate", "n_items")
    dates = [o for o in by_origin.index.unique("origin") if o != "pooled"]
    prefix = {"pooled": "replay"} | {o: f"replay.origin{j}" for j, o in enumerate(dates, 1)}
    run.log_metrics({f"{prefix[o]}.{k}.{c}": float(by_origin.loc[(o, k), c]) for o, k in by_origin.index for c in kpis})
    run.log_params({f"replay.origin{j}": o for j, o in enumerate(dates, 1)})
    run.log_table(by_origin.xs("pooled", level="origin").rename_axis("path").reset_index(), "replay.csv")
    run.log_table(by_origin.drop(index="pooled", level="origin").reset_index(), "replay_origins.csv")
