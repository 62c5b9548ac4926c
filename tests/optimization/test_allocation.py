"""Marginal allocation against brute force on small instances, and its invariants."""

import itertools

import numpy as np
import pytest

from optimization.allocation import allocate, concave_hull


def _brute(v, s, w, target):
    """Least total value over all level combinations with weighted service >= target."""
    best = np.inf
    for combo in itertools.product(range(v.shape[1]), repeat=v.shape[0]):
        rows = np.arange(v.shape[0])
        if (w * s[rows, combo]).sum() / w.sum() >= target - 1e-12:
            best = min(best, v[rows, combo].sum())
    return best


def _concave_curves(rng, n, k):
    """Increasing value, increasing service with falling increments (concave)."""
    dv = rng.uniform(0.5, 5.0, size=(n, k - 1))
    slopes = np.sort(rng.uniform(0.001, 0.2, size=(n, k - 1)), axis=1)[:, ::-1]
    v = np.concatenate([np.zeros((n, 1)), np.cumsum(dv, axis=1)], axis=1)
    s0 = rng.uniform(0.2, 0.5, size=(n, 1))
    s = np.concatenate([s0, s0 + np.cumsum(slopes * dv, axis=1)], axis=1)
    return v, s / s.max() * rng.uniform(0.9, 1.0)


@pytest.mark.parametrize("seed", range(6))
def test_optimal_at_every_breakpoint_of_concave_curves(seed):
    rng = np.random.default_rng(seed)
    v, s = _concave_curves(rng, 3, 4)
    w = rng.uniform(0.5, 2.0, size=3)
    a = allocate(v, s, 0.5, weights=w)
    for cv, cs in zip(a.curve_value, a.curve_service):
        assert cv == pytest.approx(_brute(v, s, w, cs))


@pytest.mark.parametrize("seed", range(6))
def test_meets_target_and_value_rises_with_target_on_any_curves(seed):
    rng = np.random.default_rng(100 + seed)
    v = np.sort(rng.uniform(0, 10, size=(3, 4)), axis=1)
    s = np.sort(rng.uniform(0.1, 1.0, size=(3, 4)), axis=1)
    rows = np.arange(3)
    values = []
    for target in np.linspace(0.2, s.max(axis=1).mean(), 15):
        a = allocate(v, s, target)
        assert a.reached
        assert s[rows, a.level_index].mean() >= target - 1e-12
        assert a.value == pytest.approx(v[rows, a.level_index].sum())
        # never better than the brute-force optimum, never worse than it plus one hull step
        opt = _brute(v, s, np.ones(3), target)
        assert opt - 1e-9 <= a.value <= opt + np.ptp(v, axis=1).max() + 1e-9
        values.append(a.value)
    assert np.all(np.diff(values) >= -1e-12)


def test_portfolio_curve_is_concave_and_increasing():
    v, s = _concave_curves(np.random.default_rng(3), 20, 6)
    a = allocate(v, s, 0.99)
    slope = np.diff(a.curve_service) / np.diff(a.curve_value)
    assert np.all(np.diff(a.curve_value) > 0) and np.all(slope > 0)
    assert np.all(np.diff(slope) <= 1e-12)


def test_unreachable_target_returns_top_levels_and_says_so():
    v = np.array([[0.0, 1.0], [0.0, 2.0]])
    s = np.array([[0.5, 0.8], [0.5, 0.9]])
    a = allocate(v, s, 0.99)
    assert not a.reached and a.level_index.tolist() == [1, 1] and a.service == pytest.approx(0.85)


def test_hull_skips_points_below_the_chord_and_dominated_points():
    v = np.array([0.0, 1.0, 2.0, 2.0, 3.0, np.nan])
    s = np.array([0.5, 0.55, 0.9, 0.8, 0.88, 0.99])
    assert concave_hull(v, s).tolist() == [0, 2]


def test_bad_input_raises():
    with pytest.raises(ValueError, match="one shape"):
        allocate(np.zeros((2, 3)), np.zeros((2, 2)), 0.9)
    with pytest.raises(ValueError, match="target must be in"):
        allocate(np.zeros((1, 2)), np.ones((1, 2)), 1.5)
    with pytest.raises(ValueError, match="no finite"):
        allocate(np.array([[np.nan]]), np.array([[np.nan]]), 0.9)
