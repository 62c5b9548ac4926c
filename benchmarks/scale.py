"""Scale benchmark: ``stockwise recommend`` on a generated weekly panel of 3k / 10k / 30k series.

Run (from the project root)::

    python -m benchmarks.scale generate --series 3000 --out /tmp/scale3k
    python -m benchmarks.scale profile --data /tmp/scale3k            # cProfile of one local run
    python -m benchmarks.scale run --series 3000 30000 --engine local dask spark --block-size 2000
    python -m benchmarks.scale selector-cv --data /tmp/scale3k --sample 300 --refit-every 1 4 16
    python -m benchmarks.scale select-block --data /tmp/scale3k --sample 300 --refit-every 16 1 16
    python -m benchmarks.scale refit-curve --data /tmp/scale3k --sample 200 --periods 40 60 80 100 156

The panel: one stocking point per series, 156 weekly periods (3 years), planted
processes drawn with the demo generator's weights (smooth, erratic,
intermittent, lumpy, seasonal, trending, new, dead), so every SBC class and the
short-history path are present. Seeded: the same arguments give the same files.

``run`` times every step of the planning flow (the progress messages of
:func:`pipelines.flows.plan.run_plan` mark the step boundaries) and samples the
resident memory of this process and its children (process-pool and Dask
workers; Spark's JVM and its Python workers) every 0.2 s; the peak per step is
reported. The load average at the
start and the end of each run is written next to the numbers, because the
machine it was developed on is shared.
"""

from __future__ import annotations

import argparse
import cProfile
import json
import logging
import os
import pstats
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.demo_data import _PROCESS_WEIGHTS, PROCESSES, _draw, _item_process, _item_row
from pipelines.data.io import write_table_atomic

RESULTS = Path(__file__).resolve().parent / "results"
N_WEEKS = 156


def generate_panel(n_series: int, seed: int = 0, n_weeks: int = N_WEEKS) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Long weekly demand and item master for ``n_series`` single-location series."""
    rng = np.random.default_rng(seed)
    ds = pd.date_range("2023-01-02", periods=n_weeks, freq="W-MON")
    processes = rng.choice(PROCESSES, n_series, p=_PROCESS_WEIGHTS)
    uids, dates, ys, rows = [], [], [], []
    for i, process in enumerate(processes):
        uid, item = f"SKU{i:07d}@S01", f"SKU{i:07d}"
        p = _item_process(rng, str(process))
        start = int(rng.integers(n_weeks - 30, n_weeks - 8)) if process == "new" else 0
        stop = int(rng.integers(n_weeks - 52, n_weeks - 30)) if process == "dead" else n_weeks
        y = _draw(rng, p, float(rng.uniform(0.6, 1.4)), n_weeks).astype(float)
        y[stop:] = 0.0
        uids.append(np.full(n_weeks - start, uid))
        dates.append(ds[start:].to_numpy())
        ys.append(y[start:])
        unit_cost = float(np.round(rng.lognormal(3.0, 0.9), 2))
        shelf = int(rng.integers(8, 27)) if rng.random() < 0.15 else np.nan
        rows.append(_item_row(rng, uid, item, "S01", unit_cost, shelf, y[start:]))
    demand = pd.DataFrame({"unique_id": np.concatenate(uids), "ds": np.concatenate(dates), "y": np.concatenate(ys)})
    return demand, pd.DataFrame(rows)


def write_panel(n_series: int, out: Path, seed: int = 0) -> Path:
    """Write ``demand.csv`` and ``items.csv`` for the panel into ``out`` (skipped when present)."""
    out = Path(out)
    if not ((out / "demand.csv").exists() and (out / "items.csv").exists()):
        demand, items = generate_panel(n_series, seed)
        write_table_atomic(demand, out / "demand.csv")
        write_table_atomic(items, out / "items.csv")
    return out


def profile(
    data: Path,
    out: Path,
    top: int = 40,
    block_size: int = 500,
    refit_every: int | str | None = None,
    workers: int = 1,
) -> None:
    """cProfile one local ``recommend`` on ``data``; print the top functions by cumulative time.

    One worker (the default): every block runs in this process with ``n_jobs=1`` and the
    profile sees the block work. More workers: the blocks run in a process pool, so the
    profile sees the driver's own (serial) work only.
    """
    from pipelines.data.config import load_config
    from pipelines.flows.plan import run_plan

    cfg = load_config(
        None,
        data=data,
        out=out,
        tracking_uri=f"sqlite:///{out}/mlflow.db",
        freq="W-MON",
        block_size=block_size,
        workers=workers,
        **_refit(refit_every),
    )
    marks: list[tuple[str, float]] = []
    prof = cProfile.Profile()
    prof.enable()
    run_plan(cfg, progress=lambda msg: marks.append((msg, time.perf_counter())))
    prof.disable()
    marks.append(("end", time.perf_counter()))
    for (msg, t0), (_, t1) in zip(marks, marks[1:]):
        print(f"{t1 - t0:8.1f} s  {msg}")
    out.mkdir(parents=True, exist_ok=True)
    prof.dump_stats(out / "profile.pstats")
    pstats.Stats(prof).sort_stats("cumulative").print_stats(top)


def selector_cv(data: Path, sample: int, refit_every: list[int], seed: int = 0) -> list[dict]:
    """CPU ms per series of the policy step's backtest, per forecaster and ``refit_every``.

    The backtest of :func:`policy_selector.context.prepare_cutoff` (the default
    candidates' forecasters, season length 1, 16 windows, step 1, the horizon of
    the sample's economics), one forecaster at a time in this process
    (``n_jobs=1``), on ``sample`` series drawn with ``seed``. Also the mean and
    largest absolute difference of each forecast from the refit-every-window one.
    """
    from forecasting import ForecastConfig, Forecaster
    from policy_selector import SelectorConfig
    from policy_selector.context import _horizon, wide_panel
    from policy_selector.economics import Economics

    demand = pd.read_csv(Path(data) / "demand.csv", parse_dates=["ds"])
    items = pd.read_csv(Path(data) / "items.csv")
    ids = demand["unique_id"].drop_duplicates().sample(sample, random_state=seed)
    wide = wide_panel(demand[demand["unique_id"].isin(ids)])
    cfg = SelectorConfig()
    horizon = _horizon(Economics.from_items(items, wide.index.to_numpy(dtype=str), cfg.freq))
    long = wide.stack().rename("y").reset_index()
    long.columns = ["unique_id", "ds", "y"]
    rows = []
    for model in cfg.space.forecasters:
        forecaster = Forecaster(
            ForecastConfig(models=(model,), freq=cfg.freq, season_length=cfg.season_length, n_jobs=1)
        )
        exact = None
        for every in refit_every:
            refit = True if every == 1 else min(every, cfg.n_windows)
            t0 = process_seconds()
            cv = forecaster.cross_validation(long, h=horizon, n_windows=cfg.n_windows, step=cfg.step, refit=refit)
            ms = (process_seconds() - t0) / sample * 1000
            exact = cv[model] if every == 1 else exact
            diff = (cv[model] - exact).abs() if exact is not None else pd.Series([np.nan])
            rows.append(
                {
                    "model": model,
                    "refit_every": every,
                    "cpu_ms_per_series": round(ms, 2),
                    "mean_abs_diff": round(float(diff.mean()), 4),
                    "max_abs_diff": round(float(diff.max()), 3),
                    "mean_abs_forecast": round(float(cv[model].abs().mean()), 3),
                    "horizon": horizon,
                }
            )
            print(rows[-1], flush=True)
    return rows


def _read_folder(data: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``demand.csv`` or ``demand.parquet`` and ``items.csv`` of a data folder."""
    data = Path(data)
    demand = (
        pd.read_parquet(data / "demand.parquet")
        if (data / "demand.parquet").exists()
        else pd.read_csv(data / "demand.csv", parse_dates=["ds"])
    )
    return demand.assign(unique_id=demand["unique_id"].astype(str)), pd.read_csv(
        data / "items.csv", dtype={"unique_id": str}
    )


def refit_curve(data: Path, sample: int, periods: list[int], freq: str = "W-MON", seed: int = 0) -> list[dict]:
    """How much fitting AutoETS once (instead of at every window) changes the policy step's backtest,
    by the length of history before the first cutoff.

    For each length P: the last P periods of ``sample`` series (drawn with ``seed`` among those
    that have P), the policy step's AutoETS backtest (16 windows, step 1, season length 1, the
    horizon h of the sample's economics) refit at every window and once. Per series, the RMSE of
    the cumulative forecast error over h across the windows (what sizes the buffer): the median
    ratio once / every window, the share of series whose RMSE moves by more than 10 % either way,
    and the mean absolute change of the forecasts relative to their mean.
    """
    from forecasting import ForecastConfig, Forecaster
    from policy_selector import SelectorConfig
    from policy_selector.context import _horizon
    from policy_selector.economics import Economics

    demand, items = _read_folder(data)
    cfg = SelectorConfig(freq=freq)
    forecaster = Forecaster(ForecastConfig(models=("AutoETS",), freq=freq, season_length=1, n_jobs=1))
    rows = []
    for P in periods:
        tail = demand.dropna(subset=["y"]).groupby("unique_id").tail(P)
        sizes = tail.groupby("unique_id").size()
        ids = sizes.index[sizes == P].to_series().sample(min(sample, int((sizes == P).sum())), random_state=seed)
        part = tail[tail["unique_id"].isin(ids)].sort_values(["unique_id", "ds"])
        h = _horizon(Economics.from_items(items, np.sort(ids.to_numpy(dtype=str)), freq))
        rmse, ms = {}, {}
        for refit in (True, cfg.n_windows):
            t0 = process_seconds()
            cv = forecaster.cross_validation(part, h=h, n_windows=cfg.n_windows, step=cfg.step, refit=refit)
            ms[refit] = (process_seconds() - t0) / len(ids) * 1000
            cum = (cv["y"] - cv["AutoETS"]).groupby([cv["unique_id"], cv["cutoff"]]).sum()
            rmse[refit] = np.sqrt((cum**2).groupby(level=0).mean())
            rmse[f"fc{refit}"] = cv["AutoETS"].to_numpy()
        ratio = (rmse[cfg.n_windows] / rmse[True]).replace([np.inf, -np.inf], np.nan).dropna()
        fc_every, fc_once = rmse["fcTrue"], rmse[f"fc{cfg.n_windows}"]
        rows.append(
            {
                "periods": P,
                "before_first_cutoff": P - h - (cfg.n_windows - 1) * cfg.step,
                "horizon": h,
                "series": len(ids),
                "rmse_ratio_median": round(float(ratio.median()), 3),
                "rmse_ratio_p10": round(float(ratio.quantile(0.1)), 3),
                "share_rmse_moved_10pct": round(float((ratio.sub(1).abs() > 0.1).mean()), 3),
                "forecast_change_rel": round(float(np.abs(fc_once - fc_every).mean() / np.abs(fc_every).mean()), 4),
                "cpu_ms_every": round(ms[True], 1),
                "cpu_ms_once": round(ms[cfg.n_windows], 1),
            }
        )
        print(rows[-1], flush=True)
    return rows


def select_block(data: Path, sample: int, refit_every: list[int], seed: int = 1) -> dict:
    """CPU s per series of one policy-step block (``_select_block``) per ``refit_every``, in this process.

    Returns the recommendations per setting, so they can be compared.
    """
    from pipelines.flows.plan_blocks import _select_block

    demand = pd.read_csv(Path(data) / "demand.csv", parse_dates=["ds"])
    items = pd.read_csv(Path(data) / "items.csv")
    ids = demand["unique_id"].drop_duplicates().sample(sample, random_state=seed)
    demand, items = demand[demand["unique_id"].isin(ids)], items[items["unique_id"].isin(ids)]
    out = {}
    for every in refit_every:
        t0 = process_seconds()
        out[every] = _select_block(demand, items, 0, "W-MON", None, 0, 1, refit_every=every)
        per = (process_seconds() - t0) / sample
        print(f"refit_every {every}: {per:.4f} CPU s per series, load {os.getloadavg()[0]:.1f}", flush=True)
    first = out[refit_every[0]]
    for every, recs in out.items():
        moved = (recs["reorder_point"] - first["reorder_point"]).abs()
        print(
            f"refit_every {every} vs {refit_every[0]}: {int((moved > 0).sum())} reorder points moved, "
            f"mean {moved.mean():.3f}; policy types changed {int((recs['policy'] != first['policy']).sum())}"
        )
    return out


def process_seconds() -> float:
    """CPU seconds (user + system) of this process only."""
    t = os.times()
    return t.user + t.system


def cpu_seconds() -> float:
    """User + system CPU seconds of this process, of its children that have exited and of its live
    descendants.

    Pool workers (the process pool, statsforecast's pools) are joined when their step ends;
    a LocalCluster's workers and Spark's JVM and Python workers live for the whole run, so
    they are read while alive (a live process's own time plus that of its exited children),
    which puts their CPU in the step that used it.
    """
    import psutil

    t = os.times()
    total = t.user + t.system + t.children_user + t.children_system
    for proc in psutil.Process().children(recursive=True):
        try:
            c = proc.cpu_times()
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
        total += c.user + c.system + c.children_user + c.children_system
    return total


class MemorySampler:
    """Proportional set size of this process and all its descendants, sampled every ``interval`` s.

    PSS (not RSS) so that pages shared by forked pool workers are counted once. Each sample
    reads ``/proc/PID/smaps`` of every process (~2 ms each), which is CPU of this process:
    ~3 % of a core at 0.2 s with 3 processes, so a long run's driver CPU is inflated by that.
    """

    def __init__(self, interval: float = 0.2):
        import psutil

        self._psutil, self.interval = psutil, interval
        self.samples: list[tuple[float, float]] = []
        self.load: list[float] = []  # 1-minute load average, once a minute
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _total(self) -> float:
        me = self._psutil.Process()
        total = 0.0
        for proc in [me, *me.children(recursive=True)]:
            try:
                info = proc.memory_full_info()
                total += getattr(info, "pss", info.rss)
            except (self._psutil.NoSuchProcess, self._psutil.AccessDenied):
                continue
        return total / 2**30

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.perf_counter(), self._total()))
            if len(self.samples) % max(int(60 / self.interval), 1) == 1:
                self.load.append(os.getloadavg()[0])
            self._stop.wait(self.interval)

    def __enter__(self) -> MemorySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, t0: float, t1: float) -> float:
        inside = [m for t, m in self.samples if t0 <= t <= t1]
        return max(inside, default=float("nan"))


_STEPS = {
    "validating": "validate",
    "backtesting": "backtest",
    "fitting": "error_model",
    "choosing": "policy",
    "placing": "meio",
    "time-phasing": "phasing",
    "forecasting": "report_forecast",
    "replaying": "report_replays",
    "writing": "report",
}


class _BlockLog(logging.Handler):
    """Collects the per-block timings :func:`pipelines.flows.blocks.map_blocks` logs at DEBUG."""

    def __init__(self):
        super().__init__(logging.DEBUG)
        self.records: list[dict] = []

    def emit(self, record: logging.LogRecord) -> None:
        fn, block, n, wall, cpu = record.args
        # numpy scalars from the gathered table (the Dask path) are not JSON-serialisable
        self.records.append(
            {
                "step": str(fn),
                "block": int(block),
                "n_series": int(n),
                "wall_s": round(float(wall), 2),
                "cpu_s": round(float(cpu), 2),
            }
        )


def _step_name(progress_message: str) -> str:
    """Step of the flow from its progress message ("backtesting 4 models ..." -> "backtest")."""
    word = progress_message.split()[0].strip(",")
    return _STEPS.get(word, word)


def _mark(marks: list, msg: str, start: float, cpu0: float) -> None:
    """Record a step boundary and print it at once, so a run stopped midway still shows its steps."""
    marks.append((_step_name(msg), time.perf_counter(), cpu_seconds(), process_seconds()))
    wall, cpu = marks[-1][1] - start, marks[-1][2] - cpu0
    print(
        f"[{time.strftime('%H:%M:%S')}] {wall:8.1f} s wall {cpu:8.1f} s CPU "
        f"({marks[-1][3]:.1f} s driver process since start) load {os.getloadavg()[0]:.1f}: {msg}",
        flush=True,
    )


def refit_value(text: str) -> int | str:
    """``--selector-refit-every`` / ``--refit-every`` value: an integer or ``auto``."""
    return text if text == "auto" else int(text)


def _refit(refit_every: int | str | None) -> dict:
    """Run-config override for ``selector_refit_every`` (None: the config's default)."""
    return {} if refit_every is None else {"selector_refit_every": refit_every}


def run_once(
    data: Path,
    out: Path,
    engine: str,
    block_size: int,
    workers: int | None,
    refit_every: int | str | None = None,
    mem_interval: float = 0.2,
) -> dict:
    """One ``recommend`` run: wall time and peak memory (GB) per step, load average around it."""
    from pipelines.data.config import load_config
    from pipelines.flows.plan import run_plan

    cfg = load_config(
        None,
        data=data,
        out=out,
        tracking_uri=f"sqlite:///{out}/mlflow.db",
        freq="W-MON",
        engine=engine,
        block_size=block_size,
        workers=workers,
        **_refit(refit_every),
    )
    marks: list[tuple[str, float, float, float]] = []
    blocks = _BlockLog()
    logging.getLogger("pipelines.flows.blocks").addHandler(blocks)
    logging.getLogger("pipelines.flows.blocks").setLevel(logging.DEBUG)
    load_before = os.getloadavg()
    with MemorySampler(mem_interval) as mem:
        start, cpu0 = time.perf_counter(), cpu_seconds()
        result = run_plan(cfg, progress=lambda msg: _mark(marks, msg, start, cpu0))
        end = time.perf_counter()
    marks.append(("end", end, cpu_seconds(), process_seconds()))
    logging.getLogger("pipelines.flows.blocks").removeHandler(blocks)
    steps = {
        name: {
            "seconds": round(t1 - t0, 1),
            "cpu_s": round(c1 - c0, 1),
            "driver_cpu_s": round(d1 - d0, 1),  # this process only (the sampler thread included)
            "peak_gb": round(mem.peak(t0, t1), 2),
        }
        for (name, t0, c0, d0), (_, t1, c1, d1) in zip(marks, marks[1:])
    }
    return {
        "n_series": result.n_items,
        "engine": engine,
        "block_size": block_size,
        "workers": workers,
        "selector_refit_every": cfg.selector_refit_every,
        "mem_interval_s": mem_interval,
        "total_seconds": round(end - start, 1),
        "total_cpu_s": round(marks[-1][2] - cpu0, 1),
        "load_during": [round(x, 2) for x in mem.load],
        "peak_gb": round(mem.peak(start, end), 2),
        "steps": steps,
        "load_before": [round(x, 2) for x in load_before],
        "load_after": [round(x, 2) for x in os.getloadavg()],
        "blocks": blocks.records,
        "utc": time.strftime("%Y-%m-%d %H:%M", time.gmtime()),
        "run_dir": str(result.run_dir),
    }


def _table(rows: list[dict]) -> str:
    names = list(_STEPS.values())
    head = (
        "| series | engine | total wall / CPU s | peak GB | "
        + " | ".join(f"{n} wall / CPU s (GB)" for n in names)
        + " | load 1-min before/after |"
    )
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        cells = [
            f"{r['steps'][n]['seconds']} / {r['steps'][n].get('cpu_s', '-')} ({r['steps'][n]['peak_gb']})"
            if n in r["steps"]
            else "-"
            for n in names
        ]
        lines.append(
            f"| {r['n_series']:,} | {r['engine']} | {r['total_seconds']} / {r.get('total_cpu_s', '-')} | {r['peak_gb']} | "
            + " | ".join(cells)
            + f" | {r['load_before'][0]} / {r['load_after'][0]} |"
        )
    return "\n".join(lines)


def run(
    series: list[int],
    engines: list[str],
    block_size: int,
    workers: int | None,
    root: Path,
    refit_every: int | str | None = None,
    mem_interval: float = 0.2,
) -> list[dict]:
    """Every (size, engine) pair once; results appended to ``benchmarks/results/scale.jsonl``."""
    rows = []
    RESULTS.mkdir(parents=True, exist_ok=True)
    for n in series:
        data = write_panel(n, root / f"panel-{n}")
        for engine in engines:
            runs = (
                root / f"runs-{n}-{engine}" if refit_every is None else root / f"runs-{n}-{engine}-refit{refit_every}"
            )
            row = run_once(data, runs, engine, block_size, workers, refit_every, mem_interval)
            rows.append(row)
            with open(RESULTS / "scale.jsonl", "a") as fh:
                fh.write(json.dumps(row) + "\n")
            print(_table([row]).splitlines()[-1], flush=True)
    print(_table(rows))
    return rows


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    gen = sub.add_parser("generate")
    gen.add_argument("--series", type=int, default=3000)
    gen.add_argument("--out", type=Path, required=True)
    gen.add_argument("--seed", type=int, default=0)
    prof = sub.add_parser("profile")
    prof.add_argument("--data", type=Path, required=True)
    prof.add_argument("--out", type=Path, default=Path("/tmp/scale-profile"))
    prof.add_argument("--block-size", type=int, default=500)
    prof.add_argument("--workers", type=int, default=1, help="> 1: blocks in a pool, the driver alone profiled")
    prof.add_argument("--selector-refit-every", type=refit_value, default=None, help="default: the run config's")
    scv = sub.add_parser("selector-cv")
    scv.add_argument("--data", type=Path, required=True)
    scv.add_argument("--sample", type=int, default=300)
    scv.add_argument("--refit-every", type=int, nargs="+", default=[1, 4, 16])
    rc = sub.add_parser("refit-curve")
    rc.add_argument("--data", type=Path, required=True)
    rc.add_argument("--sample", type=int, default=200)
    rc.add_argument("--periods", type=int, nargs="+", default=[40, 60, 80, 100, 156])
    rc.add_argument("--freq", default="W-MON")
    sb = sub.add_parser("select-block")
    sb.add_argument("--data", type=Path, required=True)
    sb.add_argument("--sample", type=int, default=300)
    sb.add_argument("--refit-every", type=refit_value, nargs="+", default=[1, 16])
    bench = sub.add_parser("run")
    bench.add_argument("--series", type=int, nargs="+", default=[3000])
    bench.add_argument("--engine", nargs="+", default=["local", "dask"], choices=["local", "dask", "spark"])
    bench.add_argument("--block-size", type=int, default=2000)
    bench.add_argument("--workers", type=int, default=None)
    bench.add_argument("--root", type=Path, default=Path("/tmp/stockwise-scale"))
    bench.add_argument("--mem-interval", type=float, default=0.2, help="seconds between memory samples")
    bench.add_argument("--selector-refit-every", type=refit_value, default=None, help="default: the run config's")
    args = parser.parse_args(argv)
    if args.cmd == "generate":
        print(write_panel(args.series, args.out, args.seed))
    elif args.cmd == "profile":
        profile(
            args.data, args.out, block_size=args.block_size, refit_every=args.selector_refit_every, workers=args.workers
        )
    elif args.cmd == "select-block":
        select_block(args.data, args.sample, args.refit_every)
    elif args.cmd == "refit-curve":
        refit_curve(args.data, args.sample, args.periods, args.freq)
    elif args.cmd == "selector-cv":
        selector_cv(args.data, args.sample, args.refit_every)
    else:
        run(
            args.series,
            args.engine,
            args.block_size,
            args.workers,
            args.root,
            args.selector_refit_every,
            args.mem_interval,
        )


if __name__ == "__main__":
    main()
