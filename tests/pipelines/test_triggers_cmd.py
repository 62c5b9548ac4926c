"""``stockwise triggers``: flagged items written to CSV with reasons; bad input exits 1."""

from __future__ import annotations

import pandas as pd
import typer
from typer.testing import CliRunner

from pipelines.cli.triggers import triggers_command
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo

app = typer.Typer()
app.command()(triggers_command)


def test_planted_shift_and_lead_time_change_are_listed(tmp_path):
    demo = generate_demo(DemoConfig(seed=4, n_items=8, n_stores=3, n_dcs=1, n_weeks=80, min_stores_per_item=1))
    demand = demo.demand.copy()
    uid = "SKU001@" + demo.items.loc[demo.items["item_id"] == "SKU001", "location"].iloc[0]
    last = demand.groupby("unique_id").cumcount(ascending=False) < 13
    demand.loc[last & (demand["unique_id"] == uid), "y"] += 80.0
    write_demo(demo, tmp_path / "data")
    demand.to_csv(tmp_path / "data" / "demand.csv", index=False)
    (tmp_path / "run.yaml").write_text(f"data: {tmp_path / 'data'}\n")
    recs = demo.items[["unique_id", "lead_time"]].assign(lead_time=lambda d: d["lead_time"].astype(float))
    moved = recs["unique_id"].iloc[-1]
    recs.loc[recs.index[-1], "lead_time"] += 3
    recs.to_csv(tmp_path / "recs.csv", index=False)
    out = tmp_path / "triggers.csv"
    result = CliRunner().invoke(
        app,
        ["--config", str(tmp_path / "run.yaml"), "--recommendations", str(tmp_path / "recs.csv"), "--out", str(out)],
    )
    assert result.exit_code == 0, result.output
    flagged = pd.read_csv(out).set_index("unique_id")
    assert "demand_shift" in flagged.loc[uid, "triggers"]
    assert "lead_time_change" in flagged.loc[moved, "triggers"]
    assert f"{uid}: demand level up" in result.output


def test_missing_file_exits_1(tmp_path):
    result = CliRunner().invoke(app, ["--realised", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "t.csv")])
    assert result.exit_code == 1 and "nope.csv" in result.output
