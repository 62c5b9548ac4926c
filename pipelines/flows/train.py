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

import json
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from forecasting import ErrorModelConfig
from pipelines.data.config import RefitEvery, RunConfig, Shrinkage, load_config, read_yaml_mapping
from pipelines.data.demo_data import DemoConfig
from pipelines.data.inputs import load_inputs
from pipelines.data.io import write_table_atomic, write_text_atomic
from pipelines.flows.evaluate import replay_selectors
from pipelines.flows.retrain import RetrainConfig
from pipelines.flows.train_gate import (
    GateInputs,
    GateOutcome,
    choose_paths,
    gate_champion,
    origin_verdicts,
    replay_paths,
    replay_run_config,
)
from pipelines.registry.names import MODEL_NAME
from pipelines.registry.tracking import (
    load_model_version,
    register_version,
    resolve_tracking_uri,
    start_run,
    store_dir,
)
from policy_selector import CandidateSpace, PolicySelector, SelectorConfig, confusion, run_study
from policy_selector.context import wide_panel
from policy_selector.economics import periods_per_year
from policy_selector.shortfall_tuning import ShortfallPaths, ShortfallTuned
from policy_selector.workflow import StudyPlan, plan_gate_origins, plan_study

__all__ = [
    "TrainSettings",
    "TrainResult",
    "run_train",
    "train_challenger",
    "evaluate_version",
    "evaluate_versions",
    "selector_config",
    "load_train_settings",
    "load_train_config",
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

#: replay origins of the gate when ``gate_origins`` is unset (capped by what the history holds). Two
#: cost 1.2-1.5x one in train's wall time (demo 108 series, carparts 200) and changed carparts'
#: verdict (the last origin alone chose the SBC rule, the one before disagreed): docs/methods/selector.md,
#: "The gate over several origins"
AUTO_GATE_ORIGINS = 2

_UNITS = {"D": "day", "B": "day", "W": "week", "M": "month", "Q": "quarter", "H": "hour"}


class TrainSettings(BaseModel):
    """Settings of ``stockwise train`` (YAML: top level or under ``train:``)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    seed: int = DemoConfig.seed
    freq: str | None = None
    candidates: tuple[str, ...] | None = Field(None, description="candidate names; None = all defaults")
    test_periods: int | None = Field(None, ge=1, description="held-out periods per cutoff; None = from history")
    n_windows: int | None = Field(None, ge=2, description="backtest windows; None = from history")
    extra_train_cutoffs: int | None = Field(
        None, ge=0, description="training cutoffs before the first; None = from history"
    )
    label_paths: int = Field(SelectorConfig.label_paths, ge=0, description="demand paths per item for labels")
    margin: float = Field(
        RetrainConfig.margin,
        ge=0,
        lt=1,
        description="controllable-cost gain the first champion needs over the default path",
    )
    max_service_drop: float = Field(RetrainConfig.max_service_drop, ge=0, lt=1)
    replay: bool = Field(
        True,
        description="judge the paths (classifier, packaged default, best single policy, SBC rule) by the "
        "decision replay on the held-out-time window; False = the label-based gate (said in the output)",
    )
    gate_origins: int | None = Field(
        None,
        ge=1,
        description="origins of the decision replay gate, T periods apart, pooled; each judges a classifier fitted "
        "only on labels before it; None = AUTO_GATE_ORIGINS, capped by what the history holds",
    )
    season_length: int = Field(1, ge=1)
    refit_every: RefitEvery = Field(
        "auto",
        description="backtest re-estimates AutoETS every k windows, or auto by each series' history (as "
        "recommend's selector_refit_every, so the trained selector sees the error features recommend computes)",
    )
    shrinkage: Shrinkage = Field(
        ErrorModelConfig.shrinkage,
        description="the error model's credibility in the candidates' sizing: estimate or k pseudo-windows (as the "
        "run config's error_model.shrinkage, so the trained selector sees the error features recommend computes)",
    )

    shortfall_scales: tuple[float, ...] | None = Field(
        None,
        description="shortfall scales of the variants added to the space (e.g. [0.5, 2]: sized to half / twice the "
        "item's shortfall); train then also fits the tuned classifier and the tuned best single policy (each base "
        "candidate's scale chosen per segment) and the replay gate judges them; None = no variants",
    )
    scale_candidates: tuple[str, ...] | None = Field(
        None, description="candidates that get the shortfall variants; None = every stocking candidate of the space"
    )
    service_tolerance: float = Field(0.03, ge=0, lt=1)
    n_splits: int = Field(5, ge=2, description="GroupKFold folds by item")
    model_name: str = MODEL_NAME
    demo_items: int = Field(DemoConfig.n_items, ge=6, description="items of the generated demo (--demo)")
    demo_weeks: int = Field(DemoConfig.n_weeks, ge=60)

    @field_validator("shortfall_scales")
    @classmethod
    def _scales(cls, v):
        if v is None:
            return v
        bad = [x for x in v if not np.isfinite(x) or x <= 0]
        if bad:
            raise ValueError(f"each shortfall scale must be a finite number > 0 (1 = the item's own target), got {bad}")
        if len(set(v)) != len(v):
            raise ValueError(f"shortfall scales repeat: {list(v)}")
        if not [x for x in v if x != 1.0]:
            raise ValueError(f"shortfall scales {list(v)} add no variant: give at least one scale other than 1")
        return v

    @model_validator(mode="after")
    def _scaled_space(self):
        if self.scale_candidates is not None and self.shortfall_scales is None:
            raise ValueError("scale_candidates needs shortfall_scales (e.g. shortfall_scales: [0.5, 2])")
        if self.shortfall_scales is not None and not self.replay:
            raise ValueError(
                "shortfall_scales needs the decision replay: the label gate (replay: false / --no-replay) judges "
                "only the plain classifier and best single policy; drop one of the two"
            )
        if self.shortfall_scales is not None:
            space = CandidateSpace.from_names(self.candidates) if self.candidates else CandidateSpace()
            given = [c.name for c in space.candidates if c.shortfall_scale != 1.0]
            if given:
                raise ValueError(
                    f"candidates {given} are shortfall variants already; name base candidates with shortfall_scales "
                    "(or variants in candidates, without shortfall_scales)"
                )
            try:
                scaled = space.with_shortfall_scales(self.shortfall_scales, self.scale_candidates)
            except (ValueError, KeyError) as exc:
                raise ValueError(f"scale_candidates: {exc}") from None
            if len(scaled) == len(space):
                raise ValueError(f"no stocking candidate to scale among {list(space.names)}")
        return self


def load_train_settings(path: Path | None) -> TrainSettings:
    """The train settings of a YAML file (:func:`load_train_config`); defaults without a file.

    Raises
    ------
    ValueError
        Unreadable file or invalid values, naming the file and field.
    """
    return load_train_config(path)[0]


def load_train_config(path: Path | None) -> tuple[TrainSettings, RunConfig | None]:
    """Train settings and run config of ``stockwise train --config``.

    Either a train-settings file (``train.yaml``: its keys at the top level or under ``train:``):
    (its settings, None); or the run config ``recommend`` and ``retrain`` read (``stockwise.yaml``,
    with the train settings under an optional ``train:`` section): (the ``train:`` settings, the
    run config). Settings the ``train:`` section leaves unset follow the run
    (:func:`settings_from_run`: seed, freq, demo size, refit_every, shrinkage).

    Raises
    ------
    ValueError
        Unreadable file, invalid values, or run-config keys and train settings mixed at the top
        level; the message names the file and the keys.
    """
    if path is None:
        return TrainSettings(), None
    raw = read_yaml_mapping(path)
    section = raw.get("train")
    if section is not None and not isinstance(section, dict):
        raise ValueError(f"{path}: `train:` must be a mapping of train settings, got {section!r}")
    top = {k: v for k, v in raw.items() if k != "train"}
    if section is None and set(top) <= set(TrainSettings.model_fields):
        return _train_settings(path, top), None  # a train.yaml with its keys at the top level
    if not top:
        return _train_settings(path, section), None
    train_only = sorted(set(top) - set(RunConfig.model_fields))
    if section is None and set(top) & set(TrainSettings.model_fields) and train_only:
        raise ValueError(
            f"{path}: train settings {train_only} at the top level of a run config; put them under `train:`"
        )
    run = load_config(path)  # names the file and field of any invalid run-config key
    return settings_from_run(run, section, path), run


def settings_from_run(run: RunConfig, given: dict | None = None, path: Path | None = None) -> TrainSettings:
    """Train settings ``given`` (a ``train:`` section), the rest following the run: its seed, freq,
    demo size, ``selector_refit_every`` and ``error_model.shrinkage`` (so the trained selector sees the error features
    recommend computes)."""
    follow = {
        "seed": run.seed,
        "freq": run.freq,
        "demo_items": run.demo_items,
        "demo_weeks": run.demo_weeks,
        "refit_every": run.selector_refit_every,
        "shrinkage": run.error_model.shrinkage,
    }
    return _train_settings(path, follow | dict(given or {}))


def with_options(settings: TrainSettings, given: dict) -> TrainSettings:
    """``settings`` with the command line's options that are set (not None), validated as a file's are.

    Raises
    ------
    ValueError
        An invalid value (or combination), named with its option.
    """
    given = {k: v for k, v in given.items() if v is not None}
    return _train_settings("the command line", settings.model_dump() | given) if given else settings


def parse_list(text: str | None, option: str, kind=str) -> tuple | None:
    """A comma-separated option (``--shortfall-scales 0.5,2``) as a tuple of ``kind``; None when not given.

    Raises
    ------
    ValueError
        An empty item or one that is not a ``kind``, naming the option.
    """
    if text is None:
        return None
    parts = [p.strip() for p in str(text).split(",")]
    try:
        if "" in parts:
            raise ValueError
        return tuple(kind(p) for p in parts)
    except ValueError:
        raise ValueError(f"{option} {text!r}: give comma-separated {kind.__name__} values, e.g. 0.5,2") from None


def _train_settings(path: Path | str | None, raw: dict) -> TrainSettings:
    """``TrainSettings(**raw)``, an invalid value named with its file and field."""
    try:
        return TrainSettings(**raw)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ValueError(f"{path or 'run config'}: invalid train settings: {problems}") from exc


def selector_config(settings: TrainSettings, freq: str, plan: StudyPlan | None = None) -> SelectorConfig:
    """The library config for these settings, data frequency and study plan (windows)."""
    space = CandidateSpace.from_names(settings.candidates) if settings.candidates else CandidateSpace()
    if settings.shortfall_scales is not None:
        space = space.with_shortfall_scales(settings.shortfall_scales, settings.scale_candidates)
    test_periods = plan.test_periods if plan else settings.test_periods or SelectorConfig.test_periods
    n_windows = plan.n_windows if plan else settings.n_windows or SelectorConfig.n_windows
    return SelectorConfig(
        space=space,
        freq=freq,
        season_length=settings.season_length,
        n_windows=n_windows,
        test_periods=test_periods,
        service_tolerance=settings.service_tolerance,
        label_paths=settings.label_paths,
        refit_every=settings.refit_every,
        shrinkage=settings.shrinkage,
    )


def study_plan(demand: pd.DataFrame, freq: str, settings: TrainSettings) -> StudyPlan:
    """Windows for this history: the settings' values where given, chosen from its length otherwise.

    Raises
    ------
    ValueError
        When nothing can be learned from the history (the message says how many periods it needs).
    """
    return plan_study(
        wide_panel(demand).shape[1],
        periods_per_year(freq),
        settings.test_periods,
        settings.n_windows,
        settings.extra_train_cutoffs,
    )


def period_name(freq: str) -> str:
    """'week' for W-MON, 'month' for MS ..."""
    key = freq.upper().lstrip("0123456789")
    return _UNITS.get("Q" if key.startswith(("QS", "QE")) else key[:1], "period")


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


def _label_frames(study) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    labels, outcomes, feats = [], [], []
    for part in (study.train, study.test):
        cut = str(part.labels.cutoff.date())
        labels.append(part.labels.label.reset_index().assign(cutoff=cut))
        outcomes.append(part.labels.outcomes.assign(cutoff=cut))
        feats.append(part.features.reset_index().assign(cutoff=cut))
    return (
        pd.concat(labels, ignore_index=True),
        pd.concat(outcomes, ignore_index=True),
        pd.concat(feats, ignore_index=True),
    )


def _metrics(evaluation: pd.DataFrame) -> dict[str, float]:
    out = {}
    for _, row in evaluation.iterrows():
        for col in (
            "total_cost",
            "controllable_cost",
            "regret_pct",
            "controllable_regret_pct",
            "service_met",
            "mean_service",
            "accuracy",
        ):
            out[f"{row['split']}.{row['method']}.{col}"] = row[col]
    return out


def run_train(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    freq: str,
    settings: TrainSettings,
    out: Path,
    tracking_uri: str | None = None,
    register: bool = True,
    run_config: RunConfig | None = None,
) -> TrainResult:
    """Label, train, evaluate, log and register the policy selector; gate the first champion.

    ``run_config`` (the run's ``stockwise.yaml``: ``stockwise train --config``) sets the decision
    replay's forecast, service and seed settings, as ``recommend`` runs with them; None = a
    default ``RunConfig`` with this frequency and ``settings.seed``.

    Returns
    -------
    TrainResult
        MLflow run id, registered version, champion version after the run, evaluation
        table, written paths, the study plan, the champion decision and the default path.

    Raises
    ------
    ValueError
        When the history is too short to learn anything (see :func:`study_plan`).
    """
    uri = resolve_tracking_uri(tracking_uri)
    plan = study_plan(demand, freq, settings)
    gated = register and settings.replay  # the replay gate runs (unless a champion exists)
    n_origins, origins_reason = plan_gate_origins(plan, settings.gate_origins, AUTO_GATE_ORIGINS) if gated else (0, "")
    plan_reason = plan.reason + (f"; {origins_reason}" if gated else "")
    cfg = selector_config(settings, freq, plan)
    make = partial(PolicySelector, period_name=period_name(freq), random_state=settings.seed)
    tuned = settings.shortfall_scales is not None
    fit_paths = partial(ShortfallPaths, make()) if tuned else make
    challengers = (
        {"classifier_tuned": lambda: ShortfallTuned(make()), "best_single_tuned": lambda: ShortfallTuned("best_single")}
        if tuned
        else None
    )
    rng = np.random.default_rng(settings.seed)
    out = Path(out)
    with start_run("train", uri) as run:
        run.log_params(
            {
                "seed": settings.seed,
                "freq": freq,
                "candidates": ",".join(cfg.space.names),
                "test_periods": cfg.test_periods,
                "n_windows": cfg.n_windows,
                "extra_train_cutoffs": plan.extra_train_cutoffs,
                "label_paths": cfg.label_paths,
                "service_tolerance": cfg.service_tolerance,
                "n_splits": settings.n_splits,
                "plan": plan_reason,
                "gate_origins": n_origins,
                "shortfall_scales": "" if not tuned else ",".join(f"{x:g}" for x in settings.shortfall_scales),
                "scale_candidates": ",".join(settings.scale_candidates or ()) if tuned else "",
            }
        )
        run.log_fingerprints({"demand": demand, "items": items})
        study = run_study(
            demand,
            items,
            cfg,
            rng,
            make_selector=fit_paths,
            n_splits=settings.n_splits,
            extra_train_cutoffs=plan.extra_train_cutoffs,
            challengers=challengers,
        )
        paths = _log_study(study, out)
        run.log_metrics(_metrics(study.evaluation))
        run.log_params({"best_single": study.best_single})
        registered = settings.model_name if register else None
        model = study.selector.classifier_ if tuned else study.selector
        version = _log_selector(run, model, "policy_selector", registered)
        tuned_version = None
        if tuned:
            tuned_version = _log_selector(run, study.selector.tuned_, "policy_selector_tuned", registered)
            paths["shortfall_tuning"] = _log_tuning(run, study.selector, out)
        outcome = GateOutcome()
        if register:
            inputs = GateInputs(
                demand, items, freq, cfg, rng, fit_paths, n_origins, plan.extra_train_cutoffs, run_config
            )
            outcome = gate_champion(run, study, settings, version, uri, inputs, tuned_version)
        if outcome.decision:
            paths["decision"] = write_text_atomic(outcome.decision + "\n", out / "decision.txt")
        if outcome.replay is not None:
            paths["replay"] = write_table_atomic(outcome.replay.rename_axis("path").reset_index(), out / "replay.csv")
            paths["replay_origins"] = write_table_atomic(outcome.replay_origins, out / "replay_origins.csv")
        return TrainResult(
            run_id=run.run_id,
            version=None if version is None else str(version),
            tuned_version=None if tuned_version is None else str(tuned_version),
            champion=outcome.champion,
            evaluation=study.evaluation,
            paths=paths,
            plan=plan_reason,
            decision=outcome.decision,
            default=outcome.default,
            replay=outcome.replay,
            gate_basis=outcome.basis,
            replay_origins=outcome.replay_origins,
        )


def _log_selector(run, model, name: str, registered: str | None) -> str | None:
    """Log ``model`` (sklearn flavour, cloudpickle: it holds the project's classes) and register it under
    ``registered`` (None: log only); its registered version."""
    return run.log_model(
        model, name=name, flavor="sklearn", registered_name=registered, serialization_format="cloudpickle"
    )


def _log_tuning(run, bundle: ShortfallPaths, out: Path) -> Path:
    """What the shortfall tuning chose on all cutoffs (per base candidate and segment, the variant; the tuned
    best single policy; the training rows per segment): ``shortfall_tuning.json`` in ``out`` and the run."""
    single = bundle.tuned_single_
    data = {
        "tuning": bundle.tuned_.tuning_,
        "pooled": bundle.tuned_.pooled_,
        "segment_rows": bundle.tuned_.segment_rows_,
        "best_single_base": bundle.best_single_,
        "best_single_tuned": single.inner_.chosen_,
        "min_rows": bundle.tuned_.min_rows,
    }
    run.log_dict(data, "shortfall_tuning.json")
    run.log_params({"best_single_base": bundle.best_single_, "best_single_tuned": single.inner_.chosen_})
    return write_text_atomic(json.dumps(data, indent=1) + "\n", out / "shortfall_tuning.json")


def _log_study(study, out: Path) -> dict[str, Path]:
    """Nested label/evaluation runs and the output files."""
    labels, outcomes, feats = _label_frames(study)
    with start_run("labels", nested=True) as step:
        for name, part in (("train", study.train), ("test", study.test)):
            step.log_metrics(
                {
                    f"{name}.n_items": len(part.labels.ids),
                    f"{name}.n_infeasible": part.labels.n_infeasible,
                    f"{name}.n_excluded": len(part.labels.excluded),
                    f"{name}.n_fallbacks": len(part.data.fallbacks),
                }
            )
            step.log_params({f"{name}.cutoff": str(part.labels.cutoff.date())})
        step.log_table(labels, "labels.csv")
        step.log_table(outcomes, "outcomes.parquet")
    conf = confusion(study.choices["held_out_items"]["label"], study.choices["held_out_items"]["classifier"])
    with start_run("evaluation", nested=True) as step:
        step.log_metrics(_metrics(study.evaluation))
        step.log_table(study.evaluation, "evaluation.csv")
        step.log_table(conf.reset_index(), "confusion.csv")
    paths = {
        "labels": write_table_atomic(labels, out / "labels.parquet"),
        "outcomes": write_table_atomic(outcomes, out / "outcomes.parquet"),
        "features": write_table_atomic(feats, out / "features.parquet"),
        "evaluation": write_table_atomic(study.evaluation, out / "evaluation.csv"),
        "confusion": write_table_atomic(conf.reset_index(), out / "confusion.csv"),
        "choices": write_table_atomic(
            pd.concat([c.reset_index().assign(split=k) for k, c in study.choices.items()]), out / "choices.parquet"
        ),
    }
    paths["evaluation_md"] = write_text_atomic(
        study.evaluation.round(4).to_markdown(index=False) + "\n", out / "evaluation.md"
    )
    return paths


def load_train_inputs(data: Path | None, demo: bool, settings: TrainSettings) -> tuple[pd.DataFrame, pd.DataFrame, str]:
    if (data is None) == (not demo):
        raise ValueError("give exactly one of --data FOLDER or --demo")
    demo_config = DemoConfig(seed=settings.seed, n_items=settings.demo_items, n_weeks=settings.demo_weeks)
    ds = load_inputs(None if demo else data, demo=demo_config, freq=settings.freq, strict=True)
    return ds.demand, ds.items, ds.freq


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
    )
    return register_version(request.model_name, result.run_id, "policy_selector", request.tracking_uri)


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
    return replay_run_config(run, freq, request.tracking_uri, TrainSettings().seed)


def evaluate_version(version: str, request) -> dict[str, float]:
    """The decision replay of one registered selector on ``request.holdout`` (:func:`evaluate_versions`).

    ``evaluate_version.many`` and ``evaluate_version.with_selectors`` are :func:`evaluate_versions`:
    ``stockwise retrain`` judges the challenger and the champion (or, with nothing registered,
    the packaged default selector) in one replay.
    """
    return evaluate_versions([version], request)[str(version)]


evaluate_version.many = evaluate_versions
evaluate_version.with_selectors = evaluate_versions
