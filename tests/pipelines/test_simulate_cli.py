"""``stockwise simulate``: end-to-end on a tiny panel, outputs and errors."""

from __future__ import annotations

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.flows.simulate import run_simulation


@pytest.fixture
def files(tmp_path, panel_factory):
    demand = panel_factory(n_series=4, length=60, kind="smooth", seed=2)
    policies = pd.DataFrame(
        {
            "unique_id": ["S000", "S001", "S002"],
            "policy_type": ["base_stock", "R_S", "s_Q"],
            "lead_time": [1, 2, 1],
            "review_period": [1, 2, 1],
            "order_up_to": [30.0, 70.0, None],
            "reorder_level": [None, None, 40.0],
            "order_quantity": [None, None, 60.0],
            "holding_cost": [0.1, 0.1, 0.2],
            "shortage_cost": [2.0, 2.0, 2.0],
            "lost_sales": ["false", "true", "false"],
        }
    )
    demand_path, policy_path = tmp_path / "demand.csv", tmp_path / "policies.csv"
    demand.to_csv(demand_path, index=False)
    policies.to_csv(policy_path, index=False)
    return demand_path, policy_path, policies, demand


def test_cli_writes_kpis_and_total(files, tmp_path, tracking_uri):
    demand_path, policy_path, _, _ = files
    out = tmp_path / "out"
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "--demand",
            str(demand_path),
            "--policies",
            str(policy_path),
            "--out",
            str(out),
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert res.exit_code == 0, res.output
    kpis = pd.read_csv(out / "kpis.csv", dtype={"unique_id": str})
    assert kpis["unique_id"].tolist() == ["S000", "S001", "S002"]
    for col in ["csl", "fill_rate", "avg_on_hand", "avg_backorder", "n_orders", "cost_holding", "cost_total"]:
        assert col in kpis
    assert kpis["fill_rate"].between(0, 1).all()
    total = pd.read_csv(out / "kpis_total.csv")
    assert total["cost_total"].iloc[0] == pytest.approx(kpis["cost_total"].sum())
    excluded = pd.read_csv(out / "excluded.csv")
    assert excluded["unique_id"].tolist() == ["S003"]
    assert not list(out.glob(".*.tmp"))  # atomic writes leave no temp files
    import mlflow

    runs = mlflow.search_runs(experiment_names=["stockwise"], filter_string="attributes.run_name = 'simulate'")
    assert len(runs) == 1 and runs["metrics.total.n_items"].iloc[0] == 3


def test_cli_bad_input_exits_1_with_named_file(files, tmp_path):
    demand_path, _, policies, _ = files
    bad = policies.assign(lead_time=[1, -2, 1])
    bad_path = tmp_path / "bad.csv"
    bad.to_csv(bad_path, index=False)
    res = CliRunner().invoke(
        app,
        [
            "simulate",
            "--demand",
            str(demand_path),
            "--policies",
            str(bad_path),
            "--out",
            str(tmp_path / "o"),
            "--tracking-uri",
            "sqlite:///unused.db",
        ],
    )
    assert res.exit_code == 1
    assert "bad.csv: column 'lead_time', rows ['3']" in res.output


@pytest.mark.parametrize(
    ("change", "match"),
    [
        (lambda p: p.drop(columns="policy_type"), r"missing column\(s\) \['policy_type'\]"),
        (lambda p: p.assign(policy_type=["base_stock", "RS", "s_Q"]), r"unknown policy_type \['RS'\]"),
        (lambda p: p.assign(unique_id=["S000", "S000", "S002"]), r"column 'unique_id', rows \['2', '3'\]"),
        (lambda p: p.assign(unique_id=["S000", "S001", "X9"]), r"no demand for unique_id \['X9'\]"),
        (lambda p: p.assign(holding_cost=[0.1, "abc", 0.2]), r"column 'holding_cost', rows \['3'\]"),
        (lambda p: p.assign(lost_sales=["maybe", "true", "false"]), r"column 'lost_sales', rows \['2'\]"),
    ],
)
def test_policy_table_errors(files, tmp_path, tracking_uri, change, match):
    _, _, policies, demand = files
    with pytest.raises(ValueError, match=match):
        run_simulation(demand, change(policies), tmp_path / "o", policy_source="pol.csv", tracking_uri=tracking_uri)


def test_series_with_gaps_are_excluded_and_reported(files, tmp_path, tracking_uri):
    _, _, policies, demand = files
    holed = demand.drop(index=demand.index[(demand["unique_id"] == "S001")][5])
    res = run_simulation(holed, policies, tmp_path / "o", demand_source="dem.csv", tracking_uri=tracking_uri)
    assert res.kpis["unique_id"].tolist() == ["S000", "S002"]
    reasons = dict(zip(res.excluded["unique_id"], res.excluded["reason"]))
    assert reasons == {"S001": "demand missing or NaN in 1 of 60 periods", "S003": "no row in the policy table"}


def test_all_series_with_gaps_is_an_error(files, tmp_path):
    _, _, policies, demand = files
    dates = demand["ds"].unique()
    gap = {"S000": dates[0], "S001": dates[1], "S002": dates[2]}  # each series misses another period
    holed = demand[demand["ds"] != demand["unique_id"].map(gap)]
    with pytest.raises(ValueError, match=r"dem.csv: every series in the policy table has missing or NaN periods"):
        run_simulation(
            holed, policies, tmp_path / "o", demand_source="dem.csv", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}"
        )


@pytest.mark.parametrize(
    ("change", "match"),
    [
        # issue 10, row 16: file, column or parameter, row (CSV line) and unique_id; no internal index
        (
            lambda p: p.assign(order_quantity=[None, None, 0.0]),
            r"pol.csv: order_quantity Q must be > 0 \(s_Q policy\) at rows \[4\] \(unique_id \['S002'\], got 0.0\)",
        ),
        (
            lambda p: p.assign(review_period=[1, 0, 1]),
            r"pol.csv: review_period must be >= 1 at rows \[3\] \(unique_id \['S001'\], got 0\)",
        ),
        (
            lambda p: p.assign(policy_type=["base_stock", "R_s_S", "s_Q"], reorder_level=[None, 90.0, 40.0]),
            r"pol.csv: order_up_to S must be >= reorder_level s at rows \[3\] \(unique_id \['S001'\], got s=90 > S=70\)",
        ),
        (
            lambda p: p.assign(order_up_to=[1e300, 70.0, None]),
            r"pol.csv: order_up_to must be at most 1e\+15 units at rows \[2\] \(unique_id \['S000'\]",
        ),
        (
            lambda p: p.assign(order_up_to=[float("inf"), 70.0, None]),
            r"pol.csv: column 'order_up_to', rows \['2'\] \(unique_id \['S000'\]\): must be a finite number",
        ),
    ],
)
def test_invalid_policy_parameters_name_file_row_and_unique_id(files, tmp_path, change, match):
    _, _, policies, demand = files
    with pytest.raises(ValueError, match=match):
        run_simulation(
            demand,
            change(policies),
            tmp_path / "o",
            policy_source="pol.csv",
            tracking_uri=f"sqlite:///{tmp_path / 'm.db'}",
        )


@pytest.mark.parametrize("bad", ["lots", "inf", "1e300"])
def test_demand_that_is_not_a_finite_number_names_the_row_and_series(files, tmp_path, bad):
    _, _, policies, demand = files
    demand = demand.astype({"y": object})
    demand.loc[3, "y"] = bad
    with pytest.raises(
        ValueError,
        match=rf"dem.csv: column 'y', rows \['5'\] \(unique_id \['S000'\]\): "
        rf"not a finite number of units .*'{bad}'",
    ):
        run_simulation(
            demand, policies, tmp_path / "o", demand_source="dem.csv", tracking_uri=f"sqlite:///{tmp_path / 'm.db'}"
        )
