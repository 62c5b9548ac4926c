"""End to end: ``stockwise train`` on a tiny demo with MLflow in a temporary store."""

from __future__ import annotations

import re
from types import SimpleNamespace

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.flows import train as train_flow
from pipelines.flows import train_gate
from pipelines.flows.plan import load_champion
from pipelines.flows.retrain import EvalRequest
from pipelines.flows.train import TrainSettings, choose_paths, evaluate_version, run_train
from pipelines.registry.tracking import get_alias_version, load_model_version
from policy_selector import FixedSelector, gate, workflow
from policy_selector.workflow import held_out_time_fit
from tests.policy_selector.conftest import FAST


def test_train_registers_the_selector_gates_the_champion_and_writes_outputs(tiny_demo, tracking_uri, tmp_path):
    # margin 0: the gate promotes whenever the classifier is no worse than the default path
    settings = TrainSettings(
        candidates=FAST,
        test_periods=10,
        n_windows=3,
        n_splits=2,
        label_paths=5,
        margin=0.0,
        max_service_drop=0.99,
        replay=False,  # the label gate, said in the output
    )
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.version == "1"
    assert "test windows of 10" in result.plan and "chose extra_train_cutoffs" in result.plan
    selector = load_model_version(settings.model_name, "1", tracking_uri)
    assert set(selector.candidates_) == set(FAST)
    action, _ = gate(result.evaluation, settings.margin, settings.max_service_drop)
    champion = get_alias_version(settings.model_name, "champion", tracking_uri)
    assert (champion == "1") == (action == "promote") and result.champion == champion
    assert result.gate_basis == "labels" and "label gate (decision replay skipped: --no-replay)" in result.decision
    assert result.replay is None and "replay" not in result.paths
    evaluation = pd.read_csv(result.paths["evaluation"])
    assert set(evaluation["method"]) == {"oracle", "classifier", "sbc_rule", "best_single", "default"}
    assert set(evaluation["split"]) == {"held_out_items", "held_out_time"}
    ev = evaluation.set_index(["split", "method"])
    gap = ev.xs("sbc_rule", level="method")["total_cost"] - ev.xs("oracle", level="method")["total_cost"]
    assert np.allclose(ev.xs("sbc_rule", level="method")["regret"], gap)
    outcomes = pd.read_parquet(result.paths["outcomes"])
    assert set(outcomes["candidate"]) == set(FAST)
    # the retrain hook scores the registered version on a held-out window
    demand = tiny_demo.demand
    cut = pd.Timestamp(sorted(demand["ds"].unique())[-9])
    request = EvalRequest(
        demand[demand["ds"] <= cut], demand[demand["ds"] > cut], tiny_demo.items, cut, settings.model_name, tracking_uri
    )
    scores = evaluate_version(result.version, request)
    assert scores["total_cost"] > 0 and 0 <= scores["service"] <= 1


def test_train_cli_needs_exactly_one_data_source(tmp_path):
    result = CliRunner().invoke(app, ["train", "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "exactly one of --data FOLDER or --demo" in result.output
    result = CliRunner().invoke(app, ["train", "--no-replay", "--out", str(tmp_path)])  # the option parses
    assert result.exit_code == 1 and "exactly one of --data FOLDER or --demo" in result.output


def test_train_cli_reports_a_bad_config(tmp_path):
    bad = tmp_path / "train.yaml"
    bad.write_text("train:\n  test_periods: 0\n")
    result = CliRunner().invoke(app, ["train", "--demo", "--config", str(bad), "--out", str(tmp_path)])
    assert result.exit_code == 1
    assert "test_periods" in result.output


def test_the_replay_decides_the_default_path_and_the_reason_names_its_numbers(tiny_demo, tracking_uri, tmp_path):
    # unreachable margin; one origin: the real two-origin gate is test_the_gate_over_two_origins_... (pooling
    # in tests/pipelines/test_evaluate_selector.py) and train's defaults on carparts (test_carparts_e2e)
    settings = TrainSettings(candidates=FAST, n_splits=2, label_paths=5, margin=0.99, gate_origins=1)
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.version is not None and result.champion is None and result.gate_basis == "replay"
    assert get_alias_version(settings.model_name, "champion", tracking_uri) is None
    replay = pd.read_csv(result.paths["replay"]).set_index("path")
    assert list(replay.index) == ["classifier", "packaged", "best_single", "sbc_rule"]
    assert (replay["n_items"] > 0).all() and replay["csl"].between(0, 1).all() and (replay["yearly_cost"] > 0).all()
    # shortages priced at least at b: the priced yearly cost is never below the replay's own cost a year
    T = int(re.search(r"test_periods=(\d+)", result.plan)[1])
    assert (replay["yearly_cost"] >= replay["cost"] * 52 / T - 1e-6).all()
    # nothing beats the packaged default by 99 %: it is the default path, the one recommend used before
    assert "no path beats 'packaged'" in result.decision and "margin 99.0%" in result.decision
    assert result.default == "ets_sq_normal" and f"default path {result.default!r}" in result.decision
    for path in ("best_single", "sbc_rule"):
        r, p = replay.loc[path], replay.loc["packaged"]
        assert f"{path} vs packaged: yearly cost {r['yearly_cost']:,.0f} vs {p['yearly_cost']:,.0f}" in result.decision
    selector, name = load_champion(tracking_uri)
    assert isinstance(selector, FixedSelector) and selector.chosen_ == result.default
    assert "default path" in name
    assert (tmp_path / "out" / "decision.txt").read_text().strip() == result.decision


def test_the_gate_follows_the_replay_where_labels_and_replay_disagree():
    # on the labels the classifier loses to the best single policy (held-out time) and the best
    # single policy is cheaper than the packaged default; the replay says the opposite
    rows = []
    for split in ("held_out_items", "held_out_time"):
        for method, cost in (("classifier", 100.0 if split == "held_out_items" else 105.0), ("best_single", 100.0)):
            rows.append({"split": split, "method": method, "controllable_cost": cost, "mean_service": 0.95})
        rows.append({"split": split, "method": "default", "controllable_cost": 110.0, "mean_service": 0.95})
    labels = pd.DataFrame(rows)
    replay = pd.DataFrame(
        {"yearly_cost": [900.0, 1000.0, 1220.0, 1500.0], "csl": [0.952, 0.951, 0.952, 0.930], "ratio_csl": 1.0},
        index=["classifier", "packaged", "best_single", "sbc_rule"],
    )
    candidates = FAST + ("ets_sq_normal",)
    on_labels = choose_paths(labels, "tsb_rss_negbin", candidates, TrainSettings(replay=False), None, None)
    assert on_labels[:2] == ("keep", "policy:tsb_rss_negbin") and on_labels[3] == "labels"
    action, spec, why, basis = choose_paths(labels, "tsb_rss_negbin", candidates, TrainSettings(), replay, None)
    assert (action, spec, basis) == ("promote", None, "replay")
    assert "classifier vs packaged: yearly cost 900 vs 1,000 (-10.0%), CSL 0.952 vs 0.951" in why
    assert "classifier vs best_single: yearly cost 900 vs 1,220 (-26.2%)" in why
    # the classifier no better than the packaged default: the packaged default stays, not the labels' best single
    worse = replay.assign(yearly_cost=[995.0, 1000.0, 1220.0, 1500.0])
    assert choose_paths(labels, "tsb_rss_negbin", candidates, TrainSettings(), worse, None)[:2] == ("keep", "packaged")


def test_nothing_is_aliased_when_the_replay_cannot_run(tiny_demo, tracking_uri, tmp_path, monkeypatch):
    def cannot(*args, **kwargs):
        raise ValueError("1 origin(s) 9 periods apart with a holdout of 9 leave 5 periods of history out of 14")

    monkeypatch.setattr(train_gate, "replay_by_origin", cannot)
    # one origin: the earlier origin's classifier (more labelled cutoffs) is not what this test is about
    settings = TrainSettings(
        candidates=FAST, n_splits=2, label_paths=3, margin=0.0, max_service_drop=0.99, gate_origins=1
    )
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.version == "1" and result.champion is None and result.default is None
    assert result.gate_basis == "none" and result.replay is None
    for alias in ("champion", "default"):
        assert get_alias_version(settings.model_name, alias, tracking_uri) is None
    assert "nothing aliased: the decision replay could not run: 1 origin(s) 9 periods apart" in result.decision
    assert "--no-replay" in result.decision
    assert load_champion(tracking_uri)[0] is None  # recommend: the packaged default


def test_train_fits_a_short_history_and_says_how(tiny_demo, tracking_uri, tmp_path):
    dates = sorted(tiny_demo.demand["ds"].unique())
    short = tiny_demo.demand[tiny_demo.demand["ds"] > dates[-39]]  # 38 weeks: the old defaults needed 60
    settings = TrainSettings(candidates=FAST, n_splits=2, label_paths=3, replay=False)  # the plan is under test
    result = run_train(short, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    assert result.plan.startswith("38 periods: chose test_periods=9")
    with pytest.raises(ValueError, match="nothing can be learned"):
        run_train(
            tiny_demo.demand[tiny_demo.demand["ds"] > dates[-11]],
            tiny_demo.items,
            "W-MON",
            settings,
            tmp_path / "out2",
            tracking_uri,
        )


def test_train_backtests_as_recommend_does():
    """The trained selector must see the error features recommend computes: train's backtest
    re-estimates AutoETS as often as recommend's (``selector_refit_every``), by default by each
    series' history (``auto``)."""
    from pipelines.data.config import RunConfig
    from pipelines.flows.train import selector_config

    assert TrainSettings().refit_every == RunConfig().selector_refit_every == "auto"
    assert selector_config(TrainSettings(), "W-MON").refit_every == "auto"
    assert selector_config(TrainSettings(refit_every=4), "W-MON").refit_every == 4
    for bad in (0, "sometimes"):
        with pytest.raises(ValueError, match="refit_every"):
            TrainSettings(refit_every=bad)


SCORES = dict(csl=0.95, fill_rate=0.96, inventory_value=50.0, ratio_csl=1.0, ratio_fill_rate=1.0, n_items=3)


def _fake_replay_by_origin(seen: list, costs=None):
    """A stand-in for ``replay_by_origin``: records the paths of each origin; every path scores alike
    (``costs``: origin index -> path -> yearly cost, to make one win)."""

    def replay(demand, items, freq, cfg, holdout, selectors, origins=1, **kw):
        seen.append({"selectors": selectors, "cfg": cfg, "holdout": holdout, "origins": origins})
        dates = sorted(pd.to_datetime(demand["ds"]).unique()) if demand is not None else []
        labels = [str(pd.Timestamp(dates[-holdout * (origins - j)]).date()) for j in range(origins)] if dates else ["o"]
        rows = {}
        for j, (label, paths) in enumerate(zip(labels, selectors)):
            for k in paths:
                cost = (costs or {}).get(j, {}).get(k, 100.0)
                rows[(label, k)] = SCORES | {"yearly_cost": cost, "origins": 1}
        for k in selectors[-1]:
            pooled = sum(rows[(lab, k)]["yearly_cost"] for lab in labels) / origins
            rows[("pooled", k)] = SCORES | {"yearly_cost": pooled, "origins": origins}
        table = pd.DataFrame.from_dict(rows, orient="index")
        table.index = pd.MultiIndex.from_tuples(table.index, names=["origin", "path"])
        return table

    return replay


def test_the_replay_judges_the_best_single_policy_known_at_the_origin(monkeypatch):
    """The replayed best single policy is that of the training cutoffs, not of all cutoffs (which
    include the held-out-time window it is replayed on); the registered default may use all."""
    seen = []
    monkeypatch.setattr(train_gate, "replay_by_origin", _fake_replay_by_origin(seen))
    monkeypatch.setattr(train_gate, "_check_origins", lambda table, fits, freq: None)
    ids = pd.Index(["a", "b"], name="unique_id")
    study = SimpleNamespace(
        best_single="sba_rs_negbin",  # best on all cutoffs, the held-out-time one included
        time_selector=FixedSelector("no_stock"),
        choices={"held_out_time": pd.DataFrame({"best_single": "adida_rs_normal"}, index=ids)},
        train=SimpleNamespace(labels=SimpleNamespace(cutoff=pd.Timestamp("2024-01-01"))),
        test=SimpleNamespace(labels=SimpleNamespace(cutoff=pd.Timestamp("2024-02-05"))),
        extra=(),
    )
    fits = [held_out_time_fit(study)]
    assert fits[0].best_single == "adida_rs_normal" and fits[0].selector is study.time_selector
    inputs = train_flow.GateInputs(None, None, "W-MON", SimpleNamespace(test_periods=4), None, None)
    table = train_flow.replay_paths(fits, TrainSettings(), "sqlite:///unused.db", inputs)
    assert seen[0]["selectors"][0]["best_single"][0].chosen_ == "adida_rs_normal"
    assert list(table.xs("pooled", level="origin").index) == ["classifier", "packaged", "best_single", "sbc_rule"]
    # the best single path winning: the default alias gets the best single policy of all cutoffs
    better = pd.DataFrame(
        {"yearly_cost": [100.0, 100.0, 80.0, 120.0], "csl": 0.95, "ratio_csl": 1.0},
        index=["classifier", "packaged", "best_single", "sbc_rule"],
    )
    action, spec, _, _ = choose_paths(pd.DataFrame(), study.best_single, FAST, TrainSettings(), better, None)
    assert (action, spec) == ("keep", "policy:sba_rs_negbin")


def test_the_gate_over_two_origins_judges_at_each_a_classifier_fitted_before_it(
    tiny_demo, tracking_uri, tmp_path, monkeypatch
):
    """gate_origins=2: the earlier origin gets its own classifier and best single policy (fitted on
    labels whose windows end by it), the scores are pooled, and each origin's verdict is said and logged."""
    seen = []
    # the classifier wins the last origin by 10 % and loses the earlier one by 20 %: pooled, it loses
    costs = {0: {"classifier": 120.0}, 1: {"classifier": 90.0}}
    monkeypatch.setattr(train_gate, "replay_by_origin", _fake_replay_by_origin(seen, costs))
    labelled, fits = [], []
    label = workflow.study_cutoff
    monkeypatch.setattr(workflow, "study_cutoff", lambda *a: labelled.append(a[2]) or label(*a))
    monkeypatch.setattr(train_gate, "origin_fits", lambda *a: fits.extend(workflow.origin_fits(*a)) or fits)
    settings = TrainSettings(candidates=FAST, n_splits=2, label_paths=3, test_periods=10, gate_origins=2)
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    # 70 weeks, T = 10: the study labels c1 (week 50), c1 - 5, c1 - 10 and c2 (week 60); the earlier
    # origin (c1) fits on c1 - 10 (labelled already) and c1 - 15, c1 - 20, each window ending by c1
    week = pd.offsets.Week(weekday=0)
    c2 = pd.Timestamp(sorted(tiny_demo.demand["ds"].unique())[-11])
    assert [f.origin for f in fits] == [c2 - 10 * week, c2]
    assert list(fits[0].cutoffs) == [c2 - k * week for k in (20, 25, 30)]
    assert all(c + 10 * week <= fits[0].origin for c in fits[0].cutoffs)
    assert len(labelled) == 6 and labelled[-2:] == [c2 - 25 * week, c2 - 30 * week]  # c2 - 20 reused
    call = seen[-1]
    assert call["origins"] == 2 and call["holdout"] == 10 and len(call["selectors"]) == 2
    earlier, last = (paths["classifier"][0] for paths in call["selectors"])
    assert earlier is not last and "fitted on labels up to" in call["selectors"][0]["classifier"][1]
    assert "replay gate over 2 origin(s) 10 periods apart (given)" in result.plan
    assert result.champion is None and result.gate_basis == "replay"
    assert "each origin alone (verdicts differ)" in result.decision
    dates = sorted(tiny_demo.demand["ds"].unique())
    first, second = (str(pd.Timestamp(dates[-k]).date()) for k in (20, 10))
    assert f"{first}: default 'packaged', classifier not promoted" in result.decision
    assert f"{second}: default 'packaged', classifier promoted" in result.decision
    per_origin = pd.read_csv(result.paths["replay_origins"])
    assert per_origin["origin"].unique().tolist() == [first, second] and len(per_origin) == 8
    assert pd.read_csv(result.paths["replay"]).set_index("path").loc["classifier", "yearly_cost"] == 105.0
    metrics = mlflow.MlflowClient(tracking_uri).get_run(result.run_id).data
    assert metrics.metrics["replay.origin1.classifier.yearly_cost"] == 120.0
    assert metrics.metrics["replay.classifier.yearly_cost"] == 105.0
    assert metrics.params["replay.origin2"] == second and metrics.params["gate_origins"] == "2"
    with pytest.raises(ValueError, match="lower gate_origins to"):
        run_train(
            tiny_demo.demand,
            tiny_demo.items,
            "W-MON",
            settings.model_copy(update={"gate_origins": 9}),
            tmp_path / "out2",
            tracking_uri,
        )
