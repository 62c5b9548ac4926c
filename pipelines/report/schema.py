"""The recommendations table (docs/design.md): one row per ``unique_id``.

Every producer (``stockwise demo``, ``recommend``) writes these columns in this
order; columns that a run cannot fill (e.g. MEIO service times without a
network) are present and empty. Yearly costs use the periods per year of the
data frequency.
"""

from __future__ import annotations

import pandas as pd

__all__ = ["RECOMMENDATION_COLUMNS", "PLAN_COLUMNS", "conform_recommendations"]

RECOMMENDATION_COLUMNS: dict[str, str] = {
    "unique_id": "stocking point, item@location",
    "item_id": "item part of unique_id",
    "location": "location part of unique_id",
    "abc": "ABC class by yearly demand value (A = top 80% of value)",
    "xyz": "XYZ class by forecast-error coefficient of variation",
    "sbc_class": "Syntetos-Boylan class: smooth, erratic, intermittent, lumpy",
    "candidate": "chosen (forecaster, distribution, policy) candidate of the policy selector",
    "selected_by": "classifier, or rule (fallback when features are missing or no model is registered)",
    "confidence": "selector's calibrated probability of the chosen candidate",
    "forecaster": "forecasting model whose errors size the policy",
    "policy": "policy type: R_S, R_s_S, s_Q, base_stock, no_stock",
    "review_period": "R, periods between reviews",
    "lead_time": "L, replenishment lead time in periods",
    "reorder_point": "s: order when the inventory position falls to or below it",
    "order_up_to": "S: order up to this inventory position",
    "order_quantity": "Q: fixed order quantity (s, Q policies)",
    "safety_stock": "units held against forecast error over L + R",
    "safety_stock_value": "safety_stock x unit_cost",
    "service_type": "csl or fill_rate",
    "service_target": "target for service_type",
    "service_mode": "which target set the level: item (its own), segment:<column> or portfolio (marginal allocation)",
    "expected_csl": "cycle service level in simulation",
    "expected_fill_rate": "fill rate in simulation",
    "expected_avg_on_hand": "average on-hand units in simulation",
    "expected_holding_cost": "yearly holding cost in simulation",
    "expected_ordering_cost": "yearly ordering cost in simulation",
    "expected_shortage_cost": "yearly shortage cost in simulation",
    "expected_expiry_cost": "yearly cost of expired units in simulation (shelf-life items)",
    "expected_total_cost": "yearly total relevant cost in simulation",
    "service_note": "why the expected service is more than 1 point from the target, or the level was capped (empty: on target)",
    "meio_service_time": "MEIO outbound service time S_j (network runs)",
    "meio_net_replenishment_time": "MEIO tau_j (network runs)",
    "on_hand": "current stock, when given",
    "excess_units": "on_hand above the most the policy holds after ordering: S, or s + Q (stranded stock)",
    "shortfall_units": "safety_stock above on_hand (stock below the buffer)",
    "excess_value": "excess_units x unit_cost",
    "shortfall_value": "shortfall_units x unit_cost",
    "reasons": "main reasons for the choice, in plain sentences",
    "selector": "policy selector used: registered model and version, or the rule",
    "run_id": "MLflow run the recommendation came from",
}


#: ``plan.parquet`` (:func:`policy_selector.phased.phased_plan`, in the order of its ``PLAN_COLUMNS``):
#: one row per (unique_id, future period).
PLAN_COLUMNS: dict[str, str] = {
    "unique_id": "stocking point, item@location",
    "ds": "the future period the levels apply in (first period after the history first)",
    "step": "periods ahead: 1 for the first period after the history",
    "policy": "policy type, as in recommendations.csv",
    "reorder_point": "s in this period: order when the inventory position falls to or below it",
    "order_up_to": "S in this period (s + Q for s_Q, as in recommendations.csv)",
    "forecast": "point forecast of this period's demand by the item's forecaster",
    "exposure_forecast": "forecast over the exposure H starting in this period (L + R, or L + 1 for s_Q and base stock)",
    "safety_stock": "reorder_point - exposure_forecast (>= 0): the sizing's buffer, the same in every period",
    "phased": "true when the item has a trend or season and its levels follow the forecast; else the static levels",
}


def conform_recommendations(df: pd.DataFrame) -> pd.DataFrame:
    """Return ``df`` with exactly the schema's columns, in order (missing ones empty).

    Raises
    ------
    ValueError
        When ``unique_id`` is missing or duplicated, or unknown columns are present.
    """
    if "unique_id" not in df.columns:
        raise ValueError("recommendations need a unique_id column")
    if df["unique_id"].duplicated().any():
        dup = df.loc[df["unique_id"].duplicated(), "unique_id"].tolist()[:10]
        raise ValueError(f"recommendations must have one row per unique_id; repeated: {dup}")
    unknown = sorted(set(df.columns) - set(RECOMMENDATION_COLUMNS))
    if unknown:
        raise ValueError(f"unknown recommendation column(s) {unknown}; add them to RECOMMENDATION_COLUMNS")
    return df.reindex(columns=list(RECOMMENDATION_COLUMNS))
