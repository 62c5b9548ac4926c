"""Crash safety of ``stockwise retrain``: the lock, recovery after a kill, the one commit point.

See :mod:`pipelines.flows.retrain` ("Crash safety"). Importable from there as before.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.data.io import write_text_atomic
from pipelines.flows.retrain_decision import Checkpoint, Decision, RetrainConfig, TrainFn
from pipelines.registry.tracking import (
    end_stale_runs,
    list_versions,
    resolve_tracking_uri,
    set_alias,
    set_version_tags,
    store_dir,
)

__all__ = [
    "DECISION_FILE",
    "PAUSE_POINTS",
    "STATUS_TAG",
    "DECISION_TAG",
    "TRAINING",
    "lock_path_for",
    "no_checkpoint",
    "recover",
    "train_marked",
    "commit",
]

DECISION_FILE = "decision.json"
PAUSE_POINTS = ("after_lock", "after_train", "after_evaluate", "before_commit", "after_commit", "after_alias")
STATUS_TAG = "stockwise.status"
DECISION_TAG = "stockwise.decision_id"

#: marker written while the challenger trains: its MLflow runs are only closed when train returns
TRAINING = "training"


def lock_path_for(tracking_uri: str | None) -> Path:
    """``retrain.lock`` next to the sqlite store (else under ``mlruns/``)."""
    return store_dir(resolve_tracking_uri(tracking_uri)) / "retrain.lock"


def no_checkpoint(point: str) -> None:
    """The production checkpoint: nothing happens at the named points."""


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
    for marker in sorted(out.glob(f".{TRAINING}-*")):
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


def _scores_table(decision: Decision) -> str:
    """``scores.csv``: one row per model judged (challenger, champion) with its version and scores."""
    versions = {"challenger": decision.challenger, "champion": decision.incumbent or decision.champion_before}
    rows = {k: v for k, v in decision.scores.items() if v is not None}
    table = pd.DataFrame(rows).T.rename_axis("model").reset_index()
    table.insert(1, "version", table["model"].map(versions))
    return table.to_csv(index=False)


def train_marked(train: TrainFn, request, marker: Path) -> str:
    """Train with a marker on disk holding the start time, so a kill -9 inside train is recoverable."""
    write_text_atomic(str(int(time.time() * 1000)), marker)
    version = str(train(request))
    marker.unlink()
    return version


def commit(decision: Decision, out: Path, uri: str, checkpoint: Checkpoint = no_checkpoint) -> Decision:
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
