"""Per-series steps on blocks of series: a process pool locally, Fugue on Dask or Spark when configured.

A block is a hash bucket of ``unique_id`` (CRC-32, stable across processes and
machines, unlike Python's salted ``hash``); ``ceil(n_series / block_size)``
buckets. One block function runs on one block's demand rows and item-master rows
and returns any picklable object; :func:`map_blocks` returns those objects in
block order, so the result does not depend on which worker ran which block.

Engines
-------
``local``
    A process pool of ``workers`` processes (all cores by default) over the
    blocks; each process holds one block at a time, so memory grows with the
    block size, not the panel. One block runs in this process.
``dask``
    The same :func:`run_block` through :func:`fugue.transform` on a Dask cluster
    (``scheduler`` address, or a LocalCluster for the run when None), partitioned
    by block. Each block comes back as one row of pickled bytes, so the output
    schema is the same for every step and every Fugue engine.
``spark``
    The same :func:`fugue.transform` call with a SparkSession as the Fugue engine
    (``scheduler`` is the Spark master URL, ``local[<workers>]`` when None); Fugue
    runs the block function as a grouped pandas UDF (``applyInPandas``).

Block functions must not write MLflow or files: the driver (:mod:`pipelines.flows.plan`)
does all tracking and I/O. statsforecast inside a block should run with
``n_jobs=1``; the engine supplies the parallelism.
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import pickle
import shutil
import sys
import time
import zlib
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np
import pandas as pd

__all__ = [
    "BlockEngine",
    "block_ids",
    "map_blocks",
    "engine_session",
    "dask_client",
    "spark_session",
    "run_block",
    "n_blocks",
    "block_rng",
]

_SCHEMA = "block:long,payload:binary,n_series:long,wall_s:double,cpu_s:double"
_LOG = logging.getLogger(__name__)
_ROW = "__stockwise_row"


@dataclass(frozen=True)
class BlockEngine:
    """Where blocks run: ``kind`` local, dask or spark; see the module docstring."""

    kind: str = "local"
    block_size: int = 2000
    workers: int | None = None
    scheduler: str | None = None

    @property
    def n_workers(self) -> int:
        return self.workers or os.cpu_count() or 1


def n_blocks(n_series: int, block_size: int) -> int:
    """Number of hash buckets for ``n_series`` series of at most ~``block_size`` each."""
    return max(1, math.ceil(n_series / block_size))


def block_ids(unique_id: pd.Series | np.ndarray, blocks: int) -> np.ndarray:
    """Block number of each ``unique_id`` (CRC-32 of the id modulo ``blocks``)."""
    ids = pd.Series(unique_id).astype(str)
    codes, uniques = pd.factorize(ids)
    bucket = np.array([zlib.crc32(u.encode()) % blocks for u in uniques], dtype=np.int64)
    return bucket[codes]


def block_rng(seed: int, block: int) -> np.random.Generator:
    """Random stream of one block: independent of the engine and the worker that runs it."""
    return np.random.default_rng([seed, block])


def run_block(df: pd.DataFrame, items: pd.DataFrame, fn: Callable, kwargs: dict) -> pd.DataFrame:
    """Run ``fn(demand, items, block, **kwargs)`` on one block; one row: block, pickled result, timings.

    This is the function every engine runs (the process pool calls it directly,
    Fugue calls it once per ``block`` partition).
    """
    block = int(df["block"].iloc[0])
    demand = df.drop(columns="block").reset_index(drop=True)
    part = items[items["unique_id"].isin(demand["unique_id"].unique())].reset_index(drop=True)
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn(demand, part, block, **kwargs)
    return pd.DataFrame(
        {
            "block": [block],
            "payload": [pickle.dumps(out, protocol=5)],
            "n_series": [len(part)],
            "wall_s": [time.perf_counter() - wall],
            "cpu_s": [time.process_time() - cpu],
        }
    )


def _groups(demand: pd.DataFrame, blocks: int) -> Iterator[pd.DataFrame]:
    """Each non-empty block's rows (original order, with a ``block`` column), built one at a time, so
    the driver holds the panel once and not a second whole copy split into blocks."""
    bucket = block_ids(demand["unique_id"], blocks)
    order = np.argsort(bucket, kind="stable")
    cuts = np.searchsorted(bucket[order], np.arange(blocks + 1))
    for b in range(blocks):
        if cuts[b + 1] > cuts[b]:
            yield demand.iloc[order[cuts[b] : cuts[b + 1]]].assign(block=b)


def map_blocks(fn: Callable, demand: pd.DataFrame, items: pd.DataFrame, engine: BlockEngine, **kwargs) -> list:
    """``fn`` on every block of series; its results in block order (empty blocks skipped).

    Parameters
    ----------
    fn : callable
        Module-level ``fn(demand, items, block, **kwargs)`` (picklable by reference).
    demand, items : pandas.DataFrame
        Long demand and item master; both keyed by ``unique_id``.
    engine : BlockEngine
    **kwargs
        Passed to every call (broadcast; keep them small).
    """
    blocks = n_blocks(demand["unique_id"].nunique(), engine.block_size)
    if engine.kind in _FUGUE_ENGINES:
        with _engine_object(engine) as engine_obj:
            # the row's place in the panel: a shuffle may reorder rows, each block gets them back in order
            framed = demand.assign(block=block_ids(demand["unique_id"], blocks), **{_ROW: np.arange(len(demand))})
            rows = _on_fugue(framed, items, fn, kwargs, engine_obj)
    elif blocks == 1 or engine.n_workers == 1:
        rows = [run_block(g, items, fn, kwargs) for g in _groups(demand, blocks)]
    else:
        rows = _on_pool(_groups(demand, blocks), items, fn, kwargs, min(engine.n_workers, blocks))
    table = pd.concat(rows, ignore_index=True).sort_values("block")
    for r in table.itertuples():
        _LOG.debug(
            "%s block %d: %d series, %.2f s wall, %.2f s cpu in the worker",
            getattr(fn, "__name__", fn),
            r.block,
            r.n_series,
            r.wall_s,
            r.cpu_s,
        )
    return [pickle.loads(p) for p in table["payload"]]


def _on_pool(groups: Iterator[pd.DataFrame], items: pd.DataFrame, fn, kwargs, workers: int) -> list[pd.DataFrame]:
    """The blocks on a pool of ``workers`` processes, at most ``workers + 1`` submitted at a time: a
    submitted block's rows stay pickled in the driver until a worker takes it, so submitting them all
    at once would hold a second copy of the panel."""
    done: list[pd.DataFrame] = []
    with ProcessPoolExecutor(max_workers=workers) as pool:
        running: set = set()
        for g in groups:
            if len(running) > workers:
                finished, running = wait(running, return_when=FIRST_COMPLETED)
                done.extend(f.result() for f in finished)
            mine = items[items["unique_id"].isin(g["unique_id"].unique())]
            running.add(pool.submit(run_block, g, mine, fn, kwargs))
        done.extend(f.result() for f in running)
    return done


def _on_fugue(framed: pd.DataFrame, items: pd.DataFrame, fn, kwargs, engine_obj) -> list[pd.DataFrame]:
    """The blocks through :func:`fugue.transform` on ``engine_obj`` (a Dask client or a SparkSession)."""
    import fugue.api as fa

    out = fa.transform(
        framed,
        _fugue_block,
        schema=_SCHEMA,
        partition={"by": "block"},
        params={"context": {"items": items, "fn": fn, "kwargs": kwargs}},
        engine=engine_obj,
        as_local=True,
    )
    return [fa.as_pandas(out)]


def _fugue_block(df: pd.DataFrame, context) -> pd.DataFrame:
    # Fugue reads every DataFrame-annotated parameter as an input frame: the item master
    # and the block function travel unannotated, as one broadcast parameter
    return run_block(df.sort_values(_ROW).drop(columns=_ROW), **context)


_SESSION: dict = {}


@contextlib.contextmanager
def engine_session(engine: BlockEngine) -> Iterator[None]:
    """Keep one Fugue engine (a Dask client and its LocalCluster, a SparkSession) for every
    :func:`map_blocks` call inside."""
    if engine.kind not in _FUGUE_ENGINES or "engine" in _SESSION:
        yield
        return
    with _FUGUE_ENGINES[engine.kind](engine) as engine_obj:
        _SESSION["engine"] = engine_obj
        try:
            yield
        finally:
            _SESSION.pop("engine", None)


@contextlib.contextmanager
def _engine_object(engine: BlockEngine) -> Iterator:
    """The session's engine object, or one that lives for the call."""
    if "engine" in _SESSION:
        yield _SESSION["engine"]
        return
    with _FUGUE_ENGINES[engine.kind](engine) as engine_obj:
        yield engine_obj


@contextlib.contextmanager
def dask_client(engine: BlockEngine) -> Iterator:
    """A Dask client on ``engine.scheduler``, or on a LocalCluster that lives for the call.

    Raises
    ------
    RuntimeError
        Dask is not installed: install the ``stockwise[dask]`` extra.
    """
    try:
        from distributed import Client, LocalCluster
    except ImportError as exc:
        raise RuntimeError("engine 'dask' needs Dask: pip install 'stockwise[dask]'") from exc
    # the partition-by-block shuffle logs a warning per run at WARNING level; it is routine
    logging.getLogger("distributed.shuffle").setLevel(logging.ERROR)
    if engine.scheduler is not None:
        with Client(engine.scheduler) as client:
            yield client
        return
    with (
        LocalCluster(
            n_workers=engine.n_workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


@contextlib.contextmanager
def spark_session(engine: BlockEngine, conf: dict[str, str] | None = None) -> Iterator:
    """A SparkSession on ``engine.scheduler`` (a Spark master URL), ``local[<workers>]`` when None.

    An active session (a notebook's, a test's) is used as it is and left running; a
    session started here is stopped at the end. ``conf`` adds Spark settings to a new
    session (e.g. ``{"spark.driver.memory": "2g"}``; settings of the running JVM, such
    as memory, only apply when this call starts it).

    Raises
    ------
    RuntimeError
        PySpark is not installed (install the ``stockwise[spark]`` extra), or no Java
        runtime is found (Spark 4 needs Java 17 or later).
    """
    try:
        import fugue_spark  # noqa: F401  (Fugue's Spark engine; imports pyspark too)
        from pyspark.sql import SparkSession
    except ImportError as exc:
        raise RuntimeError("engine 'spark' needs PySpark: pip install 'stockwise[spark]'") from exc
    active = SparkSession.getActiveSession()
    if active is not None:
        yield active
        return
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise RuntimeError("engine 'spark' needs a Java runtime (17 or later): put java on PATH or set JAVA_HOME")
    master = engine.scheduler or f"local[{engine.n_workers}]"
    builder = SparkSession.builder.master(master).appName("stockwise")
    settings = {
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        # the demand frame goes to Spark through Arrow, not row by row in Python
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        # blocks are small in bytes and large in CPU: AQE would merge several into one task, run one after
        # the other on one core; without it each block hashes to one of spark.sql.shuffle.partitions tasks
        "spark.sql.adaptive.coalescePartitions.enabled": "false",
        # timestamps cross the JVM as instants: one zone both ways, whatever the machine's
        "spark.sql.session.timeZone": "UTC",
    }
    for key, value in (settings | (conf or {})).items():
        builder = builder.config(key, value)
    # pyspark starts its Python workers with PYSPARK_PYTHON (default `python3` on PATH); on a local
    # master they must run this interpreter and its packages. Read once, when the context starts.
    python = {"PYSPARK_PYTHON": sys.executable} if master.startswith("local") else {}
    with _environ(python):
        session = builder.getOrCreate()
    try:
        yield session
    finally:
        session.stop()


@contextlib.contextmanager
def _environ(values: dict[str, str]) -> Iterator[None]:
    """Environment variables set inside the `with`, those not already set; removed after."""
    added = {k: v for k, v in values.items() if k not in os.environ}
    os.environ.update(added)
    try:
        yield
    finally:
        for key in added:
            os.environ.pop(key, None)


_FUGUE_ENGINES: dict[str, Callable] = {"dask": dask_client, "spark": spark_session}
