"""Shared fixtures: one seeded synthetic-panel factory and the real data sets."""

from __future__ import annotations

import shutil
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


@pytest.fixture(scope="session")
def migrated_store(tmp_path_factory) -> Path:
    """An empty MLflow sqlite store, created and migrated once per session.

    Creating a store runs MLflow's schema migrations (about 2 s of CPU, 5-10 s on a loaded
    machine); a copy of this file is a fresh, isolated store at the current schema.
    """
    from pipelines.registry.tracking import list_versions

    db = tmp_path_factory.mktemp("store-template") / "mlflow.db"
    list_versions("none", f"sqlite:///{db}")
    return db


@pytest.fixture(scope="session")
def new_store(migrated_store):
    """Factory ``new_store(path) -> tracking URI``: a fresh store at ``path``, a copy of the migrated one.

    Each test still gets its own store (its own runs, registry and artifacts next to the file);
    only the migration is shared. Tests of store creation itself use a plain path instead.
    """

    def make(path: Path) -> str:
        path.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy(migrated_store, path)
        return f"sqlite:///{path}"

    return make


@pytest.fixture(scope="session", autouse=True)
def _default_pip_requirements():
    """Logged models get their flavor's default pip requirements instead of inferred ones.

    For every ``log_model`` MLflow loads the saved model in a fresh Python to see what it
    imports (about 6 s a model on a loaded 2-core machine; it falls back to the defaults on
    any failure). The suite logs dozens of models and reads none of their requirements; what it
    checks (logged, registered, aliased, loaded back) is unchanged. The real inference runs in
    ``.ci/run``'s plain install (``stockwise train`` and ``demo`` in a fresh venv).
    """
    import mlflow.models

    patch = pytest.MonkeyPatch()
    patch.setattr(mlflow.models, "infer_pip_requirements", lambda uri, flavor, fallback=None, **kw: list(fallback))
    yield
    patch.undo()


@pytest.fixture
def tracking_uri(new_store, tmp_path) -> str:
    """A throw-away MLflow sqlite store for end-to-end tests (already migrated)."""
    return new_store(tmp_path / "mlruns" / "mlflow.db")
