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
    res = CliRunner().invoke(app, ["gsm", "--willems", str(chain), "--holding-rate", "0.35", "--json",
                                   "--out", str(out), "--tracking-uri", tracking_uri])
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
        "X@CW,4,1,,,,\nX@S01,1,2,0,X@S01,20,5\n")
    (tmp_path / "edges.csv").write_text("upstream,downstream,quantity\nX@CW,X@S01,1\n")
    res = CliRunner().invoke(app, ["gsm", "--stages", str(tmp_path / "stages.csv"), "--edges",
                                   str(tmp_path / "edges.csv"), "--safety-factor", "1.645", "--json", "--no-track"])
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
    demand = pd.DataFrame({"unique_id": ["X@S1"] * 3 + ["X@S2"] * 3, "ds": list(ds) * 2,
                           "y": [1.0, 2.0, 3.0, 10.0, 20.0, 30.0]})
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
