"""Tracking goes to the configured sqlite store, with params, metrics, artifacts."""

import ast
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from pipelines.registry.tracking import artifact_root_for, fingerprint, resolve_tracking_uri, start_run

ROOT = Path(__file__).resolve().parents[2]


def test_run_with_nested_step_lands_in_sqlite_store(tmp_path):
    # a plain path, not the copied store of the tracking_uri fixture: creating the store is under test
    tracking_uri = f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
    assert not (tmp_path / "mlruns").exists()
    frame = pd.DataFrame({"a": [1, 2]})
    with start_run("parent", tracking_uri=tracking_uri) as parent:
        parent.log_params({"forecast": {"models": ["AutoETS"]}, "seed": 7})
        parent.log_fingerprints({"demand": frame})
        with start_run("child", nested=True) as child:
            child.log_metrics({"fill_rate": 0.97, "skipped": float("nan")})
            child.log_table(frame, "table.csv")
    client = mlflow.MlflowClient(tracking_uri)
    run = client.get_run(parent.run_id)
    assert run.data.params["forecast.models"] == "['AutoETS']"
    assert run.data.params["data.demand.sha"] == fingerprint(frame)
    kid = client.get_run(child.run_id)
    assert kid.data.tags["mlflow.parentRunId"] == parent.run_id
    assert kid.data.metrics == {"fill_rate": 0.97}
    assert [a.path for a in client.list_artifacts(child.run_id)] == ["table.csv"]
    assert (tmp_path / "mlruns" / "mlflow.db").is_file()
    assert (tmp_path / "mlruns" / "artifacts").is_dir()


def test_fingerprint_changes_with_content():
    a = pd.DataFrame({"y": [1.0, 2.0]})
    assert fingerprint(a) == fingerprint(a.copy())
    assert fingerprint(a) != fingerprint(pd.DataFrame({"y": [1.0, 3.0]}))


def test_uri_resolution(monkeypatch):
    monkeypatch.delenv("STOCKWISE_TRACKING_URI", raising=False)
    assert resolve_tracking_uri() == "sqlite:///mlruns/mlflow.db"
    monkeypatch.setenv("STOCKWISE_TRACKING_URI", "sqlite:///x/y.db")
    assert resolve_tracking_uri() == "sqlite:///x/y.db"
    assert resolve_tracking_uri("sqlite:///z.db") == "sqlite:///z.db"
    assert artifact_root_for("sqlite:////tmp/s/m.db") == "file:///tmp/s/artifacts"


@pytest.mark.parametrize("package", ["forecasting", "optimization", "policy_selector"])
def test_libraries_do_not_import_mlflow_io_or_pipelines(package):
    forbidden = {"mlflow", "pipelines"} | (
        {"forecasting", "policy_selector"}
        if package == "optimization"
        else {"optimization", "policy_selector"}
        if package == "forecasting"
        else set()
    )
    for path in (ROOT / package).glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            names = (
                [a.name for a in node.names]
                if isinstance(node, ast.Import)
                else [node.module or ""]
                if isinstance(node, ast.ImportFrom)
                else []
            )
            for name in names:
                assert name.split(".")[0] not in forbidden, f"{path.name} imports {name}"


def test_only_tracking_module_imports_mlflow():
    for path in (ROOT / "pipelines").glob("*.py"):
        if path.name == "tracking.py":
            continue
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert all(a.name.split(".")[0] != "mlflow" for a in node.names), path.name
            if isinstance(node, ast.ImportFrom):
                assert (node.module or "").split(".")[0] != "mlflow", path.name
