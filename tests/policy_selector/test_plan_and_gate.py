"""Study windows from the history length, the first-champion gates (labels, decision replay): pure decisions."""

from __future__ import annotations

import pandas as pd
import pytest

from policy_selector import gate, plan_study
from policy_selector.evaluation import replay_gate
from policy_selector.workflow import most_gate_origins, plan_gate_origins


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


def test_the_replay_gate_takes_the_origins_the_history_holds():
    """Each origin T apart needs MIN_HISTORY periods before its own first training cutoff."""
    carparts, weeks39, demo = plan_study(51, 12), plan_study(39, 52), plan_study(182, 52)
    assert [most_gate_origins(p) for p in (carparts, weeks39, demo)] == [2, 2, 5]
    assert most_gate_origins(plan_study(39, 52, test_periods=14)) == 1  # c1 at period 11: no room for T more
    n, why = plan_gate_origins(demo, None, auto=3)
    assert n == 3 and why == "replay gate over 3 origin(s) 26 periods apart (chose: default 3, the history holds 5)"
    assert plan_gate_origins(weeks39, None, auto=3)[0] == 2  # the default capped by the history
    assert plan_gate_origins(carparts, 2, auto=1) == (2, "replay gate over 2 origin(s) 12 periods apart (given)")
    with pytest.raises(ValueError, match="51 periods hold at most 2 replay origin.*lower gate_origins to 2"):
        plan_gate_origins(carparts, 3, auto=1)


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


def _replay(**paths: tuple[float, float, float]) -> pd.DataFrame:
    """Replay scores: path -> (yearly_cost, csl, ratio_csl)."""
    return pd.DataFrame.from_dict(paths, orient="index", columns=["yearly_cost", "csl", "ratio_csl"])


def test_replay_gate_keeps_the_packaged_default_unless_a_path_beats_it_by_the_margin():
    scores = _replay(
        packaged=(1000.0, 0.950, 1.00),
        best_single=(990.0, 0.950, 1.20),
        sbc_rule=(900.0, 0.930, 0.80),
        classifier=(995.0, 0.952, 0.95),
    )  # best single: only 1 % cheaper; SBC rule: 10 % cheaper but CSL 0.02 lower
    d = replay_gate(scores, margin=0.02, max_service_drop=0.005)
    assert d.default == "packaged" and not d.promote
    assert "no path beats 'packaged'" in d.reason
    assert "best_single vs packaged: yearly cost 990 vs 1,000 (-1.0%), CSL 0.950 vs 0.950" in d.reason
    assert "inventory at equal CSL 1.200x" in d.reason and "sbc_rule vs packaged" in d.reason


def test_replay_gate_takes_the_cheapest_winner_and_promotes_a_classifier_that_beats_it_and_the_best_single():
    scores = _replay(
        packaged=(1000.0, 0.950, 1.00),
        best_single=(950.0, 0.951, 0.95),
        sbc_rule=(900.0, 0.948, 0.90),
        classifier=(870.0, 0.950, 0.85),
    )
    d = replay_gate(scores, margin=0.02, max_service_drop=0.005)
    assert d.default == "sbc_rule" and d.promote  # both fixed paths beat packaged; the SBC rule is cheaper
    assert "classifier vs sbc_rule: yearly cost 870 vs 900 (-3.3%)" in d.reason
    assert "classifier vs best_single: yearly cost 870 vs 950 (-8.4%)" in d.reason
    # 2 % cheaper than the SBC rule is not enough at a 5 % margin; the service drop counts too
    assert not replay_gate(scores, margin=0.05, max_service_drop=0.005).promote
    lower = scores.assign(csl=[0.950, 0.951, 0.948, 0.940])
    assert not replay_gate(lower, margin=0.02, max_service_drop=0.005).promote


def test_replay_gate_needs_the_incumbent_the_challenger_and_the_scores():
    scores = _replay(packaged=(1000.0, 0.95, 1.0), best_single=(900.0, 0.95, 1.0))
    with pytest.raises(ValueError, match=r"no row for \['classifier'\]"):
        replay_gate(scores, 0.02, 0.005)
    with pytest.raises(ValueError, match=r"lack column\(s\) \['ratio_csl'\]"):
        replay_gate(scores.drop(columns="ratio_csl"), 0.02, 0.005)
