"""kill -9 while the challenger trains: recovery closes its MLflow runs and says so (issue 10, row 17).

Run as a script, this module is the child process: a retrain whose fake train opens
an MLflow ``train`` run with a nested ``labels`` run, writes a marker and waits to be
killed inside them.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow

from pipelines.flows.retrain import run_retrain
from pipelines.registry.tracking import end_stale_runs, start_run
from tests.pipelines.conftest import ITEMS, ROOT, fake_evaluate, fake_train, panel, settings, with_champion


def train_until_killed(marker: Path):
    def train(request) -> str:
        with start_run("train", request.tracking_uri), start_run("labels", nested=True):
            marker.write_text("training")
            time.sleep(300)
        raise AssertionError("not killed")

    return train


def _runs(uri: str) -> dict[str, str]:
    client = mlflow.MlflowClient(uri)
    exp = client.get_experiment_by_name("stockwise")
    return {r.info.run_id: r.info.status for r in client.search_runs([exp.experiment_id])}


def test_kill_9_inside_train_then_rerun_marks_its_runs_killed_and_says_so(store, tmp_path):
    uri, out = store
    with_champion(uri, out, quality=1.0)
    marker = tmp_path / "training"
    child = subprocess.Popen(
        [sys.executable, "-m", "tests.pipelines.test_retrain_recovery", uri, str(out), str(marker)],
        cwd=ROOT,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    end = time.monotonic() + 120
    while not marker.exists():
        assert child.poll() is None, child.stderr.read()[-2000:]
        assert time.monotonic() < end, "child never started training"
        time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait(timeout=30)
    running = [i for i, status in _runs(uri).items() if status == "RUNNING"]
    assert len(running) == 2  # the killed train run and its nested labels run
    lines = []
    code = run_retrain(panel(), ITEMS, fake_train(3.0), fake_evaluate, settings(uri, out), echo=lines.append)
    assert int(code) == 0
    recovered = [line for line in lines if line.startswith("RECOVERED: ")]
    assert len(recovered) == 2 and all("of a training killed with its retrain marked KILLED" in r for r in recovered)
    assert {r.split()[3] for r in recovered} == set(running)
    statuses = _runs(uri)
    assert all(statuses[i] == "KILLED" for i in running)
    assert "RUNNING" not in statuses.values() and end_stale_runs(None, uri) == []
    assert not list(out.glob(".training-*"))


if __name__ == "__main__":
    uri_arg, out_arg, marker_arg = sys.argv[1:4]
    sys.exit(
        int(
            run_retrain(
                panel(), ITEMS, train_until_killed(Path(marker_arg)), fake_evaluate, settings(uri_arg, Path(out_arg))
            )
        )
    )
