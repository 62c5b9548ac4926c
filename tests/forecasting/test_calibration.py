"""Conformal recalibration: the order statistic, the identity below min_count, the inverse map."""

from __future__ import annotations

import numpy as np
import pytest

from forecasting.calibration import P_CAP, fit_calibration


def _one_segment(values, min_count=20):
    scores = np.asarray(values, dtype=float)[None, :, None]  # one series, windows, H = 1
    return fit_calibration(scores, np.zeros(1, dtype=int), min_count)


def test_level_is_the_conformal_order_statistic():
    cal = _one_segment(np.arange(1, 100) / 100)  # m = 99 scores 0.01 .. 0.99
    level = cal.level(np.array([0.9, 0.5]), np.zeros(2, dtype=int))[:, 0]
    # ceil((m + 1) p)-th smallest: the 90th (0.90) and the 50th (0.50)
    np.testing.assert_allclose(level, [0.90, 0.50], atol=1e-8)
    assert cal.cdf(np.array([0.90 + 2e-9]), np.zeros(1, dtype=int), 0)[0] == pytest.approx(0.90)


def test_beyond_the_last_score_is_capped_and_flagged():
    cal = _one_segment(np.arange(1, 100) / 100)
    assert cal.level(np.array([0.995]), np.zeros(1, dtype=int))[0, 0] == P_CAP
    assert cal.capped(0.995, np.zeros(1, dtype=int)).all()
    assert not cal.capped(0.95, np.zeros(1, dtype=int)).any()


def test_too_few_scores_leave_the_family_level():
    cal = _one_segment([0.2, 0.4, 0.6], min_count=20)
    np.testing.assert_allclose(cal.level(np.array([0.9]), np.zeros(1, dtype=int)), [[0.9]])
    assert not cal.capped(0.999, np.zeros(1, dtype=int)).any()


def test_a_short_segment_borrows_the_pool_of_all_segments():
    scores = np.full((2, 99, 1), np.nan)
    scores[0, :, 0] = np.arange(1, 100) / 100  # segment 0: 99 scores
    scores[1, :3, 0] = [0.97, 0.98, 0.99]  # segment 1: 3 scores, too few alone
    cal = fit_calibration(scores, np.array([0, 1]), min_count=20)
    own, short = cal.level(np.array([0.5, 0.5]), np.array([0, 1]))[:, 0]
    assert own == pytest.approx(0.50, abs=1e-8)
    # the pool of 102 scores: the 52nd smallest (ceil(103 * 0.5)) is 0.52
    assert short == pytest.approx(0.52, abs=1e-8)
