"""Refresh triggers: planted changes are found, stationary data rarely raises a flag."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from pipelines.flows.triggers import (
    TriggerConfig,
    demand_shift,
    detect_triggers,
    error_growth,
    lead_time_change,
    service_drift,
)
from tests.conftest import make_panel


def _shifted(panel: pd.DataFrame, factor: float, last: int = 13, ids=None) -> pd.DataFrame:
    """Multiply the last ``last`` periods of the chosen series by ``factor`` (a new copy)."""
    out = panel.copy()
    pos = out.groupby("unique_id").cumcount(ascending=False)
    chosen = out["unique_id"].isin(ids if ids is not None else out["unique_id"].unique())
    rng = np.random.default_rng(11)
    mask = (pos < last) & chosen
    out.loc[mask, "y"] = rng.poisson(out.loc[mask, "y"] * factor + 1e-9).astype(float)
    return out


def test_planted_level_shifts_are_found_up_and_down():
    panel = make_panel(n_series=10, length=104, kind="smooth", seed=1)
    ids = sorted(panel["unique_id"].unique())
    moved = _shifted(_shifted(panel, 1.6, ids=ids[:3]), 0.4, ids=ids[3:5])
    flags = demand_shift(moved)
    assert sorted(flags["unique_id"]) == ids[:5]
    up = flags.set_index("unique_id").loc[ids[0]]
    assert up["statistic"] > 3 and "demand level up" in up["reason"]
    assert "demand level down" in flags.set_index("unique_id").loc[ids[4], "reason"]


def test_dead_item_is_a_level_shift():
    panel = make_panel(n_series=2, length=80, kind="smooth", seed=2)
    dead = panel.copy()
    dead.loc[(dead["unique_id"] == "S000") & (dead.groupby("unique_id").cumcount(ascending=False) < 13), "y"] = 0.0
    assert demand_shift(dead)["unique_id"].tolist() == ["S000"]


@pytest.mark.parametrize("kind", ["smooth", "intermittent"])
def test_false_positive_rate_on_stationary_data_is_below_2pct(kind):
    # 400 stationary series -> stated rate < 2 % (seasonal series are out of scope: see the module doc)
    panel = pd.concat(
        [
            make_panel(n_series=40, length=104, kind=kind, seed=s).assign(
                unique_id=lambda d, s=s: d["unique_id"] + f"-{s}"
            )
            for s in range(10)
        ]
    )
    flags = demand_shift(panel)
    rate = len(flags) / flags.attrs["n_tested"]
    assert flags.attrs["n_tested"] == 400
    assert rate <= 0.02, f"{kind}: {rate:.3f} of stationary series flagged"


def test_short_history_is_not_tested():
    panel = make_panel(n_series=3, length=30, seed=3)
    flags = demand_shift(panel)
    assert flags.empty and flags.attrs["n_tested"] == 0


def _realised_forecasts(scale_recent: float, seed: int = 4) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    rows = []
    for uid, noise in (("A", 2.0), ("B", 2.0)):
        y = 20 + rng.normal(0, noise, 26)
        if uid == "A":
            y[-13:] = 20 + rng.normal(0, noise * scale_recent, 13)
        rows.append(
            pd.DataFrame(
                {
                    "unique_id": uid,
                    "ds": pd.date_range("2024-01-01", periods=26, freq="W-MON"),
                    "y": y,
                    "forecast": 20.0,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def test_growing_error_is_flagged_and_stable_error_is_not():
    backtest = pd.DataFrame({"unique_id": ["A", "B"], "mae": [2.0 * np.sqrt(2 / np.pi)] * 2})
    flags = error_growth(_realised_forecasts(3.0), backtest)
    assert flags["unique_id"].tolist() == ["A"]
    assert flags["statistic"].iloc[0] > 1.5 and "forecast error grew" in flags["reason"].iloc[0]
    assert error_growth(_realised_forecasts(1.0), backtest).empty


def test_lead_time_change_respects_both_tolerances():
    items = pd.DataFrame({"unique_id": list("ABCD"), "lead_time": [2, 3, 10, 11]})
    recs = pd.DataFrame({"unique_id": list("ABCD"), "lead_time": [2, 2, 10, 10]})
    flags = lead_time_change(items, recs, TriggerConfig(lead_time_abs=1, lead_time_rel=0.2))
    assert flags["unique_id"].tolist() == ["B"]  # +1 on 10 is under 20 %
    assert "from 2 to 3" in flags["reason"].iloc[0]


def test_service_drift_uses_each_items_service_type():
    ds = pd.date_range("2024-01-01", periods=13, freq="W-MON")
    y = np.full(13, 10.0)
    realised = pd.concat(
        [
            pd.DataFrame({"unique_id": "FR", "ds": ds, "y": y, "served": np.r_[np.full(10, 10.0), [5, 5, 5]]}),
            pd.DataFrame({"unique_id": "CSL", "ds": ds, "y": y, "served": np.r_[np.full(11, 10.0), [9.9, 9.9]]}),
            pd.DataFrame({"unique_id": "OK", "ds": ds, "y": y, "served": y}),
        ]
    )
    recs = pd.DataFrame(
        {
            "unique_id": ["FR", "CSL", "OK"],
            "service_type": ["fill_rate", "csl", "csl"],
            "service_target": [0.98, 0.95, 0.95],
        }
    )
    flags = service_drift(realised, recs).set_index("unique_id")
    assert sorted(flags.index) == ["CSL", "FR"]
    assert flags.loc["FR", "statistic"] == pytest.approx(0.98 - 115 / 130)
    assert flags.loc["CSL", "statistic"] == pytest.approx(0.95 - 11 / 13)


def test_detect_triggers_merges_reasons_per_item():
    panel = make_panel(n_series=4, length=80, seed=5)
    moved = _shifted(panel, 2.0, ids=["S001"])
    items = pd.DataFrame({"unique_id": ["S000", "S001", "S002", "S003"], "lead_time": [1, 5, 1, 1]})
    recs = items.assign(lead_time=1)
    out = detect_triggers(history=moved, items=items, recommendations=recs)
    assert out["unique_id"].tolist() == ["S001"]
    assert out["triggers"].iloc[0] == "demand_shift, lead_time_change" and out["n_triggers"].iloc[0] == 2
    assert out.attrs["detectors"] == ["demand_shift", "lead_time_change"]
    assert detect_triggers().empty


def test_missing_columns_and_bad_config_are_named():
    with pytest.raises(ValueError, match=r"missing \['y'\]"):
        demand_shift(pd.DataFrame({"unique_id": ["A"], "ds": [1]}))
    with pytest.raises(ValueError, match="error_ratio"):
        TriggerConfig(error_ratio=0.9)


def test_an_input_without_its_partner_is_an_error():
    panel = make_panel(n_series=2, length=80, seed=5)
    with pytest.raises(ValueError, match="service_drift trigger needs recommendations"):
        detect_triggers(history=panel, realised=panel)
    with pytest.raises(ValueError, match="needs both forecast_errors and backtest_errors"):
        detect_triggers(forecast_errors=panel)


def test_history_shorter_than_the_windows_flags_nothing():
    out = detect_triggers(history=make_panel(n_series=2, length=10, seed=1))
    assert out.empty
