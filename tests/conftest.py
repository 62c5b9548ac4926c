"""Shared fixtures: one seeded synthetic-panel factory and the real data sets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED_DATA = ROOT.parent / "shared" / "data"


def make_panel(
    n_series: int = 5,
    length: int = 104,
    kind: str = "smooth",
    seed: int = 0,
    freq: str = "W-MON",
    start: str = "2022-01-03",
) -> pd.DataFrame:
    """Long-format demand panel with a known process per series.

    ``kind``: ``smooth`` (Poisson around a level), ``intermittent``
    (Bernoulli occurrence x Poisson size), ``seasonal`` (annual sine on a level).
    """
    rng = np.random.default_rng(seed)
    ds = pd.date_range(start, periods=length, freq=freq)
    frames = []
    for i in range(n_series):
        level = 10.0 + 5 * i
        if kind == "smooth":
            y = rng.poisson(level, length)
        elif kind == "intermittent":
            y = (rng.random(length) < 0.3) * (1 + rng.poisson(2.0, length))
        elif kind == "seasonal":
            t = np.arange(length)
            y = rng.poisson(level * (1 + 0.4 * np.sin(2 * np.pi * t / 52)))
        else:
            raise ValueError(f"unknown kind {kind!r}; use smooth, intermittent or seasonal")
        frames.append(pd.DataFrame({"unique_id": f"S{i:03d}", "ds": ds, "y": y.astype(float)}))
    return pd.concat(frames, ignore_index=True)


@pytest.fixture
def panel_factory():
    """The synthetic-panel factory (see :func:`make_panel`)."""
    return make_panel


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` relative to the project root; skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"real data folder {SHARED_DATA} not found")
    return SHARED_DATA


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    """A throw-away MLflow sqlite store for end-to-end tests."""
    return f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}"
