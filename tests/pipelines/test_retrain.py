"""Retrain with champion-challenger: promotion, rejection, lock, kill -9 at every commit stage.

The train/evaluate steps are fakes that register a version whose "quality" tag
sets its simulated cost (1000 / quality) and service, so the decision is known.
Run as a script, this module is the child process the kill tests start.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipelines.flows.retrain import (
    DECISION_FILE,
    PAUSE_POINTS,
    RetrainConfig,
    RetrainExit,
    decide,
    lock_path_for,
    no_checkpoint,
    retrain,
    run_retrain,
)
from pipelines.registry.lock import exclusive_lock
from pipelines.registry.tracking import (
    end_stale_runs,
    get_alias_version,
    get_version_tags,
    list_versions,
)
from tests.pipelines.conftest import ITEMS, MODEL, fake_evaluate, fake_train, panel, settings, with_champion

ROOT = Path(__file__).resolve().parents[2]


def committed_records(out: Path) -> list[Path]:
    """Decision records a reader can see (hidden staging folders excluded)."""
    return [p for p in sorted(out.glob(f"*/{DECISION_FILE}")) if not p.parent.name.startswith(".")]


def assert_consistent(uri: str, out: Path, champion_before: str) -> None:
    """No staging left, every record complete and applied, alias = last promotion (or unchanged)."""
    assert not list(out.glob(".staging-*"))
    records = [json.loads(p.read_text()) for p in committed_records(out)]
    assert all(r["alias_applied"] for r in records)
    promoted = [r["challenger"] for r in records if r["action"] == "promote"]
    alias = get_alias_version(MODEL, "champion", uri)
    assert alias == (promoted[-1] if promoted else champion_before)
    statuses = {v["version"]: v["tags"].get("stockwise.status") for v in list_versions(MODEL, uri)}
    assert statuses[alias] in ("champion", None)
    assert "challenger" not in statuses.values(), statuses


def test_the_record_says_which_of_trains_paths_the_challenger_is(store):
    """With ``shortfall_scales`` the train step registers the path its gate chose and tags it; the record,
    its reason and the MLflow run say which path the challenger is (a train step without tags: None)."""
    uri, out = store
    champion = with_champion(uri, out)
    why = "train's gate chose classifier_tuned: decision replay (...): classifier_tuned promoted: ..."
    decision = retrain(
        panel(), ITEMS, fake_train(1.2, path=("classifier_tuned", why)), fake_evaluate, settings(uri, out)
    )
    assert decision.action == "promote" and decision.champion_before == champion
    assert (decision.challenger_path, decision.challenger_why) == ("classifier_tuned", why)
    said = f"challenger v{decision.challenger} is train's path 'classifier_tuned': train's gate chose classifier_tuned"
    assert decision.reason.endswith(said)
    record = json.loads((out / decision.decision_id / DECISION_FILE).read_text())
    assert record["challenger_path"] == "classifier_tuned" and record["challenger_why"] == why
    assert mlflow.MlflowClient(uri).get_run(decision.mlflow_run_id).data.params["challenger_path"] == "classifier_tuned"
    plain = retrain(panel(), ITEMS, fake_train(1.5), fake_evaluate, settings(uri, out))
    assert plain.challenger_path is None and "train's path" not in plain.reason


def test_first_retrain_promotes_then_better_wins_and_worse_is_rejected(store):
    uri, out = store
    first = retrain(panel(), ITEMS, fake_train(1.0), fake_evaluate, settings(uri, out))
    assert first.action == "promote" and first.champion_before is None and "no champion" in first.reason
    # a plain evaluate (no with_selectors) cannot judge the packaged default: promoted unjudged, said
    assert first.reason.startswith("unjudged (the evaluate step cannot judge the packaged default)")
    assert first.incumbent is None
    better = retrain(panel(), ITEMS, fake_train(1.2), fake_evaluate, settings(uri, out))
    assert better.action == "promote" and better.exit_code == RetrainExit.PROMOTED
    assert get_alias_version(MODEL, "champion", uri) == better.challenger
    assert better.scores["champion"]["total_cost"] == pytest.approx(1000.0)
    worse = retrain(panel(), ITEMS, fake_train(0.8), fake_evaluate, settings(uri, out))
    assert worse.action == "keep" and worse.exit_code == RetrainExit.KEPT
    assert get_alias_version(MODEL, "champion", uri) == better.challenger  # champion unchanged
    assert get_version_tags(MODEL, worse.challenger, uri)["stockwise.status"] == "rejected"
    record = json.loads((out / worse.decision_id / DECISION_FILE).read_text())
    assert record["action"] == "keep" and record["champion_before"] == better.challenger
    assert pd.read_csv(out / worse.decision_id / "scores.csv")["model"].tolist() == ["challenger", "champion"]
    assert_consistent(uri, out, better.challenger)


def test_champion_from_train_is_kept_when_gain_is_below_margin_or_service_drops(store):
    uri, out = store
    champion = with_champion(uri, out, quality=1.0)
    code = run_retrain(panel(), ITEMS, fake_train(1.01), fake_evaluate, settings(uri, out), echo=lambda s: None)
    assert code == RetrainExit.KEPT  # 1 % cheaper < 2 % margin
    code = run_retrain(
        panel(), ITEMS, fake_train(1.5, service=0.90), fake_evaluate, settings(uri, out), echo=lambda s: None
    )
    assert code == RetrainExit.KEPT  # much cheaper but loses service
    assert get_alias_version(MODEL, "champion", uri) == champion
    assert_consistent(uri, out, champion)


def test_failures_exit_1_and_leave_the_champion(store):
    uri, out = store
    champion = with_champion(uri, out)

    def broken_eval(version, request):
        raise ValueError("simulator exploded")

    messages = []
    code = run_retrain(panel(), ITEMS, fake_train(2.0), broken_eval, settings(uri, out), echo=messages.append)
    assert code == RetrainExit.FAILED and "simulator exploded" in messages[0]
    assert get_alias_version(MODEL, "champion", uri) == champion
    code = run_retrain(panel(), ITEMS, fake_train(2.0), fake_evaluate, settings(uri, out), echo=messages.append)
    assert code == RetrainExit.PROMOTED  # the rerun works; the failed challenger is abandoned
    statuses = [v["tags"]["stockwise.status"] for v in list_versions(MODEL, uri)]
    assert sorted(statuses) == ["abandoned", "champion", "retired"]


def test_decide_rules_and_errors():
    cfg = RetrainConfig(margin=0.05, max_service_drop=0.01)
    assert decide({"total_cost": 100, "service": 0.95}, {"total_cost": 94, "service": 0.945}, cfg)[0] == "promote"
    assert decide({"total_cost": 100, "service": 0.95}, {"total_cost": 96, "service": 0.99}, cfg)[0] == "keep"
    assert decide({"total_cost": 100, "service": 0.95}, {"total_cost": 50, "service": 0.93}, cfg)[0] == "keep"
    with pytest.raises(ValueError, match="challenger scores need total_cost and service"):
        decide(None, {"cost": 1.0}, cfg)
    with pytest.raises(ValueError, match="margin=1.5"):
        RetrainConfig(margin=1.5)


def test_held_lock_gives_exit_75(store):
    uri, out = store
    with exclusive_lock(lock_path_for(uri)):
        messages = []
        code = run_retrain(panel(), ITEMS, fake_train(2.0), fake_evaluate, settings(uri, out), echo=messages.append)
    assert code == RetrainExit.LOCKED and "locked by another process" in messages[0]
    assert get_alias_version(MODEL, "champion", uri) is None and not out.exists()


# --- child process: kill -9 and concurrency --------------------------------------------------------


def start_child(uri: str, out: Path, quality: float, pause_at: str, marker: Path) -> subprocess.Popen:
    """A retrain in a child process that waits at ``pause_at`` (writing ``marker``) to be killed."""
    env = os.environ | {"PYTHONPATH": str(ROOT)}
    args = [uri, str(out), str(quality), pause_at, str(marker)]
    return subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.test_retrain", *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def pause_at(point: str, marker: Path, seconds: float = 300.0):
    """The checkpoint injected into the child: at ``point``, say so in ``marker`` and wait."""

    def checkpoint(reached: str) -> None:
        if reached == point:
            marker.write_text(reached)
            time.sleep(seconds)

    return checkpoint


def wait_for(marker: Path, child: subprocess.Popen, timeout: float = 90) -> None:
    end = time.monotonic() + timeout
    while not marker.exists():
        if child.poll() is not None:
            raise AssertionError(f"child ended early ({child.returncode}): {child.stderr.read()[-2000:]}")
        if time.monotonic() > end:
            child.kill()
            raise AssertionError("child never reached its pause point")
        time.sleep(0.05)


@pytest.mark.parametrize("point", ["after_train", "before_commit", "after_commit", "after_alias"])
def test_kill_9_then_rerun_leaves_a_consistent_store(store, tmp_path, point):
    assert point in PAUSE_POINTS
    uri, out = store
    champion = with_champion(uri, out, quality=1.0)
    child = start_child(uri, out, 1.5, point, tmp_path / "paused")
    wait_for(tmp_path / "paused", child)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    alias_after_kill = get_alias_version(MODEL, "champion", uri)
    committed = committed_records(out)
    if point in ("after_train", "before_commit"):  # nothing decided: nothing visible, champion unchanged
        assert alias_after_kill == champion and committed == []
    elif point == "after_commit":  # decided, alias not yet moved: rolled forward on rerun
        assert alias_after_kill == champion and len(committed) == 1
    else:
        assert alias_after_kill != champion
    decision = retrain(panel(), ITEMS, fake_train(3.0), fake_evaluate, settings(uri, out))
    assert decision.action == "promote"
    assert end_stale_runs("retrain", uri) == []  # the killed run was closed by recovery
    assert decision.champion_before == (
        champion if point in ("after_train", "before_commit") else json.loads(committed[0].read_text())["challenger"]
    )
    assert_consistent(uri, out, champion)


def test_concurrent_retrain_gets_the_lock_exit_code(store, tmp_path):
    uri, out = store
    champion = with_champion(uri, out)
    first = start_child(uri, out, 1.5, "after_lock", tmp_path / "paused")
    wait_for(tmp_path / "paused", first)
    second = subprocess.run(
        [sys.executable, "-m", "tests.pipelines.test_retrain", uri, str(out), "2.0"],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert second.returncode == RetrainExit.LOCKED, second.stdout + second.stderr
    assert "LOCKED" in second.stdout
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=30)
    assert get_alias_version(MODEL, "champion", uri) == champion
    assert retrain(panel(), ITEMS, fake_train(2.0), fake_evaluate, settings(uri, out)).action == "promote"


if __name__ == "__main__":
    uri_arg, out_arg, quality_arg, *pause = sys.argv[1:]
    checkpoint = pause_at(pause[0], Path(pause[1])) if pause else no_checkpoint
    sys.exit(
        int(
            run_retrain(
                panel(),
                ITEMS,
                fake_train(float(quality_arg)),
                fake_evaluate,
                settings(uri_arg, Path(out_arg)),
                checkpoint=checkpoint,
            )
        )
    )
