"""Portfolio service targets by marginal allocation along each item's exchange curve.

Each item i has a discrete curve of levels j with inventory value v_ij and
service s_ij (CSL or fill rate at that level). A portfolio (or segment) target
asks for the weighted service sum_i w_i s_i / sum_i w_i >= target at least total
value sum_i v_i. The greedy of the exchange curve takes, among all items, the
next step with the largest service gained per unit of value added until the
target is met. On the upper concave hull of each item's curve the step slopes
fall within an item, so the greedy sequence is feasible and every prefix is an
optimal solution of the discrete problem at the service it reaches (Fox 1966;
the "exchange curve" of Silver, Pyke & Thomas 2017, sec. 7.4 and 8.4).
Points below the hull are never chosen; for curves that are concave already
(service with diminishing returns in stock, the usual case) nothing is lost.

Pure numpy, no I/O.

References
----------
Fox, B. (1966). Discrete optimization via marginal analysis. Management Science 13(3).
Silver, E., Pyke, D., Thomas, D. (2017). Inventory and Production Management in
Supply Chains, 4th ed., CRC Press.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Allocation", "allocate", "concave_hull"]


@dataclass(frozen=True)
class Allocation:
    """Result of :func:`allocate`.

    Attributes
    ----------
    level_index : ndarray of int, shape (n_items,)
        Chosen column of each item's curve.
    value : float
        Total value of the chosen levels.
    service : float
        Weighted portfolio service of the chosen levels.
    reached : bool
        Whether ``service >= target`` (False: every item at its top hull level).
    curve_value, curve_service : ndarray, shape (n_steps + 1,)
        The portfolio exchange curve: total value and service after each greedy step,
        starting with every item at its cheapest level.
    """

    level_index: np.ndarray
    value: float
    service: float
    reached: bool
    curve_value: np.ndarray
    curve_service: np.ndarray


def concave_hull(value: np.ndarray, service: np.ndarray) -> np.ndarray:
    """Indices of the upper concave hull of one item's (value, service) points.

    Starts at the cheapest point (the best service among equally cheap points) and
    keeps only points that add service, with falling slopes. NaN points are ignored.

    Returns
    -------
    ndarray of int
        Column indices, ordered by increasing value.

    Examples
    --------
    >>> concave_hull(np.array([0.0, 1.0, 2.0, 3.0]), np.array([0.5, 0.6, 0.9, 0.95])).tolist()
    [0, 2, 3]
    """
    ok = np.flatnonzero(np.isfinite(value) & np.isfinite(service))
    if ok.size == 0:
        raise ValueError("a curve has no finite (value, service) point")
    order = ok[np.lexsort((-service[ok], value[ok]))]
    hull: list[int] = []
    for j in order:
        if hull and service[j] <= service[hull[-1]]:
            continue  # costs at least as much, serves no better
        while len(hull) >= 2 and _turns_up(value, service, hull[-2], hull[-1], j):
            hull.pop()
        hull.append(int(j))
    return np.asarray(hull, dtype=int)


def _turns_up(v: np.ndarray, s: np.ndarray, a: int, b: int, c: int) -> bool:
    """Whether b lies on or below the chord a-c (so it is not a concave vertex)."""
    return (s[b] - s[a]) * (v[c] - v[a]) <= (s[c] - s[a]) * (v[b] - v[a])


def allocate(value, service, target: float, weights=None) -> Allocation:
    """Cheapest levels meeting a weighted portfolio service target, by marginal allocation.

    Parameters
    ----------
    value : array_like, shape (n_items, n_levels)
        Inventory value at each level (NaN pads items with fewer levels).
    service : array_like, shape (n_items, n_levels)
        Service at each level, in [0, 1].
    target : float
        Portfolio service to reach, in (0, 1].
    weights : array_like, shape (n_items,), optional
        Weight of each item in the portfolio service (1 for CSL averaged over items,
        expected demand for fill rate). Default equal.

    Returns
    -------
    Allocation

    Raises
    ------
    ValueError
        Shapes differ, negative weights, a target outside (0, 1], or an item without points.

    Examples
    --------
    >>> v = np.array([[0.0, 10.0, 20.0], [0.0, 1.0, 2.0]])
    >>> s = np.array([[0.5, 0.9, 0.95], [0.5, 0.9, 0.95]])
    >>> a = allocate(v, s, 0.9)
    >>> a.level_index.tolist(), a.value
    ([1, 1], 11.0)
    """
    v, s = np.asarray(value, dtype=float), np.asarray(service, dtype=float)
    if v.ndim != 2 or v.shape != s.shape:
        raise ValueError(f"value and service must be (n_items, n_levels) of one shape, got {v.shape} and {s.shape}")
    if not 0.0 < target <= 1.0:
        raise ValueError(f"target must be in (0, 1], got {target}")
    w = np.ones(v.shape[0]) if weights is None else np.asarray(weights, dtype=float)
    if w.shape != (v.shape[0],) or (w < 0).any() or not np.isfinite(w).all():
        raise ValueError("weights must be finite, >= 0 and one per item")
    total_w = w.sum() if w.sum() > 0 else 1.0
    hulls = [concave_hull(v[i], s[i]) for i in range(v.shape[0])]
    start = np.array([h[0] for h in hulls])
    rows = np.arange(v.shape[0])
    steps = _steps(v, s, w / total_w, hulls)
    curve_v = v[rows, start].sum() + np.concatenate([[0.0], np.cumsum(steps[:, 2])])
    curve_s = (w * s[rows, start]).sum() / total_w + np.concatenate([[0.0], np.cumsum(steps[:, 3])])
    hit = np.flatnonzero(curve_s >= target - 1e-12)
    m = int(hit[0]) if hit.size else len(curve_s) - 1
    level = start.copy()
    for item, col in steps[:m, :2].astype(int):
        level[item] = col  # steps of one item come in hull order
    return Allocation(
        level_index=level,
        value=float(curve_v[m]),
        service=float(curve_s[m]),
        reached=bool(hit.size),
        curve_value=curve_v,
        curve_service=curve_s,
    )


def _steps(v: np.ndarray, s: np.ndarray, w: np.ndarray, hulls: list[np.ndarray]) -> np.ndarray:
    """Hull steps of every item as rows (item, to-column, value added, weighted service added), best ratio first."""
    parts = []
    for i, h in enumerate(hulls):
        if h.size > 1:
            dv = np.diff(v[i, h])
            ds = np.diff(s[i, h]) * w[i]
            parts.append(np.column_stack([np.full(h.size - 1, i), h[1:], dv, ds]))
    if not parts:
        return np.zeros((0, 4))
    steps = np.vstack(parts)
    ratio = np.where(steps[:, 2] > 0, steps[:, 3] / np.where(steps[:, 2] > 0, steps[:, 2], 1.0), np.inf)
    # stable sort: equal ratios keep item and hull order, so an item's steps stay in sequence
    return steps[np.argsort(-ratio, kind="stable")]
