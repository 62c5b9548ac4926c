"""Labels by simulation: replay every sized candidate on held-out demand.

Each candidate sized at the cutoff is simulated on the ``test_periods``
periods after it with :func:`optimization.simulate` (candidates are the
leading batch axis, items the next), with per-order lead times sampled from
the item's lead-time variability. Its yearly relevant cost has five parts:

- holding (ending on-hand x h), ordering (orders x K), shortage (units short x b),
- purchasing of what was sold or is owed, ``c (demand - lost)`` -- it differs
  between candidates through lost sales only, so stocking out of a lost-sales
  item saves its purchase but pays the lost margin b,
- expiry, ``c x expired`` (bought and never sold).

Initial stock is the candidate's own S (or s + Q), as if the policy had been in
place; the terminal stock is not credited (the same rule for every candidate).

A candidate is feasible when it meets the item's service target (CSL or fill
rate) within ``service_tolerance``, or when the item has no target or no
demand in the held-out periods. The label is the cheapest feasible candidate;
when none is feasible, the one with the smallest service shortfall (then the
cheapest) -- counted in ``LabelSet.n_infeasible``. The full cost matrix is kept:
regret is measured from it.

References
----------
docs/design.md, "Labels for the classifier come from simulation, not opinion".
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimization import sample_lead_times, simulate
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff, wide_panel
from policy_selector.sizing import SizedCandidates, size_candidates

__all__ = ["LabelSet", "label_candidates", "make_labels", "held_out_demand", "COST_TYPES"]

COST_TYPES = ("holding", "ordering", "shortage", "purchasing", "expiry")


@dataclass(frozen=True)
class LabelSet:
    """Simulated outcome of every candidate on held-out demand, and the labels.

    Attributes
    ----------
    cutoff : pandas.Timestamp
    ids : ndarray of str, shape (n_items,)
    names : tuple of str
        Candidate names (columns of the matrices).
    cost : pandas.DataFrame, shape (n_items, n_candidates)
        Yearly total relevant cost.
    service : pandas.DataFrame
        Achieved service in the item's own measure (CSL or fill rate; NaN without target).
    feasible : pandas.DataFrame of bool
    label : pandas.Series of str
        Best candidate per item (index ``unique_id``).
    outcomes : pandas.DataFrame
        Long: ``unique_id, candidate, cost_<type>..., total_cost, csl, fill_rate, avg_on_hand``.
    sized : SizedCandidates
    excluded : pandas.DataFrame
        Series left out with the reason (``unique_id, reason``).
    n_infeasible : int
        Items where no candidate met the service target.
    baseline : pandas.Series
        Yearly purchasing cost of all held-out demand, ``c x demand``: the same for every
        candidate, so ``cost - baseline`` is the part a policy controls.
    """

    cutoff: pd.Timestamp
    ids: np.ndarray
    names: tuple[str, ...]
    cost: pd.DataFrame
    service: pd.DataFrame
    feasible: pd.DataFrame
    label: pd.Series
    outcomes: pd.DataFrame
    sized: SizedCandidates
    excluded: pd.DataFrame
    n_infeasible: int
    baseline: pd.Series

    def decision_cost(self) -> pd.DataFrame:
        """Cost with infeasible candidates pushed behind every feasible one (its row argmin is the label
        wherever some candidate is feasible)."""
        cost = self.cost.to_numpy(float)
        penalty = cost.max(axis=1, keepdims=True) - cost.min(axis=1, keepdims=True) + 1.0
        out = np.where(self.feasible.to_numpy(bool), cost, cost + penalty)
        return pd.DataFrame(out, index=self.cost.index, columns=self.cost.columns)

    def regret(self, choice: pd.Series) -> pd.Series:
        """Cost of ``choice`` (candidate per unique_id) minus the label's cost, per item.

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
        return self.cost_of(choice) - self.cost_of(self.label)

    def cost_of(self, choice: pd.Series) -> pd.Series:
        """Yearly cost of the chosen candidate per item."""
        cols = self.cost.columns.get_indexer(choice.reindex(self.cost.index).to_numpy())
        return pd.Series(self.cost.to_numpy()[np.arange(len(cols)), cols], index=self.cost.index)

    def service_of(self, choice: pd.Series) -> pd.Series:
        """Achieved service of the chosen candidate per item."""
        cols = self.service.columns.get_indexer(choice.reindex(self.service.index).to_numpy())
        return pd.Series(self.service.to_numpy()[np.arange(len(cols)), cols], index=self.service.index)

    def feasible_of(self, choice: pd.Series) -> pd.Series:
        """Whether the chosen candidate met the item's target."""
        cols = self.feasible.columns.get_indexer(choice.reindex(self.feasible.index).to_numpy())
        return pd.Series(self.feasible.to_numpy()[np.arange(len(cols)), cols], index=self.feasible.index)


def held_out_demand(demand: pd.DataFrame, ids, cutoff, periods: int) -> tuple[np.ndarray, np.ndarray]:
    """Demand of the ``periods`` periods after ``cutoff``, shape (n_items, periods), and a complete-row mask."""
    wide = wide_panel(demand)
    after = wide.loc[:, wide.columns > pd.Timestamp(cutoff)].iloc[:, :periods]
    block = after.reindex(index=np.asarray(ids, dtype=str)).to_numpy(dtype=float)
    if block.shape[1] < periods:
        raise ValueError(f"only {block.shape[1]} periods after cutoff {pd.Timestamp(cutoff).date()}; "
                         f"need test_periods={periods} (move the cutoff earlier or lower test_periods)")
    return block, np.isfinite(block).all(axis=1)


def _choose(cost: np.ndarray, shortfall: np.ndarray, feasible: np.ndarray) -> np.ndarray:
    """Cheapest feasible per row; else smallest shortfall, then cheapest."""
    masked = np.where(feasible, cost, np.inf)
    best = masked.argmin(axis=1)
    none = ~feasible.any(axis=1)
    if none.any():
        key = np.lexsort((cost[none], np.round(shortfall[none], 6)), axis=-1)
        best[none] = key[:, 0]
    return best


def label_candidates(data: CutoffData, sized: SizedCandidates, demand: pd.DataFrame,
                     config: SelectorConfig, rng: np.random.Generator) -> LabelSet:
    """Simulate the sized candidates on the held-out periods after ``data.cutoff``.

    Parameters
    ----------
    data : CutoffData
    sized : SizedCandidates
    demand : pandas.DataFrame
        Long demand including the periods after the cutoff.
    config : SelectorConfig
    rng : numpy.random.Generator
        Lead-time sampling; the same seed gives the same labels.

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
    test = test[complete]
    policies = sized.policies
    keep = {name: getattr(policies, name)[:, complete] for name in
            ("policy_type", "review_period", "reorder_level", "order_up_to", "order_quantity",
             "moq", "order_multiple", "lost_sales")}
    policies = type(policies)(**keep)
    T = test.shape[1]
    lead = sample_lead_times(econ.lead_time, econ.lead_time_std, test.shape, rng)
    res = simulate(test[None], policies, econ.lead_time, costs=econ.cost_params(),
                   sampled_lead_times=lead[None], shelf_life=econ.shelf_life)
    year = econ.periods_per_year / T
    parts = {
        "holding": res.cost_holding, "ordering": res.cost_ordering, "shortage": res.cost_shortage,
        "purchasing": econ.unit_cost * (res.demand - res.lost),
        "expiry": econ.unit_cost * res.expired,
    }
    parts = {k: v * year for k, v in parts.items()}
    total = sum(parts.values())                                             # (C, n)
    achieved = np.where(econ.service_type == "fill_rate", res.fill_rate, res.csl)
    achieved = np.where(econ.service_type == "cost", np.nan, achieved)
    target = econ.service_target
    feasible = np.isnan(target) | np.isnan(achieved) | (achieved >= target - config.service_tolerance)
    shortfall = np.nan_to_num(np.maximum(target - achieved, 0.0))
    best = _choose(total.T, shortfall.T, feasible.T)
    names = sized.names
    index = pd.Index(ids, name="unique_id")
    outcomes = pd.DataFrame({
        "unique_id": np.tile(ids, len(names)), "candidate": np.repeat(names, len(ids)),
        **{f"cost_{k}": v.ravel() for k, v in parts.items()},
        "total_cost": total.ravel(), "csl": res.csl.ravel(), "fill_rate": res.fill_rate.ravel(),
        "avg_on_hand": res.avg_on_hand.ravel(), "feasible": feasible.ravel(),
    })
    excluded = pd.DataFrame({"unique_id": data.ids[~complete],
                             "reason": "held-out periods incomplete (series ended or NaN)"})
    return LabelSet(
        cutoff=data.cutoff, ids=ids, names=names,
        cost=pd.DataFrame(total.T, index=index, columns=list(names)),
        service=pd.DataFrame(achieved.T, index=index, columns=list(names)),
        feasible=pd.DataFrame(feasible.T, index=index, columns=list(names)),
        label=pd.Series(np.asarray(names)[best], index=index, name="label"),
        outcomes=outcomes, sized=sized, excluded=excluded,
        n_infeasible=int((~feasible.T.any(axis=1)).sum()),
        baseline=pd.Series(econ.unit_cost * res.demand[0] * year, index=index, name="baseline"),
    )


def make_labels(demand: pd.DataFrame, items: pd.DataFrame, cutoff, config: SelectorConfig,
                rng: np.random.Generator) -> tuple[CutoffData, LabelSet]:
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
