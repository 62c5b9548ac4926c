"""Issue 10: every input works or gets a named error, on the command line.

One generated data folder holds the series real data has: dead (all zero), one
point, gappy, late-launched, huge, constant, plus an item with an absurd lead time,
invalid item-master rows and a cyclic network. ``recommend`` must complete on it
and say what it left out; the fast checks below stop at validation.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

ROOT = Path(__file__).resolve().parents[2]

WEEKS = pd.date_range("2022-01-03", periods=70, freq="W-MON")
FAST = "forecast:\n  models: [SeasonalNaive, CrostonSBA]\n  n_windows: 2\n"


def _items(ids, **overrides) -> pd.DataFrame:
    items = pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": 10.0,
            "holding_rate": 0.25,
            "order_cost": 20.0,
            "shortage_cost": 8.0,
            "service_target": 0.95,
            "service_type": "csl",
            "lead_time": 2,
            "review_period": 1,
        }
    )
    for col, values in overrides.items():
        items[col] = values
    return items


def messy_panel(seed: int = 0) -> pd.DataFrame:
    """Smooth and intermittent series plus every awkward shape real demand has."""
    rng = np.random.default_rng(seed)
    n = len(WEEKS)
    shapes = {
        "smooth1": rng.poisson(20, n),
        "smooth2": rng.poisson(8, n),
        "intermittent": (rng.random(n) < 0.3) * rng.poisson(3, n),
        "dead": np.zeros(n),
        "constant": np.full(n, 5.0),
        "huge": rng.poisson(2e9, n).astype(float),
        "long_lead": rng.poisson(6, n),
    }
    frames = [pd.DataFrame({"unique_id": k, "ds": WEEKS, "y": np.asarray(v, float)}) for k, v in shapes.items()]
    frames.append(pd.DataFrame({"unique_id": "one_point", "ds": WEEKS[:1], "y": [3.0]}))
    frames.append(pd.DataFrame({"unique_id": "late_launch", "ds": WEEKS[50:], "y": rng.poisson(4, n - 50)}))
    gappy = np.delete(np.arange(n), [10, 11, 30])
    frames.append(pd.DataFrame({"unique_id": "gappy", "ds": WEEKS[gappy], "y": rng.poisson(5, len(gappy))}))
    return pd.concat(frames, ignore_index=True)


def _folder(path, demand, items, stages=None, edges=None):
    path.mkdir(parents=True, exist_ok=True)
    demand.to_csv(path / "demand.csv", index=False)
    items.to_csv(path / "items.csv", index=False)
    if stages is not None:
        stages.to_csv(path / "stages.csv", index=False)
        edges.to_csv(path / "edges.csv", index=False)
    return path


def _invoke(*args):
    result = CliRunner().invoke(app, [str(a) for a in args])
    return result, result.output


def _recommend(tmp_path, folder, *extra):
    (tmp_path / "c.yaml").write_text(FAST)
    return _invoke(
        "recommend",
        "--data",
        folder,
        "--config",
        tmp_path / "c.yaml",
        "--out",
        tmp_path / "runs",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
        *extra,
    )


@pytest.fixture(scope="module")
def messy_run(tmp_path_factory, new_store):
    tmp = tmp_path_factory.mktemp("messy")
    demand = messy_panel()
    ids = sorted(demand["unique_id"].unique())
    items = _items(ids + ["no_history"])
    items.loc[items["unique_id"] == "long_lead", "lead_time"] = 1000
    bad = _items(["bad_target", "bad_lead"], service_target=[95, 0.9], lead_time=[2, "2 weeks"])
    items = pd.concat([items, bad], ignore_index=True)
    demand = pd.concat(
        [
            demand,
            messy_panel(1).query("unique_id == 'smooth1'").assign(unique_id="bad_target"),
            messy_panel(2).query("unique_id == 'smooth1'").assign(unique_id="bad_lead"),
        ]
    )
    stages = pd.DataFrame(
        {
            "stage_id": ["A", "B"],
            "processing_time": 1,
            "holding_cost": 1.0,
            "max_service_time": [np.nan, 0.0],
            "unique_id": [None, "smooth1"],
        }
    )
    edges = pd.DataFrame({"upstream": ["A", "B"], "downstream": ["B", "A"], "quantity": 1.0})  # a cycle
    folder = _folder(tmp / "a-data-folder-with-a-rather-long-name-so-paths-would-wrap", demand, items, stages, edges)
    new_store(tmp / "m.db")  # the store _recommend names, already migrated
    result, out = _recommend(tmp, folder)
    return result, out, tmp


def test_recommend_completes_on_every_awkward_series(messy_run):
    result, out, tmp = messy_run
    assert result.exit_code == 0, out
    (run_dir,) = (tmp / "runs").iterdir()
    rec = pd.read_csv(run_dir / "recommendations.csv").set_index("unique_id")
    dead = rec.loc["dead"]
    assert dead["policy"] == "no_stock" and "no_demand" in dead["reasons"] and dead["order_up_to"] == 0
    assert {"smooth1", "smooth2", "intermittent", "constant", "huge"} <= set(rec.index)
    assert np.isfinite(rec.loc["huge", "order_up_to"])


def test_every_excluded_item_is_counted_on_the_console_and_in_the_report(messy_run):
    result, out, tmp = messy_run
    (run_dir,) = (tmp / "runs").iterdir()
    rec = set(pd.read_csv(run_dir / "recommendations.csv")["unique_id"])
    report = pd.read_csv(run_dir / "validation_report.csv")
    named = set(" ".join(report.loc[report["severity"] != "info", "series"].fillna("")).split())
    every = set(messy_panel()["unique_id"]) | {"no_history", "bad_target", "bad_lead"}
    assert every - rec <= named  # nothing vanished without a finding
    excluded = every - rec
    assert {"one_point", "gappy", "long_lead", "no_history", "bad_target", "bad_lead"} <= excluded
    assert f"excluded: {len(excluded)} item(s)/series" in out
    summary = next(line for line in out.splitlines() if line.startswith("excluded: "))
    for check in ("service_target_range", "non_numeric", "too_short", "gaps"):  # the top five reasons are listed
        assert f"1 {check}" in summary
    assert str(run_dir / "validation_report.csv") in summary
    assert "exposure_too_long" in set(report["check"])
    assert "long_lead (lead_time 1000 + review_period 1)" in " ".join(report["message"])


def test_a_cyclic_network_skips_meio_with_a_printed_and_logged_warning(messy_run):
    import mlflow

    result, out, tmp = messy_run
    assert "WARNING: multi-echelon placement (MEIO) skipped" in out and "cycle" in out.lower()
    (run_dir,) = (tmp / "runs").iterdir()
    run_id = (run_dir / "RUN.txt").read_text().split()[1]
    tags = mlflow.MlflowClient(f"sqlite:///{tmp / 'm.db'}").get_run(run_id).data.tags
    assert "MEIO" in tags["meio.skipped"]


def test_output_to_a_file_is_not_wrapped(messy_run):
    result, out, tmp = messy_run
    (run_dir,) = (tmp / "runs").iterdir()
    # the whole path on one line, however long (rich wrapped at 80 columns before)
    assert f"recommendations: {run_dir / 'recommendations.csv'}\n" in out
    assert max(map(len, out.splitlines())) > 80


# ----------------------------------------------------------------- fast: stopped by validation


def test_every_series_zero_is_a_named_finding(tmp_path):
    demand = messy_panel().query("unique_id in ['dead', 'smooth1']").assign(y=0.0)
    folder = _folder(tmp_path / "d", demand, _items(["dead", "smooth1"]))
    result, out = _recommend(tmp_path, folder)
    assert result.exit_code == 1 and "all_zero_demand" in out and "every series (2) has zero demand" in out
    assert "unknown model" not in out and not any((tmp_path / "runs").glob("*"))


def test_demand_csv_next_to_demand_parquet_is_ambiguous(tmp_path):
    demand = messy_panel().query("unique_id == 'smooth1'")
    folder = _folder(tmp_path / "d", demand, _items(["smooth1"]))
    demand.to_parquet(folder / "demand.parquet")
    result, out = _recommend(tmp_path, folder)
    assert result.exit_code == 1 and "both demand.parquet and demand.csv found" in out
    result, out = _invoke("validate", folder)
    assert result.exit_code == 1 and "both demand.parquet and demand.csv found" in out


@pytest.mark.parametrize(
    ("case", "finding"),
    [
        ("review_period_0", "review_period_range"),
        ("daily_as_weekly", "(the dates look like D data)"),
        ("lead_time_text_parquet", "'lead_time' is not a number"),
    ],
)
def test_inputs_that_leave_nothing_to_plan_explain_why(tmp_path, case, finding):
    demand, items, extra = messy_panel().query("unique_id == 'smooth1'"), _items(["smooth1"]), []
    if case == "review_period_0":
        items["review_period"] = 0
    elif case == "daily_as_weekly":
        demand = demand.assign(ds=pd.date_range("2022-01-03", periods=len(demand), freq="D"))
        extra = ["--freq", "W-MON"]
    folder = _folder(tmp_path / "d", demand, items)
    if case == "lead_time_text_parquet":
        items.astype({"lead_time": str}).assign(lead_time="two").to_parquet(folder / "items.parquet")
        (folder / "items.csv").unlink()
    result, out = _recommend(tmp_path, folder, *extra)
    assert result.exit_code == 1, out
    assert finding in " ".join(out.split()) and "no_data" in out
    assert "zero-size array" not in out and "Traceback" not in out


def test_validate_exits_1_when_every_row_is_excluded(tmp_path):
    demand = messy_panel().query("unique_id == 'one_point'")
    path = tmp_path / "demand.csv"
    demand.to_csv(path, index=False)
    result, out = _invoke("validate", path, "--min-length", "8", "--freq", "W-MON")
    assert result.exit_code == 1 and "no_data" in out and "lower min_length" in out


def test_validate_rejects_a_negative_min_length(tmp_path):
    path = tmp_path / "demand.csv"
    messy_panel().query("unique_id == 'smooth1'").to_csv(path, index=False)
    result, out = _invoke("validate", path, "--min-length", "-5")
    assert result.exit_code == 2 and "--min-length" in out


@pytest.mark.parametrize("freq", [[], ["--freq", "W-MON"]])
def test_validate_names_timezone_and_mixed_date_formats(tmp_path, freq):
    demand = messy_panel().query("unique_id == 'smooth1'").copy()
    demand["ds"] = demand["ds"].dt.strftime("%Y-%m-%dT00:00:00+01:00")
    path = tmp_path / "demand.csv"
    demand.to_csv(path, index=False)
    result, out = _invoke("validate", path, *freq)
    assert result.exit_code == 0, out
    assert "timezone_dropped (demand.csv, ds)" in out and "0 row(s)/series excluded" in out
    demand.loc[demand.index[5], "ds"] = "02/14/2022"
    demand.to_csv(path, index=False)
    result, out = _invoke("validate", path, *freq)
    assert "mixed_date_formats (demand.csv, ds)" in out and "'02/14/2022' at data row 6" in out
    assert result.exit_code == 1


# ----------------------------------------------------------------- tracking stores (rows 5, 6)


def test_a_corrupt_sqlite_store_is_one_line(tmp_path):
    demand = messy_panel().query("unique_id == 'smooth1'")
    folder = _folder(tmp_path / "d", demand, _items(["smooth1"]))
    db = tmp_path / "broken.db"
    db.write_bytes(b"this is not a database" * 100)
    proc = subprocess.run(
        [
            sys.executable,
            "-m",
            "pipelines.cli",
            "recommend",
            "--data",
            str(folder),
            "--out",
            str(tmp_path / "runs"),
            "--tracking-uri",
            f"sqlite:///{db}",
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=os.environ | {"PYTHONPATH": str(ROOT)},
    )
    assert proc.returncode == 1, proc.stderr[-2000:]
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "is not an SQLite database" in lines[0] and "Traceback" not in proc.stderr


def test_an_unreachable_tracking_server_fails_fast(tmp_path):
    folder = _folder(tmp_path / "d", messy_panel().query("unique_id == 'smooth1'"), _items(["smooth1"]))
    result, out = _invoke(
        "recommend", "--data", folder, "--out", tmp_path / "runs", "--tracking-uri", "http://127.0.0.1:9"
    )
    assert result.exit_code == 1
    assert "tracking server http://127.0.0.1:9 is not reachable" in str(result.exception or out)


@pytest.mark.parametrize(
    ("cell", "finding"),
    [
        ("1e300", "implausible_demand"),
        ("inf", "non_finite_demand"),
        ("2022-01-10T00:00:00+01:00|mixed", "mixed_date_formats"),
    ],
)
def test_backtest_names_absurd_demand_and_mixed_dates(tmp_path, cell, finding):
    demand = messy_panel().query("unique_id in ['smooth1', 'smooth2']").astype({"y": object, "ds": str})
    if cell.endswith("|mixed"):
        demand.loc[demand.index[3], "ds"] = "01/24/2022"
    else:
        demand.loc[demand.index[3], "y"] = cell
    path = tmp_path / "demand.csv"
    demand.to_csv(path, index=False)
    result, out = _invoke(
        "backtest",
        "--demand",
        path,
        "--freq",
        "W-MON",
        "--horizon",
        "2",
        "--out",
        tmp_path / "o",
        "--models",
        "SeasonalNaive",
        "--n-windows",
        "2",
        "--tracking-uri",
        f"sqlite:///{tmp_path / 'm.db'}",
    )
    assert result.exit_code == 1, out
    assert finding in out and "demand.csv" in out and "data row(s) 4" in out


def test_an_item_row_without_unique_id_is_named_not_a_crash(tmp_path):
    """Found by the property test: a blank unique_id in items.csv raised TypeError in the cross-check."""
    items = _items(["smooth1", "smooth2"])
    items.loc[1, "unique_id"] = None
    folder = _folder(tmp_path / "d", messy_panel().query("unique_id in ['smooth1', 'smooth2']"), items)
    result, out = _invoke("validate", folder)
    assert result.exit_code == 1 and "missing_id (items.csv, unique_id)" in out and "row 2 (no id)" in out


def test_a_demo_smaller_than_its_processes_is_a_named_error_not_a_numpy_crash():
    from pipelines.data.demo_data import DemoConfig

    # train --demo accepted demo_items 6 and crashed with "negative dimensions are not allowed"
    with pytest.raises(ValueError, match=r"n_items=6 too small; use >= 8 \(one item per demand process"):
        DemoConfig(n_items=6)
