"""Efficient-frontier plots (PNG with matplotlib, interactive HTML with plotly).

The computation is :func:`optimization.efficient_frontier`; this module only
draws and writes files (atomically). ``python -m pipelines.report.frontier_plot --out DIR``
builds the frontier of the built-in demo data: per item an (R, S) policy sized
from the training weeks (normal over H = L + R with the mu_d^2 sigma_L^2 term),
replayed on the last 26 weeks for a sweep of CSL targets, by demand process.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from optimization import (
    CostParams,
    ServiceTarget,
    efficient_frontier,
    horizon_normal,
    size_policy,
    summarise_frontier,
)
from pipelines.data.io import atomic_path, write_table_atomic

__all__ = ["write_frontier_plots", "demo_frontier"]

TARGETS = (0.5, 0.7, 0.8, 0.85, 0.9, 0.95, 0.97, 0.98, 0.99, 0.995)


def write_frontier_plots(
    summary: pd.DataFrame,
    out_dir: str | Path,
    *,
    by: str | None = "segment",
    service: str = "fill_rate",
    stem: str = "frontier",
) -> dict[str, Path]:
    """Write ``<stem>.png`` and ``<stem>.html``: inventory value vs achieved service, one curve per group.

    Parameters
    ----------
    summary : output of :func:`optimization.summarise_frontier` (``by`` column optional)
    out_dir : folder (created)
    by : grouping column, None for a single curve
    service : ``fill_rate`` or ``csl`` on the y axis

    Returns
    -------
    dict with keys ``png`` and ``html``.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import plotly.graph_objects as go

    needed = {"target", "inventory_value", "cost_total", service} | ({by} if by else set())
    missing = needed - set(summary.columns)
    if missing:
        raise ValueError(f"frontier summary lacks columns {sorted(missing)}; pass summarise_frontier output")
    groups = [("total", summary)] if by is None else list(summary.groupby(by, sort=True))
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)

    fig, ax = plt.subplots(figsize=(8, 5))
    for name, g in groups:
        ax.plot(g["inventory_value"], g[service], marker="o", label=str(name))
    ax.set_xlabel("average inventory value")
    ax.set_ylabel(f"achieved {service.replace('_', ' ')}")
    ax.set_title("Efficient frontier: inventory investment vs service")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    png = out_dir / f"{stem}.png"
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)

    figure = go.Figure()
    for name, g in groups:
        hover = [f"target {t:.3f}<br>cost {c:,.0f}" for t, c in zip(g["target"], g["cost_total"])]
        figure.add_trace(
            go.Scatter(
                x=g["inventory_value"],
                y=g[service],
                mode="lines+markers",
                name=str(name),
                text=hover,
                hovertemplate="%{text}<br>value %{x:,.0f}<br>service %{y:.3f}",
            )
        )
    figure.update_layout(
        title="Efficient frontier",
        xaxis_title="average inventory value",
        yaxis_title=f"achieved {service.replace('_', ' ')}",
    )
    html = out_dir / f"{stem}.html"
    with atomic_path(html) as tmp:
        figure.write_html(tmp, include_plotlyjs=True, full_html=True)
    return {"png": png, "html": html}


def demo_frontier(out_dir: str | Path, targets=TARGETS, test_weeks: int = 26) -> dict[str, Path]:
    """Frontier of the demo data by planted demand process; writes CSVs and plots."""
    from pipelines.data.demo_data import generate_demo

    demo = generate_demo()
    wide = demo.demand.pivot(index="unique_id", columns="ds", values="y").fillna(0.0)
    items = demo.items.set_index("unique_id").loc[wide.index]
    segment = demo.truth.set_index("unique_id").loc[wide.index, "process"].to_numpy()
    train, test = wide.iloc[:, :-test_weeks].to_numpy(), wide.iloc[:, -test_weeks:].to_numpy()
    mu, sd = train.mean(axis=1), train.std(axis=1, ddof=1)
    lead = items["lead_time"].to_numpy(int)
    review = items["review_period"].to_numpy(int)
    dist = horizon_normal(mu, sd, lead + review, items["lead_time_std"].to_numpy())
    holding = items["unit_cost"].to_numpy() * items["holding_rate"].to_numpy() / 52

    def size(target: float):
        return size_policy("R_S", dist, ServiceTarget("csl", target), demand_rate=mu, review_period=review)

    costs = CostParams(
        unit_cost=items["unit_cost"].to_numpy(),
        order_cost=items["order_cost"].to_numpy(),
        holding_cost=holding,
        shortage_cost=items["shortage_cost"].to_numpy(),
    )
    frame = efficient_frontier(test, size, targets, lead, costs=costs, unique_id=wide.index, segment=segment)
    out_dir = Path(out_dir)
    by_segment, total = summarise_frontier(frame), summarise_frontier(frame, by=None)
    paths = {
        "items": write_table_atomic(frame, out_dir / "frontier_items.csv"),
        "segments": write_table_atomic(by_segment, out_dir / "frontier_segments.csv"),
        "total": write_table_atomic(total, out_dir / "frontier_total.csv"),
    }
    paths |= write_frontier_plots(by_segment, out_dir)
    paths |= {f"total_{k}": v for k, v in write_frontier_plots(total, out_dir, by=None, stem="frontier_total").items()}
    return paths


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Efficient frontier of the demo data (PNG + HTML).")
    parser.add_argument("--out", required=True, help="output folder")
    for key, path in demo_frontier(parser.parse_args().out).items():
        print(f"{key}: {path}")
