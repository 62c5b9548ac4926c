"""Labels by simulation: every sized candidate's expected cost on demand paths around the held-out window.

Each candidate sized at the cutoff is simulated with :func:`optimization.simulate`
(candidates are the leading batch axis), with per-order lead times sampled from
the item's lead-time variability. Its yearly relevant cost has five parts:

- holding (ending on-hand x h), ordering (orders x K), shortage (units short x b),
- purchasing of all demand, ``c x demand``, the same for every candidate: a lost
  sale saves its purchase but loses its revenue, so its net cost is the lost
  margin b alone, charged as shortage (charging ``c (demand - lost)`` instead made
  every lost sale *earn* c - b, and "don't stock" the cheapest policy for any
  lost-sales item whose margin is below its unit cost),
- expiry, ``c x expired`` (bought and never sold).

Service is *priced*, not cut: a unit short costs ``max(b, b_alpha)`` where
``b_alpha = h alpha / (1 - alpha)`` is the shortage cost implied by the item's
service target alpha (the newsvendor critical ratio; Snyder & Shen 2019, eq. 4.30).
The part above b is the ``penalty`` matrix; ``priced = cost + penalty``. Items
without a target pay b only.

Two cost matrices per cutoff, both kept:

- ``cost``/``priced``: the realised outcome on the ``test_periods`` periods after
  the cutoff (one path). The *oracle* is its row argmin; regret is measured on it.
- ``expected``: the mean priced cost over ``config.label_paths`` demand paths per
  item, a moving-block bootstrap (Kuensch 1989) of the held-out window together with
  the ``test_periods`` before the cutoff. One realised window decides a label by
  the timing of a few demands; the mean over paths keeps the demand level and
  pattern of that window but not its accidents, so the *label* (row argmin of
  ``expected``) is the candidate that is best for the item, not for one draw.

Initial stock is the candidate's own S (or s + Q), as if the policy had been in
place; the terminal stock is not credited (the same rule for every candidate).
``feasible`` (service within ``service_tolerance`` of the target on the realised
path) is reported, not used to choose.

References
----------
docs/design.md, "Labels for the classifier come from simulation, not opinion".
Kuensch, H. R. (1989). The jackknife and the bootstrap for general stationary
observations. *Annals of Statistics* 17, 1217-1241.
L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed., 2019, sec. 4.3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimization import PolicyParams, sample_lead_times, simulate
from optimization.policies import POLICY_FIELDS
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff, wide_panel
from policy_selector.sizing import SizedCandidates, size_candidates

__all__ = ["LabelSet", "label_candidates", "make_labels", "held_out_demand", "block_bootstrap", "COST_TYPES"]

COST_TYPES = ("holding", "ordering", "shortage", "purchasing", "expiry")


@dataclass(frozen=True)
class LabelSet:
    """Simulated outcome of every candidate around one cutoff, and the labels.

    Attributes
    ----------
    cutoff : pandas.Timestamp
    ids : ndarray of str, shape (n_items,)
    names : tuple of str
        Candidate names (columns of the matrices).
    cost : pandas.DataFrame, shape (n_items, n_candidates)
        Realised yearly total relevant cost on the held-out periods.
    penalty : pandas.DataFrame
        Realised service penalty: units short x max(b_alpha - b, 0), yearly.
    expected : pandas.DataFrame
        Expected yearly priced cost over the bootstrapped demand paths (the training
        cost matrix); equal to ``cost + penalty`` when ``label_paths`` is 0.
    service : pandas.DataFrame
        Achieved service in the item's own measure (CSL or fill rate; NaN without target).
    feasible : pandas.DataFrame of bool
        Realised service within ``service_tolerance`` of the target (reported, not used to choose).
    label : pandas.Series of str
        Training label: the candidate of least expected priced cost (index ``unique_id``).
    outcomes : pandas.DataFrame
        Long: ``unique_id, candidate, cost_<type>..., total_cost, penalty, priced_cost,
        expected_cost, csl, fill_rate, avg_on_hand, feasible``.
    sized : SizedCandidates
    excluded : pandas.DataFrame
        Series left out with the reason (``unique_id, reason``).
    n_infeasible : int
        Items where no candidate met the service target on the realised path.
    baseline : pandas.Series
        Yearly purchasing cost of all held-out demand, ``c x demand``: the same for every
        candidate, so ``priced - baseline`` is the part a policy controls.
    expected_baseline : pandas.Series
        The same over the label paths (``expected - expected_baseline`` is controllable).
    """

    cutoff: pd.Timestamp
    ids: np.ndarray
    names: tuple[str, ...]
    cost: pd.DataFrame
    penalty: pd.DataFrame
    expected: pd.DataFrame
    service: pd.DataFrame
    feasible: pd.DataFrame
    label: pd.Series
    outcomes: pd.DataFrame
    sized: SizedCandidates
    excluded: pd.DataFrame
    n_infeasible: int
    baseline: pd.Series
    expected_baseline: pd.Series

    @property
    def priced(self) -> pd.DataFrame:
        """Realised yearly cost with service priced (``cost + penalty``): what regret is measured on."""
        return self.cost + self.penalty

    @property
    def oracle(self) -> pd.Series:
        """Best candidate in hindsight: row argmin of the realised priced cost."""
        return self.priced.idxmin(axis=1).rename("oracle")

    def decision_cost(self) -> pd.DataFrame:
        """The training cost matrix: expected priced cost per item and candidate."""
        return self.expected

    def regret(self, choice: pd.Series) -> pd.Series:
        """Realised priced cost of ``choice`` (candidate per unique_id) minus the oracle's, per item (>= 0).

        Raises
        ------
        ValueError
            Choices outside the candidate set or for unknown items.
        """
        choice = choice.reindex(self.cost.index)
        if choice.isna().any():
            raise ValueError(f"no choice for items {choice.index[choice.isna()][:10].tolist()}")
        unknown = sorted(set(choice) - set(self.names))
        if unknown:
            raise ValueError(f"choices {unknown} are not candidates; known: {list(self.names)}")
        return _take(self.priced, choice) - self.priced.min(axis=1)

    def cost_of(self, choice: pd.Series) -> pd.Series:
        """Realised yearly cost (unpriced) of the chosen candidate per item."""
        return _take(self.cost, choice)

    def priced_of(self, choice: pd.Series) -> pd.Series:
        """Realised yearly priced cost of the chosen candidate per item."""
        return _take(self.priced, choice)

    def service_of(self, choice: pd.Series) -> pd.Series:
        """Achieved service of the chosen candidate per item."""
        return _take(self.service, choice)

    def feasible_of(self, choice: pd.Series) -> pd.Series:
        """Whether the chosen candidate met the item's target."""
        return _take(self.feasible, choice)


def _take(matrix: pd.DataFrame, choice: pd.Series) -> pd.Series:
    """matrix[item, choice[item]] per item."""
    cols = matrix.columns.get_indexer(choice.reindex(matrix.index).to_numpy())
    return pd.Series(matrix.to_numpy()[np.arange(len(cols)), cols], index=matrix.index)


def held_out_demand(demand: pd.DataFrame, ids, cutoff, periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Demand of the ``periods`` periods after ``cutoff``, shape (n_items, periods), and a complete-row mask."""
    wide = wide_panel(demand)
    after = wide.loc[:, wide.columns > pd.Timestamp(cutoff)].iloc[:, :periods]
    block = after.reindex(index=np.asarray(ids, dtype=str)).to_numpy(dtype=float)
    if block.shape[1] < periods:
        raise ValueError(
            f"only {block.shape[1]} periods after cutoff {pd.Timestamp(cutoff).date()}; "
            f"need test_periods={periods} (move the cutoff earlier or lower test_periods)"
        )
    return block, np.isfinite(block).all(axis=1)


def block_bootstrap(source: np.ndarray, paths: int, periods: int, block: int, rng: np.random.Generator) -> np.ndarray:
    """Moving-block bootstrap paths per row of ``source`` (Kuensch 1989).

    Parameters
    ----------
    source : ndarray, shape (n_items, n_obs)
        Observed demand per item (NaN = not observed; a row's observed values are used in order).
    paths, periods, block : int
        Paths per item, their length and the block length (clipped to the observed length).
    rng : numpy.random.Generator

    Returns
    -------
    ndarray, shape (paths, n_items, periods)
        Zero for items without any observation.

    Examples
    --------
    >>> block_bootstrap(np.array([[1.0, 2.0, 3.0]]), 2, 4, 3, np.random.default_rng(0)).shape
    (2, 1, 4)
    """
    n = source.shape[0]
    out = np.zeros((paths, n, periods))
    n_blocks = -(-periods // max(block, 1))
    for i, row in enumerate(source):
        obs = row[np.isfinite(row)]
        if obs.size == 0:
            continue
        b = min(block, obs.size)
        starts = rng.integers(0, obs.size - b + 1, size=(paths, n_blocks))
        idx = (starts[:, :, None] + np.arange(b)[None, None, :]).reshape(paths, -1)[:, :periods]
        if idx.shape[1] < periods:  # blocks shorter than asked: tile them
            idx = np.resize(idx, (paths, periods))
        out[:, i, :] = obs[idx]
    return out


def _block_length(config: SelectorConfig) -> int:
    return int(config.block_length or np.clip(np.ceil(config.test_periods / 4), 2, 13))


def _replay(demand: np.ndarray, policies: PolicyParams, econ, rng: np.random.Generator):
    """Simulate the candidates on ``demand`` (..., n, T): (cost parts, penalty, result), arrays (C, ..., n)."""
    lead = sample_lead_times(econ.lead_time, econ.lead_time_std, demand.shape, rng)
    res = simulate(
        demand, policies, econ.lead_time, costs=econ.cost_params(), sampled_lead_times=lead, shelf_life=econ.shelf_life
    )
    year = econ.periods_per_year / demand.shape[-1]
    parts = {
        "holding": res.cost_holding,
        "ordering": res.cost_ordering,
        "shortage": res.cost_shortage,
        "purchasing": econ.unit_cost * res.demand,
        "expiry": econ.unit_cost * res.expired,
    }
    parts = {k: v * year for k, v in parts.items()}
    penalty = (res.demand - res.served) * _extra_shortage_cost(econ) * year
    return parts, penalty, res


def _extra_shortage_cost(econ) -> np.ndarray:
    """Per unit short, what the service target adds on top of b: max(h alpha / (1 - alpha) - b, 0)."""
    alpha = np.clip(np.nan_to_num(econ.service_target, nan=0.0), 0.0, 0.999)
    implied = econ.holding_cost * alpha / (1 - alpha)
    return np.where(econ.service_type == "cost", 0.0, np.maximum(implied - econ.shortage_cost, 0.0))


def _subset_policies(policies: PolicyParams, keep: np.ndarray, paths_axis: bool = False) -> PolicyParams:
    """Candidates x kept items; with ``paths_axis`` a broadcast axis for demand paths, (C, 1, n)."""
    fields = {name: getattr(policies, name)[:, keep] for name in POLICY_FIELDS}
    if paths_axis:
        fields = {k: v[:, None, :] for k, v in fields.items()}
    return type(policies)(**fields)


def _expected(
    demand: pd.DataFrame,
    ids: np.ndarray,
    cutoff,
    policies: PolicyParams,
    econ,
    config: SelectorConfig,
    rng: np.random.Generator,
) -> tuple[np.ndarray, np.ndarray] | None:
    """(mean priced cost (C, n), mean purchasing of all demand (n,)) over block-bootstrap paths of
    [cutoff - T, cutoff + T]; None without paths."""
    if config.label_paths == 0:
        return None
    T = config.test_periods
    wide = wide_panel(demand)
    cut = pd.Timestamp(cutoff)
    before = wide.loc[:, wide.columns <= cut].iloc[:, -T:]
    after = wide.loc[:, wide.columns > cut].iloc[:, :T]
    source = pd.concat([before, after], axis=1).reindex(index=ids).to_numpy(dtype=float)
    paths = block_bootstrap(source, config.label_paths, T, _block_length(config), rng)
    parts, penalty, _ = _replay(paths, _subset_policies(policies, slice(None), paths_axis=True), econ, rng)
    return (sum(parts.values()) + penalty).mean(axis=1), parts["purchasing"].mean(axis=1)[0]


def label_candidates(
    data: CutoffData, sized: SizedCandidates, demand: pd.DataFrame, config: SelectorConfig, rng: np.random.Generator
) -> LabelSet:
    """Replay the sized candidates after ``data.cutoff``: realised and expected cost, labels.

    Parameters
    ----------
    data : CutoffData
    sized : SizedCandidates
    demand : pandas.DataFrame
        Long demand including the periods after the cutoff.
    config : SelectorConfig
        ``test_periods``, ``label_paths``, ``block_length``, ``service_tolerance``.
    rng : numpy.random.Generator
        Lead-time sampling and the bootstrap; the same seed gives the same labels.

    Returns
    -------
    LabelSet

    Raises
    ------
    ValueError
        Fewer than ``test_periods`` periods after the cutoff.
    """
    if not isinstance(rng, np.random.Generator):
        raise TypeError(f"rng must be a numpy Generator (np.random.default_rng(seed)), got {type(rng).__name__}")
    test, complete = held_out_demand(demand, data.ids, data.cutoff, config.test_periods)
    econ = data.economics.subset(complete)
    ids = data.ids[complete]
    policies = _subset_policies(sized.policies, complete)
    parts, penalty, res = _replay(test[complete][None], policies, econ, rng)
    parts = {k: v.reshape(len(sized.names), -1) for k, v in parts.items()}
    penalty = penalty.reshape(len(sized.names), -1)
    total = sum(parts.values())  # (C, n)
    baseline = econ.unit_cost * res.demand.reshape(total.shape)[0] * econ.periods_per_year / test.shape[1]
    expected, expected_baseline = _expected(demand, ids, data.cutoff, policies, econ, config, rng) or (
        total + penalty,
        baseline,
    )
    achieved = np.where(econ.service_type == "fill_rate", res.fill_rate, res.csl).reshape(total.shape)
    achieved = np.where(econ.service_type == "cost", np.nan, achieved)
    target = econ.service_target
    feasible = np.isnan(target) | np.isnan(achieved) | (achieved >= target - config.service_tolerance)
    names = sized.names
    index = pd.Index(ids, name="unique_id")
    frame = lambda a: pd.DataFrame(a.T, index=index, columns=list(names))  # noqa: E731
    outcomes = pd.DataFrame(
        {
            "unique_id": np.tile(ids, len(names)),
            "candidate": np.repeat(names, len(ids)),
            **{f"cost_{k}": v.ravel() for k, v in parts.items()},
            "total_cost": total.ravel(),
            "penalty": penalty.ravel(),
            "priced_cost": (total + penalty).ravel(),
            "expected_cost": expected.ravel(),
            "csl": res.csl.ravel(),
            "fill_rate": res.fill_rate.ravel(),
            "avg_on_hand": res.avg_on_hand.ravel(),
            "feasible": feasible.ravel(),
        }
    )
    excluded = pd.DataFrame(
        {"unique_id": data.ids[~complete], "reason": "held-out periods incomplete (series ended or NaN)"}
    )
    return LabelSet(
        cutoff=data.cutoff,
        ids=ids,
        names=names,
        cost=frame(total),
        penalty=frame(penalty),
        expected=frame(expected),
        service=frame(achieved),
        feasible=frame(feasible),
        label=pd.Series(np.asarray(names)[expected.argmin(axis=0)], index=index, name="label"),
        outcomes=outcomes,
        sized=sized,
        excluded=excluded,
        n_infeasible=int((~feasible.T.any(axis=1)).sum()),
        baseline=pd.Series(baseline, index=index, name="baseline"),
        expected_baseline=pd.Series(expected_baseline, index=index, name="expected_baseline"),
    )


def make_labels(
    demand: pd.DataFrame, items: pd.DataFrame, cutoff, config: SelectorConfig, rng: np.random.Generator
) -> tuple[CutoffData, LabelSet]:
    """Prepare the cutoff, size every candidate and label by simulation, in one call.

    Examples
    --------
    >>> data, labels = make_labels(demo.demand, demo.items, "2025-06-02", SelectorConfig(),
    ...                            np.random.default_rng(7))                        # doctest: +SKIP
    >>> labels.label.value_counts()                                                 # doctest: +SKIP
    """
    data = prepare_cutoff(demand, items, cutoff, config)
    sized = size_candidates(data, config)
    return data, label_candidates(data, sized, demand, config, rng)
