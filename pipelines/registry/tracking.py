"""MLflow tracking for every Stockwise invocation.

This is the only module in Stockwise that imports :mod:`mlflow`. Everything
else logs through :class:`RunLogger`, so the libraries stay free of tracking
code and the store location is decided in one place.

Default store: ``sqlite:///mlruns/mlflow.db`` with artifacts under
``mlruns/artifacts`` (MLflow 3.x refuses the plain file store). Override with
the ``tracking_uri`` argument or the ``STOCKWISE_TRACKING_URI`` environment
variable (artifacts then go next to the sqlite file).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import socket
import tempfile
import urllib.parse
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from pipelines.registry.names import CHAMPION_ALIAS

DEFAULT_TRACKING_URI = "sqlite:///mlruns/mlflow.db"
EXPERIMENT = "stockwise"
#: seconds to wait for a tracking server's TCP port before giving up (MLflow itself retries for minutes)
CONNECT_TIMEOUT = 5.0
_SQLITE_MAGIC = b"SQLite format 3\x00"


class TrackingStoreError(ValueError):
    """The MLflow store cannot be opened or reached; the message names it and what to do."""


__all__ = [
    "DEFAULT_TRACKING_URI",
    "TrackingStoreError",
    "check_store",
    "store_dir",
    "RunLogger",
    "start_run",
    "fingerprint",
    "resolve_tracking_uri",
    "artifact_root_for",
    "get_alias_version",
    "set_alias",
    "set_version_tags",
    "get_version_tags",
    "list_versions",
    "register_version",
    "load_model_version",
    "end_stale_runs",
]


def fingerprint(df: pd.DataFrame) -> str:
    """Content hash of a DataFrame (order-sensitive, 16 hex chars)."""
    hashed = pd.util.hash_pandas_object(df, index=False).to_numpy()
    cols = "|".join(map(str, df.columns)).encode()
    return hashlib.sha256(cols + hashed.tobytes()).hexdigest()[:16]


_SCHEMES = ("sqlite:///", "file:", "http://", "https://", "postgresql", "mysql", "mssql", "databricks")


def resolve_tracking_uri(tracking_uri: str | None = None) -> str:
    """Explicit argument, then ``STOCKWISE_TRACKING_URI``, then the default.

    Raises
    ------
    ValueError
        For a store MLflow cannot open, before any work is done.
    """
    uri = tracking_uri or os.environ.get("STOCKWISE_TRACKING_URI") or DEFAULT_TRACKING_URI
    if not uri.startswith(_SCHEMES):
        raise ValueError(
            f"tracking URI {uri!r} is not an MLflow store; use e.g. "
            "sqlite:///mlruns/mlflow.db (the default) or http://host:5000"
        )
    return uri


def store_dir(tracking_uri: str) -> Path:
    """The local folder of a store: the sqlite file's folder, else ``mlruns/`` (remote stores).

    The one place a sqlite URI is parsed; artifacts, the retrain lock and train's scratch
    folders all live here.
    """
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).parent
    return Path("mlruns")


def artifact_root_for(tracking_uri: str) -> str:
    """Artifacts live next to the sqlite file: ``<dir of db>/artifacts``."""
    return (store_dir(tracking_uri) / "artifacts").resolve().as_uri()


def _ensure_store(tracking_uri: str) -> None:
    if tracking_uri.startswith("sqlite:///"):
        store_dir(tracking_uri).mkdir(parents=True, exist_ok=True)
    check_store(tracking_uri)


@functools.lru_cache(maxsize=32)
def check_store(tracking_uri: str) -> str:
    """Fail fast, in one line, on a store MLflow would fail on slowly or with a long traceback.

    An sqlite file that is not an SQLite database (MLflow: a 100-line sqlalchemy
    traceback) and an http(s) server whose port does not answer within
    :data:`CONNECT_TIMEOUT` seconds (MLflow: minutes of retries) raise here.
    A store that passes is remembered for the process.

    Raises
    ------
    TrackingStoreError
    """
    if tracking_uri.startswith("sqlite:///"):
        path = Path(tracking_uri.removeprefix("sqlite:///"))
        if path.is_file() and path.stat().st_size > 0:
            with path.open("rb") as fh:
                head = fh.read(len(_SQLITE_MAGIC))
            if head != _SQLITE_MAGIC:
                raise TrackingStoreError(
                    f"tracking store {tracking_uri}: {path} is not an SQLite database (corrupt, or another "
                    "file); point --tracking-uri at a valid MLflow store, or move the file away to start a new one"
                )
    elif tracking_uri.startswith(("http://", "https://")):
        url = urllib.parse.urlsplit(tracking_uri)
        port = url.port or (443 if url.scheme == "https" else 80)
        try:
            socket.create_connection((url.hostname, port), timeout=CONNECT_TIMEOUT).close()
        except OSError as exc:
            raise TrackingStoreError(
                f"tracking server {tracking_uri} is not reachable ({exc.strerror or exc}); start it "
                "(mlflow server ...), fix --tracking-uri, or use a local store such as "
                "sqlite:///mlruns/mlflow.db"
            ) from None
    return tracking_uri


def _flat(prefix: str, values: Mapping[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            out.update(_flat(f"{name}.", value))
        else:
            out[name] = value
    return out


@dataclass
class RunLogger:
    """Thin handle on one active MLflow run (params, metrics, artifacts)."""

    run_id: str
    experiment_id: str
    tracking_uri: str

    def log_params(self, params: Mapping[str, Any]) -> None:
        import mlflow

        flat = {k: str(v)[:6000] for k, v in _flat("", params).items()}
        mlflow.log_params(flat)

    def log_metrics(self, metrics: Mapping[str, float], step: int | None = None) -> None:
        import mlflow

        clean = {
            k.replace("%", "pct").replace("(", "_").replace(")", "_"): float(v)
            for k, v in _flat("", metrics).items()
            if v is not None and np.isfinite(float(v))
        }
        mlflow.log_metrics(clean, step=step)

    def set_tags(self, tags: Mapping[str, Any]) -> None:
        import mlflow

        mlflow.set_tags({k: str(v) for k, v in tags.items()})

    def log_fingerprints(self, frames: Mapping[str, pd.DataFrame]) -> dict[str, str]:
        """Log ``data.<name>.sha`` params and row counts; return the hashes."""
        hashes = {name: fingerprint(df) for name, df in frames.items()}
        self.log_params({f"data.{name}.sha": h for name, h in hashes.items()})
        self.log_params({f"data.{name}.rows": len(df) for name, df in frames.items()})
        return hashes

    def log_artifact(self, path: str | Path, artifact_path: str | None = None) -> None:
        import mlflow

        mlflow.log_artifact(str(path), artifact_path=artifact_path)

    def log_table(self, df: pd.DataFrame, name: str, artifact_path: str | None = None) -> None:
        """Log a DataFrame as ``name`` (``.csv`` or ``.parquet`` by suffix)."""
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / name
            if name.endswith(".parquet"):
                df.to_parquet(path, index=False)
            else:
                df.to_csv(path, index=False)
            self.log_artifact(path, artifact_path)

    def log_dict(self, data: Mapping[str, Any], name: str) -> None:
        import mlflow

        mlflow.log_text(json.dumps(data, indent=2, default=str), name)

    def log_model(
        self, model: Any, name: str, flavor: str = "sklearn", registered_name: str | None = None, **options: Any
    ) -> str | None:
        """Log (and optionally register) a model; returns the registered version.

        ``options`` go to the flavor's ``log_model`` (e.g. ``serialization_format="cloudpickle"``
        for estimators holding custom classes, which MLflow's default skops format rejects).
        """
        import mlflow

        logger = {"sklearn": mlflow.sklearn, "lightgbm": mlflow.lightgbm, "pyfunc": mlflow.pyfunc}[flavor]
        if flavor == "pyfunc":
            info = logger.log_model(name=name, python_model=model, registered_model_name=registered_name, **options)
        else:
            info = logger.log_model(model, name=name, registered_model_name=registered_name, **options)
        return getattr(info, "registered_model_version", None)


@contextmanager
def start_run(
    run_name: str,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    nested: bool = False,
    tags: Mapping[str, Any] | None = None,
) -> Iterator[RunLogger]:
    """Open an MLflow run (nested under the active one when ``nested``).

    Parameters
    ----------
    run_name : str
        Name shown in the MLflow UI, e.g. ``"demo"`` or ``"backtest"``.
    tracking_uri : str, optional
        Tracking store; default from :func:`resolve_tracking_uri`.
    experiment : str, default "stockwise"
        Experiment name; created with artifacts next to the sqlite store.
    nested : bool, default False
        Open as a child of the currently active run.
    tags : mapping, optional
        Extra tags for the run.

    Yields
    ------
    RunLogger
        Handle used to log params, metrics and artifacts.

    Examples
    --------
    >>> with start_run("demo", tracking_uri="sqlite:///tmp/x/mlflow.db") as run:  # doctest: +SKIP
    ...     run.log_metrics({"fill_rate": 0.97})
    """
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    if not nested:
        _ensure_store(uri)
        mlflow.set_tracking_uri(uri)
        mlflow.set_registry_uri(uri)
        exp = mlflow.get_experiment_by_name(experiment)
        if exp is None:
            mlflow.create_experiment(experiment, artifact_location=artifact_root_for(uri))
        mlflow.set_experiment(experiment)
    with mlflow.start_run(run_name=run_name, nested=nested, tags=dict(tags or {})) as run:
        yield RunLogger(run.info.run_id, run.info.experiment_id, uri)


# --- model registry: aliases, versions and their tags (used by retrain) -------------------------


def _client(tracking_uri: str | None):
    from mlflow import MlflowClient

    uri = resolve_tracking_uri(tracking_uri)
    _ensure_store(uri)
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def get_alias_version(name: str, alias: str = CHAMPION_ALIAS, tracking_uri: str | None = None) -> str | None:
    """Version of registered model ``name`` that ``alias`` points to; None if unset or no model."""
    from mlflow.exceptions import MlflowException

    try:
        return str(_client(tracking_uri).get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def set_alias(name: str, alias: str, version: str, tracking_uri: str | None = None) -> None:
    """Point ``alias`` of model ``name`` at ``version`` (idempotent; moves it if set elsewhere)."""
    _client(tracking_uri).set_registered_model_alias(name, alias, str(version))


def set_version_tags(name: str, version: str, tags: Mapping[str, Any], tracking_uri: str | None = None) -> None:
    """Set tags on one model version (e.g. ``stockwise.status``)."""
    client = _client(tracking_uri)
    for key, value in tags.items():
        client.set_model_version_tag(name, str(version), key, str(value))


def get_version_tags(name: str, version: str, tracking_uri: str | None = None) -> dict[str, str]:
    """Tags of one model version."""
    return dict(_client(tracking_uri).get_model_version(name, str(version)).tags)


def list_versions(name: str, tracking_uri: str | None = None) -> list[dict[str, Any]]:
    """All versions of model ``name``: version, run_id, tags, aliases (empty when no model)."""
    from mlflow.exceptions import MlflowException

    try:
        versions = _client(tracking_uri).search_model_versions(f"name = '{name}'")
    except MlflowException:
        return []
    return [
        {
            "version": str(v.version),
            "run_id": v.run_id,
            "tags": dict(v.tags),
            "aliases": list(getattr(v, "aliases", []) or []),
        }
        for v in versions
    ]


def register_version(
    name: str, run_id: str, artifact_path: str, tracking_uri: str | None = None, tags: Mapping[str, Any] | None = None
) -> str:
    """Register what run ``run_id`` logged as ``artifact_path`` as a new version of ``name``; return it.

    A model logged with ``log_model(name=artifact_path)`` (MLflow 3 logged model) is
    registered from its ``models:/`` URI so it loads back; anything else from
    ``runs:/<run_id>/<artifact_path>``.
    """
    from mlflow.exceptions import MlflowException

    client = _client(tracking_uri)
    try:
        client.get_registered_model(name)
    except MlflowException:
        client.create_registered_model(name)
    source, model_id = f"runs:/{run_id}/{artifact_path}", None
    logged = client.search_logged_models(
        [client.get_run(run_id).info.experiment_id],
        filter_string=f"source_run_id = '{run_id}' AND name = '{artifact_path}'",
        max_results=1,
    )
    if logged:
        source, model_id = logged[0].model_uri, logged[0].model_id
    version = client.create_model_version(
        name, source, run_id=run_id, model_id=model_id, tags={k: str(v) for k, v in (tags or {}).items()}
    )
    return str(version.version)


def load_model_version(name: str, version: str, tracking_uri: str | None = None, flavor: str = "sklearn") -> Any:
    """Load version ``version`` (a number, or ``@alias``) of registered model ``name`` in its native flavor."""
    import mlflow

    uri = resolve_tracking_uri(tracking_uri)
    check_store(uri)
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    loader = {"sklearn": mlflow.sklearn, "lightgbm": mlflow.lightgbm, "pyfunc": mlflow.pyfunc}[flavor]
    ref = f"models:/{name}@{version[1:]}" if str(version).startswith("@") else f"models:/{name}/{version}"
    return loader.load_model(ref)


def end_stale_runs(
    run_name: str | None,
    tracking_uri: str | None = None,
    experiment: str = EXPERIMENT,
    started_after: int | None = None,
) -> list[str]:
    """Mark runs still RUNNING as KILLED; return their ids.

    Parameters
    ----------
    run_name : str or None
        Only runs of this name; None = any name (e.g. a killed ``train`` and its nested runs).
    started_after : int, optional
        Only runs started at or after this time (ms since the epoch).

    Only safe when no such run can be alive, e.g. under the retrain lock: a
    process killed with ``kill -9`` never closes its run.
    """
    client = _client(tracking_uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    terms = ["attributes.status = 'RUNNING'"]
    if run_name is not None:
        terms.append(f"attributes.run_name = '{run_name}'")
    if started_after is not None:
        terms.append(f"attributes.start_time >= {int(started_after)}")
    stale = client.search_runs([exp.experiment_id], filter_string=" AND ".join(terms))
    for run in stale:
        client.set_terminated(run.info.run_id, status="KILLED")
    return [run.info.run_id for run in stale]
