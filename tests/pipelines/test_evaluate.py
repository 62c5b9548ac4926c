"""End to end: stockwise evaluate on a tiny demo panel and on a carparts sample."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.data.config import ForecastSettings, RunConfig
from pipelines.data.demo_data import DemoConfig, generate_demo, sample_truth_paths, write_demo
from pipelines.flows.evaluate import EvaluateSettings, origin_positions, run_evaluate
from policy_selector.decision_eval import replay_table
from policy_selector.economics import Economics

FAST = ForecastSettings(models=("AutoETS", "CrostonSBA"), n_windows=3)


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate")
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=70, seed=3))
    write_demo(demo, tmp / "data")
    return tmp, demo


@pytest.fixture(scope="module")
def cli_run(demo_folder, new_store):
    tmp, demo = demo_folder
    uri = new_store(tmp / "mlruns" / "mlflow.db")
    result = CliRunner().invoke(
        app,
        ["evaluate", "--data", str(tmp / "data"), "--holdout", "8", "--out", str(tmp / "runs"), "--tracking-uri", uri],
    )
    return result, tmp, demo, uri


def test_cli_writes_a_complete_run_folder_and_logs_to_mlflow(cli_run):
    result, tmp, _, uri = cli_run
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "inventory vs the best baseline at equal achieved csl" in out
    (run_dir,) = (tmp / "runs").iterdir()
    assert {
        "evaluation.csv",
        "evaluation.md",
        "evaluation_ratios.csv",
        "evaluation_items.csv",
        "validation_report.csv",
        "RUN.txt",
    } <= {p.name for p in run_dir.iterdir()}
    run_id = (run_dir / "RUN.txt").read_text().split()[1]
    metrics = mlflow.MlflowClient(uri).get_run(run_id).data.metrics
    ratios = pd.read_csv(run_dir / "evaluation_ratios.csv")
    assert set(ratios["method"]) == {"stockwise", "stockwise_static"}
    for method, prefix in (("stockwise", ""), ("stockwise_static", "static.")):
        overall = ratios[(ratios["segment_kind"] == "all") & (ratios["method"] == method)].set_index("measure")
        assert metrics[f"{method}.csl"] == pytest.approx(overall.loc["csl", "service"])
        if np.isfinite(overall.loc["csl", "ratio"]):
            assert metrics[f"{prefix}ratio.csl"] == pytest.approx(overall.loc["csl", "ratio"])
        # the static-only ratio is never below the ratio against every baseline (one more frontier to beat)
        both = overall[["ratio", "ratio_static"]].dropna()
        assert (both["ratio_static"] <= both["ratio"] + 1e-12).all()
    # segments: SBC and ABC classes, phased or not, and on the demo the planted process
    assert set(ratios["segment_kind"]) == {"all", "sbc_class", "abc", "phased", "process"}
    mine = ratios[ratios["method"] == "stockwise"]
    for r in mine[mine["segment_kind"] == "abc"].drop_duplicates("segment").itertuples():
        assert metrics[f"stockwise.abc.{r.segment}.csl"] == pytest.approx(r.service)
    summary = pd.read_csv(run_dir / "evaluation.csv")
    assert set(summary["method"]) == {
        "stockwise",
        "stockwise_static",
        "textbook",
        "AutoETS",
        "CrostonSBA",
        "AutoETS_phased",
    }


def test_item_numbers_are_a_replay_of_the_recommended_levels_on_actual_demand(cli_run):
    _, tmp, demo, _ = cli_run
    (run_dir,) = (tmp / "runs").iterdir()
    items = pd.read_csv(run_dir / "evaluation_items.csv", dtype={"unique_id": str})
    grid = pd.DatetimeIndex(np.sort(demo.demand["ds"].unique()))
    actual = (
        demo.demand[demo.demand["ds"].isin(grid[-8:])]
        .pivot(index="unique_id", columns="ds", values="y")
        .reindex(items["unique_id"])
        .to_numpy()
    )
    econ = Economics.from_items(demo.items, items["unique_id"], "W-MON")
    again = replay_table(actual, [items], econ)
    np.testing.assert_allclose(items["static_csl"], again["csl"])
    np.testing.assert_allclose(items["static_inventory_value"], again["inventory_value"])
    # items without trend or season keep their levels: the time-phased replay is the static one
    flat = ~items["phased"].astype(bool)
    assert flat.any()
    np.testing.assert_allclose(items.loc[flat, "csl"], again.loc[flat, "csl"])
    np.testing.assert_allclose(items.loc[flat, "inventory_value"], again.loc[flat, "inventory_value"])
    # truth columns on the demo: a planted process per item, scored where it has demand
    assert items["process"].notna().all() and items["true_csl"].between(0, 1).any()


def test_rolling_origins_with_replanning(demo_folder, new_store):
    tmp, _ = demo_folder
    cfg = RunConfig(data=tmp / "data", out=tmp / "runs2", tracking_uri=new_store(tmp / "m2.db"), forecast=FAST)
    result = run_evaluate(cfg, EvaluateSettings(holdout=6, origins=2, replan=3))
    items = pd.read_csv(result.run_dir / "evaluation_items.csv")
    assert sorted(items["origin"].unique()) == [0, 1]
    assert items.groupby("origin")["origin_ds"].nunique().eq(1).all()
    assert "recomputed every 3 periods" in (result.run_dir / "evaluation.md").read_text()


def test_too_little_history_for_the_origins_is_a_clear_error(demo_folder):
    with pytest.raises(ValueError, match="leave 4 periods of history out of 70"):
        origin_positions(70, EvaluateSettings(holdout=22, origins=3), min_history=8)
    tmp, _ = demo_folder
    result = CliRunner().invoke(
        app,
        [
            "evaluate",
            "--data",
            str(tmp / "data"),
            "--holdout",
            "66",
            "--out",
            str(tmp / "runs3"),
            "--tracking-uri",
            f"sqlite:///{tmp / 'm3.db'}",
        ],
    )
    # a ValueError: pipelines.cli.main prints it as one line with exit code 1
    assert isinstance(result.exception, ValueError) and "lower --holdout or --origins" in str(result.exception)
    assert not any((tmp / "runs3").glob("*"))


def test_evaluate_needs_data_or_demo():
    result = CliRunner().invoke(app, ["evaluate", "--holdout", "4"])
    assert result.exit_code == 2 and "--data FOLDER or --demo" in result.output


def test_truth_paths_follow_the_planted_process():
    demo = generate_demo(DemoConfig(n_items=8, n_weeks=70, seed=5))
    grid = pd.DatetimeIndex(np.sort(demo.demand["ds"].unique()))
    ids = demo.truth["unique_id"].to_numpy()
    paths = sample_truth_paths(demo.truth, ids, grid, 60, np.random.default_rng(0))
    t = demo.truth.set_index("unique_id")
    for k, uid in enumerate(ids):
        row = t.loc[uid]
        after = grid > pd.Timestamp(row["last_active_ds"])
        assert (paths[:, k, after] == 0).all()
        if row["process"] == "smooth":  # Poisson(level * scale): the sample mean is near it
            assert paths[:, k].mean() == pytest.approx(row["level"] * row["scale"], rel=0.1)
    with pytest.raises(ValueError, match="no row in the truth table"):
        sample_truth_paths(demo.truth, ["nope"], grid, 2, np.random.default_rng(0))


@pytest.mark.realdata
def test_evaluate_on_real_carparts_with_ragged_series(shared_data, tmp_path, tracking_uri):
    df = pd.read_parquet(shared_data / "carparts" / "carparts.parquet")
    ragged = df.groupby("unique_id")["y"].apply(lambda s: s.isna().any())
    ids = list(ragged.index[~ragged][:25]) + list(ragged.index[ragged][:3])
    demand = df[df["unique_id"].isin(ids)]
    folder = tmp_path / "carparts"
    folder.mkdir()
    demand.to_parquet(folder / "demand.parquet", index=False)
    pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": 10.0,
            "holding_rate": 0.25,
            "order_cost": 0.0,
            "service_target": 0.95,
            "service_type": "csl",
            "lead_time": 1,
            "review_period": 1,
        }
    ).to_csv(folder / "items.csv", index=False)
    cfg = RunConfig(data=folder, freq="MS", out=tmp_path / "runs", tracking_uri=tracking_uri, forecast=FAST)
    result = run_evaluate(cfg, EvaluateSettings(holdout=12))
    items = pd.read_csv(result.run_dir / "evaluation_items.csv", dtype={"unique_id": str})
    report = pd.read_csv(result.run_dir / "validation_report.csv")
    excluded = (
        pd.read_csv(result.run_dir / "evaluation_excluded.csv", dtype={"unique_id": str})
        if (result.run_dir / "evaluation_excluded.csv").is_file()
        else pd.DataFrame({"unique_id": []})
    )
    flagged = set(" ".join(report["series"].fillna("").astype(str)).split())
    # every series is evaluated, excluded with a reason, or flagged by validation
    assert set(items["unique_id"]) | set(excluded["unique_id"]) | flagged >= set(ids)
    assert set(items["unique_id"]) >= set(ids[:25])
    assert 0.5 < result.metrics["stockwise.csl"] <= 1.0


def test_the_run_folder_holds_the_default_paths_sizing_choice_as_recommend_writes_it(cli_run):
    result, tmp, _, _ = cli_run
    assert result.exit_code == 0, result.output
    (run_dir,) = (tmp / "runs").iterdir()
    sizing = pd.read_csv(run_dir / "sizing_choice.csv")
    assert {"segment", "option", "chosen", "reason", "why_not", "choice_origin", "origin", "origin_ds"} <= set(
        sizing.columns
    )
    assert (sizing["origin"] == 0).all()
    items = pd.read_csv(run_dir / "evaluation_items.csv")
    assert (pd.to_datetime(sizing["origin_ds"]) == pd.to_datetime(items["origin_ds"].iloc[0])).all()
    # the choice is made at its own earlier origin, on the history before the evaluation's origin
    assert (pd.to_datetime(sizing["choice_origin"]) < pd.to_datetime(sizing["origin_ds"])).all()
    chosen = sizing.loc[sizing["chosen"].fillna(False).astype(bool), "option"]
    stocked = items.loc[items["policy"] != "no_stock", "candidate"]
    if sizing["why_not"].isna().all():  # the choice ran: every stocked item took its segment's chosen option
        assert set(stocked) <= set(chosen)
