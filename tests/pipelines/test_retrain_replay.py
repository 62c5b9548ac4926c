"""``stockwise retrain`` judges challenger and champion by the decision replay (issue 13): the same
replay ``stockwise train`` gates on and ``stockwise evaluate`` runs, on the held-out periods."""

from __future__ import annotations

import json
from dataclasses import replace

import pandas as pd
import pytest

from pipelines.data.config import RunConfig, ServiceSettings
from pipelines.data.demo_data import DemoConfig, generate_demo
from pipelines.flows import train as train_flow
from pipelines.flows.retrain import DECISION_FILE, RetrainConfig, retrain
from pipelines.registry.names import MODEL_NAME
from pipelines.registry.tracking import get_alias_version, set_alias, start_run
from policy_selector import FixedSelector
from policy_selector.candidates import CandidateSpace

SPACE = pd.DataFrame(columns=list(CandidateSpace().names))
HOLDOUT = 8


@pytest.fixture(scope="module")
def demo():
    return generate_demo(DemoConfig(n_items=8, n_stores=3, n_dcs=1, min_stores_per_item=2, n_weeks=60, seed=5))


def _register(uri: str, candidate: str) -> str:
    with start_run("register", uri) as run:
        selector = FixedSelector(candidate).fit(None, None, SPACE)
        return str(
            run.log_model(
                selector, name="policy_selector", registered_name=MODEL_NAME, serialization_format="cloudpickle"
            )
        )


def _config(uri: str, out) -> RetrainConfig:
    return RetrainConfig(holdout_periods=HOLDOUT, margin=0.02, out=out, tracking_uri=uri)


def _challenge(demo, uri: str, out, candidate: str = "no_stock"):
    """One retrain whose challenger is a fixed ``candidate``, judged by the real replay."""
    train = lambda request: _register(uri, candidate)  # noqa: E731
    return retrain(demo.demand, demo.items, train, train_flow.evaluate_version, _config(uri, out))


def _score_rows(out, decision) -> list[list[str]]:
    """(model, version) of each row of the decision's scores.csv."""
    table = pd.read_csv(out / decision.decision_id / "scores.csv")
    return table[["model", "version"]].astype(str).values.tolist()


def _fake_replay(seen: list, **numbers):
    """A stand-in for ``replay_selectors`` that records its call and scores every path alike."""
    row = dict(yearly_cost=100.0, csl=0.9, fill_rate=0.95, inventory_value=7.0, cost=2.0, ratio_csl=1.0)
    row |= dict(ratio_fill_rate=1.0, n_items=5, n_excluded=0, n_not_planned=0) | numbers

    def replay(demand, items, freq, cfg, holdout, selectors, **kw):
        seen.append(
            {"origin": demand["ds"].max(), "freq": freq, "cfg": cfg, "holdout": holdout, "keys": list(selectors)}
        )
        return pd.DataFrame({k: row for k in selectors}).T

    return replay


def test_retrain_promotes_what_wins_the_replay_and_keeps_the_champion_when_it_loses(demo, store):
    uri, out = store
    stocked = _register(uri, "ets_sq_normal")
    empty = _register(uri, "no_stock")  # holds nothing: every unit short, priced at the target's shortage cost
    set_alias(MODEL_NAME, "champion", empty, uri)
    calls = []

    def evaluate(version, request):  # the real replay, counting how it is called
        calls.append(version)
        return train_flow.evaluate_version(version, request)

    evaluate.many = lambda versions, request: (
        calls.append(tuple(versions)) or train_flow.evaluate_versions(versions, request)
    )
    won = retrain(demo.demand, demo.items, lambda request: stocked, evaluate, _config(uri, out))
    assert calls == [(stocked, empty)]  # challenger and champion judged in one replay
    assert won.action == "promote", won.reason
    ch, cp = won.scores["challenger"], won.scores["champion"]
    assert ch["total_cost"] < cp["total_cost"] and ch["service"] > cp["service"]
    assert ch["holdout_periods"] == HOLDOUT and ch["n_items"] > 0 and cp["inventory_value"] == 0
    # the reason names the numbers
    assert f"challenger cost {ch['total_cost']:,.2f} vs champion {cp['total_cost']:,.2f}" in won.reason
    assert f"service {ch['service']:.4f} vs {cp['service']:.4f}" in won.reason
    assert f"inventory value {ch['inventory_value']:,.0f} vs 0" in won.reason
    assert get_alias_version(MODEL_NAME, "champion", uri) == stocked
    table = pd.read_csv(out / won.decision_id / "scores.csv")
    assert table[["model", "version"]].astype(str).values.tolist() == [["challenger", stocked], ["champion", empty]]
    assert {"total_cost", "service", "inventory_value", "fill_rate"} <= set(table.columns)
    # standard JSON: the champion's ratios (no stock: outside every baseline frontier) are left out, not NaN
    record = (out / won.decision_id / DECISION_FILE).read_text()
    json.loads(record, parse_constant=lambda c: pytest.fail(f"decision.json holds {c}"))
    assert "ratio_csl" not in cp

    lost = retrain(demo.demand, demo.items, lambda request: _register(uri, "no_stock"), evaluate, _config(uri, out))
    assert lost.action == "keep" and "service drops by more than 0.005" in lost.reason
    assert get_alias_version(MODEL_NAME, "champion", uri) == stocked


def test_evaluate_version_passes_the_replay_numbers_through(demo, store, monkeypatch):
    """total_cost is the replay's priced yearly cost and service its achieved CSL, as train's gate reads them."""
    uri, out = store
    version = _register(uri, "ets_sq_normal")
    seen = []
    monkeypatch.setattr(train_flow, "replay_selectors", _fake_replay(seen, yearly_cost=1234.5, inventory_value=77.0))
    decision = retrain(demo.demand, demo.items, lambda request: version, train_flow.evaluate_version, _config(uri, out))
    # nothing registered: the packaged default recommend uses is judged in the same replay
    assert seen[-1]["keys"] == [version, "packaged"] and seen[-1]["holdout"] == HOLDOUT
    assert seen[-1]["origin"] == demo.demand["ds"].max()  # the replay runs on the held-out periods themselves
    scores = decision.scores["challenger"]
    assert (scores["total_cost"], scores["service"], scores["inventory_value"]) == (1234.5, 0.9, 77.0)


def test_with_no_champion_the_challenger_must_beat_the_default_path_train_registered(demo, store):
    """recommend uses the ``default`` alias when no champion exists: retrain judges the challenger against it."""
    uri, out = store
    default = _register(uri, "ets_sq_normal")
    set_alias(MODEL_NAME, "default", default, uri)
    decision = _challenge(demo, uri, out)
    assert decision.action == "keep" and decision.champion_before is None and decision.incumbent == default
    assert decision.reason.startswith(f"no champion; judged against the default path v{default} (alias 'default')")
    assert "service drops by more than 0.005" in decision.reason
    assert get_alias_version(MODEL_NAME, "champion", uri) is None
    assert _score_rows(out, decision) == [["challenger", decision.challenger], ["champion", default]]


def test_with_nothing_registered_the_challenger_must_beat_the_packaged_default(demo, store):
    """No champion, no default alias: recommend uses the packaged default, so the challenger is judged
    against it through the same replay, not promoted unjudged."""
    uri, out = store
    decision = _challenge(demo, uri, out)
    assert decision.action == "keep" and decision.champion_before is None and decision.incumbent == "packaged"
    ch, pk = decision.scores["challenger"], decision.scores["champion"]
    assert pk["n_items"] > 0 and pk["inventory_value"] > 0 == ch["inventory_value"]
    assert decision.reason.startswith(
        "no champion or default alias; judged against what recommend uses, the packaged default policy 'ets_sq_normal'"
    )
    assert f"challenger cost {ch['total_cost']:,.2f} vs champion {pk['total_cost']:,.2f}" in decision.reason
    assert "service drops by more than 0.005" in decision.reason
    for alias in ("champion", "default"):
        assert get_alias_version(MODEL_NAME, alias, uri) is None
    assert _score_rows(out, decision) == [["challenger", decision.challenger], ["champion", "packaged"]]


def test_the_replay_uses_the_run_settings_of_the_retrain(demo, store, monkeypatch):
    """freq, seed and service settings of the run reach the replay (and the record); without them the
    step's defaults (the inferred frequency, the train seed, default service) as before."""
    uri, out = store
    version = _register(uri, "ets_sq_normal")
    set_alias(MODEL_NAME, "champion", version, uri)
    seen = []
    monkeypatch.setattr(train_flow, "replay_selectors", _fake_replay(seen))
    run = RunConfig(seed=11, service=ServiceSettings(mode="portfolio", target=0.9, backtest=False))
    config = replace(_config(uri, out), run=run)
    decision = retrain(demo.demand, demo.items, lambda request: version, train_flow.evaluate_version, config)
    freq, cfg = seen[-1]["freq"], seen[-1]["cfg"]
    assert freq == cfg.freq == "W-MON" and cfg.seed == 11 and cfg.service == run.service
    assert cfg.tracking_uri == uri
    assert decision.run_settings == {
        "freq": None,
        "seed": 11,
        "service": run.service.model_dump(mode="json"),
        "selector_refit_every": run.selector_refit_every,
        "error_model": {"shrinkage": "estimate"},
    }
    retrain(demo.demand, demo.items, lambda request: version, train_flow.evaluate_version, _config(uri, out))
    freq, cfg = seen[-1]["freq"], seen[-1]["cfg"]
    assert cfg.seed == train_flow.TrainSettings().seed != 11 and cfg.service == ServiceSettings()
