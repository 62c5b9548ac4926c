"""The error family of each segment under ``distribution="auto"`` with calibration.

Every option (normal; negative binomial for integer demand; empirical where a series has enough
windows: :func:`_family_options`) is recalibrated to the same held-out coverage
(:mod:`forecasting.calibration`), and per segment the one that needs the least stock at
:data:`CHOICE_LEVELS` is kept (:func:`_choose_calibrated`, for
:class:`~forecasting.error_model.ErrorModel`).

References
----------
Gneiting, T., Balabdaoui, F. & Raftery, A. E. (2007). Probabilistic forecasts, calibration and
sharpness. *J. R. Stat. Soc. B* 69(2), 243-268.
"""

from __future__ import annotations

import numpy as np

from forecasting.calibration import Calibration
from forecasting.error_dists import PPF, empirical_ppf

__all__ = ["CHOICE_LEVELS"]


#: Target levels at which calibrated families are compared (``auto``): typical service targets.
CHOICE_LEVELS = (0.9, 0.95, 0.98)


def _family_options(integral: np.ndarray, n: np.ndarray, min_empirical: int) -> dict[str, np.ndarray]:
    """Family per series for each option of ``auto``: negative binomial needs integer demand,
    empirical needs ``min_empirical`` windows; otherwise the series stays normal."""
    normal = np.full(len(n), "normal", dtype=object)
    return {
        "normal": normal,
        "negbin": np.where(integral, "negbin", normal).astype(object),
        "empirical": np.where(n >= min_empirical, "empirical", normal).astype(object),
    }


def _levels_at(par: dict, family: np.ndarray, p_family: np.ndarray) -> np.ndarray:
    """Cumulative demand level fbar + q at the longest H for family levels ``p_family`` (S,)."""
    h = -1
    mean, var, fbar = par["mean"][:, h], par["var"][:, h], par["fbar"][:, h]
    q = np.empty(len(family))
    for name, ppf in PPF.items():
        rows = family == name
        q[rows] = ppf(p_family[rows], mean[rows], var[rows], fbar[rows])
    rows = family == "empirical"
    if rows.any():
        q[rows] = empirical_ppf(par["sorted"][rows, :, h], par["n"][rows], p_family[rows])
    return fbar + q


def _choose_calibrated(fits: dict, par: dict, seg_code: np.ndarray, integral: np.ndarray):
    """Per segment, the calibrated family that holds the least stock at equal held-out coverage.

    Every option is recalibrated to cover a share p of its segment's held-out
    windows, so at each level of :data:`CHOICE_LEVELS` they differ only in the
    stock they need (sharpness subject to calibration; Gneiting, Balabdaoui &
    Raftery 2007). An option whose calibration runs out of held-out scores
    (capped) cannot promise the coverage and is passed over while another can.

    Returns
    -------
    family : ndarray of str, shape (S,)
    calibration : Calibration
        The chosen option's per segment.
    """
    names = list(fits)
    n_seg = int(seg_code.max()) + 1  # per segment; segments short of scores share the pooled row
    cost = np.zeros((len(names), n_seg))
    for j, name in enumerate(names):
        fam, cal = fits[name]
        for p in CHOICE_LEVELS:
            pf = cal.level(np.full(len(seg_code), p), seg_code)[:, -1]
            level = _levels_at(par, fam, pf)
            level = np.where(integral, np.ceil(np.maximum(level, 0.0) - 1e-9), np.maximum(level, 0.0))
            stock = np.bincount(seg_code, weights=level, minlength=n_seg)
            capped = np.bincount(seg_code, weights=cal.capped(p, seg_code), minlength=n_seg) > 0
            cost[j] += np.where(capped, np.inf, stock)
    best = np.where(np.isfinite(cost).any(axis=0), np.argmin(cost, axis=0), names.index("normal"))
    total = cost.sum(axis=1)
    pooled = int(np.argmin(total)) if np.isfinite(total).any() else names.index("normal")
    any_cal = fits[names[0]][1]
    best[any_cal.counts[:n_seg, 0] < any_cal.min_count] = pooled  # short segments use the pooled row
    family = np.empty(len(seg_code), dtype=object)
    for g in range(n_seg):
        rows = seg_code == g
        family[rows] = fits[names[best[g]]][0][rows]
    rows = [fits[names[best[g]]][1] for g in range(n_seg)] + [fits[names[pooled]][1]]
    return family, _stack_calibrations(rows)


def _stack_calibrations(per_row: list) -> Calibration:
    """One Calibration whose row g comes from ``per_row[g]`` (the last row: the pool of all segments)."""
    width = max(c.scores.shape[2] for c in per_row)
    scores = np.full((len(per_row), per_row[0].scores.shape[1], width), np.nan)
    counts = np.zeros(scores.shape[:2], dtype=int)
    last = len(per_row) - 1
    for g, c in enumerate(per_row):
        src = g if g < last else c.counts.shape[0] - 1
        scores[g, :, : c.scores.shape[2]] = c.scores[src]
        counts[g] = c.counts[src]
    return Calibration(scores=scores, counts=counts, min_count=per_row[0].min_count)
