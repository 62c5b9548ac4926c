"""Service-vs-inventory-value curves of every stocked item, in the model that sized it.

Each item's curve is built from the *same* distribution of demand over its exposure H that
sized it (:func:`policy_selector.sizing._samples` of its chosen candidate), with the service the
simulator measures for that policy in that model (:func:`item_curves`): CSL per period of the
policy (for (s, Q) and (R, s, S) over the positions the order quantity leaves), or fill rate
from the expected loss, with a tail beyond the largest sample (two regimes: the samples, and a
body law of their moments). :mod:`policy_selector.portfolio` allocates levels along these
curves; :mod:`policy_selector.service_target` corrects them out of time.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from optimization import PolicyType, ServiceType, period_csl
from optimization.distributions import EmpiricalDemand, count_demand
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData
from policy_selector.sizing import MAX_LEVEL_MULTIPLE, _count_quantiles, _samples, exposure, largest_demand

__all__ = ["ItemCurves", "calibration_groups", "group_scale", "item_curves"]

_LEVEL_POINTS = 40


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
    correction of :func:`policy_selector.service_target.backtest_target` (its tails included, which a factor on the service
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
        raise ValueError(f"service_curves.BODY must be 'samples', 'forecast' or 'errors', got {BODY!r}")
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
