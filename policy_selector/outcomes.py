"""Expected outcomes of recommended policies in the sizing's own demand model.

A level is sized from a distribution of demand over the exposure H (forecast over H plus
the calibrated error quantile grid of :func:`policy_selector.sizing._samples`). The
expected service of that level is only comparable with its target when it is measured
on demand from the *same* distribution (issue 12: simulating on last year's resampled
demand left 1,565 carparts items "off target" because two demand models disagreed).

The paths here make every H consecutive periods sum to a draw of that distribution:
path j takes the grid's j-th quantile T_j of demand over H (all ``quantile_points`` of
them, equally weighted, so no Monte-Carlo noise on the CSL), splits it over H periods
by the forecast's per-period shape (a multinomial split of whole units for count
data, so the path is as lumpy as whole units make it), and repeats that H-period
pattern. A sequence whose every H-window has the same sum is exactly the periodic one,
so for a base-stock or (R, S) policy under backorders the simulated CSL is
P(D_H <= S) of the grid, the quantity the sizing inverted. What the simulator adds
on top is what the sizing leaves out: whole units, MOQ and order multiples, the
order quantity of (s, Q) and (R, s, S), lost sales, shelf life, lead-time
variability (sampled per order as in :func:`optimization.sample_lead_times`, the grid
itself is taken without it), and the sizing's caps. Count data use whole-unit totals
ceil(T_j): for a whole-unit level S, ceil(T) <= S exactly when T <= S.

That periodic construction is exact only where the position after an order is fixed
(base stock, (R, S)). For an (s, Q) or (R, s, S) whose position moves over a range, a
periodic path locks the position and the demand that follows it in step: on i.i.d.
Poisson and negative-binomial demand its CSL overstated the true one by 1-4 points (and
by more over a short ``sim_periods`` starting at the top of the range). Those items get
random paths instead (:func:`_block_paths`: consecutive H-blocks whose totals are
independent draws of the grid) started at evenly spread positions of their range
(:func:`_spread_start`).

Items without a stocking policy (``no_stock``) have no sizing distribution: they are
simulated on last year's resampled demand (:func:`bootstrap_paths`, kept also as a
second opinion on any policy).
"""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pandas as pd

from optimization import CostParams, InitialState, PolicyParams, PolicyType, sample_lead_times, simulate
from optimization.policies import POLICY_CODES
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData
from policy_selector.sizing import _samples, exposure

__all__ = ["bootstrap_paths", "sizing_paths", "expected_outcomes", "simulated_outcomes"]

#: Demand cells (paths x items x periods) simulated at once; bounds memory on large panels.
_CHUNK_CELLS = 4_000_000
_NO_STOCK = "no_stock"
#: Policies whose position moves between s and s + Q (or S): simulated on random paths (see :func:`sizing_paths`).
_MOVING = (PolicyType.S_Q, PolicyType.R_S_S)


def bootstrap_paths(history: np.ndarray, paths: int, periods: int, window: int, rng: np.random.Generator) -> np.ndarray:
    """Demand paths (paths, n_items, periods) resampled from each item's last ``window`` observed periods."""
    n = history.shape[0]
    out = np.zeros((paths, n, periods))
    for i, row in enumerate(history):
        obs = row[np.isfinite(row)][-window:]
        if obs.size:
            out[:, i, :] = rng.choice(obs, size=(paths, periods))
    return out


def _without_lead_time_spread(data: CutoffData) -> CutoffData:
    """The same cutoff with no lead-time variability (the simulation samples lead times itself)."""
    econ = dataclasses.replace(data.economics, lead_time_std=np.zeros_like(data.economics.lead_time_std))
    return dataclasses.replace(data, economics=econ)


def _shape(cum: np.ndarray, H: int) -> np.ndarray:
    """Per-period shares of the forecast over the first H periods, shape (n, H); uniform without a forecast."""
    per = np.diff(np.concatenate([np.zeros((len(cum), 1)), cum[:, :H]], axis=1), axis=1)
    per = np.maximum(per, 0.0)
    total = per.sum(axis=1, keepdims=True)
    return np.where(total > 0, per / np.where(total > 0, total, 1.0), 1.0 / H)


def _split(totals: np.ndarray, share: np.ndarray, integral: bool, rng: np.random.Generator) -> np.ndarray:
    """Totals (k, n) over H periods -> per-period demand (k, n, H) with those sums."""
    if not integral:
        return totals[:, :, None] * share[None, :, :]
    units = np.ceil(totals - 1e-9).astype(np.int64)
    return rng.multinomial(units, np.broadcast_to(share, units.shape + share.shape[-1:])).astype(float)


def _block_paths(grid: np.ndarray, share: np.ndarray, integral: bool, periods: int, rng) -> np.ndarray:
    """Random paths (k, m, periods): consecutive H-blocks whose totals are independent draws of the grid (m, k).

    Stratified: at every block position the k paths take a permutation of the k grid points,
    so each block's totals are the grid exactly and only their order over time is random.
    """
    m, k = grid.shape
    h = share.shape[1]
    blocks = -(-periods // h)
    idx = rng.permuted(np.broadcast_to(np.arange(k), (blocks, m, k)), axis=2)
    totals = np.take_along_axis(np.broadcast_to(grid, (blocks, m, k)), idx, axis=2)  # (blocks, m, k)
    split = _split(totals.transpose(0, 2, 1).reshape(blocks * k, m), share, integral, rng)  # (blocks*k, m, h)
    split = split.reshape(blocks, k, m, h).transpose(1, 2, 0, 3).reshape(k, m, blocks * h)
    return split[:, :, :periods]


def _moving(policy: PolicyParams, integral: bool) -> np.ndarray:
    """Items whose position after an order moves over a range: (s, Q) and (R, s, S) wider than one unit."""
    fixed = policy.policy_type == POLICY_CODES[PolicyType.S_Q]
    width = np.where(fixed, policy.order_quantity, policy.order_up_to - policy.reorder_level)
    moving = np.isin(policy.policy_type, [POLICY_CODES[p] for p in _MOVING])
    return moving & (width > (1.0 if integral else 0.0))


def sizing_paths(
    data: CutoffData,
    candidates: np.ndarray,
    config: SelectorConfig,
    periods: int,
    rng: np.random.Generator,
    policy: PolicyParams | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Demand paths in the sizing's model: H-windows that sum to quantiles of its distribution over H.

    Base stock and (R, S) (and an (s, Q) or (R, s, S) whose range is one unit) get the exact
    periodic construction of the module docstring. An (s, Q) or (R, s, S) whose position moves
    over a range gets random paths (:func:`_block_paths`): on a periodic path the position and
    the demand that follows it are locked in step, and the simulated CSL overstated the CSL
    under random demand with the same H-sums by 1-4 points (docs/methods/sizing.md).

    Parameters
    ----------
    data : CutoffData
    candidates : ndarray of str, shape (n_items,)
        Chosen candidate of each item (``no_stock`` items get last year's resampled demand).
    config : SelectorConfig
        ``quantile_points`` paths are drawn, one per grid point.
    periods : int
    rng : numpy.random.Generator
        Multinomial split of whole units, the block order and the bootstrap of ``no_stock`` items.
    policy : PolicyParams, optional
        The sized policies; says which items move over a range (without it: the candidate's policy type).

    Returns
    -------
    (paths, totals)
        ``paths`` shape (quantile_points, n_items, periods); ``totals`` shape
        (n_items, quantile_points), the demand over H of every path (sorted; whole units for
        count data; NaN for ``no_stock`` items), i.e. the distribution the level is read on.
    """
    n, k = len(data.ids), config.quantile_points
    econ = data.economics
    quiet = _without_lead_time_spread(data)
    out, totals = np.zeros((k, n, periods)), np.full((n, k), np.nan)
    candidates = np.asarray(candidates, dtype=object)
    moving = _moving(policy, data.integral) if policy is not None else np.zeros(n, bool)
    for name in pd.unique(candidates):
        rows = np.flatnonzero(candidates == name)
        cand = config.space[name]
        if policy is None:
            moving[rows] = cand.policy in _MOVING
        if name == _NO_STOCK or cand.policy.value == _NO_STOCK:
            window = int(round(econ.periods_per_year))
            out[:, rows] = bootstrap_paths(data.history[rows], k, periods, window, rng)
            continue
        H = np.minimum(exposure(cand, econ.lead_time, econ.review_period), data.horizon).astype(int)
        cum = data.cum_forecast[cand.forecaster]
        grid = np.sort(_samples(quiet, cand, H, cum[np.arange(n), H - 1], config)[rows], axis=1)
        totals[rows] = np.ceil(grid - 1e-9) if data.integral else grid
        for h in np.unique(H[rows]):
            for rand in (False, True):
                at = (H[rows] == h) & (moving[rows] == rand)
                if not at.any():
                    continue
                sub, share = rows[at], _shape(cum[rows[at]], int(h))
                if rand:
                    out[:, sub] = _block_paths(grid[at], share, data.integral, periods, rng)
                    continue
                pattern = _split(grid[at].T, share, data.integral, rng)
                out[:, sub] = np.tile(pattern, (1, 1, -(-periods // int(h))))[:, :, :periods]
    return out, totals


def simulated_outcomes(
    data: CutoffData, policy: PolicyParams, paths: np.ndarray, rng: np.random.Generator
) -> pd.DataFrame:
    """Mean yearly costs and service of ``policy`` over equally weighted demand ``paths`` (p, n_items, T).

    Service is averaged over paths as the long run would: CSL as the mean share of cycles
    without a stockout, fill rate as units served from stock over units demanded (both
    summed over all paths, so a path with little demand weighs little).
    """
    n = len(data.ids)
    step = max(1, _CHUNK_CELLS // max(1, paths.shape[0] * paths.shape[2]))
    frames = [_outcome_chunk(data, policy, paths, np.arange(a, min(a + step, n)), rng) for a in range(0, n, step)]
    out = pd.concat(frames)
    out["expected_total_cost"] = out[[c for c in out.columns if c.endswith("_cost")]].sum(axis=1)
    return out[_COLUMNS]


_COLUMNS = [
    "expected_holding_cost",
    "expected_ordering_cost",
    "expected_shortage_cost",
    "expected_expiry_cost",
    "expected_total_cost",
    "expected_csl",
    "expected_fill_rate",
    "expected_avg_on_hand",
]


def _outcome_chunk(data: CutoffData, policy: PolicyParams, paths: np.ndarray, rows: np.ndarray, rng) -> pd.DataFrame:
    """Per-path means over one chunk of items (yearly costs from the measured periods)."""
    econ = data.economics
    part = PolicyParams(**{f.name: getattr(policy, f.name)[rows] for f in dataclasses.fields(PolicyParams)})
    demand = paths[:, rows]
    T = demand.shape[-1]
    lead = None
    if (econ.lead_time_std[rows] > 0).any():
        lead = sample_lead_times(econ.lead_time[rows], econ.lead_time_std[rows], demand.shape, rng)
    costs = CostParams(
        unit_cost=econ.unit_cost[rows],
        order_cost=econ.order_cost[rows],
        holding_cost=econ.holding_cost[rows],
        shortage_cost=econ.shortage_cost[rows],
    )
    # the first L periods see no order arrive but also less than H periods of demand: not measured
    warmup = min(int(np.ceil(np.max(econ.lead_time[rows] + 2 * econ.lead_time_std[rows]))), demand.shape[-1] // 2)
    res = simulate(
        demand,
        part,
        econ.lead_time[rows],
        costs=costs,
        initial=_spread_start(part, demand.shape[0], data.integral, rng),
        sampled_lead_times=lead,
        shelf_life=econ.shelf_life[rows],
        warmup=warmup,
    )
    year = econ.periods_per_year / res.n_periods
    with warnings.catch_warnings(), np.errstate(invalid="ignore", divide="ignore"):
        warnings.simplefilter("ignore", RuntimeWarning)  # items without demand on every path: NaN service
        csl = np.nanmean(np.where(np.isfinite(res.csl), res.csl, np.nan), axis=0)
        measured = demand[..., warmup:].sum(axis=-1)
        total = measured.sum(axis=0)
        served = (np.nan_to_num(res.fill_rate) * measured).sum(axis=0)
        fill = np.where(total > 0, served / np.where(total > 0, total, 1.0), np.nan)
    return pd.DataFrame(
        {
            "expected_holding_cost": res.cost_holding.mean(axis=0) * year,
            "expected_ordering_cost": res.cost_ordering.mean(axis=0) * year,
            "expected_shortage_cost": res.cost_shortage.mean(axis=0) * year,
            "expected_expiry_cost": econ.unit_cost[rows] * res.expired.mean(axis=0) * econ.periods_per_year / T,
            "expected_csl": csl,
            "expected_fill_rate": fill,
            "expected_avg_on_hand": res.avg_on_hand.mean(axis=0),
        },
        index=pd.Index(data.ids[rows], name="unique_id"),
    )


def _spread_start(policy: PolicyParams, paths: int, integral: bool, rng) -> InitialState:
    """Start positions: S for base stock and (R, S); spread over (s, s + Q] or (s, S] for the others.

    Starting every path of an (s, Q) or (R, s, S) at the top of its range overstates the CSL of
    a short simulation (the first cycle cannot run short until the position has fallen to s);
    the k paths start at evenly spaced points of the range (in random order), whole units
    s + 1 .. s + Q for count data.
    """
    s, S, Q = policy.reorder_level, policy.order_up_to, policy.order_quantity
    moving = np.isin(policy.policy_type, [POLICY_CODES[p] for p in _MOVING])
    fixed = policy.policy_type == POLICY_CODES[PolicyType.S_Q]
    width = np.where(fixed, Q, S - s)
    u = rng.permuted(np.broadcast_to((np.arange(paths) + 0.5)[:, None] / paths, (paths, len(s))), axis=0)
    step = np.ceil(width * u - 1e-9) if integral else width * u
    top = np.where(fixed, s + Q, S)
    position = np.where(moving & (width > 0), s + step, top)
    return InitialState(on_hand=np.maximum(position, 0.0), backlog=np.maximum(-position, 0.0))


def expected_outcomes(
    data: CutoffData,
    policy: PolicyParams,
    candidates: np.ndarray,
    config: SelectorConfig,
    rng: np.random.Generator,
) -> pd.DataFrame:
    """Mean yearly costs and service of ``policy`` in the sizing's demand model (:func:`sizing_paths`).

    Parameters
    ----------
    data : CutoffData
    policy : PolicyParams, batch shape (n_items,)
    candidates : ndarray of str, shape (n_items,)
        The candidate whose distribution sized each item's level.
    config : SelectorConfig
    rng : numpy.random.Generator

    Returns
    -------
    pandas.DataFrame
        Index unique_id; ``expected_holding_cost, expected_ordering_cost,
        expected_shortage_cost, expected_expiry_cost, expected_total_cost`` (yearly; total =
        their sum, purchasing of demand is the same under any policy), ``expected_csl,
        expected_fill_rate, expected_avg_on_hand``.

    Examples
    --------
    >>> out = expected_outcomes(data, policy, chosen, SelectorConfig(), np.random.default_rng(0))  # doctest: +SKIP
    """
    paths, _ = sizing_paths(data, candidates, config, config.sim_periods, rng, policy)
    return simulated_outcomes(data, policy, paths, rng)
