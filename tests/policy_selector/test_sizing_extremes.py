"""Count-distribution sizing on extreme demand (issue 10: a series of 2e9 units per period hung)."""

import numpy as np
from scipy import stats

from policy_selector.sizing import _count_quantiles


def test_huge_poisson_mean_uses_poisson_quantiles_without_a_negative_binomial_search():
    p = np.array([0.05, 0.5, 0.95])
    mean = np.array([4e9, 3.0])
    # before: nbinom.ppf ran on every row with n = mean**2 (1.6e19) and never returned
    out = _count_quantiles(mean, np.zeros(2), p)
    np.testing.assert_array_equal(out, stats.poisson.ppf(p[None, :], mean[:, None]))


def test_over_dispersed_rows_still_use_the_negative_binomial():
    p = np.array([0.5, 0.95])
    out = _count_quantiles(np.array([10.0, 4e9]), np.array([10.0, 0.0]), p)
    np.testing.assert_array_equal(out[0], stats.nbinom.ppf(p, 10.0, 0.5))
    assert out[0, 1] > stats.poisson.ppf(0.95, 10.0)  # the extra variance widens the quantile
