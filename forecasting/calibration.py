"""Conformal recalibration of cumulative-error quantiles by held-out backtest coverage.

A fitted family (normal, negative binomial, empirical) gives each series a
predictive distribution of its cumulative error over H. Whether its
p-quantile really covers a share p of future windows depends on the series'
shape, the forecaster's bias and how well a handful of windows pins down the
moments; an assumed family over- or under-covers whole segments (issue 12:
negative binomial around Croston-SBA covered 0.72 for a 0.95 target on lumpy
retail items). So the level fed to the family is recalibrated per segment
and H from held-out coverage:

1. Leave-one-window-out: for window j of series i, refit the series'
   shrunk moments without window j and take the probability integral transform
   ``u_ij = F_i^(-j)(e_ij)`` of its realised error (for integer demand
   ``F(e - 1)``: the level ``ceil(forecast + q)`` covers demand ``D`` exactly
   when ``F(D - 1 - forecast) < p``; every sizing rounds integer levels up).
2. Pool the scores of a segment (same H) and use the split-conformal quantile
   ``p' = u_(ceil((m + 1) p))`` of the ``m`` pooled scores as the family's
   level: by exchangeability the quantile at ``p'`` covers at least a share
   ``p`` of new windows of that segment (Vovk et al. 2005; Angelopoulos &
   Bates 2023). The map ``p -> p'`` is the quantile recalibration of
   Kuleshov et al. (2018) with the conformal finite-sample correction.

Segments with fewer than ``min_calibration`` scores use the pool of all
segments (``p' = p`` when that too is short); a level beyond the largest score
is capped at :data:`P_CAP` and counted.

References
----------
Vovk, V., Gammerman, A. & Shafer, G. (2005). *Algorithmic Learning in a Random
World*. Springer.
Kuleshov, V., Fenner, N. & Ermon, S. (2018). Accurate uncertainties for deep
learning using calibrated regression. *ICML*, 2796-2804.
Barber, R. F., Candès, E. J., Ramdas, A. & Tibshirani, R. J. (2021). Predictive
inference with the jackknife+. *Annals of Statistics* 49(1), 486-507.
Angelopoulos, A. N. & Bates, S. (2023). Conformal prediction: a gentle
introduction. *Foundations and Trends in Machine Learning* 16(4), 494-591.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from forecasting.error_dists import CDF

__all__ = ["P_CAP", "Calibration", "fit_calibration", "loo_pit"]

#: Largest level a recalibration may ask of a family (z = 3.7 for the normal).
P_CAP = 1.0 - 1e-4


@dataclass(frozen=True)
class Calibration:
    """Sorted held-out PIT scores per (segment, H); maps a target level to the family's level.

    Attributes
    ----------
    scores : ndarray, shape (segments + 1, H, m_max)
        Ascending scores, padded with NaN; the last row pools every segment.
    counts : ndarray of int, shape (segments + 1, H)
    min_count : int
        Segments with fewer scores use the pool of all segments; when that too has
        fewer, the family's own levels.
    """

    scores: np.ndarray
    counts: np.ndarray
    min_count: int

    def _pool(self, seg: np.ndarray) -> np.ndarray:
        """Row of each segment's scores: its own, or the pool of all segments (last row) when too few."""
        seg = np.asarray(seg, dtype=int)
        return np.where(self.counts[seg, 0] >= self.min_count, seg, self.counts.shape[0] - 1)

    def _raw(self, p: np.ndarray, seg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Unclipped conformal level (inf beyond the last score) and whether it applies, (n, H)."""
        seg = self._pool(seg)
        m = self.counts[seg]  # (n, H)
        idx = np.ceil((m + 1) * p[:, None] - 1e-9).astype(int) - 1  # conformal order statistic
        take = np.clip(idx, 0, np.maximum(m - 1, 0))
        rows = np.broadcast_to(seg[:, None], m.shape)
        cols = np.broadcast_to(np.arange(m.shape[1])[None, :], m.shape)
        value = np.where(idx >= m, np.inf, self.scores[rows, cols, take] + 1e-9)
        return value, m >= self.min_count

    def level(self, p: np.ndarray, seg: np.ndarray) -> np.ndarray:
        """Family level p' per row and H, shape (len(p), H), for targets ``p`` of segments ``seg``."""
        value, applies = self._raw(p, seg)
        return np.clip(np.where(applies, value, p[:, None]), 1e-4, P_CAP)

    def cdf(self, u: np.ndarray, seg: np.ndarray, h: int) -> np.ndarray:
        """Calibrated probability of a family CDF value ``u`` at horizon index ``h`` (inverse of :meth:`level`)."""
        out = np.array(u, dtype=float)
        seg = self._pool(seg)
        for g in np.unique(seg):
            rows = seg == g
            m = self.counts[g, h]
            if m >= self.min_count:
                out[rows] = np.searchsorted(self.scores[g, h, :m], u[rows], side="left") / (m + 1)
        return out

    def capped(self, p: float, seg: np.ndarray) -> np.ndarray:
        """Per row of ``seg``, whether the target ``p`` needs a family level beyond :data:`P_CAP`.

        Then the held-out coverage of ``p`` cannot be promised: too few
        windows, or windows beyond anything the family (e.g. a series' own
        empirical errors) puts mass on.
        """
        value, applies = self._raw(np.full(len(seg), float(p)), seg)
        return (applies & (value >= P_CAP)).any(axis=1)


def _loo_moments(errors: np.ndarray, n: np.ndarray, correction) -> tuple[np.ndarray, np.ndarray]:
    """Each window's series mean and variance without that window, shape (S, w, H)."""
    n1 = np.maximum(n - 1, 1)[:, None, None]
    total = np.nansum(errors, axis=1, keepdims=True)
    squares = np.nansum(errors**2, axis=1, keepdims=True)
    mean = (total - errors) / n1
    ss = squares - errors**2 - n1 * mean**2
    var = np.where(n1 > 1, np.maximum(ss, 0.0) / np.maximum(n1 - 1, 1), 0.0)
    return mean, var * correction(np.maximum(n - 1, 1))[:, None, :]


def loo_pit(
    errors: np.ndarray, forecasts: np.ndarray, family: np.ndarray, integral: np.ndarray, shrink, correction
) -> np.ndarray:
    """Leave-one-window-out PIT score of every backtest window, shape (S, w, H), NaN where absent.

    Parameters
    ----------
    errors, forecasts : ndarray, shape (S, w, H)
        Cumulative errors and forecasts per window (NaN-padded).
    family : ndarray of str, shape (S,)
    integral : ndarray of bool, shape (S,)
        Integer demand: score ``F(e - 1)`` (levels are rounded up to whole units).
    shrink : callable
        ``(own_mean, own_var, n_windows) -> (mean, var)`` shrinkage toward the segment,
        arrays of shape (S, w, H) and (S,).
    correction : callable
        ``n -> (S, H)`` variance bias factor for overlapping windows.
    """
    n = np.sum(~np.isnan(errors[:, :, 0]), axis=1)
    own_mean, own_var = _loo_moments(errors, n, correction)
    mean, var = shrink(own_mean, own_var, np.maximum(n - 1, 0))
    x = errors - integral[:, None, None]
    u = np.full(errors.shape, np.nan)
    for name, cdf in CDF.items():
        rows = (family == name) & (n > 2)
        if rows.any():
            u[rows] = cdf(x[rows], mean[rows], var[rows], np.nan_to_num(forecasts[rows]))
    rows = np.flatnonzero((family == "empirical") & (n > 2))
    for i in rows:
        e = errors[i, : n[i]]  # (n_i, H)
        below = (e[None, :, :] <= x[i, : n[i]][:, None, :]).sum(axis=1)
        below = below - (e <= x[i, : n[i]])  # leave the window itself out
        u[i, : n[i]] = below / (n[i] - 1)
    return np.where(np.isnan(errors), np.nan, u)


def fit_calibration(scores: np.ndarray, seg_code: np.ndarray, min_count: int) -> Calibration:
    """Pool the PIT scores (S, w, H) of each segment, and of all segments (last row), sorted per H."""
    n_seg, horizon = int(seg_code.max()) + 1, scores.shape[2]
    blocks = [scores[seg_code == g].transpose(2, 0, 1).reshape(horizon, -1) for g in range(n_seg)]
    blocks.append(scores.transpose(2, 0, 1).reshape(horizon, -1))
    counts = np.array([[np.isfinite(b[h]).sum() for h in range(horizon)] for b in blocks], dtype=int)
    out = np.full((n_seg + 1, horizon, max(int(counts.max(initial=0)), 1)), np.nan)
    for g, b in enumerate(blocks):
        for h in range(horizon):
            v = np.sort(b[h][np.isfinite(b[h])])
            out[g, h, : len(v)] = v
    return Calibration(scores=out, counts=counts, min_count=min_count)
