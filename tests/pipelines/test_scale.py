"""Per-series steps on blocks of series: local process pool vs Dask and Spark through Fugue."""

from __future__ import annotations

import os
import pickle
import shutil
import sys
import zlib
from concurrent.futures.process import BrokenProcessPool

import numpy as np
import pandas as pd
import pytest

from benchmarks.scale import generate_panel
from pipelines.data.config import ConfigError, load_config
from pipelines.data.io import write_table_atomic
from pipelines.flows.blocks import BlockEngine, block_ids, dask_client, map_blocks, n_blocks, spark_session
from pipelines.flows.plan import run_plan

try:
    import distributed  # noqa: F401

    HAVE_DASK = True
except ImportError:  # pragma: no cover - the extra is installed in CI (pip install -e '.[test,dask]')
    HAVE_DASK = False

needs_dask = pytest.mark.skipif(not HAVE_DASK, reason="Dask not installed: pip install -e '.[dask]'")

try:
    import pyspark  # noqa: F401

    NO_SPARK = None if os.environ.get("JAVA_HOME") or shutil.which("java") else "no Java runtime (Spark needs Java 17+)"
except ImportError:  # pragma: no cover - the extra is installed in CI (pip install -e '.[test]' pulls it)
    NO_SPARK = "PySpark not installed: pip install -e '.[spark]'"

needs_spark = pytest.mark.skipif(NO_SPARK is not None, reason=NO_SPARK or "")


@pytest.fixture(scope="session")
def dask_scheduler():
    """Address of a session-wide LocalCluster: 2 worker processes, 1 thread each."""
    from distributed import LocalCluster

    with LocalCluster(n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None) as cluster:
        yield cluster.scheduler_address


@pytest.fixture(scope="session")
def spark_master():
    """Master URL of a session-wide local SparkSession: 2 cores, 512 MB, no UI. While it runs it is the
    active session, which ``engine: spark`` uses as it is (and leaves running)."""
    conf = {"spark.driver.memory": "512m", "spark.sql.shuffle.partitions": "8"}
    with spark_session(BlockEngine(kind="spark", scheduler="local[2]"), conf=conf) as session:
        yield session.sparkContext.master


@pytest.fixture(scope="module")
def panel(tmp_path_factory):
    folder = tmp_path_factory.mktemp("panel")
    demand, items = generate_panel(60, seed=1)
    write_table_atomic(demand, folder / "demand.csv")
    write_table_atomic(items, folder / "items.csv")
    return folder, demand, items


def _block_summary(demand, items, block, scale):
    return pd.DataFrame(
        {
            "block": block,
            "unique_id": sorted(demand["unique_id"].unique()),
            "total": demand.groupby("unique_id")["y"].sum().sort_index().to_numpy() * scale,
            "n_items": len(items),
        }
    )


def test_blocks_are_stable_hash_buckets_of_the_id():
    ids = pd.Series(["A@S1", "B@S1", "A@S1", "C@S2"])
    got = block_ids(ids, 3)
    assert got.tolist() == [zlib.crc32(u.encode()) % 3 for u in ids]
    assert got[0] == got[2]
    assert n_blocks(4001, 2000) == 3 and n_blocks(0, 2000) == 1


def test_every_series_is_in_exactly_one_block_with_its_item_rows(panel):
    _, demand, items = panel
    parts = map_blocks(_block_summary, demand, items, BlockEngine(block_size=15, workers=2), scale=2.0)
    out = pd.concat(parts, ignore_index=True)
    assert len(parts) == n_blocks(60, 15)
    assert sorted(out["unique_id"]) == sorted(items["unique_id"])
    # each block saw the item-master rows of its own series only
    assert (out.groupby("block")["n_items"].first() == out.groupby("block").size()).all()
    expected = demand.groupby("unique_id")["y"].sum() * 2.0
    np.testing.assert_allclose(out.set_index("unique_id")["total"].sort_index(), expected.sort_index())


def test_pool_and_in_process_runs_agree(panel):
    _, demand, items = panel
    pooled = map_blocks(_block_summary, demand, items, BlockEngine(block_size=15, workers=2), scale=1.0)
    serial = map_blocks(_block_summary, demand, items, BlockEngine(block_size=15, workers=1), scale=1.0)
    pd.testing.assert_frame_equal(pd.concat(pooled, ignore_index=True), pd.concat(serial, ignore_index=True))


def _rows(demand, items, block):
    return block, demand


def test_pool_takes_many_blocks_a_few_at_a_time_in_block_order(panel):
    """12 blocks on 2 workers (at most 3 submitted at once): every block once, in block order, each
    with the rows the whole panel's group-by gives it."""
    _, demand, items = panel
    parts = map_blocks(_rows, demand, items, BlockEngine(block_size=5, workers=2))
    framed = demand.assign(block=block_ids(demand["unique_id"], 12))
    expected = [(b, g.drop(columns="block").reset_index(drop=True)) for b, g in framed.groupby("block")]
    assert [b for b, _ in parts] == [b for b, _ in expected] == list(range(12))
    for (_, got), (_, want) in zip(parts, expected):
        pd.testing.assert_frame_equal(got, want)


#: the two Fugue engines and the session-scoped fixture that starts each (a LocalCluster, a local SparkSession)
FUGUE_ENGINES = [
    pytest.param("dask", "dask_scheduler", marks=needs_dask, id="dask"),
    pytest.param("spark", "spark_master", marks=needs_spark, id="spark"),
]


@pytest.mark.parametrize(("kind", "fixture"), FUGUE_ENGINES)
def test_fugue_blocks_agree_with_local(panel, request, kind, fixture):
    """The same block function on Dask or Spark: every block once, the local pool's result."""
    _, demand, items = panel
    scheduler = request.getfixturevalue(fixture)
    local = map_blocks(_block_summary, demand, items, BlockEngine(block_size=15, workers=2), scale=1.0)
    other = map_blocks(
        _block_summary, demand, items, BlockEngine(kind=kind, block_size=15, scheduler=scheduler), scale=1.0
    )
    assert len(other) == n_blocks(60, 15)
    pd.testing.assert_frame_equal(pd.concat(local, ignore_index=True), pd.concat(other, ignore_index=True))


@needs_spark
def test_spark_blocks_get_their_rows_in_the_panels_order(panel, spark_master):
    """Every block's demand rows through Spark's shuffle and Arrow: the same rows, dtypes (timestamps)
    and order as the local pool gives it, on an unsorted panel."""
    _, demand, items = panel
    shuffled = demand.sample(frac=1.0, random_state=5).reset_index(drop=True)
    local = map_blocks(_rows, shuffled, items, BlockEngine(block_size=5, workers=2))
    spark = map_blocks(_rows, shuffled, items, BlockEngine(kind="spark", block_size=5, scheduler=spark_master))
    assert [b for b, _ in spark] == [b for b, _ in local] == list(range(12))
    for (_, got), (_, want) in zip(spark, local):
        pd.testing.assert_frame_equal(got, want)


def test_a_fugue_block_gets_its_rows_back_in_the_panels_order(panel):
    """A shuffle may hand a block its rows in any order; the block function sees the panel's order."""
    from pipelines.flows.blocks import _ROW, _fugue_block

    _, demand, items = panel
    framed = demand.assign(block=0, **{_ROW: np.arange(len(demand))})
    out = _fugue_block(framed.sample(frac=1.0, random_state=3), {"items": items, "fn": _rows, "kwargs": {}})
    block, got = pickle.loads(out["payload"].iloc[0])
    assert block == 0
    pd.testing.assert_frame_equal(got, demand.reset_index(drop=True))


def test_spark_engine_without_pyspark_says_which_extra_to_install(panel, monkeypatch):
    _, demand, items = panel
    for module in ("pyspark", "pyspark.sql", "fugue_spark"):
        monkeypatch.setitem(sys.modules, module, None)
    with pytest.raises(RuntimeError, match=r"pip install 'stockwise\[spark\]'"):
        map_blocks(_block_summary, demand, items, BlockEngine(kind="spark", block_size=15), scale=1.0)


@pytest.mark.skipif(NO_SPARK is not None and "PySpark" in NO_SPARK, reason=NO_SPARK or "")
def test_spark_engine_without_java_says_so(monkeypatch):
    from pyspark.sql import SparkSession

    monkeypatch.setattr(SparkSession, "getActiveSession", classmethod(lambda cls: None))
    monkeypatch.delenv("JAVA_HOME", raising=False)
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(RuntimeError, match="Java runtime"):
        with spark_session(BlockEngine(kind="spark")):
            pass


def _die_once(demand, items, block, marker):
    """Kill the worker process the first time block 1 runs (the marker file remembers)."""
    if block == 1 and not os.path.exists(marker):
        open(marker, "w").close()
        os._exit(1)
    return _block_summary(demand, items, block, 1.0)


def test_a_killed_pool_worker_fails_the_run_cleanly(panel, tmp_path):
    _, demand, items = panel
    with pytest.raises(BrokenProcessPool):
        map_blocks(_die_once, demand, items, BlockEngine(block_size=15, workers=2), marker=str(tmp_path / "m"))


@needs_dask
def test_a_killed_dask_worker_still_gives_every_block(panel, dask_scheduler, tmp_path):
    _, demand, items = panel
    parts = map_blocks(
        _die_once,
        demand,
        items,
        BlockEngine(kind="dask", block_size=15, scheduler=dask_scheduler),
        marker=str(tmp_path / "m"),
    )
    assert (tmp_path / "m").exists()  # the worker did die once
    assert sorted(pd.concat(parts)["unique_id"]) == sorted(items["unique_id"])


@needs_spark
def test_a_killed_spark_python_worker_fails_the_call_cleanly(panel, spark_master, tmp_path):
    """A local master does not retry a failed task: the Python worker running block 1 dies, the call
    raises (nothing partial comes back), and the session runs the next call."""
    from py4j.protocol import Py4JJavaError

    _, demand, items = panel
    engine = BlockEngine(kind="spark", block_size=15, scheduler=spark_master)
    with pytest.raises(Py4JJavaError, match="Python worker exited unexpectedly"):
        map_blocks(_die_once, demand, items, engine, marker=str(tmp_path / "m"))
    assert (tmp_path / "m").exists()
    parts = map_blocks(_die_once, demand, items, engine, marker=str(tmp_path / "m"))
    assert sorted(pd.concat(parts)["unique_id"]) == sorted(items["unique_id"])


def test_dask_engine_without_dask_says_which_extra_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "distributed", None)
    with pytest.raises(RuntimeError, match=r"stockwise\[dask\]"):
        with dask_client(BlockEngine(kind="dask")):
            pass


def test_unknown_engine_is_a_config_error():
    with pytest.raises(ConfigError, match="engine"):
        load_config(None, engine="ray")


def _recommend(folder, tmp_path, name, uri, **engine):
    cfg = load_config(
        None,
        data=folder,
        out=tmp_path / name,
        freq="W-MON",
        block_size=25,
        tracking_uri=uri,
        forecast={"models": ("SeasonalNaive", "CrostonSBA")},
        **engine,
    )
    return pd.read_parquet(run_plan(cfg).run_dir / "recommendations.parquet").drop(columns="run_id")


@pytest.fixture(scope="module")
def local_recommendations(panel, tmp_path_factory, new_store):
    """``recommend`` on the 60-series panel in 3 blocks on a local pool of 2: what every engine must give."""
    folder, _, items = panel
    tmp = tmp_path_factory.mktemp("local")
    local = _recommend(folder, tmp, "local", new_store(tmp / "mlflow.db"), engine="local", workers=2)
    assert sorted(local["unique_id"]) == sorted(items["unique_id"])
    return local


def _assert_same_recommendations(local: pd.DataFrame, other: pd.DataFrame) -> None:
    """Equal, float columns to a float32 tolerance."""
    floats = local.select_dtypes("float").columns
    pd.testing.assert_frame_equal(local.drop(columns=floats), other.drop(columns=floats))
    np.testing.assert_allclose(
        local[floats].to_numpy(float), other[floats].to_numpy(float), rtol=1e-5, atol=1e-6, equal_nan=True
    )


@pytest.mark.slow
@needs_dask
def test_recommend_on_dask_equals_recommend_on_local(
    panel, local_recommendations, dask_scheduler, tmp_path, tracking_uri
):
    folder, _, _ = panel
    dask = _recommend(folder, tmp_path, "dask", tracking_uri, engine="dask", scheduler=dask_scheduler)
    _assert_same_recommendations(local_recommendations, dask)


@pytest.mark.slow
@needs_spark
def test_recommend_on_spark_equals_recommend_on_local(
    panel, local_recommendations, spark_master, tmp_path, tracking_uri
):
    folder, _, _ = panel
    spark = _recommend(folder, tmp_path, "spark", tracking_uri, engine="spark", scheduler=spark_master)
    _assert_same_recommendations(local_recommendations, spark)


def test_report_forecast_on_blocks_equals_the_whole_panel(panel, monkeypatch):
    """The planner report's forecast (chosen model per series) runs per block, same table."""
    from pipelines.flows import plan_blocks
    from pipelines.flows.plan_steps import chosen_forecast, future_step

    _, demand, items = panel
    cfg = load_config(
        None,
        freq="W-MON",
        block_size=15,
        workers=1,  # blocks one after the other in this process, so the spy below sees them
        forecast={"models": ("AutoETS", "CrostonSBA", "SeasonalNaive")},
    )
    bt = plan_blocks.blocked_backtest(demand, items, cfg, "W-MON")
    assert bt.choice["model"].nunique() > 1  # blocks must pick among several models
    whole = future_step(demand, bt, cfg, "W-MON")
    seen = []

    def spy(block_demand, choice, *args, **kwargs):
        seen.append(set(choice["unique_id"]))
        return chosen_forecast(block_demand, choice, *args, **kwargs)

    monkeypatch.setattr(plan_blocks, "chosen_forecast", spy)
    blocked = plan_blocks.blocked_future(demand, items, bt, cfg, "W-MON")
    assert len(seen) == n_blocks(demand["unique_id"].nunique(), cfg.block_size) == 4
    assert sorted(set().union(*seen)) == sorted(bt.choice["unique_id"]) and sum(map(len, seen)) == len(bt.choice)
    pd.testing.assert_frame_equal(blocked, whole)


def test_selector_refit_every_reaches_every_block(panel, monkeypatch):
    """``selector_refit_every`` and ``error_model.shrinkage`` of the run config are the policy step's
    SelectorConfig in every block."""
    from pipelines.flows import plan_blocks

    _, demand, items = panel
    cfg = load_config(
        None, freq="W-MON", block_size=15, workers=1, selector_refit_every=4, error_model={"shrinkage": 2.0}
    )
    seen = []
    monkeypatch.setattr(
        plan_blocks,
        "select_step",
        lambda block_demand, *args, **kwargs: (
            seen.append((kwargs["refit_every"], kwargs["shrinkage"]))
            or pd.DataFrame({"unique_id": sorted(block_demand["unique_id"].unique())})
        ),
    )
    out = plan_blocks.blocked_select(demand, items, "W-MON", None, cfg)
    assert seen == [(4, 2.0)] * 4 and sorted(out["unique_id"]) == sorted(items["unique_id"])
    with pytest.raises(ConfigError, match="selector_refit_every"):
        load_config(None, selector_refit_every=0)


def _phased_inputs(panel):
    """Recommendation rows with a mix of forecasters and policies, and the backtest's features."""
    from pipelines.flows import plan_blocks

    _, demand, items = panel
    cfg = load_config(None, freq="W-MON", block_size=15, workers=1, forecast={"models": ("CrostonSBA", "Naive")})
    bt = plan_blocks.blocked_backtest(demand, items, cfg, "W-MON")
    rng = np.random.default_rng(3)
    rec = items[["unique_id", "lead_time", "review_period"]].sample(frac=1.0, random_state=2).reset_index(drop=True)
    n = len(rec)
    rec["policy"] = rng.choice(["R_S", "s_Q", "base_stock"], n)
    rec["forecaster"] = rng.choice(["AutoETS", "CrostonSBA", "MSTL", "none"], n)
    rec["reorder_point"] = rng.integers(0, 40, n).astype(float)
    rec["order_up_to"] = rec["reorder_point"] + rng.integers(1, 20, n)
    return demand, rec, bt.features


@pytest.mark.parametrize("workers", [1, 2])
def test_time_phasing_on_blocks_equals_the_whole_panel(panel, workers):
    """plan.parquet from blocks of series (in this process and in a pool) is the serial table, row for row."""
    from pipelines.flows import plan_blocks
    from pipelines.flows.plan_steps import phased_step

    demand, rec, features = _phased_inputs(panel)
    cfg = load_config(None, freq="W-MON", block_size=15, workers=workers)
    whole = phased_step(demand, rec, features, cfg, "W-MON")
    blocked = plan_blocks.blocked_phased(demand, rec, features, cfg, "W-MON")
    assert whole["phased"].any() and not whole["phased"].all()  # some items move, some keep their levels
    assert len(whole) == len(rec) * 52
    pd.testing.assert_frame_equal(blocked, whole)


def test_time_phasing_without_any_forecaster_keeps_every_static_level(panel):
    """Every item without stock (forecaster "none"): no forecast at all, the static levels in every period."""
    from pipelines.flows import plan_blocks

    demand, rec, features = _phased_inputs(panel)
    rec["forecaster"] = "none"
    cfg = load_config(None, freq="W-MON", block_size=15, workers=2)
    plan = plan_blocks.blocked_phased(demand, rec, features, cfg, "W-MON")
    assert len(plan) == len(rec) * 52 and not plan["phased"].any() and plan["forecast"].isna().all()
    static = rec.set_index("unique_id")["reorder_point"].reindex(plan["unique_id"]).to_numpy()
    np.testing.assert_array_equal(plan["reorder_point"].to_numpy(), static)


def test_time_phasing_blocks_share_the_panel_wide_horizon(panel, monkeypatch):
    """Every block forecasts as far as the longest exposure of the whole panel, not of its own items."""
    from pipelines.flows import plan_blocks

    demand, rec, features = _phased_inputs(panel)
    rec.loc[0, ["policy", "lead_time", "review_period"]] = ["R_S", 9.0, 4.0]  # H = 13, in one block only
    cfg = load_config(None, freq="W-MON", block_size=15, workers=1)
    seen = []
    real = plan_blocks.phased_rows
    monkeypatch.setattr(plan_blocks, "phased_rows", lambda *a, **k: seen.append((len(a[1]), a[5].h)) or real(*a, **k))
    plan_blocks.blocked_phased(demand, rec, features, cfg, "W-MON")
    assert len(seen) == 4 and sum(n for n, _ in seen) == len(rec)
    assert {h for _, h in seen} == {52 + 13 - 1}


def test_sizing_is_chosen_once_on_a_stable_sample_and_every_block_gets_it(panel, monkeypatch):
    """The default path's sizing choice (issue 12) runs once on the driver, not per block: every block
    recommends with the same wrapped selector, on a CRC-32 sample of ``SIZING_SAMPLE`` series."""
    from pipelines.flows import plan_blocks, plan_steps
    from policy_selector.sizing_choice import SizingChoice

    _, demand, items = panel
    cfg = load_config(None, freq="W-MON", block_size=15, workers=1)
    monkeypatch.setattr(plan_steps, "SIZING_SAMPLE", 20)
    choice = SizingChoice(pd.Timestamp("2024-01-01"), 13, {}, pd.DataFrame(), "planted")
    sized, blocks = [], []

    def fake_choice(selector, d, i, config, rule):
        sized.append((sorted(d["unique_id"].unique()), sorted(i["unique_id"]), rule))
        return "wrapped", config, choice

    def fake_select(block_demand, block_items, freq, selector, rng, **kwargs):
        blocks.append((selector, kwargs["choose_sizing"]))
        return pd.DataFrame({"unique_id": sorted(block_demand["unique_id"].unique())})

    monkeypatch.setattr(plan_steps, "with_sizing_choice", fake_choice)
    monkeypatch.setattr(plan_blocks, "select_step", fake_select)
    out = plan_blocks.blocked_select(demand, items, "W-MON", None, cfg)
    ids = np.sort(demand["unique_id"].unique())
    crc = np.array([zlib.crc32(str(i).encode()) for i in ids])
    expected = sorted(ids[np.argsort(crc, kind="stable")[:20]])
    assert sized == [(expected, expected, "yardstick")]
    assert blocks == [("wrapped", False)] * 4
    assert out.attrs["sizing_choice"]["why_not"] == ["planted"]
    off = load_config(None, freq="W-MON", block_size=15, workers=1, service={"sizing_choice": "off"})
    sized.clear()
    assert "sizing_choice" not in plan_blocks.blocked_select(demand, items, "W-MON", None, off).attrs
    assert sized == []
