"""Study windows from the history length, and the first-champion gate (pure decisions with reasons)."""

from __future__ import annotations

import pandas as pd
import pytest

from policy_selector import gate, plan_study


def test_plan_fits_the_history_it_is_given():
    carparts = plan_study(51, 12)  # 51 months: the old default (26) needed 60+
    assert (carparts.test_periods, carparts.n_windows, carparts.extra_train_cutoffs) == (12, 8, 2)
    assert carparts.reason.startswith("51 periods: chose test_periods=12")
    assert plan_study(39, 52).test_periods == 9
    assert plan_study(182, 52).test_periods == 26  # capped at half a year of weeks
    fixed = plan_study(80, 52, test_periods=10, n_windows=4, extra_train_cutoffs=1)
    assert (fixed.test_periods, fixed.n_windows, fixed.extra_train_cutoffs) == (10, 4, 1)
    assert "all windows given" in fixed.reason


def test_plan_errors_only_when_nothing_can_be_learned():
    assert plan_study(12, 52).test_periods == 1
    with pytest.raises(ValueError, match="nothing can be learned: give at least 12 periods"):
        plan_study(11, 52)
    with pytest.raises(ValueError, match="lower test_periods to at most 14"):
        plan_study(39, 52, test_periods=26)


def _evaluation(classifier: float, best_single: float, default: float, service_drop: float = 0.0):
    rows = []
    for split in ("held_out_items", "held_out_time"):
        for method, cost in (("classifier", classifier), ("best_single", best_single), ("default", default)):
            rows.append(
                {
                    "split": split,
                    "method": method,
                    "controllable_cost": cost,
                    "mean_service": 0.95 - (service_drop if method == "classifier" else 0.0),
                }
            )
    return pd.DataFrame(rows)


def test_gate_promotes_only_a_classifier_that_beats_every_baseline_by_the_margin():
    action, why = gate(_evaluation(90.0, 100.0, 120.0), margin=0.02, max_service_drop=0.005)
    assert action == "promote" and "held_out_time vs best_single: controllable cost +10.0%" in why
    action, why = gate(_evaluation(99.0, 100.0, 120.0), margin=0.02, max_service_drop=0.005)
    assert action == "keep" and "vs best_single: controllable cost +1.0%" in why and "vs default" not in why
    action, why = gate(_evaluation(80.0, 100.0, 120.0, service_drop=0.05), margin=0.02, max_service_drop=0.005)
    assert action == "keep" and "service -0.0500" in why


def test_gate_needs_a_classifier_row():
    with pytest.raises(ValueError, match="no 'classifier' row"):
        gate(_evaluation(90, 100, 120).query("method != 'classifier'"), 0.02, 0.005)
