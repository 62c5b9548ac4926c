"""Distributions of demand (or forecast + cumulative error) over a horizon H = L + R.

Three per-item representations share one small interface -- ``mean``,
``quantile(p)``, ``loss(x)`` (first-order loss E[(D - x)^+]) and ``cdf(x)`` --
so that the sizing functions never branch on the shape of the distribution:

- :class:`NormalDemand` (mean, std): the textbook path;
- :class:`EmpiricalDemand` (samples): e.g. forecast over H plus backtest errors;
- :class:`DiscreteDemand` (pmf on 0..K-1): Poisson / negative binomial for
  intermittent items, or any pmf.

All arrays have a leading item axis ``(n_items,)``. Lead-time variability: use
:func:`horizon_normal` (adds mu_d^2 sigma_L^2 to the variance) or sample the
lead time when building samples.

References
----------
E. A. Silver, D. F. Pyke and D. J. Thomas, *Inventory and Production Management
in Supply Chains*, 4th ed., 2017, sec. 6.7 and appendix on the unit normal loss
function G(k) = phi(k) - k (1 - Phi(k)).
L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed.,
2019, sec. 4.3 and appendix C (loss functions, discrete loss n(x) = sum_{d>x} (d - x) f(d)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

__all__ = [
    "NormalDemand",
    "EmpiricalDemand",
    "DiscreteDemand",
    "horizon_normal",
    "poisson_demand",
    "negative_binomial_demand",
    "count_demand",
]


def _frozen(value, name: str) -> np.ndarray:
    arr = np.array(value, dtype=float)
    if not np.all(np.isfinite(arr)):
        raise ValueError(f"{name} must be finite; non-finite at items {np.argwhere(~np.isfinite(arr))[:5].tolist()}")
    arr.setflags(write=False)
    return arr


def _check_probability(p) -> np.ndarray:
    p = np.asarray(p, dtype=float)
    if ((p <= 0) | (p >= 1)).any():
        raise ValueError(f"probability targets must be in (0, 1), got {np.unique(p[(p <= 0) | (p >= 1)])[:5]}")
    return p


@dataclass(frozen=True)
class NormalDemand:
    """Normal demand over the horizon, per item.

    Parameters
    ----------
    mean : ndarray, shape (n_items,)
    std : ndarray, shape (n_items,), >= 0 (0 = deterministic)
    """

    mean: np.ndarray
    std: np.ndarray

    def __post_init__(self) -> None:
        object.__setattr__(self, "mean", _frozen(self.mean, "mean"))
        object.__setattr__(self, "std", _frozen(self.std, "std"))
        if (self.std < 0).any():
            raise ValueError(f"std must be >= 0; negative at items {np.flatnonzero(self.std < 0)[:5].tolist()}")

    def quantile(self, p) -> np.ndarray:
        """Level x with P(D <= x) = p."""
        return self.mean + self.std * stats.norm.ppf(_check_probability(p))

    def cdf(self, x) -> np.ndarray:
        """P(D <= x) (a step at the mean when std = 0)."""
        z = (np.asarray(x, dtype=float) - self.mean) / np.where(self.std > 0, self.std, 1.0)
        return np.where(self.std > 0, stats.norm.cdf(z), (np.asarray(x) >= self.mean).astype(float))

    def loss(self, x) -> np.ndarray:
        """E[(D - x)^+] = sigma G(z), G(z) = phi(z) - z (1 - Phi(z))."""
        x = np.asarray(x, dtype=float)
        sd = np.where(self.std > 0, self.std, 1.0)
        z = (x - self.mean) / sd
        g = stats.norm.pdf(z) - z * stats.norm.sf(z)
        return np.where(self.std > 0, sd * g, np.maximum(self.mean - x, 0.0))

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """An interval that brackets every level the sizing searches look for."""
        return self.mean - 10 * self.std - 1.0, self.mean + 10 * self.std + 1.0


@dataclass(frozen=True)
class EmpiricalDemand:
    """Empirical distribution from samples (e.g. forecast over H + backtest errors).

    Parameters
    ----------
    samples : ndarray, shape (n_items, n_samples)
        Equally weighted outcomes per item; may be negative when they are errors.
    """

    samples: np.ndarray

    def __post_init__(self) -> None:
        arr = _frozen(self.samples, "samples")
        if arr.ndim != 2 or arr.shape[1] == 0:
            raise ValueError(f"samples must have shape (n_items, n_samples >= 1), got {arr.shape}")
        arr = np.sort(arr, axis=1)
        arr.setflags(write=False)
        object.__setattr__(self, "samples", arr)

    @property
    def mean(self) -> np.ndarray:
        """Sample mean per item."""
        return self.samples.mean(axis=1)

    def quantile(self, p) -> np.ndarray:
        """Smallest sample x with empirical P(D <= x) >= p (inverted cdf)."""
        p = np.broadcast_to(_check_probability(p), self.mean.shape)
        k = self.samples.shape[1]
        idx = np.clip(np.ceil(p * k - 1e-12).astype(int) - 1, 0, k - 1)
        return np.take_along_axis(self.samples, idx[:, None], axis=1)[:, 0]

    def cdf(self, x) -> np.ndarray:
        """Empirical P(D <= x)."""
        x = np.broadcast_to(np.asarray(x, dtype=float), self.mean.shape)
        return (self.samples <= x[:, None]).mean(axis=1)

    def loss(self, x) -> np.ndarray:
        """Empirical E[(D - x)^+]."""
        x = np.broadcast_to(np.asarray(x, dtype=float), self.mean.shape)
        return np.maximum(self.samples - x[:, None], 0.0).mean(axis=1)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Smallest and largest sample per item."""
        return self.samples[:, 0] - 1.0, self.samples[:, -1] + 1.0


@dataclass(frozen=True)
class DiscreteDemand:
    """Discrete demand on 0..K-1 per item.

    Parameters
    ----------
    pmf : ndarray, shape (n_items, K)
        Rows sum to 1 (checked to 1e-6; the tail beyond K-1 must be negligible).
    family : ndarray of str, shape (n_items,), optional
        Label of the fitted family per item (e.g. which items fell back to Poisson).
    """

    pmf: np.ndarray
    family: np.ndarray | None = None

    def __post_init__(self) -> None:
        pmf = _frozen(self.pmf, "pmf")
        if pmf.ndim != 2 or (pmf < 0).any():
            raise ValueError(f"pmf must be a non-negative (n_items, K) array, got shape {pmf.shape}")
        bad = np.flatnonzero(np.abs(pmf.sum(axis=1) - 1.0) > 1e-6)
        if bad.size:
            raise ValueError(f"pmf rows must sum to 1; items {bad[:5].tolist()} do not (widen the support)")
        object.__setattr__(self, "pmf", pmf)
        cdf = np.cumsum(pmf, axis=1)
        cdf.setflags(write=False)
        object.__setattr__(self, "_cdf", cdf)

    @property
    def support(self) -> np.ndarray:
        """Values 0..K-1."""
        return np.arange(self.pmf.shape[1], dtype=float)

    @property
    def mean(self) -> np.ndarray:
        """Mean per item."""
        return self.pmf @ self.support

    def quantile(self, p) -> np.ndarray:
        """Smallest integer x with P(D <= x) >= p."""
        p = np.broadcast_to(_check_probability(p), self.mean.shape)
        idx = (self._cdf < p[:, None] - 1e-12).sum(axis=1)
        return np.minimum(idx, self.pmf.shape[1] - 1).astype(float)

    def cdf(self, x) -> np.ndarray:
        """P(D <= x)."""
        x = np.broadcast_to(np.asarray(x, dtype=float), self.mean.shape)
        return (self.pmf * (self.support[None, :] <= x[:, None])).sum(axis=1)

    def loss(self, x) -> np.ndarray:
        """n(x) = sum_d (d - x)^+ f(d)."""
        x = np.broadcast_to(np.asarray(x, dtype=float), self.mean.shape)
        return (self.pmf * np.maximum(self.support[None, :] - x[:, None], 0.0)).sum(axis=1)

    def bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """[-1, K] per item."""
        n = self.pmf.shape[0]
        return np.full(n, -1.0), np.full(n, float(self.pmf.shape[1]))


def horizon_normal(demand_mean, demand_std, horizon, lead_time_std=0.0) -> NormalDemand:
    """Normal demand over H periods with lead-time variability.

    mean = mu_d H, variance = H sigma_d^2 + mu_d^2 sigma_L^2 (Silver et al. 2017, eq. 6.xx;
    independent per-period demand, lead time independent of demand).

    Parameters
    ----------
    demand_mean, demand_std : array_like, shape (n_items,)
        Per-period mean and standard deviation (of demand, or of the one-step
        forecast error when sizing from forecast error with the forecast as mean).
    horizon : array_like, shape (n_items,)
        H = L + R in periods.
    lead_time_std : array_like, default 0
        Standard deviation of the lead time in periods.

    Examples
    --------
    >>> d = horizon_normal([10.0], [2.0], [4], lead_time_std=[1.0])
    >>> float(d.mean[0]), round(float(d.std[0] ** 2), 6)
    (40.0, 116.0)
    """
    mu, sd = np.asarray(demand_mean, dtype=float), np.asarray(demand_std, dtype=float)
    h, sl = np.asarray(horizon, dtype=float), np.asarray(lead_time_std, dtype=float)
    if (h < 0).any() or (sl < 0).any() or (sd < 0).any():
        raise ValueError("horizon, demand_std and lead_time_std must be >= 0")
    var = h * sd**2 + mu**2 * sl**2
    return NormalDemand(mean=np.broadcast_to(mu * h, var.shape), std=np.sqrt(var))


def _support_size(mean: np.ndarray, var: np.ndarray) -> int:
    return int(np.ceil(np.max(mean + 12 * np.sqrt(var) + 10))) + 1


def _pmf_table(dist, n_items: int, K: int) -> np.ndarray:
    pmf = dist.pmf(np.arange(K)[None, :])
    pmf = np.broadcast_to(pmf, (n_items, K)).copy()
    pmf[:, -1] += np.maximum(1.0 - pmf.sum(axis=1), 0.0)  # tail mass onto the last support point
    return pmf / pmf.sum(axis=1, keepdims=True)


def poisson_demand(mean, support: int | None = None) -> DiscreteDemand:
    """Poisson demand over the horizon with the given means (shape (n_items,)).

    Examples
    --------
    >>> float(poisson_demand([2.0]).quantile(0.5)[0])
    2.0
    """
    mean = np.atleast_1d(np.asarray(mean, dtype=float))
    if (mean < 0).any():
        raise ValueError(f"Poisson means must be >= 0, negative at items {np.flatnonzero(mean < 0)[:5].tolist()}")
    K = support or _support_size(mean, mean)
    return DiscreteDemand(_pmf_table(stats.poisson(mean[:, None]), mean.size, K), family=np.full(mean.size, "poisson"))


def negative_binomial_demand(mean, variance, support: int | None = None) -> DiscreteDemand:
    """Negative binomial with the given mean and variance (> mean) per item.

    scipy's parametrisation: n = mean^2 / (var - mean), p = mean / var.

    Raises
    ------
    ValueError
        Where variance <= mean (use :func:`count_demand`, which falls back to Poisson).
    """
    mean = np.atleast_1d(np.asarray(mean, dtype=float))
    var = np.broadcast_to(np.asarray(variance, dtype=float), mean.shape)
    bad = np.flatnonzero((var <= mean) | (mean <= 0))
    if bad.size:
        raise ValueError(
            f"negative binomial needs variance > mean > 0; items {bad[:5].tolist()} violate it "
            "(use count_demand for a Poisson fallback)"
        )
    K = support or _support_size(mean, var)
    n, p = mean**2 / (var - mean), mean / var
    return DiscreteDemand(
        _pmf_table(stats.nbinom(n[:, None], p[:, None]), mean.size, K), family=np.full(mean.size, "negative_binomial")
    )


def count_demand(mean, variance, support: int | None = None) -> DiscreteDemand:
    """Negative binomial where over-dispersed (variance > mean), else Poisson.

    The choice per item is recorded in ``family`` so callers can count fallbacks.
    Items with mean 0 get a point mass at 0.

    Examples
    --------
    >>> d = count_demand([2.0, 2.0], [6.0, 1.0])
    >>> d.family.tolist()
    ['negative_binomial', 'poisson']
    """
    mean = np.atleast_1d(np.asarray(mean, dtype=float))
    var = np.broadcast_to(np.asarray(variance, dtype=float), mean.shape)
    if (mean < 0).any() or (var < 0).any():
        raise ValueError("count_demand needs mean >= 0 and variance >= 0")
    over = (var > mean * (1 + 1e-9)) & (mean > 0)
    K = support or _support_size(mean, np.maximum(var, mean))
    pmf = _pmf_table(stats.poisson(mean[:, None]), mean.size, K)
    if over.any():
        nb = negative_binomial_demand(mean[over], var[over], support=K)
        pmf[over] = nb.pmf
    return DiscreteDemand(pmf, family=np.where(over, "negative_binomial", "poisson"))
