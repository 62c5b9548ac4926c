"""Item master, cross-checks and the `stockwise validate` command."""

import pandas as pd
import pytest
from typer.testing import CliRunner

from forecasting.panel import DataValidationError
from pipelines.cli import app
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.data.io import InputFileError
from pipelines.data.validation import cross_check, load_dataset, validate_items

SMALL = DemoConfig(n_items=10, n_weeks=80, seed=3)


@pytest.fixture(scope="module")
def demo():
    return generate_demo(SMALL)


@pytest.fixture
def demo_folder(tmp_path, demo):
    write_demo(demo, tmp_path / "data")
    return tmp_path / "data"


def test_demo_items_are_valid(demo):
    items, report = validate_items(demo.items)
    assert report.ok and len(items) == len(demo.items)


@pytest.mark.parametrize(
    ("column", "value", "check"),
    [
        ("unit_cost", -1.0, "negative_unit_cost"),
        ("lead_time", -2.0, "negative_lead_time"),
        ("holding_rate", -0.1, "negative_holding_rate"),
        ("service_target", 1.0, "service_target_range"),
        ("service_target", 0.0, "service_target_range"),
        ("service_type", "always", "service_type"),
        ("order_cost", "cheap", "non_numeric"),
    ],
)
def test_item_defects_name_row_and_item(demo, column, value, check):
    items = demo.items.copy().astype({column: object})
    items.loc[2, column] = value
    clean, report = validate_items(items, source="items.csv")
    (issue,) = report.issues
    uid = demo.items.loc[2, "unique_id"]
    assert (issue.check, issue.column, issue.rows, issue.series) == (check, column, (3,), (uid,))
    assert f"row 3 ({uid})" in issue.message
    assert uid not in set(clean["unique_id"])


def test_items_missing_required_column(demo):
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['lead_time'\]"):
        validate_items(demo.items.drop(columns="lead_time"), source="items.csv")


def test_cross_check_reports_both_directions(demo):
    demand = demo.demand[demo.demand["unique_id"] != demo.items["unique_id"].iloc[0]]
    items = demo.items.iloc[1:]
    extra = pd.DataFrame({"unique_id": "GHOST@S01", "ds": demand["ds"].iloc[:3], "y": 1.0})
    items2 = pd.concat([items, items.iloc[[0]].assign(unique_id="NOSALES@S02")])
    d, i, report = cross_check(pd.concat([demand, extra]), items2, "demand.csv", "items.csv")
    found = {x.check: x.series for x in report.issues}
    assert found == {"missing_from_item_master": ("GHOST@S01",), "missing_from_demand": ("NOSALES@S02",)}
    assert set(d["unique_id"]) == set(i["unique_id"])


def test_load_dataset_reads_demo_folder(demo_folder, demo):
    data = load_dataset(demo_folder)
    assert data.report.ok and data.freq == "W-MON"
    new_items = demo.truth.loc[demo.truth["process"] == "new", "unique_id"]
    too_short = {i.check: set(i.series) for i in data.report.issues}.get("too_short", set())
    assert too_short <= set(new_items)
    assert data.demand["unique_id"].nunique() == len(demo.items) - len(too_short)
    assert data.stages is not None and len(data.edges) == len(demo.edges)


def test_load_dataset_missing_file(tmp_path):
    with pytest.raises(InputFileError, match="no demand.csv or demand.parquet found"):
        load_dataset(tmp_path)


def test_validate_cli_names_all_three_problems(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("unique_id,ds,y\nA,2024-01-01,1\nA,2024-01-08,2\nA,2024-01-08,2\nA,2024-01-15,-3\nA,2024-13-45,4\n")
    result = CliRunner().invoke(app, ["validate", str(bad), "--min-length", "1", "--report", str(tmp_path / "r.csv")])
    assert result.exit_code == 1
    out = " ".join(result.output.split())
    for text in ("duplicate_row", "data row(s) 3", "negative_demand", "data row(s) 4", "bad_date", "data row(s) 5"):
        assert text in out
    assert set(pd.read_csv(tmp_path / "r.csv")["check"]) == {"duplicate_row", "negative_demand", "bad_date"}


def test_validate_cli_ok_on_demo_folder(demo_folder):
    result = CliRunner().invoke(app, ["validate", str(demo_folder)])
    assert result.exit_code == 0, result.output


def test_validate_cli_missing_file(tmp_path):
    result = CliRunner().invoke(app, ["validate", str(tmp_path / "nope.csv")])
    assert result.exit_code == 1 and "file not found" in result.output


def test_network_cycle_and_unknown_stage_are_reported(demo_folder, demo):
    edges = pd.concat(
        [
            demo.edges,
            pd.DataFrame(
                {
                    "upstream": [demo.edges["downstream"].iloc[0]],
                    "downstream": [demo.edges["upstream"].iloc[0]],
                    "quantity": [1.0],
                }
            ),
        ]
    )
    edges.to_csv(demo_folder / "edges.csv", index=False)
    report = load_dataset(demo_folder).report
    (issue,) = report.errors
    assert issue.check == "network" and "cycle" in issue.message.lower()
    ghost = pd.concat(
        [
            demo.edges,
            pd.DataFrame(
                {"upstream": ["NOWHERE"], "downstream": [demo.edges["downstream"].iloc[0]], "quantity": [1.0]}
            ),
        ]
    )
    ghost.to_csv(demo_folder / "edges.csv", index=False)
    (issue,) = load_dataset(demo_folder).report.errors
    assert "NOWHERE" in issue.message


def test_network_without_edges_file(demo_folder):
    (demo_folder / "edges.csv").unlink()
    (issue,) = load_dataset(demo_folder).report.errors
    assert issue.check == "network_incomplete"


def test_stage_linked_to_a_series_without_demand(demo_folder, demo):
    stages = demo.stages.copy()
    stages.loc[stages["unique_id"].notna().idxmax(), "unique_id"] = "GHOST@S01"
    stages.to_csv(demo_folder / "stages.csv", index=False)
    found = {i.check: i.series for i in load_dataset(demo_folder).report.issues}
    assert found["stage_without_demand_series"] == ("GHOST@S01",)


def test_validate_cli_unknown_frequency_is_a_finding_not_a_traceback(tmp_path):
    path = tmp_path / "d.csv"
    path.write_text("unique_id,ds,y\nA,2024-01-01,1\n")
    result = CliRunner().invoke(app, ["validate", str(path), "--freq", "XX"])
    assert result.exit_code == 1 and "unknown frequency 'XX'" in result.output


def test_console_entry_turns_input_errors_into_one_line(monkeypatch, capsys, tmp_path):
    from pipelines import cli

    monkeypatch.setattr(
        "sys.argv", ["stockwise", "recommend", "--tracking-uri", "bogus://x", "--out", str(tmp_path / "runs")]
    )
    monkeypatch.delenv("STOCKWISE_DEBUG", raising=False)
    with pytest.raises(SystemExit, match="1"):
        cli.main()
    assert "tracking URI 'bogus://x' is not an MLflow store" in capsys.readouterr().err
