"""``stockwise gsm`` end to end on tiny inputs (JSON summary, per-stage file, exit codes)."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app

HEADER = "stage_id,lead_time,max_s_time,cost_rate,risk_pool,ext_demand_mean,ext_demand_std,ext_demand_thres,up_stages\n"


@pytest.fixture
def chain(tmp_path):
    path = tmp_path / "chain.csv"
    path.write_text(HEADER + "A,3,,10,2,,,\nB,2,,5,2,,,\nC,1,0,1,,10,2,1.645,A,1,B,1\n")
    return path


def test_willems_json_and_out(chain, tmp_path, tracking_uri):
    out = tmp_path / "stages.csv"
    res = CliRunner().invoke(
        app,
        [
            "gsm",
            "--willems",
            str(chain),
            "--holding-rate",
            "0.35",
            "--json",
            "--out",
            str(out),
            "--tracking-uri",
            tracking_uri,
        ],
    )
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert {"total_cost", "n_stages", "solve_seconds", "optimal"} <= set(summary)
    assert summary["n_stages"] == 3 and summary["optimal"] is True
    import mlflow

    run = mlflow.MlflowClient(tracking_uri).get_run(summary["run_id"])
    assert run.data.metrics["total_cost"] == pytest.approx(summary["total_cost"])
    frame = pd.read_csv(out)
    assert frame["holding_cost"].sum() == pytest.approx(summary["total_cost"])
    assert set(frame.stage_id) == {"A", "B", "C"}


def test_stockwise_csvs(tmp_path):
    (tmp_path / "stages.csv").write_text(
        "stage_id,processing_time,holding_cost,max_service_time,unique_id,demand_mean,demand_std\n"
        "X@CW,4,1,,,,\nX@S01,1,2,0,X@S01,20,5\n"
    )
    (tmp_path / "edges.csv").write_text("upstream,downstream,quantity\nX@CW,X@S01,1\n")
    res = CliRunner().invoke(
        app,
        [
            "gsm",
            "--stages",
            str(tmp_path / "stages.csv"),
            "--edges",
            str(tmp_path / "edges.csv"),
            "--safety-factor",
            "1.645",
            "--json",
            "--no-track",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout.strip().splitlines()[-1])["method"] == "tree_dp"


def test_bad_input_exits_1(tmp_path, chain):
    res = CliRunner().invoke(app, ["gsm", "--willems", str(tmp_path / "missing.csv"), "--json", "--no-track"])
    assert res.exit_code == 1
    res = CliRunner().invoke(app, ["gsm", "--willems", str(chain), "--stages", str(chain), "--json", "--no-track"])
    assert res.exit_code == 1
    assert "not both" in res.output


def small_tree():
    from optimization import Edge, Network, Stage

    stores = [Stage(f"X@S{i}", 1, 2.0, 0.0, unique_id=f"X@S{i}") for i in (1, 2)]
    return Network([Stage("X@CW", 3, 1.0)] + stores, [Edge("X@CW", "X@S1"), Edge("X@CW", "X@S2")])


def test_stage_demand_aggregates_downstream_series():
    from policy_selector.buffers import stage_demand

    ds = pd.date_range("2024-01-01", periods=3, freq="W-MON")
    demand = pd.DataFrame(
        {"unique_id": ["X@S1"] * 3 + ["X@S2"] * 3, "ds": list(ds) * 2, "y": [1.0, 2.0, 3.0, 10.0, 20.0, 30.0]}
    )
    out = stage_demand(small_tree(), demand)
    cw = out[out.unique_id == "X@CW"].sort_values("ds").y.tolist()
    assert cw == [11.0, 22.0, 33.0]
    with pytest.raises(ValueError, match="no stage unique_id appears"):
        stage_demand(small_tree(), demand.assign(unique_id="other"))


def test_error_model_buffers_from_quantiles():
    import numpy as np

    from optimization import solve_gsm
    from policy_selector.buffers import error_model_buffers

    class FakeErrorModel:
        ids_ = np.array(["X@CW", "X@S1", "X@S2"])

        def quantile(self, unique_id, H, p, model=None):
            return 2.0 * np.sqrt(np.asarray(H, dtype=float))

    net = small_tree()
    buf = error_model_buffers(net, FakeErrorModel(), 0.95, max_tau=4)
    assert buf.table[0].tolist() == pytest.approx([0.0, 2.0, 2.0 * np.sqrt(2), 2.0 * np.sqrt(3), 4.0])
    assert solve_gsm(net, buf).total_cost > 0


# ------------------------------------------------- issue 10 (gsm rows) and issue 15
def gsm(*args):
    return CliRunner().invoke(app, ["gsm", *map(str, args), "--no-track"])


def test_out_with_unknown_suffix_is_refused(chain, tmp_path):
    """`--out x.txt` used to write CSV under a .txt name."""
    res = gsm("--willems", chain, "--out", tmp_path / "x.txt")
    assert res.exit_code == 1
    assert "unknown format '.txt'; name it .csv or .json" in res.output
    assert not (tmp_path / "x.txt").exists()
    res = gsm("--willems", chain, "--out", tmp_path / "x.json")
    assert res.exit_code == 0 and json.loads((tmp_path / "x.json").read_text())[0]["stage_id"]


def test_unknown_method_lists_the_options(chain):
    res = gsm("--willems", chain, "--method", "simplex")
    assert res.exit_code == 1
    assert "method must be one of auto, tree_dp, milp, lagrangian, bnb; got 'simplex'" in res.output


def test_workers_option_reaches_the_solver_and_bad_values_are_named(chain):
    """`--workers` is the branch-and-bound's process count; the answer does not depend on it."""
    bad = gsm("--willems", chain, "--workers", "0")
    assert bad.exit_code == 1
    assert "workers must be an integer >= 1 (processes), got 0" in bad.output
    one, two = (gsm("--willems", chain, "--workers", w, "--json") for w in ("1", "2"))
    assert one.exit_code == 0 and two.exit_code == 0, one.output + two.output
    costs = [json.loads(r.stdout.strip().splitlines()[-1])["total_cost"] for r in (one, two)]
    assert costs[0] == costs[1] > 0


def test_negative_safety_factor_is_rejected(tmp_path):
    """Issue 10 row 8: `--safety-factor -3` was silently used as +3."""
    (tmp_path / "stages.csv").write_text(
        "stage_id,processing_time,holding_cost,max_service_time,unique_id,demand_mean,demand_std\n"
        "X@CW,4,1,,,,\nX@S01,1,2,0,X@S01,20,5\n"
    )
    (tmp_path / "edges.csv").write_text("upstream,downstream,quantity\nX@CW,X@S01,1\n")
    res = gsm("--stages", tmp_path / "stages.csv", "--edges", tmp_path / "edges.csv", "--safety-factor", "-3")
    assert res.exit_code == 1
    assert "safety_factor must be a finite number >= 0" in res.output and "got -3" in res.output


def test_huge_values_give_named_errors_not_infinity(tmp_path):
    """Issue 10 rows 4 and 7: 1e6 periods allocated TiBs; demand 1e300 printed "total_cost": Infinity."""
    path = tmp_path / "chain.csv"
    path.write_text(HEADER + "A,1000000,,10,2,,,\nB,1,,5,2,,,,A,1\nC,1,0,1,,10,2,1.645,B,1\n")
    res = gsm("--willems", path, "--json")
    assert res.exit_code == 1 and "GridTooLargeError" in res.output and "coarser unit" in res.output
    path.write_text(HEADER + "A,3,,10,2,,,\nC,1,0,1,,10,1e308,1.645,A,1\n")
    res = gsm("--willems", path, "--json")
    assert res.exit_code == 1
    assert "NonFiniteCostError" in res.output and "Infinity" not in res.output


def test_time_limit_without_a_plan_is_a_named_error(tmp_path):
    import numpy as np

    from optimization import WillemsLikeConfig, willems_like_network
    from pipelines.data.network_io import write_stockwise_network

    net = willems_like_network(WillemsLikeConfig(400, 2.0), np.random.default_rng(1))
    write_stockwise_network(net, tmp_path / "stages.csv", tmp_path / "edges.csv")
    res = gsm(
        "--stages",
        tmp_path / "stages.csv",
        "--edges",
        tmp_path / "edges.csv",
        "--method",
        "milp",
        "--time-limit",
        "0.001",
    )
    assert res.exit_code == 1
    assert "GSMTimeLimitError: the MILP found no feasible plan within time_limit=0.001 s" in res.output


def test_demo_network_runs_with_its_demand(tmp_path):
    """The demo writes stages.csv without demand_mean/std; --demand takes them from demand.csv."""
    from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo

    paths = write_demo(
        generate_demo(DemoConfig(n_items=8, n_stores=3, n_dcs=1, n_weeks=60, min_stores_per_item=1)), tmp_path
    )
    base = ("--stages", paths["stages"], "--edges", paths["edges"])
    res = gsm(*base)
    assert res.exit_code == 1
    assert "lack demand_mean" in res.output and "pass --demand demand.csv" in res.output
    res = gsm(*base, "--demand", paths["demand"], "--safety-factor", "1.645", "--json")
    assert res.exit_code == 0, res.output
    summary = json.loads(res.stdout.strip().splitlines()[-1])
    assert summary["optimal"] is True and summary["total_cost"] > 0 and summary["bound"] == summary["total_cost"]
