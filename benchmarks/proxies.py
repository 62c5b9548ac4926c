"""Seeded proxies of the two real data sets issue 12 was measured on, which we do not have.

Run: ``python -m benchmarks.proxies make --kind store|retail --series N --out DIR [--seed 7]``
writes a Stockwise data folder (``demand.parquet``, ``items.csv``; docs/design.md "data
contracts") and ``planted.csv``, the parameters each series was drawn with (named so that
``stockwise evaluate`` does not take it for the demo's ``truth`` table). Then, e.g.::

    stockwise validate DIR
    stockwise evaluate --data DIR --holdout 39      # store
    stockwise evaluate --data DIR --holdout 13      # retail

The generator was fixed before the product was measured on it (docs/benchmarks/proxies.md says
which real features each kind imitates and which it does not).

*store* (a store-department panel, 143 weeks W-FRI from 2010-02-05): smooth, seasonal demand.
Per series: a level drawn log-normal across series; a mild trend; a holiday peak (Thanksgiving to
Christmas, 4-6 weeks, multiplying demand by 1.5-3 at its top) for most series, a milder one for the
rest; a summer bump for some; week-to-week noise of coefficient of variation 0.1-0.4 (a gamma
multiplier) and Poisson counts. Item master like the demo's: log-normal unit costs, holding rate
18-30 %, lead time 1-3 weeks.

*retail* (an online retailer's SKUs, 105 weeks W-MON from 2009-12-07): mostly lumpy demand. Per
series: weeks with demand occur with probability 1 / ADI, ADI 2-8 weeks for most, 1-1.3 for a
few; order sizes log-normal (sigma 0.6-1.3 around an item median), and a few wholesale orders of
10-50x the median; a fifth of the items introduced late (no rows before), a tenth discontinued
(zeros after). Lead time 2 weeks.

Both: service target CSL 0.95, review period 1, no MOQ, no lead-time variability, order costs
5-40 per order (``--order-cost-factor 0``: ordering is free, the issue's condition).
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from optimization import r_s_policy
from pipelines.data.io import read_table, write_table_atomic
from policy_selector.decision_eval import Z_GRID, replay, textbook_levels
from policy_selector.economics import Economics

__all__ = ["ProxyConfig", "make_proxy", "write_proxy", "holiday_weeks", "KINDS"]

KINDS = ("store", "retail")
_START = {"store": "2010-02-05", "retail": "2009-12-07"}
_FREQ = {"store": "W-FRI", "retail": "W-MON"}
_WEEKS = {"store": 143, "retail": 105}


@dataclass(frozen=True)
class ProxyConfig:
    """Which proxy, how many series, the seed and the order-cost scale."""

    kind: str
    n_series: int = 400
    seed: int = 7
    order_cost_factor: float = 1.0

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"kind={self.kind!r} is not a proxy; use one of {KINDS}")
        if self.n_series < 1:
            raise ValueError(f"n_series={self.n_series} must be at least 1")
        if self.order_cost_factor < 0:
            raise ValueError(f"order_cost_factor={self.order_cost_factor} must be >= 0")


def holiday_weeks(ds: pd.DatetimeIndex, n_weeks: np.ndarray | int) -> np.ndarray:
    """Position 1..n of each week in its year's holiday peak (0 outside), the peak's last week holding Dec 24.

    Parameters
    ----------
    ds : pandas.DatetimeIndex
        Week labels (period starts, or ends: the week is the 7 days from the label).
    n_weeks : int or ndarray of shape (n_series,)
        Length of the peak (4-6 weeks: Thanksgiving to Christmas).

    Returns
    -------
    ndarray of int, shape (n_series, len(ds)) (or (len(ds),) for an int)
    """
    ds = pd.DatetimeIndex(ds)
    xmas = pd.to_datetime([f"{y}-12-24" for y in ds.year])
    # weeks until the one holding Dec 24 (0 for that week, 1 for the week before, ...)
    before = np.floor((xmas - ds).days.to_numpy() / 7).astype(int)
    n = np.asarray(n_weeks)
    pos = n[..., None] - before if n.ndim else int(n) - before
    return np.where((before >= 0) & (pos >= 1), pos, 0)


def _store_series(rng: np.random.Generator, ds: pd.DatetimeIndex, n: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Weekly demand (n x T) of the store proxy and its planted parameters."""
    t = np.arange(len(ds))
    level = np.exp(rng.normal(np.log(40), 1.1, n)).clip(1.5, None)
    trend = rng.normal(0, 0.06, n)  # log growth per year
    big = rng.random(n) < 0.7
    peak = np.where(big, rng.uniform(1.5, 3.0, n), rng.uniform(1.05, 1.4, n))
    peak_weeks = rng.integers(4, 7, n)
    summer = np.where(rng.random(n) < 0.3, rng.uniform(0.2, 0.6, n), 0.0)
    cv = rng.uniform(0.1, 0.4, n)
    pos = holiday_weeks(ds, peak_weeks)  # ramp: half the peak in the first week, all of it in the last
    ramp = np.where(pos > 0, 0.5 + 0.5 * (pos - 1) / np.maximum(peak_weeks[:, None] - 1, 1), 0.0)
    week = ds.isocalendar().week.to_numpy(dtype=float)
    bump = np.exp(-0.5 * ((week - 28) / 4) ** 2)  # late June to August
    rate = level[:, None] * np.exp(trend[:, None] * (t - t.mean()) / 52)
    rate = rate * (1 + (peak[:, None] - 1) * ramp) * (1 + summer[:, None] * bump)
    noise = rng.gamma(1 / cv[:, None] ** 2, cv[:, None] ** 2, rate.shape)
    y = rng.poisson(rate * noise).astype(float)
    planted = pd.DataFrame(
        {
            "level": level,
            "trend_per_year": trend,
            "holiday_peak": peak,
            "holiday_weeks": peak_weeks,
            "summer_bump": summer,
            "noise_cv": cv,
            "seasonal": True,
        }
    )
    return y, planted


def _retail_series(rng: np.random.Generator, ds: pd.DatetimeIndex, n: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Weekly demand (n x T) of the retail proxy (NaN before launch) and its planted parameters."""
    T = len(ds)
    steady = rng.random(n) < 0.12
    adi = np.where(steady, rng.uniform(1.0, 1.3, n), np.exp(rng.uniform(np.log(2), np.log(8), n)))
    sigma = rng.uniform(0.6, 1.3, n)
    median = np.exp(rng.normal(np.log(6), 0.8, n))
    occur = rng.random((n, T)) < 1 / adi[:, None]
    size = median[:, None] * rng.lognormal(0.0, sigma[:, None], (n, T))
    wholesale = rng.random((n, T)) < 0.01
    size = np.where(wholesale, median[:, None] * rng.uniform(10, 50, (n, T)), size)
    y = np.where(occur, np.ceil(size), 0.0)
    launch = np.where(rng.random(n) < 0.2, rng.integers(8, T - 13 - 16, n), 0)
    stop = np.where(rng.random(n) < 0.1, rng.integers(40, T, n), T)
    stop = np.where(stop < T, np.minimum(np.maximum(stop, launch + 26), T - 1), T)  # sold half a year at least
    t = np.arange(T)
    y[t[None, :] >= stop[:, None]] = 0.0
    y[t[None, :] < launch[:, None]] = np.nan
    planted = pd.DataFrame(
        {
            "adi": adi,
            "size_median": median,
            "size_sigma": sigma,
            "launch_week": launch,
            "stop_week": stop,
            "n_wholesale": (wholesale & occur & (t[None, :] >= launch[:, None]) & (t[None, :] < stop[:, None])).sum(1),
            "seasonal": False,
        }
    )
    return y, planted


def _items(rng: np.random.Generator, ids: np.ndarray, kind: str, factor: float) -> pd.DataFrame:
    n = len(ids)
    unit = np.round(rng.lognormal(3.0, 0.9, n) if kind == "store" else rng.lognormal(1.0, 1.0, n), 2)
    return pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": np.maximum(unit, 0.01),
            "holding_rate": np.round(rng.uniform(0.18, 0.3, n), 3),
            "order_cost": np.round(factor * rng.uniform(5, 40, n), 2),
            "service_target": 0.95,
            "service_type": "csl",
            "lead_time": rng.integers(1, 4, n) if kind == "store" else 2,
            "lead_time_std": 0.0,
            "review_period": 1,
            "moq": 0.0,
            "order_multiple": 1.0,
            "lost_sales": False,
        }
    )


@dataclass(frozen=True)
class Proxy:
    """``demand`` (long, no rows before a launch), ``items`` (item master), ``planted`` (per series)."""

    demand: pd.DataFrame
    items: pd.DataFrame
    planted: pd.DataFrame


def make_proxy(config: ProxyConfig) -> Proxy:
    """Generate one proxy data set; the same config always gives the same tables.

    Parameters
    ----------
    config : ProxyConfig

    Returns
    -------
    Proxy

    Examples
    --------
    >>> p = make_proxy(ProxyConfig("retail", n_series=5))
    >>> p.items["lead_time"].unique().tolist()
    [2]
    """
    rng = np.random.default_rng([config.seed, KINDS.index(config.kind)])
    ds = pd.date_range(_START[config.kind], periods=_WEEKS[config.kind], freq=_FREQ[config.kind])
    draw = _store_series if config.kind == "store" else _retail_series
    y, planted = draw(rng, ds, config.n_series)
    ids = np.array([f"{config.kind[0].upper()}{i + 1:05d}" for i in range(config.n_series)])
    long = pd.DataFrame({"unique_id": np.repeat(ids, len(ds)), "ds": np.tile(ds, len(ids)), "y": y.ravel()})
    demand = long[long["y"].notna()].reset_index(drop=True)
    items = _items(rng, ids, config.kind, config.order_cost_factor)
    return Proxy(demand=demand, items=items, planted=planted.assign(unique_id=ids, kind=config.kind))


def write_proxy(proxy: Proxy, folder: str | Path) -> dict[str, Path]:
    """Write ``demand.parquet``, ``items.csv`` and ``planted.csv`` into ``folder`` (atomically)."""
    folder = Path(folder)
    cols = ["unique_id", "kind"] + [c for c in proxy.planted.columns if c not in ("unique_id", "kind")]
    return {
        "demand": write_table_atomic(proxy.demand, folder / "demand.parquet"),
        "items": write_table_atomic(proxy.items, folder / "items.csv"),
        "planted": write_table_atomic(proxy.planted[cols], folder / "planted.csv"),
    }


def textbook_at_equal_csl(run_dir: str | Path, data: str | Path, holdout: int) -> pd.DataFrame:
    """Per item of an ``evaluate`` run (first origin): the textbook baseline replayed at the z that gives
    the portfolio Stockwise's achieved CSL (linear between the two grid points around it).

    Returns
    -------
    pandas.DataFrame
        ``evaluation_items.csv`` with ``tb_csl, tb_value`` (the textbook's CSL and inventory value per
        item), ``excess`` (Stockwise's value minus it), ``demand_ratio`` (held-out over historical
        mean demand) and the planted parameters of ``planted.csv``.
    """
    run_dir, data = Path(run_dir), Path(data)
    items = pd.read_csv(run_dir / "evaluation_items.csv")
    items = items[items["origin"] == items["origin"].min()].reset_index(drop=True)
    demand = read_table(next(data.glob("demand.*")))
    ids, origin = items["unique_id"].astype(str).to_numpy(), pd.Timestamp(items["origin_ds"].iloc[0])
    grid = np.sort(demand["ds"].unique())
    held = grid[grid >= origin][:holdout]
    wide = demand.assign(unique_id=demand["unique_id"].astype(str)).pivot(index="unique_id", columns="ds", values="y")
    wide = wide.reindex(ids)
    history, actual = wide.loc[:, wide.columns < origin].to_numpy(), wide.loc[:, held].fillna(0.0).to_numpy()
    econ = Economics.from_items(read_table(data / "items.csv"), ids, pd.infer_freq(pd.DatetimeIndex(grid[:8])))
    levels = textbook_levels(history, econ.lead_time + econ.review_period, Z_GRID)
    policy = r_s_policy(
        econ.review_period, levels, moq=econ.moq, order_multiple=econ.order_multiple, lost_sales=econ.lost_sales
    )
    out = replay(actual, [policy], econ)
    sold = actual.sum(axis=1) > 0
    portfolio = np.maximum.accumulate(out["csl"][:, sold].mean(axis=1))
    target = items.loc[sold, "csl"].mean()
    k = int(np.clip(np.searchsorted(portfolio, target), 1, len(Z_GRID) - 1))
    w = float(np.clip((target - portfolio[k - 1]) / max(portfolio[k] - portfolio[k - 1], 1e-12), 0, 1))
    at = {m: (1 - w) * out[m][k - 1] + w * out[m][k] for m in ("csl", "inventory_value")}
    planted = pd.read_csv(data / "planted.csv", dtype={"unique_id": str})
    return items.assign(
        tb_csl=at["csl"],
        tb_value=at["inventory_value"],
        excess=items["inventory_value"] - at["inventory_value"],
        demand_ratio=actual.mean(axis=1) / np.nanmean(history, axis=1),
        unique_id=ids,
    ).merge(planted, on="unique_id", how="left")


def by_group(per_item: pd.DataFrame, spec: str) -> pd.DataFrame:
    """Stockwise against the textbook at equal portfolio CSL, summed per group of ``spec``.

    ``spec``: columns joined by ``+``; a numeric column is cut at the edges given after ``@``
    (``holiday_peak@1.4/1.8/2.2``), into quartiles when it has more than 6 values and no edges.
    """
    keys = []
    for part in spec.split("+"):
        name, _, edges = part.partition("@")
        key = per_item[name]
        if edges:
            key = pd.cut(key, [-np.inf, *map(float, edges.split("/")), np.inf])
        elif key.dtype.kind == "f" and key.nunique() > 6:
            key = pd.qcut(key, 4, duplicates="drop")
        keys.append(key.rename(name))
    table = per_item.groupby(keys, observed=True).agg(
        items=("unique_id", "size"),
        csl=("csl", "mean"),
        tb_csl=("tb_csl", "mean"),
        value=("inventory_value", "sum"),
        tb_value=("tb_value", "sum"),
        excess=("excess", "sum"),
    )
    return table.assign(ratio=table["value"] / table["tb_value"])


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    make = sub.add_parser("make", help="write a proxy data folder")
    make.add_argument("--kind", choices=KINDS, required=True)
    make.add_argument("--series", type=int, default=400)
    make.add_argument("--seed", type=int, default=7)
    make.add_argument("--order-cost-factor", type=float, default=1.0, help="0: free ordering (issue 12's condition)")
    make.add_argument("--out", type=Path, required=True)
    diag = sub.add_parser("diagnose", help="per item: an evaluate run's stock against the textbook at equal CSL")
    diag.add_argument("--run", type=Path, required=True, help="the evaluate run folder")
    diag.add_argument("--data", type=Path, required=True, help="the proxy data folder it evaluated")
    diag.add_argument("--holdout", type=int, required=True, help="the run's --holdout")
    diag.add_argument("--by", default="forecaster,phased,abc", help="comma-separated groupings (see by_group)")
    args = parser.parse_args(argv)
    if args.command == "diagnose":
        per_item = textbook_at_equal_csl(args.run, args.data, args.holdout)
        total = per_item["inventory_value"].sum() / per_item["tb_value"].sum()
        print(f"{len(per_item)} items; value / the textbook's at equal portfolio CSL: {total:.3f}")
        for spec in args.by.split(","):
            print(f"\nby {spec}\n{by_group(per_item, spec).round(3).to_string()}")
        return
    proxy = make_proxy(ProxyConfig(args.kind, args.series, args.seed, args.order_cost_factor))
    paths = write_proxy(proxy, args.out)
    n_rows = len(proxy.demand)
    print(f"{args.kind} proxy: {args.series} series, {n_rows} rows -> {', '.join(map(str, paths.values()))}")


if __name__ == "__main__":
    main()
