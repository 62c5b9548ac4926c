"""One stockwise.yaml holds the run settings and a ``train:`` section; recommend and train each read theirs."""

from __future__ import annotations

import re
from pathlib import Path

from pipelines.data.config import load_config
from pipelines.flows.train import load_train_settings

DOC = Path(__file__).resolve().parents[2] / "docs" / "guide" / "configuration.md"


def test_documented_run_and_train_examples_load_from_one_file(tmp_path):
    run, train = re.findall(r"```yaml\n(.*?)```", DOC.read_text(), re.S)[:2]
    path = tmp_path / "stockwise.yaml"
    path.write_text(run + train)
    cfg = load_config(path)
    assert cfg.forecast.n_windows == 6 and cfg.data == Path("data/my_network")
    settings = load_train_settings(path)
    assert settings.test_periods is None and settings.label_paths == 40
