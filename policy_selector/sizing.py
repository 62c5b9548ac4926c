"""Size every candidate at a cutoff: distribution over H -> policy parameters.

For each candidate and item the exposure is H = L + R for periodic policies
((R, S), (R, s, S)) and H = L + 1 for policies reviewed every period
((s, Q), base stock). The demand over H is the forecaster's cumulative
forecast plus the cumulative forecast error of :class:`forecasting.ErrorModel`
(normal, empirical or negative binomial family) or, for Poisson candidates, a
Poisson/negative-binomial count around the forecast (lead-time variability as
extra variance). Each distribution is represented by a quantile grid and sized
with :func:`optimization.size_policy` against the item's own target (CSL, fill
rate, or the newsvendor ratio when no target is set), or a multiple of its shortfall
(:attr:`Candidate.shortfall_scale`, :func:`sized_target`). For integer demand the grid
is rounded up to whole units first (the calibration scores ``F(e - 1)``: demand is
distributed as the grid rounded up), and an (s, Q)'s CSL is its share of periods
without a stockout (:func:`optimization.level_for_period_csl`), as the simulator counts it.

Series too short for the backtest are sized from their history (normal over H
with the history's variance); every such fallback is counted in ``CutoffData.fallbacks``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from optimization import (
    EmpiricalDemand,
    PolicyParams,
    PolicyType,
    ServiceTarget,
    mixed_policies,
    no_stock_policy,
    size_policy,
    stack_policies,
)
from policy_selector.candidates import Candidate, Distribution
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData

__all__ = [
    "MAX_LEVEL_MULTIPLE",
    "SizedCandidates",
    "exposure",
    "largest_demand",
    "service_notes",
    "size_candidates",
    "sized_target",
]

_PER_PERIOD_REVIEW = (PolicyType.S_Q, PolicyType.BASE_STOCK)
#: A level never exceeds this multiple of the largest demand over H periods seen in the history
#: (issue 12: uncalibrated normal errors put S at 7x the largest week); capped items say so.
MAX_LEVEL_MULTIPLE = 2.0


@dataclass(frozen=True)
class SizedCandidates:
    """Policies of every candidate for every item.

    Attributes
    ----------
    names : tuple of str
    ids : ndarray of str, shape (n_items,)
    policies : PolicyParams, batch shape (n_candidates, n_items)
    table : pandas.DataFrame
        Long: ``unique_id, candidate, forecaster, policy, review_period, reorder_point,
        order_up_to, order_quantity, exposure, mean_demand_H, safety_stock, sized_level, sizing_note``
        (``sized_level``: the service level the candidate sized to, the item's target unless the
        candidate scales its shortfall, NaN for ``no_stock``; ``sizing_note``: why the level may
        miss its target, empty when nothing is known).
    """

    names: tuple[str, ...]
    ids: np.ndarray
    policies: PolicyParams
    table: pd.DataFrame


def exposure(candidate: Candidate, lead_time: np.ndarray, review_period: np.ndarray) -> np.ndarray:
    """Exposure H per item: L + 1 for per-period review, L + R otherwise."""
    if candidate.policy in _PER_PERIOD_REVIEW:
        return lead_time + 1
    return lead_time + review_period


def _history_moments(history: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    with np.errstate(invalid="ignore"):
        mean = np.nan_to_num(np.nanmean(history, axis=1))
        var = np.nan_to_num(np.nanvar(history, axis=1))
    return mean, var


def _grid(config: SelectorConfig) -> np.ndarray:
    """Levels j / k, j = 1..k (the last pulled in to 1 - 1/(2k)).

    :class:`EmpiricalDemand` reads its p-quantile at grid point ceil(p k), so a
    target that is a multiple of 1/k (0.95 with k = 200) is read at exactly its
    own level, not half a step below it.
    """
    k = config.quantile_points
    p = np.arange(1, k + 1) / k
    p[-1] = 1.0 - 0.5 / k
    return p


def _samples(data: CutoffData, cand: Candidate, H: np.ndarray, f_h: np.ndarray, config: SelectorConfig) -> np.ndarray:
    """Quantile grid of demand over H per item, shape (n_items, points), >= 0."""
    econ, p = data.economics, _grid(config)
    mean, var = _history_moments(data.history)
    if cand.distribution is Distribution.POISSON:
        return _count_quantiles(f_h, (f_h / np.maximum(H, 1) * econ.lead_time_std) ** 2, p)
    rate = f_h / np.maximum(H, 1)
    sd = np.sqrt(H * var + (rate * econ.lead_time_std) ** 2)
    out = f_h[:, None] + sd[:, None] * stats.norm.ppf(p)[None, :]
    em = data.error_models.get(cand.distribution)
    if em is not None:
        known = np.isin(data.ids, em.ids_)
        if known.any():
            q = em.quantile(
                data.ids[known][:, None],
                H[known][:, None].astype(float),
                p[None, :],
                model=cand.forecaster,
                lead_time_std=econ.lead_time_std[known][:, None],
            )
            out[known] = f_h[known][:, None] + q
    return np.maximum(out, 0.0)


def _count_quantiles(mean: np.ndarray, extra_var: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Poisson quantiles, negative binomial where lead-time variability adds variance."""
    mu = np.maximum(mean, 1e-9)
    var = mu + extra_var
    over = var > mu * (1 + 1e-6)
    out = stats.poisson.ppf(p[None, :], mu[:, None]).astype(float)
    # only the over-dispersed rows: the placeholder parameters of the others (n = mu**2, p = 0.5)
    # made scipy search a support of ~mu**2 and hang on a series of 2e9 units per period
    if over.any():
        m, v = mu[over][:, None], var[over][:, None]
        out[over] = stats.nbinom.ppf(p[None, :], m**2 / (v - m), m / v)
    return out


def _size_one(data: CutoffData, cand: Candidate, config: SelectorConfig) -> tuple[PolicyParams, dict]:
    econ, n = data.economics, len(data.ids)
    if cand.policy is PolicyType.NO_STOCK:
        zeros = np.zeros(n)
        return no_stock_policy(n, lost_sales=econ.lost_sales), {
            "exposure": econ.lead_time.astype(float),
            "mean_demand_H": zeros,
            "level": zeros,
        }
    H = np.minimum(exposure(cand, econ.lead_time, econ.review_period), data.horizon)
    f_h = data.cum_forecast[cand.forecaster][np.arange(n), H - 1]
    samples = _samples(data, cand, H, f_h, config)
    if data.integral:
        # the calibration scores F(e - 1): demand is distributed as the grid rounded up to whole
        # units, whose loss function is the one the (s, Q) and fill-rate rules integrate
        samples = np.ceil(samples - 1e-9)
    rate = f_h / H
    s, S, Q = np.zeros(n), np.zeros(n), np.zeros(n)
    sized_level = sized_target(cand, econ.service_type, econ.service_target, config)
    for kind in np.unique(econ.service_type):
        rows = econ.service_type == kind
        level = np.where(np.isnan(sized_level[rows]), 0.5, sized_level[rows])
        target = ServiceTarget(kind, level)
        sized = size_policy(
            cand.policy,
            EmpiricalDemand(samples[rows]),
            target,
            demand_rate=rate[rows],
            review_period=econ.review_period[rows],
            order_cost=econ.order_cost[rows],
            holding_cost=econ.holding_cost[rows],
            shortage_cost=econ.shortage_cost[rows],
            integer=data.integral,
            lost_sales=econ.lost_sales[rows],
            moq=econ.moq[rows],
            order_multiple=econ.order_multiple[rows],
        )
        s[rows], S[rows], Q[rows] = sized.reorder_level, sized.order_up_to, sized.order_quantity
    cap = MAX_LEVEL_MULTIPLE * largest_demand(data.history, H)
    shift = np.where(cap > 0, np.maximum(s - cap, 0.0), 0.0)
    s, S = s - shift, S - shift
    notes = _sizing_notes(data, cand, H, s, S, Q, cap, shift, sized_level)
    policy = mixed_policies(
        np.full(n, cand.policy.value),
        review_period=econ.review_period,
        reorder_level=s,
        order_up_to=S,
        order_quantity=Q,
        moq=econ.moq,
        order_multiple=econ.order_multiple,
        lost_sales=econ.lost_sales,
    )
    return policy, {
        "exposure": H.astype(float),
        "mean_demand_H": f_h,
        "level": policy.reorder_level,
        "note": notes,
        "sized_level": sized_level,
    }


def sized_target(cand: Candidate, service_type: np.ndarray, target: np.ndarray, config: SelectorConfig) -> np.ndarray:
    """The service level ``cand`` sizes each item to: ``1 - shortfall_scale * (1 - target)``.

    Only CSL and fill-rate targets scale; ``cost`` items (the newsvendor ratio) and NaN targets
    are returned as given. The scaled level is kept inside the quantile grid,
    ``[1 / k, 1 - 1 / (2k)]`` with ``k = config.quantile_points``.

    Examples
    --------
    >>> from policy_selector.candidates import DEFAULT_CANDIDATES, shortfall_variant
    >>> cand = shortfall_variant(DEFAULT_CANDIDATES[0], 0.5)
    >>> sized_target(cand, np.array(["csl", "cost"]), np.array([0.9, np.nan]), SelectorConfig()).round(3).tolist()
    [0.95, nan]
    """
    target = np.asarray(target, dtype=float)
    scale = cand.shortfall_scale
    if scale == 1.0:
        return target
    k = config.quantile_points
    scaled = np.clip(1.0 - scale * (1.0 - target), 1.0 / k, 1.0 - 0.5 / k)
    return np.where(np.isin(service_type, ("csl", "fill_rate")) & np.isfinite(target), scaled, target)


def largest_demand(history: np.ndarray, H: np.ndarray) -> np.ndarray:
    """Largest demand over any H consecutive observed periods per item (all of it when shorter).

    Parameters
    ----------
    history : ndarray, shape (n_items, n_periods)
        NaN before a series starts.
    H : ndarray of int, shape (n_items,)
    """
    y = np.nan_to_num(history, nan=0.0)
    csum = np.concatenate([np.zeros((len(y), 1)), np.cumsum(y, axis=1)], axis=1)
    out = np.zeros(len(y))
    for h in np.unique(H):
        rows = H == h
        width = min(int(h), y.shape[1])
        sums = csum[rows, width:] - csum[rows, :-width]
        out[rows] = sums.max(axis=1)
    return out


def _sizing_notes(data: CutoffData, cand: Candidate, H, s, S, Q, cap, shift, sized_level) -> np.ndarray:
    """Why a level may not deliver its target: sized to a scaled shortfall, short history, capped
    calibration, capped level, zero level."""
    econ, n = data.economics, len(data.ids)
    notes = [[] for _ in range(n)]
    scaled = np.isfinite(sized_level) & (sized_level != econ.service_target)
    for i in np.flatnonzero(scaled):
        notes[i].append(
            f"sized to {econ.service_type[i]} {sized_level[i]:.3g}, {cand.shortfall_scale:g}x the shortfall of "
            f"the target {econ.service_target[i]:g} (candidate {cand.name})"
        )
    short = set(data.fallbacks.loc[data.fallbacks["step"] == "backtest", "unique_id"])
    em = data.error_models.get(cand.distribution)
    capped = np.zeros(n, dtype=bool)
    if em is not None:
        known = np.isin(data.ids, em.ids_)
        for level in np.unique(sized_level[(econ.service_type == "csl") & known]):
            rows = known & (econ.service_type == "csl") & (sized_level == level)
            capped[rows] = em.capped(data.ids[rows], level, cand.forecaster)
    sold = np.nansum(data.history, axis=1) > 0
    top = np.where(cand.policy is PolicyType.S_Q, s, S)
    # the highest position an order reaches: an (s, Q) with a big batch may rightly have s <= 0
    reach = np.where(cand.policy is PolicyType.S_Q, s + Q, S)
    for i in range(n):
        if data.ids[i] in short:
            notes[i].append("too little history for the backtest: sized from the demand history")
        if capped[i]:
            notes[i].append(
                "target beyond what the segment's held-out windows can show: level at the calibration's cap"
            )
        if shift[i] > 0:
            notes[i].append(
                f"level capped at {MAX_LEVEL_MULTIPLE:g}x the largest demand over {H[i]} "
                f"periods seen ({cap[i] / MAX_LEVEL_MULTIPLE:g}); uncapped {top[i] + shift[i]:g}"
            )
        if sold[i] and reach[i] <= 0:
            notes[i].append(
                f"level 0 although the item sold: no demand over {H[i]} periods is at least as "
                "likely as the target in the calibrated model"
            )
    return np.array(["; ".join(x) for x in notes], dtype=object)


def _wanted(config: SelectorConfig, names) -> tuple[Candidate, ...]:
    """The candidates of ``config.space`` named in ``names`` (all when None), in the space's order."""
    if names is None:
        return config.space.candidates
    wanted = set(names)
    unknown = sorted(wanted - set(config.space.names))
    if unknown:
        raise ValueError(f"cannot size candidate(s) {unknown}: not in the candidate space {list(config.space.names)}")
    return tuple(c for c in config.space.candidates if c.name in wanted)


def size_candidates(data: CutoffData, config: SelectorConfig, names=None) -> SizedCandidates:
    """Size every candidate of ``config.space`` (or those in ``names``) for every item of ``data``.

    Each candidate is sized on its own (no randomness, nothing shared between candidates), so
    sizing a subset gives those candidates' rows exactly as sizing all of them would.

    Parameters
    ----------
    data : CutoffData
    config : SelectorConfig
    names : iterable of str, optional
        Only these candidates, in the space's order (e.g. the ones a selector chose:
        :func:`~policy_selector.recommend.recommend_policies` sizes only those). Default: all.

    Returns
    -------
    SizedCandidates
        Stacked policies (candidates x items) and a long parameter table.

    Raises
    ------
    ValueError
        A name in ``names`` that ``config.space`` lacks.

    Examples
    --------
    >>> sized = size_candidates(prepare_cutoff(demand, items, "2024-06-03", cfg), cfg)  # doctest: +SKIP
    >>> sized.policies.shape                                                          # doctest: +SKIP
    (9, 120)
    """
    candidates = _wanted(config, names)
    policies, frames = [], []
    for cand in candidates:
        policy, info = _size_one(data, cand, config)
        policies.append(policy)
        frames.append(
            pd.DataFrame(
                {
                    "unique_id": data.ids,
                    "candidate": cand.name,
                    "forecaster": data.forecaster_names(cand.forecaster)
                    if cand.policy is not PolicyType.NO_STOCK
                    else "none",
                    "policy": cand.policy.value,
                    "review_period": policy.review_period,
                    "reorder_point": policy.reorder_level,
                    "order_up_to": policy.order_up_to,
                    "order_quantity": policy.order_quantity,
                    "exposure": info["exposure"],
                    "mean_demand_H": info["mean_demand_H"],
                    "safety_stock": np.maximum(info["level"] - info["mean_demand_H"], 0.0),
                    "sized_level": info.get("sized_level", np.full(len(data.ids), np.nan)),
                    "sizing_note": info.get("note", np.full(len(data.ids), "", dtype=object)),
                }
            )
        )
    return SizedCandidates(
        names=tuple(c.name for c in candidates),
        ids=data.ids,
        policies=stack_policies(policies),
        table=pd.concat(frames, ignore_index=True),
    )


def service_notes(
    data: CutoffData, chosen: pd.DataFrame, expected: pd.DataFrame, totals: np.ndarray, tolerance: float = 0.01
) -> np.ndarray:
    """Per item, why its expected service lies more than ``tolerance`` from its target (else "").

    The expected service comes from simulating the policy on demand of the sizing's own
    model (:func:`policy_selector.outcomes.sizing_paths`: every H-window sums to a quantile
    of the distribution that sized the level), so a gap is never "the two demand models
    disagree": it is what the simulation adds to the sizing. In this order: the sizing's
    own notes (short history, capped calibration or level, level 0); then every reason that
    applies and moves service the way the gap goes: **whole units** (no integer level lies
    within ``tolerance`` of a CSL target in that distribution; the two around it are
    quoted), the **order quantity** of (s, Q) and (R, s, S) (an order lifts the position
    above the reorder level the target sized), **MOQ / order multiples**, **lost sales**,
    **shelf life**, **lead-time variability** (sampled per order in the simulation, a
    variance term in the sizing) and the **fill-rate rule** (shortage counted over all of
    H, conservative). An off-target item for which none applies gets no note: that is a
    defect of the sizing or of the simulation, and the tests look for it.

    Parameters
    ----------
    data : CutoffData
    chosen : pandas.DataFrame
        Rows of :attr:`SizedCandidates.table` for the chosen candidate, aligned to ``data.ids``.
    expected : pandas.DataFrame
        ``expected_csl, expected_fill_rate, expected_expiry_cost`` aligned to ``data.ids``.
    totals : ndarray, shape (n_items, n_points)
        Demand over H of each simulated path (:func:`~policy_selector.outcomes.sizing_paths`).
    tolerance : float, default 0.01

    Returns
    -------
    ndarray of str, shape (n_items,)
    """
    econ = data.economics
    notes = chosen["sizing_note"].fillna("").to_numpy(dtype=object).copy()
    fill = econ.service_type == "fill_rate"
    achieved = np.where(fill, expected["expected_fill_rate"], expected["expected_csl"]).astype(float)
    off = (
        (econ.service_type != "cost")
        & np.isfinite(achieved)
        & (chosen["policy"].to_numpy() != "no_stock")
        & (np.abs(achieved - econ.service_target) > tolerance)
        & (notes == "")
    )
    expiry = np.asarray(expected.get("expected_expiry_cost", np.zeros(len(notes))), dtype=float)
    for i in np.flatnonzero(off):
        row = chosen.iloc[i]
        above = achieved[i] > econ.service_target[i]
        found = (
            [] if fill[i] else [_whole_units(totals[i], float(row["reorder_point"]), econ.service_target[i], tolerance)]
        )
        found += [
            _order_quantity_note(row, totals[i]) if above else None,
            _item_rule_notes(econ, i, above, expiry[i]),
            "the fill-rate rule counts the shortage over all of L + R periods, not per replenishment cycle "
            "(conservative)"
            if fill[i] and above
            else None,
        ]
        notes[i] = "; ".join(x for x in found if x)
    return notes


def _whole_units(totals: np.ndarray, level: float, target: float, tol: float) -> str | None:
    """CSL of levels L-1 and L in the sizing's distribution over H, when the target falls between them."""
    if not np.isfinite(totals).all() or level != np.round(level):
        return None
    lo, hi = float((totals <= level - 1).mean()), float((totals <= level).mean())
    if not (lo < target - tol and hi > target + tol):  # a level near the target exists: not a units issue
        return None
    return (
        f"whole units: in the sizing's distribution of demand over H a level of {level - 1:g} gives CSL {lo:.3f} "
        f"and {level:g} gives {hi:.3f}; no whole-unit level is within {tol:g} of {target:g}"
    )


def _order_quantity_note(row: pd.Series, totals: np.ndarray) -> str | None:
    """Why an (s, Q) or (R, s, S) serves above the target that sized its reorder level s."""
    s, S, Q = float(row["reorder_point"]), float(row["order_up_to"]), float(row["order_quantity"])
    if row["policy"] == PolicyType.S_Q.value and Q > 0:
        top = s + Q
        what = f"an order lifts the position above s = {s:g}, up to s + Q = {top:g}"
    elif row["policy"] == PolicyType.R_S_S.value and S > s:
        top = S
        what = f"an order lifts the position to S = {S:g}"
    else:
        return None
    return (
        f"order quantity: {what}, while the target sized s (in the sizing's distribution CSL "
        f"{(totals <= s).mean():.3f} at s, {(totals <= top).mean():.3f} at {top:g})"
    )


def _item_rule_notes(econ, i: int, above: bool, expiry: float) -> str | None:
    """MOQ / multiples and lost sales (service above), shelf life (below), lead-time variability (either)."""
    out = []
    if above and max(econ.moq[i], econ.order_multiple[i]) > 1:
        out.append(f"MOQ {econ.moq[i]:g} / order multiple {econ.order_multiple[i]:g} lift the position above the level")
    if above and econ.lost_sales[i]:
        out.append("lost sales: unmet demand is not carried as a backlog, as the sizing assumes")
    if not above and econ.shelf_life[i] > 0 and expiry > 0:
        out.append(f"shelf life {econ.shelf_life[i]:g} periods: units expire before they are sold")
    if econ.lead_time_std[i] > 0:
        out.append(
            f"lead time varies (sd {econ.lead_time_std[i]:g} periods): sampled per order in the simulation, "
            "a variance term in the sizing"
        )
    return "; ".join(out) or None
