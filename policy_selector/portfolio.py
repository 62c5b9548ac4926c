"""Segment and portfolio service targets: re-level the recommended policies by marginal allocation.

With per-item targets (the default) every item is sized to its own target. With a
segment or portfolio target, each stocked item's service-vs-inventory-value curve
is built from the *same* distribution of demand over its exposure H that sized it
(:func:`policy_selector.sizing._samples` of its chosen candidate), with the service the
simulator measures for that policy in that model (:func:`item_curves`), and
:func:`optimization.allocation.allocate` picks the cheapest levels whose weighted
service meets the target: CSL over the items that sell (each weighted by its chance to
sell within a year), or fill rate weighted by expected demand. The chosen policy type,
review period and order quantity stay; the level (S, or s with S - s kept) moves by the
allocated amount. :func:`exchange_curve` gives the portfolio exchange curve for the report.

The model is optimistic out of time where the allocation lowers levels, so
:func:`recommend_with_target` first runs :func:`backtest_target`: the same recommendation and
allocation at an earlier origin, replayed on the demand after it, raise each segment's target
to the one whose replay met it.

Items sized without a stocking policy (``no_stock``) keep it and are left out of the
target; the returned ``service_mode`` column says which rule set every level.
"""

from __future__ import annotations

import logging
import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from optimization import PolicyType, ServiceType, period_csl
from optimization.allocation import Allocation, allocate
from optimization.distributions import EmpiricalDemand, count_demand
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff, wide_panel
from policy_selector.decision_eval import policies_from_table, replay_table
from policy_selector.economics import periods_per_year
from policy_selector.outcomes import expected_outcomes
from policy_selector.recommend import recommend_policies
from policy_selector.sizing import MAX_LEVEL_MULTIPLE, _count_quantiles, _samples, exposure, largest_demand

__all__ = [
    "ServiceMode",
    "ItemCurves",
    "TargetBacktest",
    "backtest_target",
    "calibration_groups",
    "group_scale",
    "item_curves",
    "allocate_levels",
    "exchange_curve",
    "portfolio_policy",
    "recommend_with_target",
]

_LEVEL_POINTS = 40

logger = logging.getLogger(__name__)


class ServiceMode:
    """Names of the service modes (the ``service_mode`` column)."""

    ITEM = "item"
    SEGMENT = "segment"
    PORTFOLIO = "portfolio"


@dataclass(frozen=True)
class ItemCurves:
    """Exchange curve of every item: candidate levels, their service and inventory value.

    Attributes
    ----------
    ids : ndarray of str, shape (n,)
    level, service, value : ndarray, shape (n, k)
        Level (S or s), expected service at it (CSL or fill rate), unit_cost x level.
    weight : ndarray, shape (n,)
        Weight in the portfolio service (1 or expected demand; 0 for items without).
    current : ndarray, shape (n,)
        The level the per-item sizing chose.
    """

    ids: np.ndarray
    level: np.ndarray
    service: np.ndarray
    value: np.ndarray
    weight: np.ndarray
    current: np.ndarray


def _current_level(rec: pd.DataFrame) -> np.ndarray:
    """The level a target moves: s for (s, Q) and (R, s, S), S otherwise."""
    by_s = rec["policy"].isin([PolicyType.S_Q.value, PolicyType.R_S_S.value]).to_numpy()
    return np.where(by_s, rec["reorder_point"].to_numpy(float), rec["order_up_to"].to_numpy(float))


def item_curves(
    data: CutoffData,
    rec: pd.DataFrame,
    config: SelectorConfig,
    measure: ServiceType,
    scale: np.ndarray | None = None,
    tail: bool = True,
) -> ItemCurves:
    """Service-vs-value curve of every stocked item of ``rec`` (rows aligned with ``data.ids``).

    ``scale`` (per item, default 1) multiplies the item's demand samples over H: the held-out
    correction of :func:`backtest_target` (its tails included, which a factor on the service
    cannot move). With ``tail`` (the default), fill-rate curves give the demand a tail beyond its
    largest sample (:data:`TAIL`, :func:`_tail_loss`; a level above every sample still has a
    shortfall) and reach :data:`_TAIL_LEVELS` levels above it; ``tail=False`` is the sizing's
    (and the simulation's) model alone.

    Levels are 0, the per-item level and every ``k``-th point of the item's sorted demand
    samples over H (rounded up for count data). The service at a level is what the
    simulator measures for that policy in the sizing's demand model
    (:mod:`policy_selector.outcomes`), not the textbook rule the sizing inverts:

    - the position after an order: S for base stock and (R, S); uniform over s + 1 .. s + Q
      for an (s, Q) (whole units; (s, s + Q] otherwise), so its CSL is
      :func:`optimization.period_csl`, the rule that sized s (an (s, Q = 1) serves F(s + 1));
      for (R, s, S) S minus the demand since the last order, with the renewal probabilities
      of :func:`_min_max_positions` (not uniform: when the demand per review exceeds S - s
      every review orders and the position is always S);
    - CSL = P(D_H <= position) averaged over those positions; weight of the item in the
      portfolio CSL: the chance it sells within a year, and its service conditional on
      that (the portfolio CSL is measured over items with demand, see :func:`_csl_weights`);
    - fill rate = 1 - E[units short per cycle] / E[demand per cycle], with the shortage per
      cycle E[(D_H - y)^+] - E[(D_L - y)^+] and D_L the demand of the first L of H i.i.d.
      periods (:func:`_iid_loss`); weight: the distribution's mean demand per period (the
      forecast plus the calibrated error's bias, not the point forecast alone).

    Checked against long simulations on i.i.d. Poisson and negative-binomial demand
    (tests/policy_selector/test_outcomes_truth.py).
    """
    stocked = rec["policy"].ne(PolicyType.NO_STOCK.value).to_numpy()
    n, econ = len(rec), data.economics
    tailed = tail and measure is ServiceType.FILL_RATE and TAIL != "none"
    k = _LEVEL_POINTS + 2 + (len(_TAIL_LEVELS) if tailed else 0)
    current = _current_level(rec)
    level, service = np.full((n, k), np.nan), np.full((n, k), np.nan)
    weight = np.zeros(n)
    uniform = _position_offsets(rec, data.integral)
    for name in pd.unique(rec.loc[stocked, "candidate"]):
        rows = np.flatnonzero(stocked & rec["candidate"].eq(name).to_numpy())
        cand = config.space[name]
        H_all = np.minimum(exposure(cand, econ.lead_time, econ.review_period), data.horizon)
        f_all = data.cum_forecast[cand.forecaster][np.arange(n), H_all - 1]
        samples = np.sort(_samples(data, cand, H_all, f_all, config)[rows], axis=1)
        if scale is not None:
            samples = samples * np.asarray(scale, dtype=float)[rows, None]
        pick = np.linspace(0, samples.shape[1] - 1, _LEVEL_POINTS).round().astype(int)
        lv = np.concatenate([np.zeros((len(rows), 1)), samples[:, pick]], axis=1)
        body = _body_moments(data, rows, samples, f_all[rows], scale, cand, H_all[rows]) if tailed else None
        if tailed:  # levels above the largest sample, where the tail still has a shortfall
            lv = np.concatenate([lv, _tail_levels(samples, body, data.integral)], axis=1)
        lv = np.ceil(lv - 1e-9) if data.integral else lv
        # the sizing's cap (a multiple of the largest demand seen over H) bounds the curve as it bounds S
        cap = MAX_LEVEL_MULTIPLE * largest_demand(data.history[rows], H_all[rows])
        lv = np.where(cap[:, None] > 0, np.minimum(lv, cap[:, None]), lv)
        # the per-item level is a point of the curve too: the item mode is one point of the exchange curve
        lv = np.sort(np.column_stack([lv, np.nan_to_num(current[rows])]), axis=1)
        if cand.policy is PolicyType.R_S_S:
            offsets, weights = _min_max_positions(samples, rec.iloc[rows], data, H_all[rows])
        else:
            offsets, weights = uniform[rows], np.full(uniform[rows].shape, 1.0 / uniform.shape[1])
        position = lv[:, :, None] + offsets[:, None, :]  # (items, levels, positions)
        H = H_all[rows].astype(float)
        if measure is ServiceType.FILL_RATE:
            service[rows], mean = _fill_service(samples, body, position, weights, _lead(data, rows), H, data.integral)
            weight[rows] = mean / np.maximum(H, 1)  # the distribution's mean, bias included
        else:
            w = _csl_weights(data, rows)
            csl = (_cdf(samples, position) * weights[:, None, :]).sum(axis=2)
            # by the row's policy as presented, not the candidate's: an (s, Q) with Q = 1 and no order
            # cost is shown (and replayed) as the base stock S = s + 1, whose level is S, CSL F(S)
            sq = rec["policy"].to_numpy()[rows] == PolicyType.S_Q.value
            if sq.any():  # the sizing's own rule: (1/Q) sum_j F(s + j)
                Q = rec["order_quantity"].to_numpy(float)[rows][sq]
                csl[sq] = _period_csl(samples[sq], lv[sq], Q, data.integral)
            service[rows] = np.where(w[:, None] > 0, (csl - 1.0 + w[:, None]) / np.maximum(w, 1e-12)[:, None], 1.0)
            weight[rows] = w * (samples.mean(axis=1) > 0)
        level[rows] = lv
    value = level * econ.unit_cost[:, None]
    return ItemCurves(
        ids=np.asarray(rec["unique_id"], dtype=str),
        level=level,
        service=service,
        value=value,
        weight=weight,
        current=current,
    )


def _fill_service(
    samples, body, position, weights, lead, H, integral: bool, monotone: bool = True
) -> tuple[np.ndarray, np.ndarray]:
    """Fill rate at every level (items, levels) and the mean demand over H of the curves' law.

    Without ``body`` the law of D_H is the samples. With it (the mean and variance of
    :func:`_body_moments`) and the ``"nb"`` :data:`TAIL`, demand is two regimes: with chance
    1 - w the samples, with chance w the count (gamma) law of ``body`` (w = :data:`NB_WEIGHT`);
    the cycle shortage is the regimes' average, each E[(D_H - y)^+] - E[(D_L - y)^+] with D_L, the
    first L of H i.i.d. periods, the regime's law of its mean and variance times L / H
    (:func:`_law_loss` for the samples, :func:`_body_loss` for the body). The body regime's pair is consistent (D_H a sum of more of the same
    periods), so its shortage is positive above every sample and falls with the level; one D_L law
    of the mixture's moments against the mixture's D_H crossed above the largest sample (the curve
    then read fill 1 there, and dipped by ~1e-6 before it).
    """
    frac = lead / H
    ms, vs = samples.mean(axis=1), samples.var(axis=1)
    if body is None or TAIL != "nb":
        loss_H = _loss(samples, position) if body is None else _tail_loss(samples, position, integral)
        short, mean = np.maximum(loss_H - _law_loss(ms * frac, vs * frac, position, integral), 0.0), ms
    else:
        w, (mb, vb) = NB_WEIGHT, body
        own = np.maximum(_loss(samples, position) - _law_loss(ms * frac, vs * frac, position, integral), 0.0)
        law = np.maximum(
            _body_loss(mb, vb, position, integral) - _body_loss(mb * frac, vb * frac, position, integral), 0
        )
        short, mean = (1.0 - w) * own + w * law, (1.0 - w) * ms + w * mb
    cycle = mean * (H - lead) / H
    fill = 1.0 - (short * weights[:, None, :]).sum(axis=2) / np.maximum(cycle, 1e-12)[:, None]
    # the exchange curve: a higher level serves at least as well (running max over the sorted levels); the
    # samples' regime (D_H from the samples, D_L from their count law, clipped at 0) can still dip by ~1e-6
    # (``monotone=False``: the curve before the running max, which the tests bound)
    fill = np.clip(fill, 0.0, 1.0)
    return (np.maximum.accumulate(fill, axis=1) if monotone else fill), mean


#: Law of the second regime of the fill-rate curves' ``"nb"`` mixture (:func:`_body_moments`): ``"samples"``
#: (the default: the count law, or a gamma, of the samples' own mean and variance), ``"forecast"`` (the forecast
#: over H with the history's index of dispersion; gamma for non-count data) or ``"errors"`` (the forecast plus
#: the error model's uncalibrated mean and variance). Both unshrunk bodies match carparts' held-out loss in sum
#: with no demand scale, yet gave 1.12-1.31x (forecast) and 1.00x (errors) at equal fill rate against
#: 0.84x with the samples: docs/benchmarks/decisions.md, branch pfill4.
BODY = "samples"


def _error_moments(data: CutoffData, rows: np.ndarray, cand, H: np.ndarray, f_h: np.ndarray):
    """Mean (forecast + the backtest errors' mean over H) and variance (theirs, plus lead-time variability) of
    the demand over H from the candidate's error model *without* its conformal level map; NaN where none."""
    mean, var = np.full(len(rows), np.nan), np.full(len(rows), np.nan)
    em = data.error_models.get(cand.distribution)
    if em is None:
        return mean, var
    known = np.isin(data.ids[rows], em.ids_)
    if not known.any():
        return mean, var
    table = em.table(horizons=np.unique(H[known]).astype(float), quantiles=())
    table = table[table["model"] == cand.forecaster].set_index(["unique_id", "H"])
    keys = pd.MultiIndex.from_arrays([data.ids[rows][known], H[known].astype(float)])
    moments = table.reindex(keys)
    rate = f_h[known] / np.maximum(H[known], 1)
    lead_var = (rate * data.economics.lead_time_std[rows][known]) ** 2
    mean[known] = np.maximum(f_h[known] + moments["mean"].to_numpy(float), 0.0)
    var[known] = moments["std"].to_numpy(float) ** 2 + lead_var
    return mean, var


def _body_moments(
    data: CutoffData, rows: np.ndarray, samples: np.ndarray, f_h: np.ndarray, scale=None, cand=None, H=None
):
    """Mean and variance over H of the law the fill-rate curves mix with the samples (:data:`BODY`).

    ``"forecast"``: mean the forecast over H (``f_h``, at least 0); for count data the variance is
    the mean times the history's index of dispersion (variance / mean per period, at least 1: the
    negative binomial of the history's moments moved to the forecast's level, method of moments;
    i.i.d. periods keep the index over H; the variance is half that of the period-to-period changes,
    so a trend or a season does not count as noise), otherwise the samples' variance (the error
    model's spread, re-centred on the forecast). ``scale`` (per item of the curves) multiplies the law as it does
    the samples. ``"samples"``: the samples' mean and variance.
    """
    if BODY not in ("samples", "forecast", "errors"):
        raise ValueError(f"portfolio.BODY must be 'samples', 'forecast' or 'errors', got {BODY!r}")
    if BODY == "samples":
        return samples.mean(axis=1), samples.var(axis=1)
    if BODY == "errors":
        c = np.ones(len(rows)) if scale is None else np.asarray(scale, dtype=float)[rows]
        mean, var = _error_moments(data, rows, cand, H, f_h)
        mean, var = mean * c, var * c**2
        if data.integral:
            var = np.maximum(var, mean)  # a count law: at least Poisson
        own = ~(np.isfinite(mean) & np.isfinite(var))  # no error model: the samples' own moments
        return np.where(own, samples.mean(axis=1), mean), np.where(own, samples.var(axis=1), var)
    c = np.ones(len(rows)) if scale is None else np.asarray(scale, dtype=float)[rows]
    mean = np.maximum(np.nan_to_num(f_h), 0.0) * c
    if not data.integral:
        return mean, samples.var(axis=1)  # the samples are already scaled
    hist = data.history[rows]
    with np.errstate(invalid="ignore", divide="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN rows: Poisson
        # the variance of i.i.d. periods from half the variance of their changes: a trend or a season (slow
        # level changes) is forecast, not noise (the demo's smooth items: the plain variance over-dispersed them)
        m, v = np.nanmean(hist, axis=1), np.nanvar(np.diff(hist, axis=1), axis=1) / 2.0
        index = np.where(m > 0, v / m, 1.0)
    return mean, mean * c * np.maximum(np.nan_to_num(index, nan=1.0), 1.0)


_POSITIONS = 24


def _position_offsets(rec: pd.DataFrame, integral: bool) -> np.ndarray:
    """Equally likely positions after an order, above the level, shape (n, _POSITIONS)."""
    policy = rec["policy"].to_numpy()
    s, S = rec["reorder_point"].to_numpy(float), rec["order_up_to"].to_numpy(float)
    Q = np.where(policy == PolicyType.S_Q.value, rec["order_quantity"].to_numpy(float), 0.0)
    Q = np.where(policy == PolicyType.R_S_S.value, S - s, Q)
    Q = np.nan_to_num(np.maximum(Q, 0.0))
    j = np.arange(_POSITIONS)[None, :]
    if integral:  # IP after an order is uniform on s + 1 .. s + Q (Hadley & Whitin 1963, (s, nQ) policies)
        out = np.where(Q[:, None] > 0, 1.0 + np.floor(np.maximum(Q[:, None], 1.0) * j / _POSITIONS), 0.0)
        return np.where(policy[:, None] == PolicyType.R_S_S.value, np.ceil(Q[:, None] * (j + 0.5) / _POSITIONS), out)
    return Q[:, None] * (j + 0.5) / _POSITIONS


def _period_csl(samples: np.ndarray, levels: np.ndarray, Q: np.ndarray, integral: bool) -> np.ndarray:
    """:func:`optimization.period_csl` of an (s, Q) at every level column, on the sorted samples over H."""
    dist = EmpiricalDemand(samples)
    Q = np.maximum(np.nan_to_num(Q), 1e-9)
    return np.column_stack([period_csl(dist, levels[:, c], Q, integer=integral) for c in range(levels.shape[1])])


#: Largest number of lattice points of the (R, s, S) position distribution (wider ranges use coarser steps).
_RENEWAL_POINTS = 200


def _min_max_positions(samples: np.ndarray, rec: pd.DataFrame, data: CutoffData, H: np.ndarray):
    """Positions after a review of an (R, s, S) below S and their stationary probabilities, (m, P) each.

    The position after a review is S minus the demand since the last order, so it sits at
    S - x with probability proportional to the renewal mass u(x) of the demand per review
    D_R, for 0 <= x < S - s (Hadley & Whitin 1963, ch. 4; uniform only when D_R is small
    against S - s: with D_R above S - s every review orders and the position is always S).
    D_R has the mean and variance of D_H times R / H (i.i.d. periods): negative binomial or
    Poisson for count data, normal (mass below 0 at 0) otherwise, on a lattice of step
    ``delta`` (one unit for count data unless S - s exceeds ``_RENEWAL_POINTS``).
    """
    R = rec["review_period"].to_numpy(float)
    width = np.maximum(np.nan_to_num(rec["order_up_to"].to_numpy(float) - rec["reorder_point"].to_numpy(float)), 0.0)
    points = int(np.clip(np.ceil(width.max(initial=1.0)), 1, _RENEWAL_POINTS))
    delta = np.maximum(width / points, 1e-9)
    if data.integral:
        delta = np.maximum(np.ceil(width / _RENEWAL_POINTS), 1.0)
    mean = samples.mean(axis=1) * R / H
    var = samples.var(axis=1) * R / H
    edges = (np.arange(points)[None, :] + 0.5) * delta[:, None]  # bin k holds D_R in ((k - 0.5) delta, (k + 0.5) delta]
    if data.integral:
        pmf = count_demand(mean, var, support=int(np.ceil(edges.max())) + 2).pmf
        cdf = np.cumsum(pmf, axis=1)
        F = np.take_along_axis(cdf, np.floor(edges).astype(int), axis=1)
    else:
        F = stats.norm.cdf(edges, loc=mean[:, None], scale=np.sqrt(np.maximum(var, 1e-12))[:, None])
    g = np.diff(F, axis=1, prepend=0.0)
    u = np.zeros_like(g)
    stay = np.maximum(1.0 - g[:, 0], 1e-12)
    for x in range(points):  # renewal equation u(x) (1 - g0) = [x = 0] + sum_{k=1..x} g(k) u(x - k)
        u[:, x] = ((x == 0) + (g[:, 1 : x + 1] * u[:, x - 1 :: -1][:, :x]).sum(axis=1)) / stay
    inside = np.arange(points)[None, :] * delta[:, None] < width[:, None]
    u = np.where(inside, u, 0.0)
    weights = u / np.maximum(u.sum(axis=1, keepdims=True), 1e-300)
    offsets = width[:, None] - np.arange(points)[None, :] * delta[:, None]  # position - s
    return np.where(inside, offsets, width[:, None]), weights


def _iid_loss(samples: np.ndarray, frac: np.ndarray, x: np.ndarray, integral: bool) -> np.ndarray:
    """E[(D_L - x)^+] for x (m, ...), D_L with the mean and variance of D_H times ``frac`` = L / H (i.i.d. periods).

    Negative binomial or Poisson for count data, normal otherwise. Scaling the samples
    (D_L = D_H L / H) gave D_L the variance (L/H)^2 Var D_H instead of (L/H) Var D_H and
    understated the backlog carried into the cycle.
    """
    return _law_loss(samples.mean(axis=1) * frac, samples.var(axis=1) * frac, x, integral)


def _law_loss(mean: np.ndarray, var: np.ndarray, x: np.ndarray, integral: bool) -> np.ndarray:
    """E[(D - x)^+] for x (m, ...), D negative binomial or Poisson (count data) or normal of ``mean``, ``var`` (m,)."""
    shape = (-1,) + (1,) * (x.ndim - 1)
    if not integral:
        sd = np.sqrt(np.maximum(var, 1e-12)).reshape(shape)
        z = (x - mean.reshape(shape)) / sd
        return sd * (stats.norm.pdf(z) - z * stats.norm.sf(z))
    pmf = count_demand(mean, var).pmf  # (m, K)
    K = pmf.shape[1]
    d = np.arange(K)
    tail = np.cumsum((pmf * d)[:, ::-1], axis=1)[:, ::-1]  # sum_{d >= k} d f(d)
    sf = np.cumsum(pmf[:, ::-1], axis=1)[:, ::-1]  # P(D >= k)
    G = np.concatenate([tail - d * sf, np.zeros((len(pmf), 1))], axis=1)  # E[(D - k)^+], k = 0..K
    k = np.clip(np.ceil(x), 0, K).astype(int).reshape(len(pmf), -1)
    inside = np.take_along_axis(G, k, axis=1).reshape(x.shape)
    return np.where(x < 0, mean.reshape(shape) - x, inside)


def _csl_weights(data: CutoffData, rows: np.ndarray) -> np.ndarray:
    """Chance each item sells within a year: 1 - (1 - share of periods with demand) ** periods per year.

    The portfolio CSL is measured over items with demand (an item that sold nothing has no
    cycle to serve): sum_i P_i E[CSL_i | demand] / sum_i P_i, and P_i E[CSL_i | demand] =
    E[CSL_i] - (1 - P_i) since an item without demand has CSL 1. Weighting by P_i with
    service (E[CSL_i] - 1 + P_i) / P_i makes the allocation meet that measure; weighting
    every item by 1 credited slow movers with the CSL of the years they sell nothing.
    """
    hist = data.history[rows]
    share = (np.nan_to_num(hist) > 0).sum(axis=1) / np.maximum(np.isfinite(hist).sum(axis=1), 1)
    return 1.0 - (1.0 - share) ** round(data.economics.periods_per_year)


def _lead(data: CutoffData, rows: np.ndarray) -> np.ndarray:
    """Whole lead time in periods, capped at the cutoff's horizon."""
    return np.minimum(np.round(data.economics.lead_time[rows]).astype(int), data.horizon)


def _flat_sorted(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    """Rows of sorted samples laid end to end with a per-row shift, so one searchsorted serves all rows."""
    span = float(np.nanmax(samples) - np.nanmin(samples)) + 1.0 if samples.size else 1.0
    base = np.arange(len(samples))[:, None] * span * 4
    return (samples - np.nanmin(samples) + base).ravel(), base[:, 0], float(np.nanmin(samples)) if samples.size else 0.0


def _cdf(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """P(D <= x) per item for x of shape (n, ...), ``samples`` sorted (n, k)."""
    flat, base, lo = _flat_sorted(samples)
    k = samples.shape[1]
    shape = (-1,) + (1,) * (x.ndim - 1)
    span = base[1] if len(base) > 1 else np.inf
    # clipped into the row's own band: below all its samples, above the previous row's, below the next row's
    y = np.clip(x - lo, -1.0, span / 2) + base.reshape(shape)
    idx = np.searchsorted(flat, y, side="right") - (np.arange(len(samples)) * k).reshape(shape)
    return np.clip(idx, 0, k) / k


def _loss(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """E[(D - x)^+] per item for x of shape (n, ...), ``samples`` sorted (n, k)."""
    k = samples.shape[1]
    above = k - np.rint(_cdf(samples, x) * k).astype(int)  # samples > x
    tail = np.concatenate([np.cumsum(samples[:, ::-1], axis=1)[:, ::-1], np.zeros((len(samples), 1))], axis=1)
    idx = (k - above).reshape(len(samples), -1)
    total = np.take_along_axis(tail, idx, axis=1).reshape(x.shape)
    return np.maximum(total - above * x, 0.0) / k


#: Tail of the fill-rate curves' demand over H beyond its samples: ``"nb"`` (the default: a mixture with
#: the negative binomial, or normal, of the samples' mean and variance, :func:`_nb_mix_loss`), ``"exp"`` (an
#: exponential above the top decile, :func:`_exp_loss`; measured, not kept: docs/benchmarks/decisions.md)
#: or ``"none"`` (the samples alone: no shortfall above the largest sample). CSL curves keep the samples.
TAIL = "nb"

#: Chance of the second regime in the ``"nb"`` mixture (carparts fill-rate target 0.84: w = 0.1 / 0.3 / 0.5 / 0.7
#: gave 0.88x / 0.86x / 0.84x / 0.84x the best baseline at equal fill rate, the demo 0.71x at 0.3 and 0.5).
NB_WEIGHT = 0.5

#: Share of an item's demand samples the exponential tail replaces (the top decile).
TAIL_SHARE = 0.1

#: Quantiles of the exponential tail added to a fill-rate curve's levels (kept where above the largest sample).
_TAIL_LEVELS = np.array([0.99, 0.995, 0.998, 0.999])


def _exp_tail(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Exponential tail above the top :data:`TAIL_SHARE` of each row of sorted ``samples``: (u, p_u, beta).

    ``u`` is the sample at the 1 - :data:`TAIL_SHARE` point, ``p_u`` the share of samples above it and
    ``beta`` their mean excess over it (the exponential's maximum-likelihood scale), so the tail
    keeps the samples' mean and loss at ``u``. Where the top decile is one value (intermittent
    demand: its few largest errors equal), ``u`` is the next value below it, so the tail starts
    there with the share of the largest value; beta = 0 (no tail) only where all samples are equal.
    """
    k = samples.shape[1]
    u = samples[:, max(int(np.floor((1.0 - TAIL_SHARE) * k)) - 1, 0)]
    top = samples[:, -1]
    # a top decile of one value (count demand: the same few largest errors) starts at the next value below it
    below = np.where(samples < top[:, None], samples, -np.inf).max(axis=1)
    u = np.where((u >= top) & np.isfinite(below), below, u)
    excess = np.maximum(samples - u[:, None], 0.0)
    over = (excess > 0).sum(axis=1)
    beta = excess.sum(axis=1) / np.maximum(over, 1)
    return u, over / k, beta


def _tail_levels(samples: np.ndarray, body=None, integral: bool = False) -> np.ndarray:
    """Levels above the largest sample: the :data:`_TAIL_LEVELS` quantiles of :func:`_exp_tail` (at least the top),
    and with ``body`` (mean, variance) at least its count (gamma) law's quantiles there."""
    u, p_u, beta = _exp_tail(samples)
    q = u[:, None] + beta[:, None] * np.log(np.maximum(p_u[:, None], 1e-12) / (1.0 - _TAIL_LEVELS[None, :]))
    out = np.maximum(np.where(beta[:, None] > 0, q, 0.0), samples[:, -1:])
    if body is None or TAIL != "nb" or NB_WEIGHT <= 0:
        return out
    mean, var = body
    if integral:
        law = _count_quantiles(mean, np.maximum(var - mean, 0.0), _TAIL_LEVELS)
    else:
        m, v = np.maximum(mean, 1e-12)[:, None], np.maximum(var, 1e-12)[:, None]
        law = np.where(mean[:, None] > 0, stats.gamma.ppf(_TAIL_LEVELS[None, :], m**2 / v, scale=v / m), 0.0)
    return np.maximum(out, np.nan_to_num(law))


def _exp_loss(samples: np.ndarray, x: np.ndarray) -> np.ndarray:
    """E[(D - x)^+] per item with an exponential tail: from ``u`` up (:func:`_exp_tail`), the larger of the
    samples' loss and p_u beta exp(-(x - u) / beta).

    That is the loss of an exponential excess over ``u`` with the samples' exceedance share and
    mean excess (equal at ``u``; convex and falling, as the larger of two such functions is):
    positive above the largest sample, where the samples' own loss is 0, never below theirs.
    """
    loss = _loss(samples, x)
    shape = (-1,) + (1,) * (x.ndim - 1)
    u, p_u, beta = (a.reshape(shape) for a in _exp_tail(samples))
    b = np.maximum(beta, 1e-12)
    expo = p_u * b * np.exp(-np.maximum(x - u, 0.0) / b)
    return np.where((x >= u) & (beta > 0), np.maximum(expo, loss), loss)


def _nb_mix_loss(samples: np.ndarray, x: np.ndarray, integral: bool, body=None) -> np.ndarray:
    """E[(D - x)^+] per item of the mixture (1 - w) samples + w a law of ``body`` = (mean, variance).

    w = :data:`NB_WEIGHT`; without ``body`` the second law is the one of :func:`_iid_loss` (negative
    binomial, or Poisson, for count data; normal otherwise) of the samples' own mean and variance
    (the mixture keeps the samples' mean), with it :func:`_body_loss` (count law; gamma otherwise). Its loss is positive above the largest sample,
    convex and falling in ``x``.
    """
    if body is None:
        return (1.0 - NB_WEIGHT) * _loss(samples, x) + NB_WEIGHT * _iid_loss(
            samples, np.ones(len(samples)), x, integral
        )
    return (1.0 - NB_WEIGHT) * _loss(samples, x) + NB_WEIGHT * _body_loss(*body, x, integral)


def _body_loss(mean: np.ndarray, var: np.ndarray, x: np.ndarray, integral: bool) -> np.ndarray:
    """E[(D - x)^+] of the body law of ``mean``, ``var`` (m,): count data as :func:`_law_loss`, otherwise a gamma.

    The gamma (method of moments: shape mean^2 / var, scale var / mean) is positive like demand and
    skewed like it; a sum of i.i.d. gamma periods is gamma with the same scale, so D_L and D_H of
    the body regime are a consistent pair. E[(D - x)^+] = mean P(G_{k+1} > x) - x P(G_k > x).
    """
    if integral:
        return _law_loss(mean, var, x, integral)
    shape = (-1,) + (1,) * (x.ndim - 1)
    m, v = mean.reshape(shape), np.maximum(var, 1e-12).reshape(shape)
    k, theta = np.maximum(m, 1e-12) ** 2 / v, v / np.maximum(m, 1e-12)
    xp = np.maximum(x, 0.0)
    out = m * stats.gamma.sf(xp, k + 1.0, scale=theta) - xp * stats.gamma.sf(xp, k, scale=theta)
    return np.where(x < 0, m - x, np.maximum(out, 0.0))


def _tail_loss(samples: np.ndarray, x: np.ndarray, integral: bool, body=None) -> np.ndarray:
    """E[(D - x)^+] per item of the fill-rate curves' demand over H: the samples with the :data:`TAIL`."""
    if TAIL == "nb":
        return _nb_mix_loss(samples, x, integral, body)
    return _exp_loss(samples, x) if TAIL == "exp" else _loss(samples, x)


def allocate_levels(
    curves: ItemCurves, target: float, groups: np.ndarray | None = None, raise_by: dict | None = None
) -> tuple[np.ndarray, dict[str, Allocation]]:
    """Level per item meeting ``target`` within each group (one group = the portfolio).

    ``raise_by`` maps a group to the points its target is raised by in the allocation's
    model (:func:`backtest_target`); the raised target is capped at :data:`MAX_TARGET`.

    Returns
    -------
    (levels, allocations)
        ``levels`` shape (n,), NaN for items without a curve (not stocked);
        ``allocations`` maps each group to its :class:`~optimization.allocation.Allocation`.
    """
    has = np.isfinite(curves.level).any(axis=1)
    groups = np.full(len(curves.ids), "all", dtype=object) if groups is None else np.asarray(groups, dtype=object)
    levels, out = np.full(len(curves.ids), np.nan), {}
    for g in pd.unique(groups[has]):
        rows = np.flatnonzero(has & (groups == g))
        if curves.weight[rows].sum() <= 0:
            continue  # nothing to serve in this group: keep the per-item levels
        goal = min(target + (raise_by or {}).get(str(g), 0.0), max(target, MAX_TARGET))
        a = allocate(curves.value[rows], curves.service[rows], goal, weights=curves.weight[rows])
        levels[rows] = curves.level[rows, a.level_index]
        out[str(g)] = a
    return levels, out


def portfolio_policy(
    data: CutoffData,
    rec: pd.DataFrame,
    config: SelectorConfig,
    target: float,
    measure: ServiceType | str = ServiceType.CSL,
    segment_by: str | None = None,
    raise_by: dict | None = None,
    factors: dict | None = None,
) -> tuple[pd.DataFrame, dict[str, Allocation]]:
    """Re-level ``rec`` (output of :func:`recommend_policies` at ``data``) to a segment or portfolio target.

    Parameters
    ----------
    data : CutoffData
        The cutoff the recommendations were sized at (same ids, same order).
    rec : pandas.DataFrame
        Recommendations with ``unique_id, candidate, policy, reorder_point, order_up_to,
        safety_stock`` (and ``segment_by`` when given).
    target : float
        Service each segment (or the portfolio) must reach.
    measure : ServiceType or str, default CSL
        ``csl`` or ``fill_rate``.
    segment_by : str, optional
        Column of ``rec`` whose values are the segments; None = the whole portfolio.
    raise_by : dict of str -> float, optional
        Points each segment's (``"all"``: the portfolio's) target is raised by in the
        allocation's model, e.g. :attr:`TargetBacktest.raise_by`; ``service_target`` stays ``target``.
    factors : dict of str -> float, optional
        Demand scale per calibration group (:attr:`TargetBacktest.factors`) the curves' demand
        samples are multiplied by (:func:`group_scale`).

    Returns
    -------
    (pandas.DataFrame, dict)
        The re-levelled recommendations (``service_mode``, ``service_type`` and
        ``service_target`` say which rule set each level) and the allocation per segment.

    Raises
    ------
    ValueError
        ``rec`` is not aligned with ``data.ids``, or the measure is not csl / fill_rate.
    """
    measure = ServiceType(measure)
    if measure not in (ServiceType.CSL, ServiceType.FILL_RATE):
        raise ValueError(f"a portfolio target is a csl or fill_rate target, got {measure.value!r}")
    if not np.array_equal(np.asarray(rec["unique_id"], dtype=str), data.ids):
        raise ValueError("recommendations must be the rows of recommend_policies at the same cutoff, in its order")
    curves = item_curves(data, rec, config, measure, group_scale(calibration_groups(rec), factors))
    groups = rec[segment_by].astype(str).to_numpy() if segment_by else None
    levels, allocations = allocate_levels(curves, target, groups, raise_by)
    return _relevel(rec, data, curves, levels, target, measure, segment_by), allocations


def _relevel(rec, data: CutoffData, curves: ItemCurves, levels, target: float, measure: ServiceType, segment_by):
    """``rec`` with every allocated item's level moved to ``levels`` (S, or s with S - s kept)."""
    moved = np.isfinite(levels)
    delta = np.where(moved, levels - curves.current, 0.0)
    out = rec.copy()
    for col in ("reorder_point", "order_up_to"):
        out[col] = out[col] + delta
    out["safety_stock"] = np.maximum(out["safety_stock"] + delta, 0.0)
    out["safety_stock_value"] = out["safety_stock"] * data.economics.unit_cost
    mode = f"{ServiceMode.SEGMENT}:{segment_by}" if segment_by else ServiceMode.PORTFOLIO
    out["service_mode"] = np.where(moved, mode, ServiceMode.ITEM)
    out.loc[moved, "service_type"] = measure.value
    out.loc[moved, "service_target"] = target
    return out


def policy_params(rec: pd.DataFrame, data: CutoffData):
    """PolicyParams of recommendation rows (for re-simulating their expected outcomes)."""
    return policies_from_table(rec, data.economics)


def exchange_curve(allocations: dict[str, Allocation], max_points: int = 400) -> pd.DataFrame:
    """The portfolio exchange curve of every segment and where the plan sits on it.

    Parameters
    ----------
    allocations : dict of str -> Allocation
        From :func:`portfolio_policy` / :func:`recommend_with_target`.
    max_points : int, default 400
        Points kept per segment (evenly spaced steps; the first, the last and the plan's are always kept).

    Returns
    -------
    pandas.DataFrame
        ``segment, step, inventory_value, service, chosen`` (``chosen``: the plan's point).
    """
    frames = []
    for segment, a in allocations.items():
        m = len(a.curve_value)
        chosen = int(np.flatnonzero(np.isclose(a.curve_value, a.value) & np.isclose(a.curve_service, a.service))[0])
        keep = np.unique(np.concatenate([np.linspace(0, m - 1, min(m, max_points)).round().astype(int), [chosen]]))
        frames.append(
            pd.DataFrame(
                {
                    "segment": segment,
                    "step": keep,
                    "inventory_value": a.curve_value[keep],
                    "service": a.curve_service[keep],
                    "chosen": keep == chosen,
                }
            )
        )
    cols = ["segment", "step", "inventory_value", "service", "chosen"]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=cols)


#: Highest service the allocation is asked for after raising a target by its backtested shortfall.
MAX_TARGET = 0.995

#: Items with demand in the backtest's held-out periods a segment needs for its own shortfall (else the pooled one).
MIN_BACKTEST_ITEMS = 30


@dataclass(frozen=True)
class TargetBacktest:
    """The allocation run at an earlier origin and replayed on the periods after it.

    Attributes
    ----------
    origin : pandas.Timestamp or None
        Last period of the history the earlier allocation saw (None: not run, see ``reason``).
    periods : int
        Held-out periods replayed after ``origin``.
    table : pandas.DataFrame
        ``segment, items, model, achieved, shortfall, raise_by``: per segment (and ``all``,
        every allocated item) the items with demand in the held-out periods, the allocation's
        service in its own model at the target, the replayed service, their difference, and
        the raise (see :func:`backtest_target`; the pooled one for segments under
        :data:`MIN_BACKTEST_ITEMS` items; never below 0).
    reason : str or None
        Why no raise was measured.
    calibration : pandas.DataFrame or None
        ``group, items, model, achieved, factor``: per calibration group (:func:`calibration_groups`)
        the items with demand, the allocation's service at the target in the uncorrected model and
        replayed, and the scale its demand samples are multiplied by (:func:`group_scale`); None
        when not measured.
    """

    origin: pd.Timestamp | None
    periods: int
    table: pd.DataFrame
    reason: str | None = None
    calibration: pd.DataFrame | None = None

    @property
    def raise_by(self) -> dict[str, float]:
        """Points to raise each segment's target by."""
        return dict(zip(self.table["segment"].astype(str), self.table["raise_by"].astype(float)))

    @property
    def factors(self) -> dict[str, float] | None:
        """Demand scale per calibration group (``"all"``: the pooled one), or None."""
        if self.calibration is None or self.calibration.empty:
            return None
        return dict(zip(self.calibration["group"].astype(str), self.calibration["factor"].astype(float)))


def _no_backtest(periods: int, reason: str) -> TargetBacktest:
    cols = ["segment", "items", "model", "achieved", "shortfall", "raise_by"]
    return TargetBacktest(origin=None, periods=periods, table=pd.DataFrame(columns=cols), reason=reason)


#: Targets the backtest allocates to: the target and this many steps up to :data:`MAX_TARGET`.
_TARGET_STEPS = 8


def _replayed(kpis: pd.DataFrame, measure: ServiceType) -> tuple[int, float]:
    """Items with demand and the replayed service as ``stockwise evaluate`` measures it."""
    sold = kpis["demand"].to_numpy() > 0
    if not sold.any():
        return 0, np.nan
    if measure is ServiceType.FILL_RATE:
        return int(sold.sum()), float(kpis["served"].sum() / kpis["demand"].sum())
    return int(sold.sum()), float(kpis.loc[sold, "csl"].mean())


def _first_reaching(grid: np.ndarray, achieved: np.ndarray, target: float) -> float:
    """Raise: the smallest grid target (linear between points) whose replayed service reaches ``target``."""
    if not np.isfinite(achieved[0]) or achieved[0] >= target:
        return 0.0
    hit = np.flatnonzero(achieved >= target)
    if not hit.size:
        return float(grid[-1] - grid[0])
    j = hit[0]
    a0, a1 = achieved[j - 1], achieved[j]
    step = (target - a0) / (a1 - a0) if np.isfinite(a0) and a1 > a0 else 1.0
    return float(grid[j - 1] + (grid[j] - grid[j - 1]) * step - grid[0])


#: Demand scales a calibration group's correction is read from (model service at fixed levels falls with
#: each); none below 1, as a raise never lowers a target (:func:`_scale_reaching`).
SCALE_GRID = np.array([1.0, 1.1, 1.25, 1.4, 1.6, 1.8, 2.0, 2.5, 3.0, 4.0])


def calibration_groups(rec: pd.DataFrame) -> np.ndarray:
    """Group of every row whose curves share one out-of-time correction: ``candidate|sbc_class``.

    The optimism of the sizing's model differs by the distribution that sized an item (its
    candidate: forecaster x error family) and its demand class (carparts: the fill rate of
    intermittent items sized on empirical errors 0.958 in the model, 0.843 replayed; lumpy ones
    0.954 and 0.967), not by the target; one raise of the whole portfolio's target moved stock
    to the segments whose model was right.
    """
    cand = rec["candidate"].astype(str).to_numpy()
    if "sbc_class" not in rec:
        return cand.astype(object)
    return np.array([f"{c}|{b}" for c, b in zip(cand, rec["sbc_class"].astype(str))], dtype=object)


def group_scale(groups: np.ndarray, factors: dict | None) -> np.ndarray | None:
    """Demand scale per item from its group's factor (groups without one: the pooled ``"all"``, else 1)."""
    if not factors:
        return None
    pooled = factors.get("all", 1.0)
    return np.array([factors.get(str(g), pooled) for g in groups], dtype=float)


def _group_service(curves: ItemCurves, rows: np.ndarray) -> float:
    """Weighted service of ``rows`` at their current levels (a point of every curve) in the curves' model."""
    rows = rows[np.isfinite(curves.level[rows]).any(axis=1) & (curves.weight[rows] > 0)]
    if not rows.size:
        return np.nan
    col = np.argmax(curves.level[rows] == curves.current[rows, None], axis=1)
    s, w = curves.service[rows, col], curves.weight[rows]
    return float((s * w).sum() / w.sum())


def _scale_reaching(model: np.ndarray, achieved: float) -> float:
    """The demand scale at which the model's service (falling along :data:`SCALE_GRID`) equals ``achieved``.

    At least 1, as a raise never lowers a target: a group the replay served better than its model
    keeps its curves (on the demo a group of 42 intermittent items read 0.72 and, scaled down,
    lost 15 points of fill rate in the held-out quarter).
    """
    ok = np.isfinite(model)
    if not ok.any() or not np.isfinite(achieved):
        return np.nan
    x, y = SCALE_GRID[ok], np.minimum.accumulate(model[ok])
    return float(np.interp(-achieved, -y, x))  # clamped to the grid's ends: 1 and its top


def _calibration(data, out: pd.DataFrame, config, kpis: pd.DataFrame, groups: np.ndarray, measure) -> pd.DataFrame:
    """Per group (and ``"all"``) of the allocated rows of ``out``: items with demand, model and replayed
    service, and the demand scale at which the model serves what the replay served.

    The model's service at the allocated levels is recomputed with every item's demand samples
    scaled by each :data:`SCALE_GRID` value; the factor is read off that falling curve at the
    replayed service (linear between grid points, clamped to the grid). Groups with fewer than
    :data:`MIN_BACKTEST_ITEMS` items with demand take the pooled factor.
    """
    moved = out["service_mode"].ne(ServiceMode.ITEM).to_numpy()
    names = [*sorted(set(groups[moved])), "all"]
    members = {g: np.flatnonzero(moved & ((groups == g) | (g == "all"))) for g in names}
    model = np.full((len(names), len(SCALE_GRID)), np.nan)
    for j, m in enumerate(SCALE_GRID):
        curves = item_curves(data, out, config, measure, np.full(len(out), m))
        model[:, j] = [_group_service(curves, members[g]) for g in names]
    rows = []
    for i, g in enumerate(names):
        n, achieved = _replayed(kpis.iloc[members[g]], measure)
        rows.append({"group": g, "items": n, "model": model[i, SCALE_GRID == 1.0][0], "achieved": achieved})
        rows[-1]["raw"] = _scale_reaching(model[i], achieved)
    table = pd.DataFrame(rows)
    pooled = table["raw"].iloc[-1]
    pooled = float(pooled) if np.isfinite(pooled) else 1.0
    own = table["raw"].notna() & (table["items"] >= MIN_BACKTEST_ITEMS)
    table["factor"] = np.where(own, table["raw"].fillna(1.0), pooled)
    return table[["group", "items", "model", "achieved", "factor"]]


def _backtest_table(grid, model: dict, achieved: dict, items: dict, target: float) -> pd.DataFrame:
    """Per segment (``"all"`` pooled): model service and replayed service at ``target``, and the raise.

    ``achieved[g]`` is the replayed service of segment g when allocated to each ``grid`` target;
    the raise is the smallest grid target whose replay reaches ``target``, minus ``target``
    (the pooled one for segments with fewer than :data:`MIN_BACKTEST_ITEMS` items with demand).
    """
    grid = np.asarray(grid, dtype=float)
    rows = []
    for g in model:
        a = np.asarray(achieved[g], dtype=float)
        rows.append({"segment": g, "items": items[g], "model": model[g], "achieved": a[0], "raise": a})
    table = pd.DataFrame(rows)
    pooled = _first_reaching(grid, np.asarray(achieved["all"], dtype=float), target) if "all" in achieved else 0.0
    table["raise_by"] = [
        _first_reaching(grid, r["raise"], target) if r["items"] >= MIN_BACKTEST_ITEMS else pooled
        for _, r in table.iterrows()
    ]
    table["shortfall"] = table["model"] - table["achieved"]
    return table[["segment", "items", "model", "achieved", "shortfall", "raise_by"]]


def backtest_target(
    selector,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    target: float,
    measure: ServiceType | str = ServiceType.CSL,
    segment_by: str | None = None,
    periods: int | None = None,
    calibrate: bool = True,
) -> TargetBacktest:
    """How far to raise a target so that the *replayed* service meets it, from an earlier origin.

    The allocation meets its target in the sizing's model, and the model is least reliable
    where the allocation lowers levels (carparts: 0.95 in the model, 0.924 replayed). Run the
    same recommendation at the date ``periods`` before the last one, allocate it to the
    target and to :data:`_TARGET_STEPS` targets above it (up to :data:`MAX_TARGET`), replay
    each allocation on the actual demand of the ``periods`` after that date
    (:func:`policy_selector.decision_eval.replay_table`; CSL over items with demand as
    ``stockwise evaluate`` measures it, fill rate = served / demand) and take per segment the
    smallest target whose replay reached the target (linear between grid points): that
    target minus the target is the raise (0 when the replay already met it). Measured on a
    grid, not as one shortfall added on, because the model's optimism shrinks as levels rise.

    For a fill-rate target, with ``calibrate`` (the default), the curves are first corrected per calibration group
    (:func:`calibration_groups`): the allocation at the target is replayed, and each group's
    demand samples are scaled by the factor at which the model serves, at the same levels,
    what the replay served (:func:`_calibration`); the grid above is run on the corrected
    curves, so the raise is what remains after the correction. The correction moves stock to
    the groups whose model is optimistic; the raise alone lifted every group by the
    portfolio's shortfall.

    Parameters
    ----------
    periods : int, optional
        Held-out periods; default one year, at most a quarter of the history's periods.
    calibrate : bool, default True
        For a fill-rate target, measure the per-group demand scales (``TargetBacktest.calibration``).
        Not for CSL: on carparts its optimism is about even across groups (demand scales 1.2-1.46)
        and the raise alone does better (0.81x the best baseline at equal CSL; 0.84x with the scales).

    Returns
    -------
    TargetBacktest
        With ``reason`` set (and no raise) when the history is too short for an earlier
        origin with its own forecast backtest, or no item had demand after it.
    """
    measure = ServiceType(measure)
    dates = np.sort(pd.to_datetime(demand["ds"]).unique())
    periods = periods or int(min(round(periods_per_year(config.freq)), len(dates) // 4))
    if periods < 1 or len(dates) <= periods:
        return _no_backtest(periods, f"{len(dates)} periods of history leave none before an earlier origin")
    origin = pd.Timestamp(dates[-periods - 1])
    data = prepare_cutoff(demand, items, origin, config)
    if data.cv.empty:
        return _no_backtest(periods, f"no series has history for a forecast backtest before {origin.date()}")
    rec = recommend_policies(selector, demand, items, config, rng, cutoff=origin, data=data)
    wide = wide_panel(demand).reindex(index=data.ids)
    actual = wide.loc[:, wide.columns > origin].iloc[:, :periods].fillna(0.0).to_numpy(float)  # after its end: 0
    curves = item_curves(data, rec, config, measure)
    groups = rec[segment_by].astype(str).to_numpy() if segment_by else np.full(len(rec), "all", dtype=object)
    calibration = None
    if calibrate and measure is ServiceType.FILL_RATE:  # the uncorrected allocation first: each group's demand scale
        levels, _ = allocate_levels(curves, target, None if segment_by is None else groups)
        out = _relevel(rec, data, curves, levels, target, measure, segment_by)
        cal_groups = calibration_groups(rec)
        kpis = replay_table(actual, [out], data.economics)
        calibration = _calibration(data, out, config, kpis, cal_groups, measure)
        scale = group_scale(cal_groups, dict(zip(calibration["group"], calibration["factor"])))
        curves = item_curves(data, rec, config, measure, scale)
    grid = target + (max(target, MAX_TARGET) - target) * np.arange(_TARGET_STEPS + 1) / _TARGET_STEPS
    model, achieved, count = {}, {}, {}
    for t in grid:
        levels, allocations = allocate_levels(curves, t, None if segment_by is None else groups)
        out = _relevel(rec, data, curves, levels, t, measure, segment_by)
        kpis = replay_table(actual, [out], data.economics)
        moved = np.isfinite(levels)
        for g in dict.fromkeys([*allocations, "all"]):
            n, a = _replayed(kpis[moved & ((groups == g) | (g == "all"))], measure)
            achieved.setdefault(g, []).append(a)
            if t == grid[0]:
                count[g] = n
                model[g] = allocations[g].service if g in allocations else np.nan
    if count.get("all", 0) == 0:
        return _no_backtest(periods, f"no stocked item had demand in the {periods} periods after {origin.date()}")
    table = _backtest_table(grid, model, achieved, count, target)
    return TargetBacktest(origin=origin, periods=periods, table=table, calibration=calibration)


def _backtest_frame(check: TargetBacktest) -> pd.DataFrame:
    """The backtest's table with its origin, held-out periods and reason on every row (one row when not run)."""
    table = check.table
    if table.empty:
        table = pd.DataFrame([{"segment": "all", "items": 0, "raise_by": 0.0}], columns=check.table.columns)
    origin = str(check.origin.date()) if check.origin is not None else None
    return table.assign(origin=origin, periods=check.periods, reason=check.reason)


def recommend_with_target(
    selector,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    target: float,
    measure: ServiceType | str = ServiceType.CSL,
    segment_by: str | None = None,
    backtest: bool = True,
) -> tuple[pd.DataFrame, dict[str, Allocation]]:
    """:func:`recommend_policies`, then re-levelled to a segment / portfolio target and re-simulated.

    With ``backtest`` (the default) the target is first raised per segment by the
    allocation's held-out shortfall at an earlier origin (:func:`backtest_target`; one more
    forecast backtest), so that the *replayed* service, not only the modelled one, meets it.

    Returns
    -------
    (pandas.DataFrame, dict)
        Recommendations as :func:`recommend_policies` returns them plus ``service_mode``;
        ``expected_*`` columns are those of the re-levelled policies; ``service_target`` is
        ``target``. ``attrs["exchange_curve"]`` holds :func:`exchange_curve` and
        ``attrs["target_backtest"]`` the :class:`TargetBacktest` table, as plain lists
        (what the plan's report draws).
    """
    cutoff = pd.Timestamp(pd.to_datetime(demand["ds"]).max())
    data = prepare_cutoff(demand, items, cutoff, config)
    rec = recommend_policies(selector, demand, items, config, rng, cutoff=cutoff, data=data)
    check = backtest_target(selector, demand, items, config, rng, target, measure, segment_by) if backtest else None
    raise_by = check.raise_by if check is not None else None
    factors = check.factors if check is not None else None
    if check is not None:
        logger.info(
            "%s target %.3f, backtest at %s (%d periods, %s):\n%s\ncurve calibration:\n%s",
            measure,
            target,
            check.origin,
            check.periods,
            check.reason or "measured",
            check.table.round(4).to_string(index=False),
            "none" if check.calibration is None else check.calibration.round(4).to_string(index=False),
        )
    out, allocations = portfolio_policy(data, rec, config, target, measure, segment_by, raise_by, factors)
    outcomes = expected_outcomes(data, policy_params(out, data), out["candidate"].to_numpy(), config, rng)
    for col in outcomes.columns:
        out[col] = outcomes[col].to_numpy()
    # for the report, which sees only the frame (plain lists: attrs are serialised with parquet)
    out.attrs["exchange_curve"] = exchange_curve(allocations).to_dict("list")
    if check is not None:
        out.attrs["target_backtest"] = _backtest_frame(check).to_dict("list")
    return out, allocations
