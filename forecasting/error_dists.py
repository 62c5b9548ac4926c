"""Distribution families for the cumulative forecast error over H periods.

Each family maps fitted moments of the cumulative error ``E_H = D_H - F_H``
(``mean``, ``var``) and the mean cumulative backtest forecast ``fbar`` to
quantiles, CDF values and log-likelihoods of the cumulative demand samples
``D_H``. All functions are vectorised over equally-shaped numpy arrays.

``normal``
    ``E_H ~ N(mean, var)``.
``negbin``
    Cumulative demand ``D_H = fbar + E_H`` is negative binomial with mean
    ``fbar + mean`` and variance ``var`` (method of moments); Poisson when the
    variance does not exceed the mean. Suits discrete, intermittent demand
    (Syntetos & Boylan 2021, ch. 8; Snyder, Ord & Beaumont 2012).
``empirical``
    Quantiles of the series' own backtest errors (linear interpolation).

References
----------
Snyder, R. D., Ord, J. K. & Beaumont, A. (2012). Forecasting the intermittent
demand for slow-moving inventories: a modelling approach. *International
Journal of Forecasting* 28, 485-496.
Syntetos, A. A. & Boylan, J. E. (2021). *Intermittent Demand Forecasting*. Wiley.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from scipy import stats

__all__ = [
    "FAMILIES",
    "PPF",
    "CDF",
    "negbin_params",
    "normal_loglik",
    "negbin_loglik",
    "empirical_ppf",
    "empirical_cdf",
    "lead_time_pmf",
]

FAMILIES = ("normal", "negbin", "empirical")
_EPS = 1e-9


def negbin_params(mu: np.ndarray, var: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Method-of-moments ``(n, p)`` of scipy's ``nbinom`` and a mask where Poisson is used instead."""
    mu = np.maximum(mu, _EPS)
    poisson = var <= mu * (1.0 + 1e-6)
    safe_var = np.where(poisson, mu * 2.0, var)
    n = mu**2 / (safe_var - mu)
    prob = mu / safe_var
    return n, prob, poisson


def _normal_ppf(p, mean, var, fbar):
    return mean + np.sqrt(np.maximum(var, 0.0)) * stats.norm.ppf(p)


def _negbin_ppf(p, mean, var, fbar):
    mu = np.maximum(fbar + mean, _EPS)
    n, prob, poisson = negbin_params(mu, var)
    demand = np.empty(mu.shape)
    demand[poisson] = stats.poisson.ppf(p[poisson], mu[poisson])
    demand[~poisson] = stats.nbinom.ppf(p[~poisson], n[~poisson], prob[~poisson])
    return demand - fbar


def _normal_cdf(x, mean, var, fbar):
    sd = np.sqrt(np.maximum(var, _EPS))
    return stats.norm.cdf((x - mean) / sd)


def _negbin_cdf(x, mean, var, fbar):
    mu = np.maximum(fbar + mean, _EPS)
    n, prob, poisson = negbin_params(mu, var)
    d = np.floor(x + fbar + 1e-9)
    return np.where(poisson, stats.poisson.cdf(d, mu), stats.nbinom.cdf(d, n, prob))


#: family -> quantile function ``(p, mean, var, fbar) -> error quantile``.
PPF: dict[str, Callable] = {"normal": _normal_ppf, "negbin": _negbin_ppf}
#: family -> CDF ``(x, mean, var, fbar) -> P(E <= x)``.
CDF: dict[str, Callable] = {"normal": _normal_cdf, "negbin": _negbin_cdf}


def normal_loglik(d: np.ndarray, mean: np.ndarray, var: np.ndarray, fbar: np.ndarray) -> np.ndarray:
    """Log-likelihood of integer demand ``d`` under the normal family discretised to integers."""
    mu = fbar + mean
    sd = np.sqrt(np.maximum(var, _EPS))
    upper = stats.norm.cdf((d + 0.5 - mu) / sd)
    lower = stats.norm.cdf((d - 0.5 - mu) / sd)
    return np.log(np.maximum(upper - lower, 1e-300))


def negbin_loglik(d: np.ndarray, mean: np.ndarray, var: np.ndarray, fbar: np.ndarray) -> np.ndarray:
    """Log-likelihood of integer demand ``d`` under the negative binomial (or Poisson) family."""
    mu = np.maximum(fbar + mean, _EPS)
    n, prob, poisson = negbin_params(mu, var)
    ll = np.where(poisson, stats.poisson.logpmf(d, mu), stats.nbinom.logpmf(d, n, prob))
    return np.maximum(ll, -690.0)


def empirical_ppf(sorted_samples: np.ndarray, counts: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Linear-interpolated quantile of each row of ``sorted_samples`` (NaN-padded at the end).

    Parameters
    ----------
    sorted_samples : ndarray, shape (n, w)
        Each row ascending, its first ``counts[i]`` entries valid.
    counts : ndarray of int, shape (n,)
    p : ndarray, shape (n,)
    """
    pos = p * (counts - 1)
    lo = np.floor(pos).astype(int)
    hi = np.minimum(lo + 1, counts - 1)
    rows = np.arange(len(p))
    a, b = sorted_samples[rows, lo], sorted_samples[rows, hi]
    return a + (pos - lo) * (b - a)


def empirical_cdf(sorted_samples: np.ndarray, counts: np.ndarray, x: np.ndarray) -> np.ndarray:
    """Share of each row's valid samples that are <= ``x``."""
    valid = np.arange(sorted_samples.shape[1])[None, :] < counts[:, None]
    below = (sorted_samples <= x[:, None]) & valid
    return below.sum(axis=1) / np.maximum(counts, 1)


def lead_time_pmf(
    mean: float, std: float, review_period: float = 0.0, max_h: int | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Discretised normal distribution of the exposure H = L + R on integers >= 1.

    Returns
    -------
    horizons : ndarray of int
    weights : ndarray of float, summing to 1

    Raises
    ------
    ValueError
        When more than 1 % of the probability lies beyond ``max_h``.
    """
    if std < 0 or mean < 0:
        raise ValueError(f"lead time mean and std must be >= 0, got mean={mean}, std={std}")
    centre = mean + review_period
    top = int(np.ceil(centre + 4 * std)) + 1
    h = np.arange(1, max(top, 2) + 1)
    if std == 0:
        return _point_mass(centre)
    w = stats.norm.cdf(h + 0.5, centre, std) - stats.norm.cdf(h - 0.5, centre, std)
    w[0] += stats.norm.cdf(0.5, centre, std)
    if max_h is not None and w[h > max_h].sum() > 0.01:
        raise ValueError(
            f"{w[h > max_h].sum():.1%} of the lead-time distribution lies beyond the "
            f"backtest horizon {max_h}; run the backtest with a longer horizon"
        )
    keep = (w > 1e-12) & (h <= (max_h or h.max()))
    return h[keep], w[keep] / w[keep].sum()


def _point_mass(centre: float) -> tuple[np.ndarray, np.ndarray]:
    lo = max(int(np.floor(centre)), 1)
    frac = min(max(centre - lo, 0.0), 1.0)
    return (np.array([lo, lo + 1]), np.array([1 - frac, frac])) if frac > 0 else (np.array([lo]), np.ones(1))
