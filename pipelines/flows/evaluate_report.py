"""What ``stockwise evaluate`` writes and logs, and on the demo the plans' true service.

The run folder's tables (``evaluation.csv``, ``evaluation_ratios.csv``, ``evaluation_items.csv``,
``evaluation_excluded.csv``, ``sizing_choice.csv``), ``evaluation.md``, ``RUN.txt`` and the MLflow
metrics (:func:`_write`); on the demo data, the first plan of each origin replayed on fresh paths of
the planted processes (:func:`_score_truth`). The origins' replay is
:mod:`pipelines.flows.evaluate_origin`'s, the run around it :mod:`pipelines.flows.evaluate`'s (the
front door).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines.data.config import RunConfig
from pipelines.data.demo_data import sample_truth_paths
from pipelines.data.io import read_table, write_table_atomic, write_text_atomic
from policy_selector.decision_eval import (
    BASELINES,
    PHASED_BASELINE,
    equal_service,
    policies_from_table,
    replay,
    replay_phased,
    summarise,
)

TRUTH_PATHS = 200


#: The plans replayed: time-phased levels (the headline) and the same plan with fixed levels.
PLANS = ("stockwise", "stockwise_static")


@dataclass(frozen=True)
class EvaluateResult:
    """Where the evaluation went and its headline numbers."""

    run_dir: Path
    run_id: str
    tracking_uri: str
    metrics: dict[str, float]
    ratios: pd.DataFrame


# --------------------------------------------------------------------------- planted truth (demo)


def _truth(cfg: RunConfig, data) -> pd.DataFrame | None:
    folder = Path(data.files["demand"]).parent
    path = next((folder / f"truth{s}" for s in (".parquet", ".csv") if (folder / f"truth{s}").is_file()), None)
    return None if path is None else read_table(path)


def _score_truth(truth, origin, data, grid, start, settings, rng) -> pd.DataFrame:
    """True expected service of the origin's first plan, time-phased and static: replayed on paths of
    the planted processes (``true_*`` for the phased levels, ``static_true_*`` for the static ones)."""
    econ, plan = origin["econ"], origin["plan"]
    paths = sample_truth_paths(truth, econ.ids, grid, TRUTH_PATHS, rng)[..., start : start + settings.holdout]
    outs = {
        "": replay_phased(paths, [policies_from_table(t, econ) for t in origin["periods"]], econ),
        "static_": replay(paths, [policies_from_table(plan, econ)], econ),
    }
    frame = pd.DataFrame({"unique_id": econ.ids})
    for prefix, out in outs.items():
        demand = out["demand"].sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):  # no planted demand in the window: no service to score
            frame[f"{prefix}true_csl"] = np.where(demand > 0, out["csl"].mean(axis=0), np.nan)
            frame[f"{prefix}true_fill_rate"] = np.where(demand > 0, out["served"].sum(axis=0) / demand, np.nan)
    t = truth.set_index("unique_id")["process"]
    return frame.assign(process=t.reindex(econ.ids).to_numpy())


# --------------------------------------------------------------------------- outputs


def _metrics(summary: pd.DataFrame, ratios: pd.DataFrame, truth: pd.DataFrame | None) -> dict[str, float]:
    """``stockwise.*`` / ``ratio.*``: the time-phased plan (the headline); ``stockwise_static.*`` /
    ``static.ratio.*``: the same plan with fixed levels; ``ratio_static.*``: against the static baselines only."""
    out = {}
    for r in summary[summary["method"].isin(PLANS)].itertuples():
        key = "" if r.segment_kind == "all" else f".{r.segment_kind}.{r.segment}"
        out |= {
            f"{r.method}{key}.{k}": getattr(r, k) for k in ("n_items", "csl", "fill_rate", "inventory_value", "cost")
        }
    for r in ratios.itertuples():
        key = "" if r.segment_kind == "all" else f".{r.segment_kind}.{r.segment}"
        prefix = "" if r.method == "stockwise" else "static."
        out[f"{prefix}ratio.{r.measure}{key}"] = r.ratio
        out[f"{prefix}ratio_static.{r.measure}{key}"] = r.ratio_static
        if r.segment_kind == "all" and r.method == "stockwise":
            out |= {
                f"value_at_{r.measure}.{b}": getattr(r, f"value_{b}")
                for b in (*BASELINES, PHASED_BASELINE)
                if hasattr(r, f"value_{b}")
            }
    if truth is not None and len(truth):
        out |= {f"truth.{k}": v for k, v in _truth_summary(truth).loc["all"].items()}
    return {k: float(v) for k, v in out.items() if v is not None and np.isfinite(float(v))}


def _truth_summary(truth: pd.DataFrame) -> pd.DataFrame:
    """True expected service (of each item's service type) by planted process and overall: time-phased
    levels (``true_service``, ``within_1pt``, ``mean_gap``) and static ones (``static_true_service``)."""
    fill = truth["service_type"].eq("fill_rate")
    t = truth.assign(
        true_service=np.where(fill, truth["true_fill_rate"], truth["true_csl"]),
        static_true_service=np.where(fill, truth["static_true_fill_rate"], truth["static_true_csl"]),
        expected_service=np.where(fill, truth["expected_fill_rate"], truth["expected_csl"]),
    )
    t = t[t["service_type"].isin(["csl", "fill_rate"]) & t["true_service"].notna()]
    t = t.assign(gap=t["true_service"] - t["service_target"])

    def agg(g):
        return pd.Series(
            {
                "n_items": float(len(g)),
                "true_service": g["true_service"].mean(),
                "static_true_service": g["static_true_service"].mean(),
                "expected_service": g["expected_service"].mean(),
                "target": g["service_target"].mean(),
                "within_1pt": (g["gap"].abs() <= 0.01).mean(),
                "mean_gap": g["gap"].mean(),
            }
        )

    by = t.groupby("process").apply(agg, include_groups=False)
    by.loc["all"] = agg(t)
    return by


def _fmt(df: pd.DataFrame, digits: int = 3) -> str:
    """A frame as a markdown table: counts as integers, other numbers rounded, NaN blank."""
    cols = list(df.columns)
    lines = ["| " + " | ".join(map(str, cols)) + " |", "|" + "---|" * len(cols)]
    for row in df.itertuples(index=False):
        cells = [
            ("" if not np.isfinite(v) else f"{v:,.0f}" if c == "n_items" else f"{v:,.{digits}f}")
            if isinstance(v, float)
            else str(v)
            for c, v in zip(cols, row)
        ]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def _markdown(settings, summary, ratios, excluded, truth, selector) -> str:
    spec, selector_name = selector
    mine = summary[summary["method"].isin(PLANS)].drop(columns=["z"])
    head = ratios[
        ["method", "segment_kind", "segment", "measure", "n_items", "service", "inventory_value"]
        + [f"value_{b}" for b in (*BASELINES, PHASED_BASELINE) if f"value_{b}" in ratios.columns]
        + ["best_baseline", "ratio", "ratio_static"]
    ]
    front = summary[(~summary["method"].isin(PLANS)) & (summary["segment_kind"] == "all")]
    parts = [
        "# Decision backtest (stockwise evaluate)",
        "",
        f"Policies recommended by the {selector_name} on the history before each origin, replayed on the "
        f"actual demand of the next {settings.holdout} periods ({settings.origins} origin(s), levels "
        f"{'recomputed every %d periods' % settings.replan if settings.replan else 'fixed over the holdout'}). "
        "Baselines: textbook mu(L+R) + z sigma sqrt(L+R); AutoETS / CrostonSBA forecast over L+R + z RMSE of "
        "backtested cumulative errors; AutoETS_phased the same with the forecast over each period's own "
        "L+R (time-phased); each swept over z. `stockwise`: levels time-phased for items with a trend or "
        "season (policy_selector.phased), `stockwise_static`: the same plan with fixed levels. Ratio = "
        "inventory value / the best baseline's value at the same achieved service (read off its frontier; "
        "blank when outside it); ratio_static: against the best static baseline only.",
        "",
        f"Decision path: `--selector {spec}` ({selector_name}).",
        "",
        "## Headline",
        "",
        _fmt(head),
        "",
        "## Stockwise achieved, by segment",
        "",
        _fmt(mine),
        "",
        "## Baseline frontiers (whole portfolio)",
        "",
        _fmt(front.drop(columns=["segment_kind", "segment"])),
        "",
        f"## Excluded items: {len(excluded)}",
        "",
    ]
    if len(excluded):
        parts += [_fmt(excluded.groupby("reason").size().rename("items").reset_index()), ""]
    if truth is not None and len(truth):
        parts += [
            "## Against the planted truth (demo)",
            "",
            f"True expected service (CSL or fill rate, each item's own type) of the first plan of each origin "
            f"over {TRUTH_PATHS} fresh paths of the item's planted process, against the plan's own expected "
            "service; within_1pt = share of items within 1 point of their target.",
            "",
            _fmt(_truth_summary(truth).reset_index()),
            "",
        ]
    return "\n".join(parts)


def _write(staging, final, run, settings, rows, items, excluded, truth, selector, sizing=None) -> EvaluateResult:
    """Tables, evaluation.md, metrics and RUN.txt; ``selector`` = (decision path as asked, its name);
    ``sizing``: the default path's buffer choice per segment at each origin (sizing_choice.csv, as recommend's)."""
    if truth is not None:
        truth = truth.merge(
            items[["origin", "unique_id", "service_type", "service_target", "expected_csl", "expected_fill_rate"]],
            on=["origin", "unique_id"],
        )
        items = items.merge(
            truth[
                ["origin", "unique_id", "true_csl", "true_fill_rate", "static_true_csl", "static_true_fill_rate"]
            ].merge(truth[["origin", "unique_id", "process"]], on=["origin", "unique_id"]),
            on=["origin", "unique_id"],
            how="left",
        )
    segments = items[["origin", "unique_id", "sbc_class", "abc", "phased"] + (["process"] if truth is not None else [])]
    summary = summarise(rows, segments)
    ratios = pd.concat([equal_service(summary, m).assign(method=m) for m in PLANS], ignore_index=True)
    ratios = ratios[["method"] + [c for c in ratios.columns if c != "method"]]
    paths = [
        write_table_atomic(summary, staging / "evaluation.csv"),
        write_table_atomic(ratios, staging / "evaluation_ratios.csv"),
        write_table_atomic(items, staging / "evaluation_items.csv"),
        write_text_atomic(_markdown(settings, summary, ratios, excluded, truth, selector), staging / "evaluation.md"),
    ]
    if len(excluded):
        paths.append(write_table_atomic(excluded, staging / "evaluation_excluded.csv"))
    if sizing is not None:
        paths.append(write_table_atomic(sizing, staging / "sizing_choice.csv"))
    metrics = _metrics(summary, ratios, truth) | {"n_excluded": float(len(excluded))}
    run.log_metrics(metrics)
    for p in paths:
        run.log_artifact(p)
    write_text_atomic(
        f"run_id: {run.run_id}\ntracking_uri: {run.tracking_uri}\nselector: {selector[1]}\n", staging / "RUN.txt"
    )
    return EvaluateResult(
        run_dir=final, run_id=run.run_id, tracking_uri=run.tracking_uri, metrics=metrics, ratios=ratios
    )
