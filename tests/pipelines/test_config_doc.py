"""The full stockwise.yaml in docs/guide/errors.md is valid for recommend and train and states the defaults."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from pipelines.data.config import RunConfig, load_config
from pipelines.flows.train import TrainSettings, load_train_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "guide" / "errors.md"


def _example(tmp_path) -> Path:
    text = re.search(r"## stockwise.yaml.*?```yaml\n(.*?)```", DOC.read_text(), re.S).group(1)
    path = tmp_path / "stockwise.yaml"
    path.write_text(text)
    return path


def test_documented_example_loads_for_recommend_and_train(tmp_path):
    path = _example(tmp_path)
    cfg = load_config(path)
    assert cfg.forecast.n_windows == 6 and cfg.data == Path("data/my_network")
    assert load_train_settings(path).test_periods == 26


def test_documented_values_are_the_defaults(tmp_path):
    raw = yaml.safe_load(_example(tmp_path).read_text())
    run_defaults = RunConfig().model_dump(mode="json")
    for key, value in raw.items():
        if key in ("data", "freq", "train", "tracking_uri"):  # examples; their defaults are "none given"
            continue
        assert run_defaults[key] == value or (isinstance(value, dict) and
                                              {k: run_defaults[key][k] for k in value} == value), key
    assert TrainSettings().model_dump(mode="json") == raw["train"] | {"candidates": None}
