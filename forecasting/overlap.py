"""Overlapping backtest windows: how correlated their sums are and what n of them are worth.

Cutoffs ``step`` periods apart whose windows each sum H one-step errors overlap when step < H:
the sums are correlated with rho_k = max(0, 1 - k step / H). :func:`effective_windows` (the
variance's information, rho_k^2) and :func:`_mean_windows` (the mean's, rho_k) count the
independent windows n overlapping ones are worth; :func:`_overlap_correction` divides out the bias
the overlap puts on a sample variance. The error model (:mod:`forecasting.error_model`) and its
credibility (:mod:`forecasting.credibility`) use them.

References
----------
Bartlett, M. S. (1946). On the theoretical specification and sampling properties of
autocorrelated time-series. *J. R. Stat. Soc. Suppl.* 8, 27-41.
"""

from __future__ import annotations

import numpy as np

__all__ = ["effective_windows"]


def effective_windows(n: np.ndarray, horizon: int, step) -> np.ndarray:
    """Independent windows worth of the variance information in n overlapping ones, shape (S, H).

    Sums of H one-step errors from cutoffs ``step`` apart are correlated with
    rho_k = max(0, 1 - k step / H); the sample variance of n such sums has variance
    2 sigma^4 / n (1 + 2 sum_k (1 - k/n) rho_k^2) (Bartlett 1946), i.e. that of
    n / (1 + 2 sum_k (1 - k/n) rho_k^2) independent windows (16 windows one period
    apart: 16 at H = 1, 6.2 at H = 4).

    Examples
    --------
    >>> effective_windows(np.array([16]), 4, 1).round(1).tolist()
    [[16.0, 10.9, 7.9, 6.2]]
    """
    return _windows(n, horizon, step, power=2)


def _windows(n: np.ndarray, horizon: int, step, power: int) -> np.ndarray:
    """n / (1 + 2 sum_k (1 - k/n) rho_k^power) per series and H (:func:`effective_windows`, :func:`_mean_windows`)."""
    n = np.asarray(n, dtype=int)
    steps = np.broadcast_to(np.asarray(step, dtype=int), n.shape)
    out = np.ones((len(n), horizon)) * n[:, None].astype(float)
    h = np.arange(1, horizon + 1)[None, :]
    for size, gap in {(a, b) for a, b in zip(n.tolist(), steps.tolist()) if a > 1}:
        k = np.arange(1, size)[:, None]
        rho = np.clip(1.0 - k * gap / h, 0.0, None)
        inflation = 1.0 + 2.0 * ((1.0 - k / size) * rho**power).sum(axis=0)
        out[(n == size) & (steps == gap)] = size / inflation
    return out


def _mean_windows(n: np.ndarray, horizon: int, step) -> np.ndarray:
    """Independent windows worth of the *mean's* information in n overlapping ones, shape (S, H):
    n / (1 + 2 sum_k (1 - k/n) rho_k) with rho_k = max(0, 1 - k step / H) (the mean's variance;
    :func:`effective_windows` is the variance's, with rho_k^2)."""
    return _windows(n, horizon, step, power=1)


def _overlap_correction(n: np.ndarray, horizon: int, step) -> np.ndarray:
    """Bias factor of the sample variance of overlapping cumulative errors, shape (S, H).

    Windows ``step`` periods apart summing H one-step errors overlap, so their
    sums are correlated with rho_k = max(0, 1 - k step / H). The sample variance
    then has expectation sigma^2 (1 - 2/(n-1) sum_k (1 - k/n) rho_k), which is
    divided out (Bartlett 1946, J. R. Stat. Soc. Suppl. 8, 27-41). ``step`` is one
    spacing for all series or one per series (shape (S,)): windows spread wider
    overlap less and need less correction.
    """
    steps = np.broadcast_to(np.asarray(step, dtype=int), np.shape(n))
    out = np.ones((len(n), horizon))
    h = np.arange(1, horizon + 1)[None, :]
    for size, gap in {(a, b) for a, b in zip(n.tolist(), steps.tolist()) if a > 2}:
        k = np.arange(1, size)[:, None]
        rho = np.clip(1.0 - k * gap / h, 0.0, None)
        shrink = 1.0 - 2.0 / (size - 1) * ((1.0 - k / size) * rho).sum(axis=0)
        out[(n == size) & (steps == gap)] = 1.0 / np.maximum(shrink, 0.25)
    return out
