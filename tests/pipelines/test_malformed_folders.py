"""Property: any malformed data folder ends in exit 0 or a named error, never a traceback.

Hypothesis builds data folders (demand, items, stages, edges, and a policy table)
from a clean base and a random list of defects real files have: blanks, text in
number columns, negative, zero, absurd or infinite values, duplicates, missing rows,
cycles and unknown stages. ``validate``, ``recommend``, ``simulate`` and ``gsm`` run
through the real entry point (:func:`pipelines.cli.main`); an exception other than
the input errors ``main`` prints as one line fails the test with its traceback.
Every row or item that does not reach the output must be named in a finding.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pipelines.cli import main

IDS = ["A", "B", "C"]
WEEKS = pd.date_range("2023-01-02", periods=30, freq="W-MON")
BAD = [None, "", "x", "2 weeks", -3, 0, 1, 1.5, 95, 1e300, float("inf"), float("nan"), "2024-13-45"]
SETTINGS = dict(
    deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)


def _base() -> dict[str, pd.DataFrame]:
    rng = np.random.default_rng(0)
    demand = pd.DataFrame(
        [(u, d, float(rng.poisson(4))) for u in IDS for d in WEEKS], columns=["unique_id", "ds", "y"]
    ).astype({"ds": str})
    items = pd.DataFrame(
        {
            "unique_id": IDS + ["D"],
            "unit_cost": 10.0,
            "holding_rate": 0.25,
            "order_cost": 20.0,
            "service_target": 0.95,
            "service_type": "csl",
            "lead_time": 2,
            "review_period": 1,
        }
    )
    stages = pd.DataFrame(
        {
            "stage_id": ["W", *IDS],
            "processing_time": [3, 1, 1, 1],
            "holding_cost": 1.0,
            "max_service_time": [None, 0, 0, 0],
            "unique_id": [None, *IDS],
            "demand_mean": [None, 4.0, 4.0, 4.0],
            "demand_std": [None, 2.0, 2.0, 2.0],
        }
    )
    edges = pd.DataFrame({"upstream": "W", "downstream": IDS, "quantity": 1.0})
    policies = pd.DataFrame(
        {
            "unique_id": IDS,
            "policy_type": ["R_S", "s_Q", "R_s_S"],
            "lead_time": 2,
            "review_period": 1,
            "reorder_level": [0.0, 8.0, 6.0],
            "order_up_to": [15.0, 0.0, 15.0],
            "order_quantity": [0.0, 10.0, 0.0],
        }
    )
    return {"demand": demand, "items": items, "stages": stages, "edges": edges, "policies": policies}


TABLES = list(_base())
edit = st.tuples(st.sampled_from(TABLES), st.integers(0, 200), st.integers(0, 10), st.sampled_from(BAD))
structural = st.sampled_from(
    [
        "none",
        "cycle",
        "unknown_stage",
        "drop_rows",
        "duplicate_rows",
        "all_zero",
        "dead_series",
        "no_items_match",
        "late_launch",
    ]
)


def _apply(tables: dict[str, pd.DataFrame], edits, shape: str) -> dict[str, pd.DataFrame]:
    t = {k: v.astype(object) for k, v in tables.items()}
    for name, row, col, value in edits:
        frame = t[name]
        frame.iat[row % len(frame), col % frame.shape[1]] = value
    if shape == "cycle":
        t["edges"] = pd.concat([t["edges"], pd.DataFrame({"upstream": ["A"], "downstream": ["W"], "quantity": [1.0]})])
    elif shape == "unknown_stage":
        t["edges"].iat[0, 0] = "NOPE"
    elif shape == "drop_rows":
        t["demand"] = t["demand"].drop(index=[5, 6, 40])
    elif shape == "duplicate_rows":
        t["demand"] = pd.concat([t["demand"], t["demand"].iloc[:3]])
        t["items"] = pd.concat([t["items"], t["items"].iloc[:1]])
    elif shape == "all_zero":
        t["demand"]["y"] = 0.0
    elif shape == "dead_series":
        t["demand"].loc[t["demand"]["unique_id"] == "B", "y"] = 0.0
    elif shape == "no_items_match":
        t["items"]["unique_id"] = ["X1", "X2", "X3", "X4"]
    elif shape == "late_launch":
        t["demand"] = t["demand"][(t["demand"]["unique_id"] != "C") | (t["demand"].index % 30 >= 20)]
    return t


def _write(folder: Path, t: dict[str, pd.DataFrame]) -> Path:
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    for name, frame in t.items():
        frame.to_csv(folder / f"{name}.csv", index=False)
    return folder


def _stockwise(capsys, *args) -> tuple[int, str]:
    """Run the real entry point; any exception main does not turn into one line propagates."""
    with mock.patch.object(sys, "argv", ["stockwise", *map(str, args)]):
        try:
            main()
            code = 0
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else 1
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert "Traceback" not in out, out
    assert code in (0, 1), (code, out)
    if code == 1 and captured.err.startswith("stockwise: error:"):
        assert len(captured.err.strip().splitlines()) == 1, captured.err
    return code, out


def _named(report: pd.DataFrame) -> set[str]:
    return set(" ".join(report.loc[report["severity"] != "info", "series"].fillna("").astype(str)).split())


def _unnamed(ids: set[str], named: set[str]) -> set[str]:
    """Ids not named in the report (its series column joins ids with spaces, so compare word by word)."""
    return {i for i in ids if not set(i.split()) <= named}


def _raw_ids(folder: Path) -> set[str]:
    """Ids as the commands read them from the CSV files (blank = missing)."""
    read = [pd.read_csv(folder / f"{n}.csv", dtype={"unique_id": str})["unique_id"] for n in ("demand", "items")]
    ids = pd.concat(read).dropna().str.strip()
    return set(ids[ids != ""])


@settings(max_examples=25, **SETTINGS)
@given(st.lists(edit, max_size=6), structural)
def test_validate_never_crashes_and_counts_every_exclusion(tmp_path_factory, capsys, edits, shape):
    from pipelines.data.validation import load_dataset

    t = _apply(_base(), edits, shape)
    t.pop("policies")
    folder = _write(tmp_path_factory.getbasetemp() / "validate", t)
    code, out = _stockwise(capsys, "validate", folder, "--report", folder / "report.csv")
    if code == 0 or (folder / "report.csv").exists():
        data = load_dataset(folder)
        kept = set(data.demand["unique_id"]) & set(data.items["unique_id"])
        assert not _unnamed(_raw_ids(folder) - kept, _named(data.report.to_frame())), out
        raw_rows = len(t["demand"])
        dropped = raw_rows - len(data.demand)
        assert data.report.n_excluded_rows >= dropped


@settings(max_examples=6, **SETTINGS)
@given(st.lists(edit, max_size=6), structural)
def test_simulate_never_crashes_and_reports_every_series(tmp_path_factory, capsys, edits, shape):
    t = _apply(_base(), edits, shape)
    base = tmp_path_factory.getbasetemp()
    folder = _write(base / "simulate", {"demand": t["demand"], "policies": t["policies"]})
    out_dir = folder / "out"
    code, out = _stockwise(
        capsys,
        "simulate",
        "--demand",
        folder / "demand.csv",
        "--policies",
        folder / "policies.csv",
        "--out",
        out_dir,
        "--tracking-uri",
        f"sqlite:///{base / 'sim.db'}",
    )
    if code == 0:
        done = set(pd.read_csv(out_dir / "kpis.csv", dtype={"unique_id": str})["unique_id"])
        excluded = set(pd.read_csv(out_dir / "excluded.csv", dtype={"unique_id": str})["unique_id"])
        raw = pd.read_csv(folder / "demand.csv", dtype={"unique_id": str})["unique_id"]  # as the command read it
        assert set(raw.dropna()) <= done | excluded


@settings(max_examples=10, **SETTINGS)
@given(st.lists(edit, max_size=6), structural)
def test_gsm_never_crashes(tmp_path_factory, capsys, edits, shape):
    t = _apply(_base(), edits, shape)
    folder = _write(tmp_path_factory.getbasetemp() / "gsm", {"stages": t["stages"], "edges": t["edges"]})
    code, out = _stockwise(
        capsys, "gsm", "--stages", folder / "stages.csv", "--edges", folder / "edges.csv", "--no-track", "--json"
    )
    if code == 0:
        assert "Infinity" not in out and "NaN" not in out  # valid JSON numbers only


@settings(max_examples=4, **SETTINGS)
@given(st.lists(edit, max_size=4), structural)
def test_recommend_never_crashes_and_names_every_item_it_drops(tmp_path_factory, capsys, edits, shape):
    t = _apply(_base(), edits, shape)
    t.pop("policies")
    base = tmp_path_factory.getbasetemp()
    folder = _write(base / "recommend", t)
    (base / "fast.yaml").write_text("forecast:\n  models: [SeasonalNaive]\n  n_windows: 2\nmin_length: 4\n")
    runs = base / "recommend-runs"
    shutil.rmtree(runs, ignore_errors=True)
    code, out = _stockwise(
        capsys,
        "recommend",
        "--data",
        folder,
        "--config",
        base / "fast.yaml",
        "--out",
        runs,
        "--tracking-uri",
        f"sqlite:///{base / 'rec.db'}",
    )
    if code == 0:
        (run_dir,) = runs.iterdir()
        rec = set(pd.read_csv(run_dir / "recommendations.csv", dtype={"unique_id": str})["unique_id"])
        report = pd.read_csv(run_dir / "validation_report.csv", dtype={"series": str})
        assert not _unnamed(_raw_ids(folder) - rec, _named(report)), out
