"""Plain-sentence reasons for a policy choice, from feature contributions.

Each feature has one sentence template that shows the item's own value
("intermittent: one demand every 4.2 weeks on average"). The classifier
passes the features with the largest positive contribution to the chosen
class (LightGBM ``pred_contrib``, i.e. TreeSHAP values; Lundberg et al. 2020);
the rule passes the features the rule looked at.

References
----------
Lundberg, S. M. et al. (2020). From local explanations to global understanding
with explainable AI for trees. *Nature Machine Intelligence* 2, 56-67.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from forecasting.characterise import ADI_CUTOFF, CV2_CUTOFF

__all__ = ["sentence", "render_reasons", "value_band"]


def value_band(value: float, bands: tuple[float, float] | None) -> str:
    """'low', 'medium' or 'high' against (33 %, 67 %) quantiles seen in training."""
    if bands is None or not np.isfinite(value):
        return "medium"
    return "low" if value <= bands[0] else ("high" if value >= bands[1] else "medium")


def _plural(x: float, unit: str) -> str:
    return unit if abs(x - 1.0) < 1e-9 else unit + "s"


_SBC = {0: "smooth", 1: "erratic", 2: "intermittent", 3: "lumpy", 4: "no demand"}

_TEMPLATES: dict[str, Callable[[float, str, dict], str]] = {
    "adi": lambda v, u, b: (
        f"intermittent: one demand every {v:.1f} {_plural(v, u)} on average"
        if v >= ADI_CUTOFF
        else f"regular demand: demand in {100 / v:.0f}% of {u}s"
    ),
    "cv2": lambda v, u, b: f"{'erratic' if v >= CV2_CUTOFF else 'stable'} demand sizes (CV² {v:.2f})",
    "sbc_code": lambda v, u, b: f"Syntetos-Boylan class {_SBC.get(int(v), 'unknown')}",
    "zero_share": lambda v, u, b: f"{100 * v:.0f}% of {u}s without demand",
    "mean_demand": lambda v, u, b: f"average demand {v:.1f} units per {u}",
    "demand_cv": lambda v, u, b: f"demand variability (CV) {v:.2f}",
    "recent_level": lambda v, u, b: f"recent demand at {100 * v:.0f}% of its long-run level",
    "since_last_demand": lambda v, u, b: f"last demand {v:.0f} {_plural(v, u)} ago",
    "trend_strength": lambda v, u, b: f"{'strong' if v >= 0.5 else 'weak'} trend ({v:.2f})",
    "unit_cost": lambda v, u, b: f"{value_band(v, b.get('unit_cost'))} unit cost ({v:,.2f})",
    "value_per_year": lambda v, u, b: f"{value_band(v, b.get('value_per_year'))} value ({v:,.0f} of demand per year)",
    "holding_cost": lambda v, u, b: f"holding cost {v:.3g} per unit per {u}",
    "eoq_cover": lambda v, u, b: f"an economic order covers {v:.1f} {_plural(v, u)} of demand",
    "critical_ratio": lambda v, u, b: f"shortage vs holding cost gives a critical ratio of {v:.3f}",
    "service_target": lambda v, u, b: f"service target {100 * v:.0f}%",
    "fill_rate_target": lambda v, u, b: "target set as fill rate" if v >= 0.5 else "target set as cycle service level",
    "lead_time": lambda v, u, b: f"lead time {v:g} {_plural(v, u)}",
    "lead_time_std": lambda v, u, b: f"lead time varies by ±{v:g} {_plural(v, u)}" if v > 0 else "reliable lead time",
    "review_period": lambda v, u, b: f"reviewed every {v:g} {_plural(v, u)}",
    "moq_cover": lambda v, u, b: f"minimum order covers {v:.1f} {_plural(v, u)} of demand",
    "lost_sales": lambda v, u, b: "unmet demand is lost" if v >= 0.5 else "unmet demand is backordered",
    "shelf_life": lambda v, u, b: f"shelf life {v:g} {_plural(v, u)}",
    "n_periods": lambda v, u, b: f"{v:.0f} {_plural(v, u)} of history",
}


def sentence(feature: str, value: float, unit: str = "period", bands: dict | None = None) -> str:
    """One plain sentence about ``feature`` taking ``value``.

    Examples
    --------
    >>> sentence("adi", 4.2, "week")
    'intermittent: one demand every 4.2 weeks on average'
    >>> sentence("lead_time", 6, "week")
    'lead time 6 weeks'
    """
    bands = bands or {}
    if value is None or not np.isfinite(value):
        return f"{feature.replace('_', ' ')} unknown"
    if feature.startswith("smae_"):
        return f"{feature[5:]} backtest error {value:.2f} x the naive error"
    if feature.startswith("sbias_"):
        return f"{feature[6:]} backtest bias {value:+.2f} (scaled)"
    template = _TEMPLATES.get(feature)
    return template(float(value), unit, bands) if template else f"{feature.replace('_', ' ')} = {value:.3g}"


def render_reasons(
    head: str, features: list[str], values: list[float], unit: str = "period", bands: dict | None = None
) -> str:
    """``"head: sentence; sentence; sentence"`` for the given features and values."""
    parts = [sentence(f, v, unit, bands) for f, v in zip(features, values)]
    return f"{head}: " + "; ".join(parts) if parts else head
