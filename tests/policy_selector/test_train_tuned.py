"""Issue 13: the shortfall-tuned selector through ``stockwise train``: the setting, the replay gate, the registry."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import typer
from typer.testing import CliRunner

from pipelines.cli import train as train_cli
from pipelines.flows import train_gate
from pipelines.flows.plan import load_champion
from pipelines.flows.plan_steps import select_step
from pipelines.flows.retrain import TrainRequest
from pipelines.flows.train import (
    TrainSettings,
    choose_paths,
    load_train_config,
    parse_list,
    run_train,
    selector_config,
    train_challenger,
    with_options,
)
from pipelines.flows.train_log import registered_line, registrations
from pipelines.registry.names import CHAMPION_ALIAS, DEFAULT_ALIAS, GATE_TAG, MODEL_NAME, PATH_TAG
from pipelines.registry.tracking import (
    get_alias_version,
    get_version_tags,
    load_model_version,
    set_alias,
    start_run,
)
from policy_selector import CandidateSpace, PolicySelector, SelectorConfig
from policy_selector.context import prepare_cutoff
from policy_selector.evaluation import replay_gate
from policy_selector.features import build_features
from policy_selector.shortfall_tuning import ShortfallPaths, ShortfallTuned, shortfall_segments
from tests.policy_selector.conftest import FAST
from tests.policy_selector.test_shortfall_scale import _planted
from tests.policy_selector.test_train import _fake_replay_by_origin

SCALED = ("tsb_rss_negbin_x0.5", "tsb_rss_negbin_x2", "ets_sq_normal_x0.5", "ets_sq_normal_x2")


def test_the_shortfall_setting_reads_from_yaml_and_the_command_line(tmp_path):
    path = tmp_path / "train.yaml"
    path.write_text("train:\n  shortfall_scales: [0.5, 2]\n  scale_candidates: [tsb_rss_negbin, ets_sq_normal]\n")
    settings, run = load_train_config(path)
    assert run is None and settings.shortfall_scales == (0.5, 2.0)
    assert settings.scale_candidates == ("tsb_rss_negbin", "ets_sq_normal")
    space = selector_config(settings, "W-MON").space
    assert space.names == CandidateSpace().names + SCALED
    # default: no variants, the space as before
    assert TrainSettings().shortfall_scales is None
    assert selector_config(TrainSettings(), "W-MON").space.names == CandidateSpace().names
    given = {"shortfall_scales": parse_list(" 0.5, 2", "--shortfall-scales", float), "scale_candidates": None}
    assert with_options(TrainSettings(), given).shortfall_scales == (0.5, 2.0)
    assert parse_list(None, "--shortfall-scales", float) is None


@pytest.mark.parametrize(
    "yaml, match",
    [
        ("shortfall_scales: [0]", r"train.yaml: invalid train settings: shortfall_scales: .*finite number > 0"),
        ("shortfall_scales: [1]", r"shortfall_scales: .*add no variant"),
        ("shortfall_scales: [2, 2]", r"shortfall scales repeat"),
        ("scale_candidates: [tsb_rss_negbin]", r"scale_candidates needs shortfall_scales"),
        ("shortfall_scales: [2]\n  scale_candidates: [nope]", r"cannot scale the shortfall of \['nope'\]"),
        ("shortfall_scales: [2]\n  scale_candidates: [no_stock]", r"no_stock sizes nothing"),
        (
            "shortfall_scales: [2]\n  candidates: [tsb_rss_negbin, tsb_rss_negbin_x2]",
            r"\['tsb_rss_negbin_x2'\] are shortfall variants already",
        ),
        ("shortfall_scales: [2]\n  replay: false", r"shortfall_scales needs the decision replay"),
    ],
)
def test_a_bad_shortfall_setting_is_refused_naming_the_file(tmp_path, yaml, match):
    path = tmp_path / "train.yaml"
    path.write_text(f"train:\n  {yaml}\n")
    with pytest.raises(ValueError, match=match):
        load_train_config(path)


def test_the_command_line_passes_the_setting_and_refuses_a_bad_one(tmp_path, monkeypatch):
    seen = {}

    def fake_run_train(demand, items, freq, settings, out, uri, run_config=None):
        seen["settings"] = settings
        raise ValueError("stop here")

    monkeypatch.setattr(train_cli, "run_train", fake_run_train)
    monkeypatch.setattr(train_cli, "load_train_inputs", lambda data, demo, settings: (None, None, "W-MON"))
    app = typer.Typer()
    app.command()(train_cli.train_command)
    ok = ["--demo", "--shortfall-scales", "0.5,2", "--scale-candidates", "tsb_rss_negbin"]
    CliRunner().invoke(app, ok)
    assert seen["settings"].shortfall_scales == (0.5, 2.0)
    assert seen["settings"].scale_candidates == ("tsb_rss_negbin",)
    bad = CliRunner().invoke(app, ["--demo", "--shortfall-scales", "0.5,abc"])
    assert bad.exit_code == 1 and "--shortfall-scales '0.5,abc': give comma-separated float values" in bad.output
    bad = CliRunner().invoke(app, ["--demo", "--scale-candidates", "tsb_rss_negbin"])
    assert bad.exit_code == 1 and "the command line: invalid train settings" in bad.output
    assert "scale_candidates needs shortfall_scales" in bad.output


def _replay(**paths) -> pd.DataFrame:
    """Replay scores: path -> (yearly_cost, csl, ratio_csl)."""
    return pd.DataFrame.from_dict(paths, orient="index", columns=["yearly_cost", "csl", "ratio_csl"])


#: the tuned best single policy 4 % cheaper than the packaged default, the tuned classifier 3.1 % below it
TUNED_WINS = _replay(
    classifier=(985.0, 0.950, 0.98),
    packaged=(1000.0, 0.950, 1.00),
    best_single=(990.0, 0.950, 1.10),
    sbc_rule=(1100.0, 0.940, 1.20),
    classifier_tuned=(930.0, 0.952, 0.85),
    best_single_tuned=(960.0, 0.951, 0.90),
)


def test_the_replay_gate_promotes_the_tuned_classifier_only_when_it_beats_the_default_and_both_best_singles():
    gate = train_gate._gate_paths(TUNED_WINS.index)
    d = replay_gate(TUNED_WINS, 0.02, 0.005, **gate)
    assert d.default == "best_single_tuned" and d.champion == "classifier_tuned" and d.promote
    assert "classifier_tuned vs best_single_tuned: yearly cost 930 vs 960 (-3.1%)" in d.reason
    assert "classifier_tuned vs best_single: yearly cost 930 vs 990 (-6.1%)" in d.reason
    assert "classifier not promoted" in d.reason and "best_single_tuned vs packaged" in d.reason
    assert choose_paths(pd.DataFrame(), "tsb_rss_negbin", (), TrainSettings(), TUNED_WINS, None)[:2] == (
        "promote_tuned",
        None,
    )
    # cheaper, but its CSL 0.011 below the tuned best single's: declined; the tuned best single is the default
    lower = TUNED_WINS.copy()
    lower.loc["classifier_tuned", "csl"] = 0.940
    d = replay_gate(lower, 0.02, 0.005, **gate)
    assert d.default == "best_single_tuned" and d.champion is None and not d.promote
    assert choose_paths(pd.DataFrame(), "tsb_rss_negbin", (), TrainSettings(), lower, None)[:2] == (
        "keep",
        train_gate.TUNED_SINGLE,
    )
    # beats the packaged default and the plain best single, only 1.0 % below the tuned best single: declined
    close = TUNED_WINS.copy()
    close.loc["classifier_tuned", "yearly_cost"] = 950.0
    assert replay_gate(close, 0.02, 0.005, **gate).champion is None
    # both classifiers qualify: the cheaper is promoted
    both = TUNED_WINS.copy()
    both.loc["classifier", ["yearly_cost", "csl"]] = (900.0, 0.951)
    d = replay_gate(both, 0.02, 0.005, **gate)
    assert d.champion == "classifier" and "classifier_tuned qualifies, not the cheapest" in d.reason
    # without the tuned rows: the four paths' gate, as before
    assert train_gate._gate_paths(TUNED_WINS.index[:4]) == {}


def _tuned_on_planted():
    """The planted Poisson items (CSL target 0.9) with real features, and a cost matrix in which
    ``sba_basestock_poisson_x0.5`` (sized to 0.95) costs least; :class:`ShortfallPaths` fitted on it."""
    demand, items = _planted()
    space = CandidateSpace.from_names(["sba_basestock_poisson", "no_stock"]).with_shortfall_scales([0.5])
    config = SelectorConfig(space=space, n_windows=3, quantile_points=100)
    data = prepare_cutoff(demand, items, pd.Timestamp(demand["ds"].max()), config)
    features = build_features(data)
    costs = pd.DataFrame(
        {"sba_basestock_poisson": 10.0, "no_stock": 50.0, "sba_basestock_poisson_x0.5": 8.0}, index=features.index
    )
    bundle = ShortfallPaths(PolicySelector(random_state=0), min_rows=1).fit(features, None, costs)
    return demand, items, features, bundle


def test_a_tuned_model_round_trips_through_the_registry_and_recommend_sizes_to_the_tuned_level(tracking_uri):
    demand, items, features, bundle = _tuned_on_planted()
    segment = bundle.tuned_.tuning_["sba_basestock_poisson"]
    assert set(segment.values()) == {"sba_basestock_poisson_x0.5"}
    assert bundle.best_single_ == "sba_basestock_poisson" and bundle.candidates_ == (
        "sba_basestock_poisson",
        "no_stock",
    )
    assert (bundle.predict(features) == "sba_basestock_poisson").all()  # the plain classifier: no variants
    with start_run("train", tracking_uri) as run:
        v = run.log_model(
            bundle.tuned_,
            name="policy_selector_tuned",
            flavor="sklearn",
            registered_name=MODEL_NAME,
            serialization_format="cloudpickle",
        )
    set_alias(MODEL_NAME, CHAMPION_ALIAS, str(v), tracking_uri)
    selector, name = load_champion(tracking_uri)
    assert isinstance(selector, ShortfallTuned) and name == f"{MODEL_NAME} v{v}"
    rec = select_step(demand, items, "W-MON", selector, np.random.default_rng(0))  # recommend's own step
    assert (rec["candidate"] == "sba_basestock_poisson_x0.5").all()
    notes = rec["service_note"]
    assert notes.str.startswith("sized to csl 0.95, 0.5x the shortfall of the target 0.9").all(), notes.iloc[0]
    segments = shortfall_segments(features)
    rows = segments.value_counts()
    for uid, reason in zip(rec["unique_id"], rec["reasons"]):
        s = segments[uid]
        assert (
            "sized to 0.5x the shortfall of the item's target (shortfall scale tuned per segment): in segment "
            f"{s} ({rows[s]} training rows) that level cost least on the training windows"
        ) in reason, reason
    assert rec["reasons"].str.startswith("sba_basestock_poisson_x0.5").all()


def test_the_tuned_best_single_policy_registers_as_the_default_path(tracking_uri):
    demand, items, _, bundle = _tuned_on_planted()
    settings = TrainSettings(shortfall_scales=(0.5,), candidates=("sba_basestock_poisson", "no_stock"))
    with start_run("train", tracking_uri) as run:
        default, dv = train_gate._register_default(run, train_gate.TUNED_SINGLE, bundle, settings, tracking_uri)
    assert default == "sba_basestock_poisson (shortfall scale tuned per segment)"
    assert get_alias_version(MODEL_NAME, DEFAULT_ALIAS, tracking_uri) == dv
    selector, name = load_champion(tracking_uri)
    assert isinstance(selector, ShortfallTuned) and selector.inner_.chosen_ == "sba_basestock_poisson"
    assert "default path best single policy 'sba_basestock_poisson', shortfall scale tuned per segment" in name
    rec = select_step(demand, items, "W-MON", selector, np.random.default_rng(0))
    assert (rec["candidate"] == "sba_basestock_poisson_x0.5").all()


@pytest.mark.slow
def test_train_with_shortfall_scales_replays_the_tuned_paths_and_registers_the_winner(
    tiny_demo, tracking_uri, tmp_path, monkeypatch
):
    """~40 s: train's wiring with the decision replay faked (the tuned classifier 20 % cheaper). Each fit (the
    study's folds, its held-out-time model, the final model) fits the tuned paths once: no refit per path."""
    seen = []
    monkeypatch.setattr(train_gate, "replay_by_origin", _fake_replay_by_origin(seen, {0: {"classifier_tuned": 80.0}}))
    fits = {"paths": 0, "tuned": 0}
    for cls, key in ((ShortfallPaths, "paths"), (ShortfallTuned, "tuned")):
        monkeypatch.setattr(cls, "fit", _counted(cls.fit, fits, key))
    settings = TrainSettings(
        candidates=FAST,
        n_splits=2,
        label_paths=3,
        gate_origins=1,
        shortfall_scales=(0.5, 2),
        scale_candidates=("tsb_rss_negbin",),
    )
    result = run_train(tiny_demo.demand, tiny_demo.items, "W-MON", settings, tmp_path / "out", tracking_uri)
    paths = seen[0]["selectors"][0]
    assert list(paths) == ["classifier", "packaged", "best_single", "sbc_rule", "classifier_tuned", "best_single_tuned"]
    assert isinstance(paths["classifier"][0], PolicySelector) and "_x" not in paths["best_single"][0].chosen_
    assert set(paths["classifier"][0].candidates_) == set(FAST)  # the plain classifier: no variants
    assert isinstance(paths["classifier_tuned"][0], ShortfallTuned)
    assert (result.version, result.tuned_version, result.champion) == ("1", "2", "2")
    assert result.decision.startswith("v2 (the shortfall-tuned classifier) is champion")
    assert load_model_version(MODEL_NAME, "1", tracking_uri).candidates_ == paths["classifier"][0].candidates_
    assert isinstance(load_champion(tracking_uri)[0], ShortfallTuned)
    assert list(pd.read_csv(result.paths["replay"])["path"])[-2:] == ["classifier_tuned", "best_single_tuned"]
    methods = set(result.evaluation["method"])
    assert {"classifier_tuned", "best_single_tuned"} <= methods
    assert "tsb_rss_negbin" in (tmp_path / "out" / "shortfall_tuning.json").read_text()
    assert fits == {"paths": 2 + 2, "tuned": 2 * (2 + 2)}  # n_splits folds + held-out time + final; 2 tuned each
    # every registered version, its alias and why: in the output and in MLflow
    said = "v1 (the classifier): no alias, the gate promoted the shortfall-tuned classifier v2 instead"
    assert said in result.decision and "v2 (the shortfall-tuned classifier): alias 'champion'" in result.decision
    assert [(r.version, r.path, r.alias) for r in result.registered] == [
        ("1", "classifier", None),
        ("2", "classifier_tuned", CHAMPION_ALIAS),
    ]
    assert get_version_tags(MODEL_NAME, "1", tracking_uri)[PATH_TAG] == "classifier"
    assert get_version_tags(MODEL_NAME, "2", tracking_uri)[GATE_TAG] == "champion: promoted by the replay gate"


def _counted(fit, counts: dict, key: str):
    """``fit`` that counts its calls in ``counts[key]``."""

    def counted(self, *args, **kwargs):
        counts[key] += 1
        return fit(self, *args, **kwargs)

    return counted


def test_every_registered_version_is_named_with_its_alias_and_why():
    """Pure: the plain classifier promoted in a tuned run names the tuned version too (review item 13)."""
    plain = registrations("promote", "replay", "1", "2")
    line = registered_line(plain)
    assert line == (
        "registered: v1 (the classifier): alias 'champion', promoted by the replay gate; "
        "v2 (the shortfall-tuned classifier): no alias, the gate promoted the classifier v1 instead"
    )
    kept = registered_line(registrations("keep", "replay", "1", "2", default=("3", "best_single_tuned", "x")))
    assert (
        "v1 (the classifier): no alias, not promoted" in kept
        and "v2 (the shortfall-tuned classifier): no alias" in kept
    )
    assert "v3 (the default path 'x'): alias 'default', the gate's default path" in kept
    assert "v1 (the classifier): no alias, champion v9 kept" in registered_line(
        registrations("keep", "", "1", kept="9")
    )
    assert "could not run" in registered_line(registrations("keep", "none", "1"))
    assert registered_line(registrations("keep", "", None)) == ""


@pytest.mark.slow
def test_retrains_challenger_with_shortfall_scales_is_the_path_trains_gate_chose(tiny_demo, tracking_uri, monkeypatch):
    """~40 s: the challenger of a tuned retrain is the version of the path train's gate chose (here the tuned best
    single policy as the default path: 20 % cheaper, no classifier promoted), tagged with the path and why."""
    costs = {0: {"best_single_tuned": 80.0, "classifier": 90.0, "classifier_tuned": 90.0}}
    monkeypatch.setattr(train_gate, "replay_by_origin", _fake_replay_by_origin([], costs))
    settings = TrainSettings(
        candidates=FAST, n_splits=2, label_paths=3, gate_origins=1, shortfall_scales=(0.5,), scale_candidates=FAST[:1]
    )
    cutoff = pd.to_datetime(tiny_demo.demand["ds"]).max()
    request = TrainRequest(tiny_demo.demand, tiny_demo.items, cutoff, MODEL_NAME, tracking_uri, train_settings=settings)
    version = train_challenger(request)
    tags = get_version_tags(MODEL_NAME, version, tracking_uri)
    assert tags[PATH_TAG] == "best_single_tuned"
    assert tags[GATE_TAG].startswith("train's gate chose best_single_tuned: decision replay")
    model = load_model_version(MODEL_NAME, version, tracking_uri)
    assert isinstance(model, ShortfallTuned) and model.inner == "best_single"
    assert get_alias_version(MODEL_NAME, CHAMPION_ALIAS, tracking_uri) is None  # no alias moved
    assert get_alias_version(MODEL_NAME, DEFAULT_ALIAS, tracking_uri) is None
