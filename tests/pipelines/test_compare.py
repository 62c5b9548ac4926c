"""Scenario compare: headline measures side by side, item changes, the comparison folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.data.io import write_table_atomic
from pipelines.flows.compare import COMPARE_MEASURES, compare_items, compare_recommendations, compare_runs
from tests.pipelines.conftest import synthetic_run


@pytest.fixture(scope="module")
def scenarios() -> dict:
    base = synthetic_run()
    a = base["recommendations"]
    # scenario B: a higher target -> 20 % more stock on hand, more holding cost, less shortage
    b = a.assign(
        expected_avg_on_hand=a["expected_avg_on_hand"] * 1.2,
        expected_holding_cost=a["expected_holding_cost"] * 1.2,
        expected_shortage_cost=a["expected_shortage_cost"] * 0.5,
        expected_fill_rate=np.minimum(a["expected_fill_rate"] + 0.01, 1.0),
    )
    b["expected_total_cost"] = b[["expected_holding_cost", "expected_ordering_cost", "expected_shortage_cost"]].sum(
        axis=1
    )
    b.loc[b.index[0], "policy"] = "s_Q" if a["policy"].iloc[0] != "s_Q" else "R_S"
    return {"a": a, "b": b, "items": base["items"], "history": base["history"]}


def test_working_capital_and_costs_move_as_planted(scenarios):
    a, b, items = scenarios["a"], scenarios["b"], scenarios["items"]
    table = compare_recommendations(a, b, ("95%", "98%"), items, items).set_index("measure")
    wc = table.loc[COMPARE_MEASURES["inventory_value_recommended"]]
    assert wc["change_pct"] == pytest.approx(20.0)
    assert wc["difference"] == pytest.approx(0.2 * wc["95%"])
    holding = table.loc[COMPARE_MEASURES["holding_cost"]]
    assert holding["98%"] == pytest.approx(b["expected_holding_cost"].sum())
    assert table.loc[COMPARE_MEASURES["shortage_cost"], "change_pct"] == pytest.approx(-50.0)
    assert table.loc[COMPARE_MEASURES["n_items"], "difference"] == 0
    assert list(table.columns) == ["95%", "98%", "difference", "change_pct"]


def test_item_table_flags_policy_changes_and_keeps_unmatched_items(scenarios):
    a, b = scenarios["a"], scenarios["b"]
    out = compare_items(a, b.iloc[1:], ("A", "B"))
    assert len(out) == len(a)
    first = a["unique_id"].iloc[0]
    row = out.set_index("unique_id").loc[first]
    assert bool(row["policy_changed"]) and pd.isna(row["policy_B"])
    changed = out.dropna(subset=["cost_difference"])
    assert changed["cost_difference"].abs().is_monotonic_decreasing


def test_labels_must_differ(scenarios):
    with pytest.raises(ValueError, match=r"two distinct names; got \['x', 'x'\]"):
        compare_recommendations(scenarios["a"], scenarios["b"], ("x", "x"))


@dataclass(frozen=True)
class _FakeResult:
    run_dir: Path
    recommendations: Path


def test_compare_runs_writes_one_folder_with_table_items_and_page(scenarios, tmp_path):
    configs = []
    for name in ("target95", "target98"):
        path = tmp_path / f"{name}.yaml"
        path.write_text(f"out: {tmp_path / 'runs'}\nseed: 3\n")
        configs.append(path)
    tables = {"compare-target95": scenarios["a"], "compare-target98": scenarios["b"]}
    demo = generate_demo(DemoConfig(seed=3, n_items=8, n_stores=4, n_dcs=2, n_weeks=104, min_stores_per_item=2))

    def fake_plan(cfg, command):
        run_dir = tmp_path / "runs" / command
        write_demo(demo, run_dir / "data")
        return _FakeResult(run_dir, write_table_atomic(tables[command], run_dir / "recommendations.csv"))

    folder = compare_runs(configs, tmp_path / "out", plan=fake_plan)
    assert sorted(p.name for p in folder.iterdir()) == ["compare.html", "comparison.csv", "comparison_items.csv"]
    assert [p.name for p in (tmp_path / "out").iterdir()] == [folder.name]  # no staging left
    table = pd.read_csv(folder / "comparison.csv")
    assert list(table.columns)[:3] == ["measure", "target95", "target98"]
    page = (folder / "compare.html").read_text()
    assert 'id="compare-table"' in page and "working capital" in page
    with pytest.raises(ValueError, match="exactly two --config"):
        compare_runs(configs[:1], tmp_path / "out", plan=fake_plan)
