"""Fixtures shared by the pipelines tests."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from pipelines.registry.tracking import list_versions


@pytest.fixture(scope="module")
def migrated_store(tmp_path_factory) -> Path:
    """An empty, already-migrated sqlite store: copying it saves the schema migration per test."""
    db = tmp_path_factory.mktemp("template") / "mlflow.db"
    list_versions("none", f"sqlite:///{db}")
    return db


@pytest.fixture
def store(tracking_uri, migrated_store, tmp_path) -> tuple[str, Path]:
    db = Path(tracking_uri.removeprefix("sqlite:///"))
    db.parent.mkdir(parents=True, exist_ok=True)
    shutil.copy(migrated_store, db)
    return tracking_uri, tmp_path / "decisions"
