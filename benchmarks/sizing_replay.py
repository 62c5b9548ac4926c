"""Held-out replay of the default recommendation path against simple baselines (issue 12, part 2).

Run: ``PYTHONPATH=$PWD .venv/bin/python -m benchmarks.sizing_replay [--sample 400] [--seed 7]``

carparts (Hyndman, monthly): the complete series (2,509), optionally a seeded
sample. The last ``--holdout`` months are held out; ``recommend_policies`` with
the default path (SBC rule, no trained selector) recommends on the history
before them, and each item's policy is replayed with the simulator on the
actual held-out demand (L = 1, R = 1, target CSL 0.95, order cost 0, unit cost
1 so inventory value = units on hand). The same replay is run for the
baselines, each swept over z to trace its service-inventory frontier:

- textbook: mean (L+R) + z sigma sqrt(L+R) on the demand history;
- AutoETS / CrostonSBA forecast over L+R + z RMSE of its backtest cumulative
  errors over L+R (the backtest ``recommend`` itself runs).

Headline: inventory of the recommendation / the best baseline's inventory at
the same achieved CSL (linear interpolation along each frontier). Achieved CSL
is the mean over items of the share of review cycles without a stockout.
Also prints the recommendation's own expected CSL (its bootstrap simulation)
and how many stocked items are more than 1 point off target without a reason.
"""

from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from optimization import mixed_policies, r_s_policy, simulate
from policy_selector import SelectorConfig
from policy_selector import recommend as recommend_module
from policy_selector.recommend import recommend_policies

ROOT = Path(__file__).resolve().parents[1]
CARPARTS = ROOT.parent / "shared" / "data" / "carparts" / "carparts.parquet"
Z_GRID = np.linspace(0.0, 3.5, 36)


def carparts(sample: int, seed: int) -> pd.DataFrame:
    """Complete carparts series, a seeded sample of them when ``sample`` > 0."""
    df = pd.read_parquet(CARPARTS)
    complete = df.groupby("unique_id")["y"].apply(lambda s: s.notna().all())
    ids = np.sort(complete.index[complete].to_numpy())
    if sample and sample < len(ids):
        ids = np.sort(np.random.default_rng(seed).choice(ids, sample, replace=False))
    return df[df["unique_id"].isin(ids)].reset_index(drop=True)


def item_master(ids, target: float, lead_time: int) -> pd.DataFrame:
    """Order cost 0, unit cost 1, CSL target, L and R = 1 (the issue's economics)."""
    return pd.DataFrame(
        {
            "unique_id": ids,
            "unit_cost": 1.0,
            "holding_rate": 0.25,
            "order_cost": 0.0,
            "service_target": target,
            "service_type": "csl",
            "lead_time": lead_time,
            "review_period": 1,
        }
    )


def replay(actual: np.ndarray, policy, lead_time: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per-item achieved CSL, fill rate and average on-hand on the held-out demand."""
    res = simulate(actual, policy, lead_time)
    return res.csl, res.fill_rate, res.avg_on_hand


def frontier(actual, levels: np.ndarray, lead_time: int) -> pd.DataFrame:
    """Achieved CSL and inventory of (R=1, S) for each row of ``levels`` (z x items)."""
    rows = []
    for z, S in zip(Z_GRID, levels):
        csl, fill, oh = replay(actual, r_s_policy(np.ones(len(S), int), np.ceil(np.maximum(S, 0.0))), lead_time)
        rows.append({"z": z, "csl": np.nanmean(csl), "fill": np.nanmean(fill), "inventory": oh.sum()})
    return pd.DataFrame(rows)


def at_csl(front: pd.DataFrame, csl: float) -> float:
    """Inventory of a frontier at an achieved CSL (interpolated; NaN outside its range)."""
    f = front.sort_values("csl").drop_duplicates("csl")
    if csl < f["csl"].min() or csl > f["csl"].max():
        return np.nan
    return float(np.interp(csl, f["csl"], f["inventory"]))


def baselines(history: np.ndarray, data, H: int) -> dict[str, np.ndarray]:
    """Order-up-to levels (z x items) of the textbook and forecast + z RMSE baselines.

    ``data`` is the CutoffData recommend ran on: its backtest gives the RMSE of each
    model's cumulative H-period errors, its forecasts the centre.
    """
    mean, sd = history.mean(axis=1), history.std(axis=1, ddof=1)
    out = {"textbook": mean * H + Z_GRID[:, None] * sd * np.sqrt(H)}
    cv = data.cv.sort_values(["unique_id", "cutoff", "ds"])
    first = cv.groupby(["unique_id", "cutoff"]).head(H)
    for model in ("AutoETS", "CrostonSBA"):
        err = (first["y"] - first[model]).groupby([first["unique_id"], first["cutoff"]]).sum()
        rmse = np.sqrt((err**2).groupby(level=0).mean()).reindex(data.ids).to_numpy()
        out[model] = data.cum_forecast[model][:, H - 1][None, :] + Z_GRID[:, None] * np.nan_to_num(rmse)[None, :]
    return out


def note_kind(note: str) -> str:
    """Category of a service note for the summary line."""
    if note.startswith("whole units"):
        return "whole units"
    if note.startswith("expected"):
        return "forecast vs last year's demand"
    return note.split(":")[0][:40]


def run(sample: int, seed: int, holdout: int, lead_time: int, target: float) -> dict:
    demand = carparts(sample, seed)
    dates = np.sort(demand["ds"].unique())
    cutoff = pd.Timestamp(dates[-holdout - 1])
    hist = demand[demand["ds"] <= cutoff]
    ids = np.sort(demand["unique_id"].unique())
    items = item_master(ids, target, lead_time)
    t0 = time.perf_counter()
    kept = {}
    original = recommend_module.prepare_cutoff
    recommend_module.prepare_cutoff = lambda *args, **kw: kept.setdefault("data", original(*args, **kw))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            rec = recommend_policies(None, hist, items, SelectorConfig(freq="MS"), np.random.default_rng(seed))
    finally:
        recommend_module.prepare_cutoff = original
    secs = time.perf_counter() - t0
    rec = rec.set_index("unique_id").loc[ids]
    wide = demand.pivot(index="unique_id", columns="ds", values="y").loc[ids]
    actual, history = wide.iloc[:, -holdout:].to_numpy(), wide.iloc[:, :-holdout].to_numpy()
    policy = mixed_policies(
        rec["policy"].to_numpy(),
        review_period=rec["review_period"].to_numpy(),
        reorder_level=rec["reorder_point"].fillna(0).to_numpy(),
        order_up_to=rec["order_up_to"].fillna(0).to_numpy(),
        order_quantity=rec["order_quantity"].fillna(0).to_numpy(),
    )
    csl, fill, oh = replay(actual, policy, lead_time)
    return {
        "rec": rec,
        "csl": csl,
        "fill": fill,
        "oh": oh,
        "actual": actual,
        "history": history,
        "ids": ids,
        "secs": secs,
        "cutoff": cutoff,
        "data": kept["data"],
    }


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sample", type=int, default=400)
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--holdout", type=int, default=12)
    ap.add_argument("--lead-time", type=int, default=1)
    ap.add_argument("--target", type=float, default=0.95)
    a = ap.parse_args()
    r = run(a.sample, a.seed, a.holdout, a.lead_time, a.target)
    H = a.lead_time + 1
    data = r["data"]  # the backtest recommend ran
    if not np.array_equal(data.ids, r["ids"]):
        raise RuntimeError("recommend's series differ from the replayed ones; complete series only")
    fronts = {k: frontier(r["actual"], v, a.lead_time) for k, v in baselines(r["history"], data, H).items()}
    rec, csl = r["rec"], float(np.nanmean(r["csl"]))
    inv = float(r["oh"].sum())
    best = {k: at_csl(f, csl) for k, f in fronts.items()}
    stocked = rec["order_up_to"].fillna(0).to_numpy() > 0
    off = np.abs(rec["expected_csl"].to_numpy() - rec["service_target"].to_numpy()) > 0.01
    note = rec["service_note"].fillna("") if "service_note" in rec else pd.Series("", index=rec.index)
    reason = note.ne("").to_numpy()
    kinds = note[off & stocked].map(note_kind).value_counts()
    hmax = pd.DataFrame(r["history"]).T.rolling(H).sum().max().to_numpy()
    n_zero = int(((rec["order_up_to"].fillna(0) <= 0) & (r["history"].sum(1) > 0)).sum())
    n_high = int((rec["order_up_to"].fillna(0).to_numpy() > 3 * hmax).sum())
    lines = [
        (
            f"carparts sample {len(r['ids'])} (seed {a.seed}), holdout {a.holdout}, L={a.lead_time}, R=1, "
            f"target {a.target}, recommend {r['secs']:.0f}s"
        ),
        f"achieved CSL {csl:.3f}  fill {np.nanmean(r['fill']):.3f}  inventory {inv:.0f}",
        (
            f"own expected CSL mean {rec['expected_csl'].mean():.3f} median {rec['expected_csl'].median():.3f}; "
            f"stocked items >1pt off target: {int((off & stocked).sum())} of {int(stocked.sum())}, "
            f"without reason {int((off & stocked & ~reason).sum())}; reasons {kinds.to_dict()}"
        ),
        f"S = 0 with sales in history: {n_zero}; S > 3x largest (L+R) demand: {n_high}",
        f"forecasters {rec['forecaster'].value_counts().to_dict()}",
    ]
    for k, f in fronts.items():
        lines.append(
            f"{k:10s} inventory at CSL {csl:.3f}: {best[k]:.0f}  ratio {inv / best[k]:.3f}  "
            f"(frontier CSL {f['csl'].min():.3f}-{f['csl'].max():.3f})"
        )
    print("\n".join(lines))


if __name__ == "__main__":
    main()
