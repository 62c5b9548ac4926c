"""``stockwise evaluate --selector``: each decision path replayed through the same front door."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from typer.testing import CliRunner

from pipelines.cli import app
from pipelines.data.config import ConfigError, ForecastSettings, RunConfig, ServiceSettings, load_config
from pipelines.data.demo_data import DemoConfig, generate_demo, write_demo
from pipelines.flows import evaluate_origin, plan_steps
from pipelines.flows.evaluate import EvaluateSettings, replay_by_origin, replay_selectors, run_evaluate
from pipelines.flows.evaluate_origin import _recommend_paths
from pipelines.flows.plan import load_selector
from pipelines.flows.plan_steps import recommend_step, select_step
from pipelines.registry.names import CHAMPION_ALIAS, MODEL_NAME
from pipelines.registry.tracking import set_alias, start_run
from policy_selector import FixedSelector, RuleSelector
from policy_selector.candidates import CandidateSpace
from policy_selector.selector import PACKAGED_DEFAULT

FAST = ForecastSettings(models=("AutoETS", "CrostonSBA"), n_windows=3)
SPACE = pd.DataFrame(columns=list(CandidateSpace().names))


@pytest.fixture(scope="module")
def demo_folder(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("evaluate_selector")
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=60, seed=5))
    write_demo(demo, tmp / "data")
    return tmp


def _register(uri: str, selector) -> str:
    with start_run("register", uri) as run:
        return run.log_model(selector, name="sel", registered_name=MODEL_NAME, serialization_format="cloudpickle")


def test_each_fixed_path_loads_what_it_names(tracking_uri):
    packaged, name = load_selector("packaged", tracking_uri)
    assert isinstance(packaged, FixedSelector) and packaged.chosen_ == PACKAGED_DEFAULT[0]
    assert repr(PACKAGED_DEFAULT[0]) in name
    rule, name = load_selector("sbc", tracking_uri)
    assert isinstance(rule, RuleSelector) and "Syntetos-Boylan" in name
    fixed, name = load_selector("policy:adida_rs_normal", tracking_uri)
    assert isinstance(fixed, FixedSelector) and fixed.chosen_ == "adida_rs_normal"
    # registry on an empty store: the packaged default (None) as recommend uses it
    selector, name = load_selector("registry", tracking_uri)
    assert selector is None and "packaged default" in name


def test_a_registered_version_loads_by_number_or_alias_champion_or_not(tracking_uri):
    v1 = _register(tracking_uri, FixedSelector("tsb_rss_negbin").fit(None, None, SPACE))
    v2 = _register(tracking_uri, FixedSelector("adida_rs_normal").fit(None, None, SPACE))
    set_alias(MODEL_NAME, CHAMPION_ALIAS, v2, tracking_uri)
    first, name = load_selector(f"model:{v1}", tracking_uri)
    assert first.chosen_ == "tsb_rss_negbin" and f"v{v1} (not champion" in name
    champ, name = load_selector("model:champion", tracking_uri)
    assert champ.chosen_ == "adida_rs_normal" and f"v{v2} (alias champion" in name
    assert load_selector("model:@champion", tracking_uri)[0].chosen_ == "adida_rs_normal"
    # registry = the champion now
    assert load_selector("registry", tracking_uri)[0].chosen_ == "adida_rs_normal"


@pytest.mark.parametrize(
    ("spec", "match"),
    [
        ("policy:ets_magic", r"unknown candidate 'ets_magic'; choose from \['ets_rs_normal'"),
        ("model:7", r"has no version 7 in .*registered versions: none \(run stockwise train\)"),
        ("model:challenger", r"has no alias 'challenger'"),
    ],
)
def test_unknown_candidate_version_or_alias_is_a_clear_error(tracking_uri, spec, match):
    with pytest.raises(ConfigError, match=match):
        load_selector(spec, tracking_uri)


def test_an_unknown_form_is_refused_by_the_config():
    with pytest.raises(ConfigError, match=r"unknown selector 'champion'; use one of \['registry', 'packaged'"):
        load_config(None, selector="champion")
    assert RunConfig(selector="model:3").selector == "model:3"


def test_evaluate_replays_the_path_asked_for_and_says_so(demo_folder, tracking_uri):
    cfg = RunConfig(
        data=demo_folder / "data",
        out=demo_folder / "runs",
        tracking_uri=tracking_uri,
        forecast=FAST,
        selector="policy:adida_rs_normal",
    )
    result = run_evaluate(cfg, EvaluateSettings(holdout=6))
    items = pd.read_csv(result.run_dir / "evaluation_items.csv")
    # every item with demand runs the asked candidate's policy: its own sizing, or the forecaster x family
    # the sizing choice re-chose for its segment (a fixed policy is a default path; selected_by says which);
    # items without demand follow the rule (no_stock)
    demand_items = items[items["selected_by"] == "default"]
    assert len(demand_items) and demand_items["candidate"].eq("adida_rs_normal").all()
    resized = items[items["selected_by"] == "sizing choice"]
    assert resized["candidate"].str.split("_").str[1].eq("rs").all()
    assert set(items["selected_by"]) <= {"default", "sizing choice", "rule"}
    assert set(items.loc[items["selected_by"] == "rule", "candidate"]) <= {"no_stock"}
    md = (result.run_dir / "evaluation.md").read_text()
    assert "Decision path: `--selector policy:adida_rs_normal` (fixed policy 'adida_rs_normal'" in md
    run = mlflow.MlflowClient(tracking_uri).get_run(result.run_id)
    assert run.data.params["selector"] == "policy:adida_rs_normal"
    assert "fixed policy 'adida_rs_normal'" in run.data.params["selector_name"]
    assert run.data.tags["stockwise.selector"] == "policy:adida_rs_normal"


def test_cli_selector_errors_exit_before_any_run(demo_folder, tracking_uri):
    args = ["evaluate", "--data", str(demo_folder / "data"), "--holdout", "6", "--tracking-uri", tracking_uri]
    out = demo_folder / "runs_err"
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--selector", "model:3"])
    assert result.exit_code == 1 and "has no version 3" in " ".join(result.output.split())
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--selector", "best"])
    assert result.exit_code == 1 and "unknown selector 'best'" in " ".join(result.output.split())
    assert not out.exists() or not any(out.iterdir())


def test_recommend_cli_takes_the_same_decision_path(demo_folder, tracking_uri):
    """`stockwise recommend --selector policy:X` recommends X for every stocked item and says so in RUN.txt;
    an unknown path fails before any run folder is written."""
    args = ["recommend", "--data", str(demo_folder / "data"), "--tracking-uri", tracking_uri]
    out = demo_folder / "runs_rec"
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--selector", "best"])
    assert result.exit_code == 1 and "unknown selector 'best'" in " ".join(result.output.split())
    assert not out.exists() or not any(out.iterdir())
    result = CliRunner().invoke(app, [*args, "--out", str(out), "--selector", "policy:adida_rs_normal"])
    assert result.exit_code == 0, result.output
    (run_dir,) = list(out.iterdir())
    rec = pd.read_csv(run_dir / "recommendations.csv")
    stocked = rec[rec["policy"] != "no_stock"]
    assert len(stocked) and (stocked["candidate"] == "adida_rs_normal").all()
    assert "fixed policy 'adida_rs_normal'" in (run_dir / "RUN.txt").read_text()


def test_replay_selectors_judges_paths_alike_on_the_last_window_from_a_raw_item_master(tracking_uri):
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=60, seed=5))
    items = demo.items.drop(columns=["on_hand"], errors="ignore")  # as a caller may pass it: optional columns absent
    cfg = RunConfig(forecast=FAST, tracking_uri=tracking_uri, seed=3)
    paths = {"packaged": load_selector("packaged", tracking_uri), "same": load_selector("policy:ets_sq_normal", None)}
    table = replay_selectors(demo.demand, items, "W-MON", cfg, 8, paths)
    assert list(table.index) == ["packaged", "same"]
    numbers = ["n_items", "csl", "fill_rate", "inventory_value", "cost", "yearly_cost", "ratio_csl"]
    # the same policy under two names: the same replay (same origin, seed and baselines)
    assert table.loc["packaged", numbers].tolist() == table.loc["same", numbers].tolist()
    assert table.loc["packaged", "n_items"] > 0 and 0 <= table.loc["packaged", "csl"] <= 1
    counted = table.loc["packaged", ["n_items", "n_excluded", "n_not_planned"]].sum()
    assert counted == items["unique_id"].nunique()  # every item counted once, with its reason
    # shortages priced at least at b: never below the replay's own cost, a year
    assert table.loc["packaged", "yearly_cost"] >= table.loc["packaged", "cost"] * 52 / 8 - 1e-9


def test_replay_selectors_names_a_bad_item_master_before_replaying(tracking_uri):
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=60, seed=5))
    with pytest.raises(ValueError, match=r"missing required column\(s\) \['service_target'\]"):
        replay_selectors(
            demo.demand, demo.items.drop(columns="service_target"), "W-MON", RunConfig(forecast=FAST), 8, {}
        )


def test_paths_judged_together_get_the_numbers_of_judging_each_alone(tracking_uri, monkeypatch):
    """The replay of several paths prepares the cutoff once (backtest, forecasts, error models, sizing
    of every candidate, the baselines); each path's recommendations and replayed numbers are still
    exactly those of ``recommend``'s own steps run for it alone."""
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=60, seed=5))
    cfg = RunConfig(forecast=FAST, tracking_uri=tracking_uri, seed=3)
    specs = {"packaged": "packaged", "best_single": "policy:tsb_rss_negbin", "sbc_rule": "sbc"}
    paths = {k: load_selector(spec, tracking_uri) for k, spec in specs.items()}
    together = replay_selectors(demo.demand, demo.items, "W-MON", cfg, 8, paths)
    alone = replay_selectors(demo.demand, demo.items, "W-MON", cfg, 8, paths, shared=False)
    pd.testing.assert_frame_equal(together, alone)
    assert together["yearly_cost"].nunique() == 3  # three different paths, not one compared with itself
    # the shared recommendations are recommend's (plan_steps.recommend_step), path by path
    dates = sorted(demo.demand["ds"].unique())
    history = demo.demand[demo.demand["ds"] < dates[-8]]
    rngs = {k: np.random.default_rng(cfg.seed) for k in paths}
    shared = []  # each path's choice goes through recommend's own select_step, given the shared cutoff

    def spy(*args, **kwargs):
        shared.append((kwargs.get("data"), kwargs.get("sized")))
        return plan_steps.select_step(*args, **kwargs)

    monkeypatch.setattr(evaluate_origin, "select_step", spy)
    _, recs = _recommend_paths(history, demo.items, cfg, "W-MON", paths, "r", rngs)
    monkeypatch.undo()
    assert len(shared) == len(paths) and all(d is not None and s is not None for d, s in shared)
    assert len({id(d) for d, _ in shared}) == 1  # one preparation of the cutoff for the three paths
    for key, (selector, name) in paths.items():
        _, rec = recommend_step(history, demo.items, cfg, "W-MON", selector, name, "r", np.random.default_rng(cfg.seed))
        pd.testing.assert_frame_equal(recs[key], rec)


def test_two_origins_pool_the_last_window_and_the_one_before(tracking_uri):
    """Each origin judges the selector given for it (train's gate: a classifier fitted before that
    origin), its own row says how it did, and the pool is their mean (CSL over item-origins)."""
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=60, seed=5))
    cfg = RunConfig(forecast=FAST, tracking_uri=tracking_uri, seed=3)
    nothing, packaged = load_selector("policy:no_stock", None), load_selector("packaged", tracking_uri)
    table = replay_by_origin(demo.demand, demo.items, "W-MON", cfg, 8, [{"p": nothing}, {"p": packaged}], origins=2)
    dates = sorted(demo.demand["ds"].unique())
    first, second = (str(pd.Timestamp(dates[-k]).date()) for k in (16, 8))
    assert table.index.unique("origin").tolist() == [first, second, "pooled"]
    assert table.loc[(first, "p"), "name"] == nothing[1] and table.loc[("pooled", "p"), "name"] == packaged[1]
    last = replay_selectors(demo.demand, demo.items, "W-MON", cfg, 8, {"p": packaged}).loc["p"]
    earlier = replay_selectors(demo.demand[demo.demand["ds"] < dates[-8]], demo.items, "W-MON", cfg, 8, {"p": nothing})
    earlier = earlier.loc["p"]
    numbers = ["n_items", "csl", "fill_rate", "inventory_value", "cost", "yearly_cost"]
    for label, alone in ((second, last), (first, earlier)):  # each origin as if judged alone
        assert table.loc[(label, "p"), numbers].tolist() == pytest.approx(alone[numbers].tolist())
    assert earlier["inventory_value"] == 0 < last["inventory_value"]  # two different selectors judged
    pooled = table.loc[("pooled", "p")]
    assert (pooled["origins"], table.loc[(first, "p"), "origins"]) == (2, 1)
    for kpi in ("yearly_cost", "inventory_value", "cost"):  # per origin, averaged
        assert pooled[kpi] == pytest.approx((last[kpi] + earlier[kpi]) / 2)
    assert min(last["csl"], earlier["csl"]) <= pooled["csl"] <= max(last["csl"], earlier["csl"])
    counted = pooled[["n_items", "n_excluded", "n_not_planned"]].sum()
    assert counted == demo.items["unique_id"].nunique()
    # replay_selectors is the pooled part, the same paths at every origin when given one mapping
    same = replay_selectors(demo.demand, demo.items, "W-MON", cfg, 8, {"p": packaged}, origins=2)
    assert same.loc["p", "origins"] == 2 and same.loc["p", "inventory_value"] > pooled["inventory_value"]
    with pytest.raises(ValueError, match=r"expected 3 mappings with the same path keys, got 2"):
        replay_by_origin(demo.demand, demo.items, "W-MON", cfg, 8, [{"p": nothing}, {"p": packaged}], origins=3)


def test_a_service_target_refuses_a_shared_cutoff():
    """A segment or portfolio target re-levels on its own cutoff: select_step says so rather than
    ignoring the data it was given."""
    demo = generate_demo(DemoConfig(n_items=8, n_stores=4, n_dcs=2, min_stores_per_item=2, n_weeks=60, seed=5))
    service = ServiceSettings(mode="portfolio", target=0.95)
    with pytest.raises(ValueError, match="portfolio service target prepares its own cutoff"):
        select_step(
            demo.demand,
            demo.items,
            "W-MON",
            None,
            np.random.default_rng(0),
            service=service,
            choose_sizing=False,
            data=object(),
        )
