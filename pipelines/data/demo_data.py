"""Built-in demo data: a seeded distribution network with known demand processes.

Network: one supplier feeds a central warehouse ``CW``; ``CW`` feeds regional
DCs; each DC feeds its stores. Items are stocked at a subset of stores; each
store stocking point is one demand series ``ITEM@STORE`` (the ``unique_id``).

Each item carries one planted demand process (the ``truth`` table), so later
layers can be tested against the truth:

============  =================================================  =============
process       how a period's demand is drawn                     SBC class
============  =================================================  =============
smooth        Poisson(level)                                     smooth
erratic       P(occur)=0.95, size ceil(LogNormal(mu, 0.9))       erratic
intermittent  P(occur)=p in [0.22, 0.5], size 1 + Poisson(lam)   intermittent
lumpy         P(occur)=p in [0.2, 0.4], size ceil(LogNormal(1.5, 1.0))  lumpy
seasonal      Poisson(level * (1 + A sin(2 pi t / 52 + phi)))    smooth
trending      Poisson(level * max(0.2, 1 + g t / 52))            smooth
new           smooth, launched 8-30 weeks before the end          smooth
dead          smooth, no demand in the last 30-52 weeks          (dead stock)
============  =================================================  =============
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.io import write_table_atomic

__all__ = ["DemoConfig", "DemoData", "generate_demo", "write_demo", "sample_truth_paths", "PROCESSES"]

PROCESSES = ("smooth", "erratic", "intermittent", "lumpy", "seasonal", "trending", "new", "dead")
_PROCESS_WEIGHTS = np.array([0.18, 0.12, 0.18, 0.12, 0.12, 0.10, 0.09, 0.09])


@dataclass(frozen=True)
class DemoConfig:
    """Size of the generated network; defaults give ~270 store item-locations."""

    seed: int = 7
    n_items: int = 45
    n_stores: int = 8
    n_dcs: int = 3
    n_weeks: int = 182
    start: str = "2023-01-02"
    min_stores_per_item: int = 4

    def __post_init__(self) -> None:
        if not 1 <= self.n_dcs <= self.n_stores:
            raise ValueError(f"n_dcs={self.n_dcs} must be between 1 and n_stores={self.n_stores}")
        if self.n_weeks < 60:
            raise ValueError(f"n_weeks={self.n_weeks} too short; use >= 60 so new and dead items fit")
        if self.n_items < len(PROCESSES):  # one item of each demand process, then random ones
            raise ValueError(
                f"n_items={self.n_items} too small; use >= {len(PROCESSES)} (one item per demand "
                f"process: {', '.join(PROCESSES)})"
            )
        if not 1 <= self.min_stores_per_item <= self.n_stores:
            raise ValueError("min_stores_per_item must be between 1 and n_stores")


@dataclass(frozen=True)
class DemoData:
    """The five demo tables (see the data contracts in docs/design.md)."""

    demand: pd.DataFrame
    items: pd.DataFrame
    stages: pd.DataFrame
    edges: pd.DataFrame
    truth: pd.DataFrame


def _store_dc(cfg: DemoConfig) -> dict[str, str]:
    stores = [f"S{j + 1:02d}" for j in range(cfg.n_stores)]
    groups = np.array_split(np.arange(cfg.n_stores), cfg.n_dcs)
    return {stores[j]: f"DC{k + 1}" for k, g in enumerate(groups) for j in g}


def _item_process(rng: np.random.Generator, process: str) -> dict:
    """Parameters of one item's planted process."""
    p = {
        "process": process,
        "p_occur": 1.0,
        "level": 0.0,
        "size_mean": 0.0,
        "season_amp": 0.0,
        "season_phase": 0.0,
        "trend_per_year": 0.0,
        "size_sigma": 0.0,
        "size_lambda": 0.0,
    }
    if process in ("smooth", "seasonal", "trending", "new", "dead"):
        p["level"] = float(rng.uniform(6, 40))
    if process == "seasonal":
        p["season_amp"] = float(rng.uniform(0.3, 0.6))
        p["season_phase"] = float(rng.uniform(0, 2 * np.pi))
    if process == "trending":
        p["trend_per_year"] = float(rng.choice([-1, 1]) * rng.uniform(0.2, 0.5))
    if process == "erratic":
        p["p_occur"], p["size_sigma"], p["size_mean"] = 0.95, 0.9, float(rng.uniform(1.5, 3.0))
    if process == "intermittent":
        p["p_occur"], p["size_lambda"] = float(rng.uniform(0.22, 0.5)), float(rng.uniform(0.5, 3.0))
    if process == "lumpy":
        p["p_occur"], p["size_sigma"], p["size_mean"] = float(rng.uniform(0.2, 0.4)), 1.0, 1.5
    return p


def _draw(rng: np.random.Generator, p: dict, scale: float, n: int) -> np.ndarray:
    """One series of n weekly demands from process parameters ``p``."""
    t = np.arange(n)
    proc = p["process"]
    if proc in ("erratic", "lumpy"):
        occur = rng.random(n) < p["p_occur"]
        size = np.ceil(scale * rng.lognormal(p["size_mean"], p["size_sigma"], n))
        return occur * size
    if proc == "intermittent":
        occur = rng.random(n) < p["p_occur"]
        return occur * (1 + rng.poisson(p["size_lambda"] * scale, n))
    rate = np.full(n, p["level"] * scale)
    if proc == "seasonal":
        rate *= 1 + p["season_amp"] * np.sin(2 * np.pi * t / 52 + p["season_phase"])
    if proc == "trending":
        rate *= np.maximum(0.2, 1 + p["trend_per_year"] * (t - n / 2) / 52)
    return rng.poisson(rate)


def _items_and_truth(rng, cfg, store_dc, ds) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    stores = list(store_dc)
    processes = list(PROCESSES) + list(rng.choice(PROCESSES, cfg.n_items - len(PROCESSES), p=_PROCESS_WEIGHTS))
    demand_parts, item_rows, truth_rows = [], [], []
    for i, process in enumerate(processes):
        item = f"SKU{i + 1:03d}"
        p = _item_process(rng, process)
        unit_cost = float(np.round(rng.lognormal(3.0, 0.9), 2))
        shelf_life = int(rng.integers(8, 27)) if rng.random() < 0.15 else np.nan
        n_here = int(rng.integers(cfg.min_stores_per_item, cfg.n_stores + 1))
        start = int(rng.integers(cfg.n_weeks - 30, cfg.n_weeks - 8)) if process == "new" else 0
        stop = int(rng.integers(cfg.n_weeks - 52, cfg.n_weeks - 30)) if process == "dead" else cfg.n_weeks
        for store in sorted(rng.choice(stores, n_here, replace=False)):
            uid = f"{item}@{store}"
            scale = float(rng.uniform(0.6, 1.4))
            y = _draw(rng, p, scale, cfg.n_weeks).astype(float)
            y[stop:] = 0.0
            demand_parts.append(pd.DataFrame({"unique_id": uid, "ds": ds[start:], "y": y[start:]}))
            item_rows.append(_item_row(rng, uid, item, store, unit_cost, shelf_life, y[start:]))
            truth_rows.append(
                {
                    "unique_id": uid,
                    "item_id": item,
                    "location": store,
                    "scale": scale,
                    "start_ds": ds[start],
                    "last_active_ds": ds[stop - 1],
                    **p,
                }
            )
    return (pd.concat(demand_parts, ignore_index=True), pd.DataFrame(item_rows), pd.DataFrame(truth_rows))


def _item_row(rng, uid, item, store, unit_cost, shelf_life, y) -> dict:
    mean = float(y[-26:].mean()) if len(y) else 0.0
    fill_rate = rng.random() < 0.25
    return {
        "unique_id": uid,
        "item_id": item,
        "location": store,
        "unit_cost": unit_cost,
        "holding_rate": float(np.round(rng.uniform(0.18, 0.3), 3)),
        "order_cost": float(np.round(rng.uniform(5, 40), 2)),
        "shortage_cost": float(np.round(unit_cost * rng.uniform(0.3, 1.5), 2)),
        "price": float(np.round(unit_cost * rng.uniform(1.3, 2.2), 2)),
        "service_target": float(rng.choice([0.98, 0.95]) if fill_rate else rng.choice([0.9, 0.95, 0.98])),
        "service_type": "fill_rate" if fill_rate else "csl",
        "lead_time": int(rng.integers(1, 4)),
        "lead_time_std": float(np.round(rng.choice([0.0, 0.0, 0.3, 0.6]), 2)),
        "review_period": int(rng.choice([1, 1, 2])),
        "moq": float(rng.choice([0, 0, 0, 6, 12])),
        "order_multiple": float(rng.choice([1, 1, 1, 6])),
        "shelf_life": shelf_life,
        "lost_sales": bool(rng.random() < 0.2),
        # current stock between nothing and ~14 weeks of recent demand: some short, some stranded
        "on_hand": float(np.round(mean * rng.uniform(0, 14))),
    }


def _network(rng, items: pd.DataFrame, store_dc: dict[str, str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per item: item@CW (supplier lead time) -> item@DCk -> item@store."""
    stages, edges = [], []
    for item, g in items.groupby("item_id", sort=True):
        unit_cost, rate = float(g["unit_cost"].iloc[0]), float(g["holding_rate"].iloc[0])
        per_week = unit_cost * rate / 52
        cw = f"{item}@CW"
        stages.append(
            {
                "stage_id": cw,
                "processing_time": int(rng.integers(3, 9)),
                "holding_cost": round(per_week, 5),
                "max_service_time": np.nan,
                "unique_id": None,
            }
        )
        for dc in sorted({store_dc[s] for s in g["location"]}):
            dc_id = f"{item}@{dc}"
            stages.append(
                {
                    "stage_id": dc_id,
                    "processing_time": 1,
                    "holding_cost": round(per_week * 1.03, 5),
                    "max_service_time": np.nan,
                    "unique_id": None,
                }
            )
            edges.append({"upstream": cw, "downstream": dc_id, "quantity": 1.0})
        for _, row in g.iterrows():
            dc_id = f"{item}@{store_dc[row['location']]}"
            stages.append(
                {
                    "stage_id": row["unique_id"],
                    "processing_time": int(row["lead_time"]),
                    "holding_cost": round(per_week * 1.06, 5),
                    "max_service_time": 0.0,
                    "unique_id": row["unique_id"],
                }
            )
            edges.append({"upstream": dc_id, "downstream": row["unique_id"], "quantity": 1.0})
    return pd.DataFrame(stages), pd.DataFrame(edges)


def generate_demo(config: DemoConfig = DemoConfig()) -> DemoData:
    """Generate the demo network, demand, item master and planted truth.

    Parameters
    ----------
    config : DemoConfig
        Sizes and seed; the same config always gives the same tables.

    Returns
    -------
    DemoData
        ``demand`` (unique_id, ds, y; weekly W-MON), ``items`` (item master with
        all five cost types, lead times, review periods, on-hand), ``stages`` and
        ``edges`` (network), ``truth`` (planted process per series).

    Examples
    --------
    >>> demo = generate_demo(DemoConfig(n_items=8, n_weeks=104))
    >>> sorted(demo.truth["process"].unique())[:2]
    ['dead', 'erratic']
    """
    rng = np.random.default_rng(config.seed)
    ds = pd.date_range(config.start, periods=config.n_weeks, freq="W-MON")
    store_dc = _store_dc(config)
    demand, items, truth = _items_and_truth(rng, config, store_dc, ds)
    stages, edges = _network(rng, items, store_dc)
    return DemoData(demand=demand, items=items, stages=stages, edges=edges, truth=truth)


def write_demo(data: DemoData, folder: str | Path) -> dict[str, Path]:
    """Write the demo tables as CSV into ``folder`` (atomically); return their paths."""
    folder = Path(folder)
    paths = {}
    for name in ("demand", "items", "stages", "edges", "truth"):
        paths[name] = write_table_atomic(getattr(data, name), folder / f"{name}.csv")
    return paths


def sample_truth_paths(
    truth: pd.DataFrame, ids, grid: pd.DatetimeIndex, n_paths: int, rng: np.random.Generator
) -> np.ndarray:
    """Fresh demand paths of each series' planted process over the whole period grid.

    Parameters
    ----------
    truth : pandas.DataFrame
        The ``truth`` table of :func:`generate_demo` (or ``truth.csv``).
    ids : sequence of str
        Series, in the order of the result.
    grid : pandas.DatetimeIndex
        Every period of the demo, first to last (the time index of trends and seasons).
    n_paths : int
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (n_paths, n_items, len(grid))
        Zero before a series starts and after its last active period, as in the demo.

    Raises
    ------
    ValueError
        When a series has no truth row.
    """
    t = truth.assign(unique_id=truth["unique_id"].astype(str)).set_index("unique_id")
    ids = [str(i) for i in ids]
    missing = [i for i in ids if i not in t.index]
    if missing:
        raise ValueError(f"{len(missing)} series have no row in the truth table, e.g. {missing[:5]}")
    out = np.zeros((n_paths, len(ids), len(grid)))
    for k, uid in enumerate(ids):
        row = t.loc[uid]
        p = {
            name: row[name]
            for name in (
                "process",
                "p_occur",
                "level",
                "size_mean",
                "season_amp",
                "season_phase",
                "trend_per_year",
                "size_sigma",
                "size_lambda",
            )
        }
        start = grid.searchsorted(pd.Timestamp(row["start_ds"]))
        stop = grid.searchsorted(pd.Timestamp(row["last_active_ds"]), side="right")
        for j in range(n_paths):
            y = _draw(rng, p, float(row["scale"]), len(grid)).astype(float)
            y[:start] = 0.0
            y[stop:] = 0.0
            out[j, k] = y
    return out
