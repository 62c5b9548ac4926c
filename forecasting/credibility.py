"""Credibility of a series' own error moments against its segment's pool (Bühlmann-Straub).

A series has few backtest windows, so :class:`~forecasting.error_model.ErrorModel` shrinks the
mean and variance of its errors toward the pooled, scale-free errors of its segment
(:func:`_pool`, on the pooling scale of :func:`_scales`) with credibility weights n / (n + k)
(:func:`_shrinker`). ``k`` pseudo-windows are a fixed number or, per segment and H, Bühlmann-Straub's
structural parameters by the method of moments over effective windows
(:mod:`forecasting.overlap`): :func:`estimated_shrinkage` for the variance, each series' sampling
noise from its fourth moment (:func:`series_fourth_moments`, :func:`overlap_fourth_moments`), and
:func:`estimated_mean_shrinkage` for the bias; :func:`_credibility` gives both in the shrinker's
raw windows.

References
----------
Bühlmann, H. & Gisler, A. (2005). *A Course in Credibility Theory and its
Applications*. Springer (credibility weights n / (n + k)).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from forecasting.overlap import _mean_windows, effective_windows

__all__ = ["estimated_shrinkage", "estimated_mean_shrinkage", "series_fourth_moments", "overlap_fourth_moments"]


def estimated_shrinkage(v: np.ndarray, dof: np.ndarray, z4: np.ndarray | None = None) -> float:
    """Credibility k (effective pseudo-windows) of scale-free variances ``v`` with ``dof`` degrees of freedom.

    Bühlmann-Straub's structural parameters by the method of moments: the spread of the true
    variances is tau^2 = var(v) - mean(sampling variance of v_i), and the weight nu / (nu + k) on a
    series' own variance minimises the mean squared error with k = mean(nu_i x sampling variance) /
    tau^2. For normal errors a sample variance of nu_i = n_eff - 1 degrees of freedom has sampling
    variance 2 sigma_i^4 / nu_i, estimated without bias by 2 v_i^2 / (nu_i + 2), so k = 2 (mean(v)^2
    + tau^2) / tau^2. With ``z4`` (each series' mean fourth power of its standardised errors,
    :func:`series_fourth_moments`) the sampling variance is the distribution-free
    (mu4_i - sigma_i^4 (n - 3) / (n - 1)) / n with mu4_i = z4_i v_i^2 (n = n_eff; z4 = 3, the normal's,
    where a series has too few windows for it): heavy-tailed errors (a few large orders in sparse
    demand) make sample variances noisier than the normal theory says, which would otherwise read
    that noise as a real difference between series. Overlapping windows (cutoffs closer than H)
    hide part of the tails from a window's own z4; :func:`overlap_fourth_moments` gives the z4 that
    carries the one-step tails into them (what :meth:`~forecasting.error_model.ErrorModel.fit`
    passes). tau^2 <= 0 (all the spread is sampling noise) gives k = inf: every series takes the
    pooled variance; a single series keeps its own (k = 0).

    Examples
    --------
    >>> estimated_shrinkage(np.array([1.0, 1.0, 1.0]), np.array([5.0, 5.0, 5.0]))
    inf
    >>> round(estimated_shrinkage(np.array([0.5, 1.0, 4.0, 8.0]), np.full(4, 1e6)), 3)
    3.915
    """
    ok = np.isfinite(v) & (dof > 0)
    v, dof = v[ok], dof[ok]
    if len(v) < 2:  # a series alone in its pool: nothing to pool toward but itself, keep its own (corrected) variance
        return 0.0
    if z4 is None:
        tau2 = np.var(v, ddof=1) - np.mean(2 * v**2 / (dof + 2))
        return float(2 * (np.mean(v) ** 2 + tau2) / tau2) if tau2 > 0 else np.inf
    n = dof + 1.0
    z4 = np.where(np.isfinite(z4[ok]), z4[ok], 3.0)  # too few windows for a fourth moment: the normal's
    noise = v**2 * (z4 - (n - 3) / (n - 1)) / n  # Var(s^2) = (mu4 - sigma^4 (n - 3) / (n - 1)) / n, n >= 2
    tau2 = np.var(v, ddof=1) - np.mean(noise)
    return float(np.mean(noise * dof) / tau2) if tau2 > 0 else np.inf


def series_fourth_moments(errors: np.ndarray) -> np.ndarray:
    """Mean fourth power (S, H) of each series' window errors standardised by its own mean and standard
    deviation (NaN with fewer than 4 windows or no spread): 3 for normal errors, more under heavy tails
    (a series whose windows hold one large order); :func:`estimated_shrinkage`'s ``z4``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> e = rng.standard_normal((50, 40, 1)); e[:25, 0, 0] += 30.0  # half the series with one large error
    >>> m4 = series_fourth_moments(e)[:, 0]
    >>> bool(m4[:25].mean() > 13 and abs(m4[25:].mean() - 3) < 0.5)
    True
    """
    n = np.sum(np.isfinite(errors), axis=1)  # (S, H)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = (errors - np.nanmean(errors, axis=1, keepdims=True)) / np.nanstd(errors, axis=1, keepdims=True)
        return np.where(n >= 4, np.nanmean(z**4, axis=1), np.nan)


def overlap_fourth_moments(m4: np.ndarray, n: np.ndarray, step) -> np.ndarray:
    """The z4 (S, H) that gives :func:`estimated_shrinkage` the sampling noise of overlapping windows.

    For sums S of H independent one-step errors (variance s^2, excess kurtosis kappa1) from cutoffs
    ``step`` apart, Cov(S_i^2, S_j^2) = 2 Cov(S_i, S_j)^2 + kappa1 s^4 overlap(i, j), so the sample
    variance's noise relative to (H s^2)^2 is about 2 / n_v + (kappa1 / H) / n_m: n_v the variance's
    effective windows (:func:`effective_windows`, rho^2), n_m the mean's (:func:`_mean_windows`, rho).
    A window's own z4 sees only part of the tails where windows overlap (one large one-step error
    moves several windows together and the series' standardisation absorbs it), so kappa1 is read
    from the series' one-step windows (H = 1, which never overlap) and shared across its H. Small
    samples: the normal part is the normal theory's unbiased 2 / (n_v + 1) (the plug-in sigma^4 = v^2
    is biased up by the noise itself), and kappa1 = z4_1 - 3 + 6 / (n + 1) (a sample kurtosis of n
    normal values averages 3 - 6 / (n + 1)). Unchanged (the series' own z4 at H) at H = 1, on windows
    that do not overlap (step >= H) and where a series has no one-step z4 (fewer than 4 windows, or
    no one-step spread).

    Examples
    --------
    >>> m4 = np.array([[9.0, 4.0, 3.5, 3.2]])  # heavy one-step tails, diluted in the overlapping sums
    >>> overlap_fourth_moments(m4, np.array([16]), 1).round(2).tolist()
    [[9.0, 6.82, 5.44, 4.59]]
    >>> overlap_fourth_moments(m4, np.array([16]), 4).tolist()  # windows 4 apart: none overlap
    [[9.0, 4.0, 3.5, 3.2]]
    """
    horizon = m4.shape[1]
    n = np.asarray(n, dtype=float)
    steps = np.broadcast_to(np.asarray(step, dtype=int), n.shape)
    n_v = effective_windows(n, horizon, steps)
    n_m = np.maximum(_mean_windows(n, horizon, steps), 1e-9)
    h = np.arange(1, horizon + 1)[None, :]
    kappa1 = m4[:, :1] - 3.0 + 6.0 / (n[:, None] + 1.0)
    relative = np.maximum(2.0 / (n_v + 1.0) + kappa1 / h / n_m, 0.0)  # Var(v) / sigma^4
    with np.errstate(invalid="ignore", divide="ignore"):
        z4 = n_v * relative + (n_v - 3.0) / (n_v - 1.0)  # estimated_shrinkage's noise is v^2 (z4 - (n-3)/(n-1)) / n
    overlapping = (steps[:, None] < h) & np.isfinite(m4[:, :1]) & (n_v > 1)
    return np.where(overlapping, z4, m4)


def _estimated_k(setting, own_var, scale, n, step, seg_code, rows, m4=None) -> np.ndarray:
    """Pseudo-windows (rows, H) of the series in ``rows`` (the phased pool, or the others under
    ``shrinkage="estimate"``) for the shrinker, which counts raw windows n.

    The effective weight (n_eff - 1) / (n_eff - 1 + k_eff) is the raw one with
    k = k_eff (n - 1) / (n_eff - 1); k_eff is ``setting`` or, for "estimate", per segment and
    H from the series' scale-free variances (:func:`estimated_shrinkage`).
    """
    n_eff = effective_windows(n[rows], own_var.shape[1], np.broadcast_to(step, n.shape)[rows])
    k_eff = np.full(n_eff.shape, np.inf if setting == "estimate" else float(setting))
    if setting == "estimate":
        v = own_var[rows] / np.where(scale[rows] > 0, scale[rows], np.nan)[:, None] ** 2
        for g in np.unique(seg_code[rows]):
            members = seg_code[rows] == g
            for h in range(own_var.shape[1]):
                z4 = None if m4 is None else m4[rows][members, h]
                k_eff[members, h] = estimated_shrinkage(v[members, h], n_eff[members, h] - 1, z4)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = k_eff * (n[rows, None] - 1) / np.maximum(n_eff - 1, 1e-9)
    return np.where((n_eff > 1) & np.isfinite(k), k, np.inf)


def _credibility(cfg, own_mean, own_var, scale, n, step, seg_code, rel, m4=None) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-windows (S, H) of the variance's and of the mean's shrinkage, in the shrinker's raw windows.

    The phased series (``rel``) take ``phased_shrinkage``; the others ``shrinkage``: a fixed number
    of raw pseudo-windows, or with ``"estimate"`` each segment's own credibility over effective
    windows, as the phased pool (:func:`_estimated_k`, :func:`_estimated_k_mean`).
    """
    estimate = cfg.shrinkage == "estimate"
    k = np.full(own_var.shape, np.nan if estimate else float(cfg.shrinkage))
    k_mean = k.copy()
    m4 = m4 if estimate else None  # shrinkage=k: the model as it was before the estimate (normal-theory noise)
    for rows, setting in ((rel, cfg.phased_shrinkage), (~rel, "estimate" if estimate else None)):
        if setting is not None and rows.any():  # the variance's and the bias's credibility, each from its own spread
            k[rows] = _estimated_k(setting, own_var, scale, n, step, seg_code, rows, m4)
            k_mean[rows] = _estimated_k_mean(setting, own_mean, own_var, scale, n, step, seg_code, rows)
    return k, k_mean


def estimated_mean_shrinkage(m: np.ndarray, v: np.ndarray, n_eff: np.ndarray) -> float:
    """Credibility k (effective pseudo-windows) of scale-free mean errors ``m`` (Buhlmann): the expected
    within-series variance ``mean(v)`` over the spread of the true means tau^2 = var(m) - mean(v / n_eff);
    tau^2 <= 0 (the biases differ by sampling noise only) gives inf: every series takes the pooled mean.

    Examples
    --------
    >>> estimated_mean_shrinkage(np.array([0.0, 0.1, -0.1]), np.ones(3), np.full(3, 6.0))
    inf
    >>> round(estimated_mean_shrinkage(np.array([0.0, 0.0, 0.0, 3.0]), np.ones(4), np.full(4, 6.0)), 3)
    0.48
    """
    ok = np.isfinite(m) & np.isfinite(v) & (n_eff > 0)
    m, v, n_eff = m[ok], v[ok], n_eff[ok]
    if len(m) < 2:
        return np.inf
    tau2 = np.var(m, ddof=1) - np.mean(v / n_eff)
    return float(np.mean(v) / tau2) if tau2 > 0 else np.inf


def _estimated_k_mean(setting, own_mean, own_var, scale, n, step, seg_code, rows) -> np.ndarray:
    """Pseudo-windows (rows, H) for the *mean* error (the bias) of the series in ``rows``, in the shrinker's raw windows:
    as :func:`_estimated_k` for the variance, with the mean's effective windows (:func:`_mean_windows`) and, for
    "estimate", Buhlmann's k of the segment's scale-free means (:func:`estimated_mean_shrinkage`)."""
    n_eff = _mean_windows(n[rows], own_var.shape[1], np.broadcast_to(step, n.shape)[rows])
    k_eff = np.full(n_eff.shape, np.inf if setting == "estimate" else float(setting))
    if setting == "estimate":
        s = np.where(scale[rows] > 0, scale[rows], np.nan)[:, None]
        m, v = own_mean[rows] / s, own_var[rows] / s**2
        for g in np.unique(seg_code[rows]):
            members = seg_code[rows] == g
            for h in range(own_var.shape[1]):
                k_eff[members, h] = estimated_mean_shrinkage(m[members, h], v[members, h], n_eff[members, h])
    with np.errstate(invalid="ignore", divide="ignore"):
        k = k_eff * n[rows, None] / np.maximum(n_eff, 1e-9)
    return np.where((n_eff > 1) & np.isfinite(k), k, np.inf)


def _shrinker(k, pool_mean: np.ndarray, pool_var: np.ndarray, k_mean=None):
    """Credibility shrinkage ``(own_mean, own_var, n) -> (mean, var)`` toward the segment pool (S, H).

    ``k`` (the variance's) is one number of pseudo-windows or one per series and H, shape (S, H)
    (the phased series' effective-window weight, :func:`_estimated_k`); ``k_mean``, the mean's, the
    same (default ``k``; the phased series' own estimate, :func:`_estimated_k_mean`: how their variances
    spread says nothing of how their biases do). Works on
    (S, H) moments or leave-one-out (S, w, H) moments alike.
    """
    k_arr = np.broadcast_to(np.asarray(k, dtype=float), pool_var.shape)
    km_arr = k_arr if k_mean is None else np.broadcast_to(np.asarray(k_mean, dtype=float), pool_var.shape)

    def shrink(own_mean, own_var, n):
        extra = (None,) * (own_mean.ndim - 2)
        index = (slice(None), *extra, slice(None))
        pm, pv, kk, km = pool_mean[index], pool_var[index], k_arr[index], km_arr[index]
        nn = np.asarray(n, dtype=float).reshape((-1,) + (1,) * (own_mean.ndim - 1))
        w_mean = np.where(km > 0, nn / np.maximum(nn + km, 1e-12), 1.0)
        w_var = np.where(nn > 1, (nn - 1) / np.maximum(nn - 1 + kk, 1e-12), 0.0)
        return w_mean * own_mean + (1 - w_mean) * pm, w_var * own_var + (1 - w_var) * pv

    return shrink


def _scales(demand: pd.DataFrame, ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Mean demand and pooling scale (mean |y_t - y_t-1|, else the mean) per series."""
    data = demand[["unique_id", "ds", "y"]].drop_duplicates(["unique_id", "ds"])
    data = data.assign(unique_id=data["unique_id"].astype(str)).sort_values(["unique_id", "ds"])
    g = data.groupby("unique_id", sort=True)["y"]
    mean = g.mean().reindex(ids)
    if mean.isna().any():
        raise ValueError(
            f"history lacks series {mean.index[mean.isna()][:10].tolist()}; pass the demand the backtest ran on"
        )
    change = (data["y"] - g.shift(1)).abs().groupby(data["unique_id"], sort=True).mean().reindex(ids)
    scale = np.where(change.fillna(0) > 0, change, mean)
    return mean.to_numpy(float), np.asarray(scale, dtype=float)


def _pool(errors: np.ndarray, scale: np.ndarray, seg_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of scale-free errors per segment, shape (segments, H)."""
    n_seg, horizon = seg_code.max() + 1, errors.shape[2]
    usable = scale > 0
    z = errors / np.where(usable, scale, 1.0)[:, None, None]
    mean, var = np.zeros((n_seg, horizon)), np.zeros((n_seg, horizon))
    for g in range(n_seg):
        block = z[(seg_code == g) & usable].reshape(-1, horizon)
        block = block[~np.isnan(block[:, 0])]
        if len(block) > 1:
            mean[g], var[g] = block.mean(axis=0), block.var(axis=0, ddof=1)
    return mean, var
