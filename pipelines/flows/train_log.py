"""What ``stockwise train`` logs and writes: the study's nested MLflow runs and output files, the
logged and registered models, the shortfall tuning, and which registered version got which alias.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipelines.data.io import write_table_atomic, write_text_atomic
from pipelines.registry.names import CHAMPION_ALIAS, DEFAULT_ALIAS, GATE_TAG, PATH_TAG
from pipelines.registry.tracking import set_version_tags, start_run
from policy_selector import confusion
from policy_selector.shortfall_tuning import ShortfallPaths

__all__ = [
    "label_frames",
    "study_metrics",
    "log_study",
    "log_selector",
    "log_tuning",
    "Registered",
    "registrations",
    "registered_line",
    "tag_registered",
    "PATH_TAG",
    "GATE_TAG",
]

#: how the output names the classifiers train registers
CLASSIFIERS = {"classifier": "the classifier", "classifier_tuned": "the shortfall-tuned classifier"}


def label_frames(study) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Labels, full cost matrix and features of the study's cutoffs, one table each with a ``cutoff`` column."""
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


def study_metrics(evaluation: pd.DataFrame) -> dict[str, float]:
    """The evaluation table as MLflow metrics ``<split>.<method>.<column>``."""
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


def log_selector(run, model, name: str, registered: str | None) -> str | None:
    """Log ``model`` (sklearn flavour, cloudpickle: it holds the project's classes) and register it under
    ``registered`` (None: log only); its registered version."""
    return run.log_model(
        model, name=name, flavor="sklearn", registered_name=registered, serialization_format="cloudpickle"
    )


def log_tuning(run, bundle: ShortfallPaths, out: Path) -> Path:
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


def log_study(study, out: Path) -> dict[str, Path]:
    """Nested label/evaluation runs and the output files."""
    labels, outcomes, feats = label_frames(study)
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
        step.log_metrics(study_metrics(study.evaluation))
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


@dataclass(frozen=True)
class Registered:
    """One version ``stockwise train`` registered: which path it holds, the alias it got (None: none) and why."""

    version: str
    path: str
    what: str
    alias: str | None
    why: str


def registrations(
    action: str,
    basis: str,
    version: str | None,
    tuned_version: str | None = None,
    default: tuple[str, str, str] | None = None,
    kept: str | None = None,
) -> list[Registered]:
    """Every version train registered, with its alias and why. Pure.

    ``action`` and ``basis`` are :func:`pipelines.flows.train_gate.choose_paths`'; ``default`` the default
    path registered under the ``default`` alias as (version, replay key, name); ``kept`` the champion
    that was already registered (then the gate did not run and no alias moved).
    """
    by_path = {"classifier": version, "classifier_tuned": tuned_version}
    promoted = {"promote": "classifier", "promote_tuned": "classifier_tuned"}.get(action)
    out = []
    for path, v in by_path.items():
        if v is None:
            continue
        if kept is not None:
            alias, why = None, f"champion v{kept} kept: promotions go through `stockwise retrain`"
        elif path == promoted:
            alias, why = CHAMPION_ALIAS, f"promoted by the {'label' if basis == 'labels' else 'replay'} gate"
        elif promoted is not None:
            alias, why = None, f"the gate promoted {CLASSIFIERS[promoted]} v{by_path[promoted]} instead"
        elif basis == "none":
            alias, why = None, "the decision replay could not run: nothing aliased"
        else:
            alias, why = None, "not promoted: it did not beat the default path and the best single policies"
        out.append(Registered(str(v), path, CLASSIFIERS[path], alias, why))
    if default is not None:
        dv, key, name = default
        why = "the gate's default path: recommend uses it while no classifier is champion"
        out.append(Registered(str(dv), key, f"the default path {name!r}", DEFAULT_ALIAS, why))
    return out


def registered_line(registered: list[Registered]) -> str:
    """One sentence naming every registered version, its path, alias and why (empty when none)."""
    if not registered:
        return ""
    said = [f"v{r.version} ({r.what}): {f'alias {r.alias!r}' if r.alias else 'no alias'}, {r.why}" for r in registered]
    return "registered: " + "; ".join(said)


def tag_registered(run, registered: list[Registered], model_name: str, uri: str | None) -> None:
    """MLflow says it too: each version's tags :data:`PATH_TAG` and :data:`GATE_TAG`, the run's tag
    ``selector.registered`` and params ``registered.v<n>``."""
    for r in registered:
        gate = f"{r.alias or 'no alias'}: {r.why}"
        set_version_tags(model_name, r.version, {PATH_TAG: r.path, GATE_TAG: gate[:5000]}, uri)
    if registered:
        run.set_tags({"selector.registered": registered_line(registered)[:5000]})
        run.log_params({f"registered.v{r.version}": f"{r.path}: {r.alias or 'no alias'}" for r in registered})
