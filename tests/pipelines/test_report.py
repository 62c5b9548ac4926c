"""Planner report: summary numbers, escaping, and the page rendered in headless Chromium."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from pipelines.report.render import (
    forecasts_from_models,
    forecasts_from_wide,
    frontier_points,
    render_report,
    sim_paths_from_events,
    stranded_by,
    summarise,
    write_report,
)
from tests.pipelines.conftest import synthetic_run

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def run_data() -> dict[str, pd.DataFrame]:
    return synthetic_run()


def test_summary_values_are_sums_of_the_table(run_data):
    recs, items = run_data["recommendations"], run_data["items"]
    s = summarise(recs, items)
    assert s.n_items == len(recs)
    assert s.inventory_value_now == pytest.approx((items["on_hand"] * items["unit_cost"]).sum())
    assert s.inventory_value_recommended == pytest.approx((recs["expected_avg_on_hand"] * items["unit_cost"]).sum())
    assert s.total_cost == pytest.approx(s.holding_cost + s.ordering_cost + s.shortage_cost)
    achieved = np.where(recs["service_type"] == "fill_rate", recs["expected_fill_rate"], recs["expected_csl"])
    assert s.items_below_target == int((achieved < recs["service_target"]).sum())


def test_unit_cost_falls_back_to_value_over_units(run_data):
    recs, items = run_data["recommendations"], run_data["items"]
    assert summarise(recs).inventory_value_now == pytest.approx(summarise(recs, items).inventory_value_now, rel=1e-9)


def test_stranded_totals_match_by_every_grouping(run_data):
    recs = run_data["recommendations"]
    for by in ("item_id", "location", "abc", "sbc_class"):
        table = stranded_by(recs, by)
        assert table["items"].sum() == len(recs)
        assert table["excess_value"].sum() == pytest.approx(recs["excess_value"].sum())
        assert table["shortfall_units"].sum() == pytest.approx(recs["shortfall_units"].sum())
        assert table["excess_value"].is_monotonic_decreasing


def test_stranded_by_unknown_column_names_it(run_data):
    with pytest.raises(ValueError, match="'warehouse'"):
        stranded_by(run_data["recommendations"], "warehouse")


def test_reasons_are_escaped_and_page_is_offline(run_data):
    page = render_report(**{k: v for k, v in run_data.items()})
    assert "<b>6</b>" not in page and "&lt;b&gt;6&lt;/b&gt;" in page
    assert "window.__pwned=1</script>" not in page
    assert not re.search(r"""(src|href)=["']https?://""", page), "page must not load anything from the network"


def test_frontier_without_columns_is_rejected(run_data):
    bad = run_data["frontier"].drop(columns="cost")
    with pytest.raises(ValueError, match=r"missing \['cost'\]"):
        render_report(run_data["recommendations"], run_data["history"], frontier=bad)


def test_frontier_points_from_optimization_summary():
    summary = pd.DataFrame(
        {
            "target": [0.9, 0.95, 0.98],
            "inventory_value": [100.0, 150.0, 230.0],
            "fill_rate": [0.91, 0.955, 0.981],
            "csl": [0.8, 0.9, 0.95],
            "cost_operating": [50.0, 45.0, 48.0],
        }
    )
    points = frontier_points(summary, chosen_target=0.95)
    assert points["chosen"].tolist() == [False, True, False]
    assert points["service"].tolist() == [0.91, 0.955, 0.981] and points["cost"].iloc[0] == 50.0
    with pytest.raises(ValueError, match=r"lacks columns \['cost_operating'\]"):
        frontier_points(summary.drop(columns="cost_operating"))


def test_sim_paths_from_events_dates_each_period():
    events = pd.DataFrame(
        {
            "batch": [0, 0, 1, 0],
            "unique_id": ["A", "A", "A", "B"],
            "period": [0, 1, 0, 1],
            "on_hand": [5.0, 3.0, 99.0, 7.0],
        }
    )
    paths = sim_paths_from_events(events, "2025-01-06", "W-MON")
    assert paths["on_hand"].tolist() == [5.0, 3.0, 7.0]
    assert paths["ds"].dt.strftime("%Y-%m-%d").tolist() == ["2025-01-06", "2025-01-13", "2025-01-13"]


def test_forecasts_from_wide_dates_steps_and_aligns_bands():
    mean = pd.DataFrame([[1.0, 2.0], [3.0, 4.0]], index=pd.Index(["A", "B"], name="unique_id"), columns=[1, 2])
    lo = (mean - 1).iloc[::-1]  # other row order: must be realigned
    out = forecasts_from_wide(mean, "2025-01-06", "W-MON", lo=lo, hi=mean + 1)
    assert out["ds"].dt.strftime("%m-%d").tolist() == ["01-06", "01-13"] * 2
    assert out["forecast"].tolist() == [1.0, 2.0, 3.0, 4.0] and out["lo"].tolist() == [0.0, 1.0, 2.0, 3.0]
    assert out["hi"].tolist() == [2.0, 3.0, 4.0, 5.0]


def test_forecasts_from_models_picks_each_items_forecaster():
    recs = pd.DataFrame({"unique_id": ["A", "B"], "forecaster": ["AutoETS", "CrostonSBA"]})
    fc = pd.DataFrame(
        {
            "unique_id": ["A", "B"],
            "ds": pd.to_datetime(["2024-01-01"] * 2),
            "AutoETS": [1.0, 2.0],
            "AutoETS-lo-90": [0.5, 1.5],
            "AutoETS-hi-90": [1.5, 2.5],
            "CrostonSBA": [10.0, 20.0],
        }
    )
    out = forecasts_from_models(fc, recs).set_index("unique_id")
    assert out.loc["A", "forecast"] == 1.0 and out.loc["A", "lo"] == 0.5 and out.loc["A", "hi"] == 1.5
    assert out.loc["B", "forecast"] == 20.0 and np.isnan(out.loc["B", "lo"])


def test_write_report_writes_page_and_exports_atomically(run_data, tmp_path):
    path = write_report(tmp_path / "run", **run_data)
    names = sorted(p.name for p in (tmp_path / "run").iterdir())
    assert names == ["recommendations.csv", "recommendations.parquet", "recommendations.xlsx", "report.html"]
    assert path.read_text().startswith("<!DOCTYPE html>")


# --- headless Chromium -------------------------------------------------------------------------


def render_dom(page: Path, tmp_path: Path, fragment: str = "") -> tuple[str, str]:
    """Load ``page`` in headless Chromium, let its scripts run, return (DOM, browser log)."""
    if CHROMIUM is None:
        pytest.skip(
            "chromium not installed (Debian: apt-get install -y chromium); the report test needs a headless browser"
        )
    profile = tmp_path / f"profile{len(list(tmp_path.glob('profile*')))}"
    cmd = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        "--disable-dev-shm-usage",
        f"--user-data-dir={profile}",
        "--enable-logging=stderr",
        "--v=0",
        "--virtual-time-budget=5000",
        "--dump-dom",
        page.resolve().as_uri() + fragment,
    ]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=90)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout, done.stderr


def _console_errors(log: str) -> list[str]:
    return [line for line in log.splitlines() if "CONSOLE" in line and re.search(r"Uncaught|Error|error", line)]


@pytest.fixture(scope="module")
def report_path(run_data, tmp_path_factory) -> Path:
    return write_report(tmp_path_factory.mktemp("report"), **run_data)


def test_page_loads_without_errors_and_draws_everything(report_path, run_data, tmp_path):
    dom, log = render_dom(report_path, tmp_path)
    assert 'data-ready="1"' in dom, "page script did not finish"
    assert re.search(r'id="js-status"[^>]*data-errors="0"', dom), re.search(r'id="js-status"[^<]*', dom)
    assert _console_errors(log) == []
    assert "__pwned" not in dom or "window.__pwned=1</script>" not in dom
    body = dom.split('<table id="items-table">')[1].split("</tbody>")[0]
    uids = re.findall(r'<tr data-uid="([^"]+)"', body)
    assert sorted(uids) == sorted(run_data["recommendations"]["unique_id"])  # one row per item
    first = uids[0]
    chart = dom.split('id="item-chart"')[1]
    assert f'data-uid="{first}"' in chart
    for cls in ("series-history", "series-forecast", "series-band", "series-onhand"):
        d = re.search(rf'<path[^>]*d="([^"]*)"[^>]*class="{cls}"', chart)
        assert d and d.group(1).count("L") + d.group(1).count("H") > 3, f"{cls} not drawn"
    assert len(re.findall(r'class="frontier-point"', dom)) == len(run_data["frontier"])
    assert dom.count("<rect") >= 3  # cost bars


def test_sort_filter_and_item_from_url_hash(report_path, run_data, tmp_path):
    recs = run_data["recommendations"]
    dom, _ = render_dom(report_path, tmp_path, "#sort=expected_total_cost&dir=desc")
    body = dom.split('<table id="items-table">')[1].split("</tbody>")[0]
    order = re.findall(r'<tr data-uid="([^"]+)"', body)
    assert order == recs.sort_values("expected_total_cost", ascending=False)["unique_id"].tolist()
    target = recs["unique_id"].iloc[-1]
    item = target.split("@")[0]
    dom, _ = render_dom(report_path, tmp_path, f"#filter={item}&item={target}")
    shown = re.findall(r'<tr data-uid="([^"]+)"(?![^>]*hidden)', dom)
    assert sorted(shown) == sorted(u for u in recs["unique_id"] if u.startswith(item + "@"))
    assert 0 < len(shown) < len(recs)
    assert re.search(rf'<svg[^>]*data-uid="{re.escape(target)}"', dom)


def test_the_browser_check_itself_catches_a_script_error(report_path, tmp_path):
    # the same page with one broken statement must be reported, or the checks above prove nothing
    broken = tmp_path / "broken.html"
    broken.write_text(
        report_path.read_text().replace("var DATA = JSON.parse(", "var DATA = JSON.parse(undefinedThing + ", 1)
    )
    dom, log = render_dom(broken, tmp_path)
    assert re.search(r'id="js-status"[^>]*data-errors="1"', dom)
    assert "undefinedThing" in dom
    assert any("undefinedThing" in line for line in _console_errors(log))


def test_report_and_exports_are_logged_to_mlflow(run_data, store, tmp_path):
    from pipelines.registry.tracking import start_run

    uri, _ = store
    with start_run("recommend", uri) as run:
        write_report(tmp_path / "run", **run_data, run=run)
    artifacts = Path(uri.removeprefix("sqlite:///")).parent / "artifacts"
    logged = sorted(p.name for p in artifacts.rglob(f"{run.run_id}/**/report/*"))
    assert logged == ["recommendations.csv", "recommendations.parquet", "recommendations.xlsx", "report.html"]


def test_report_replay_orders_in_the_item_masters_moq_multiple_and_lost_sales():
    """The report's stock paths replay the plan as the plan's own simulation does: an (R, S)
    with S = 5 on demand 2 a period orders 2 a period without an MOQ; with MOQ 12 and
    multiple 5 every order is at least 12 and a multiple of 5, and lost sales lose."""
    from pipelines.flows.plan_steps import replay_recommended

    ds = pd.date_range("2025-01-06", periods=60, freq="W-MON")
    demand = pd.DataFrame({"unique_id": np.repeat(["a", "b"], 60), "ds": np.tile(ds, 2), "y": 2.0})
    demand.loc[(demand["unique_id"] == "b") & (demand.index % 60 == 30), "y"] = 40.0
    items = pd.DataFrame(
        {
            "unique_id": ["a", "b"],
            "unit_cost": 1.0,
            "holding_rate": 0.2,
            "order_cost": 0.0,
            "service_target": 0.95,
            "service_type": "csl",
            "lead_time": 1,
            "review_period": 1,
            "moq": [0.0, 12.0],
            "order_multiple": [0.0, 5.0],
            "lost_sales": [False, True],
        }
    )
    rec = pd.DataFrame(
        {
            "unique_id": ["a", "b"],
            "policy": "R_S",
            "review_period": 1,
            "reorder_point": np.nan,
            "order_up_to": 5.0,
            "order_quantity": np.nan,
        }
    )
    events, first = replay_recommended(rec, demand, items, "W-MON")
    assert first == pd.Timestamp(ds[-52])
    orders = events.loc[events["ordered"] > 0].groupby("unique_id")["ordered"]
    assert set(orders.get_group("a")) == {2.0}
    b = orders.get_group("b").to_numpy()
    assert (b >= 12).all() and np.allclose(b % 5, 0)
    assert events.loc[events["unique_id"] == "b", "lost"].sum() > 0
    assert events.loc[events["unique_id"] == "a", "lost"].sum() == 0
