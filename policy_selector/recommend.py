"""The front door for recommendations: choose, size and cost one policy per item.

``recommend_policies`` runs at the end of the history (or a given cutoff):
backtest and error models (:func:`prepare_cutoff`), features, the selector's
decision (:meth:`PolicySelector.select`: the same Bayes rule that training
evaluates, with reasons that explain the chosen candidate), the chosen candidate's parameters, and the expected
yearly cost and service of that policy by simulating it on bootstrapped demand
paths (resampled periods of the last year of history, lead times sampled from
the item's lead-time variability).

The columns are those of ``pipelines.report.schema.RECOMMENDATION_COLUMNS`` that this
layer can fill, plus :data:`EXTRA_COLUMNS` (drop them before conforming).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization import PolicyParams
from optimization.policies import POLICY_FIELDS
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff
from policy_selector.features import SBC_CODES, build_features
from policy_selector.outcomes import expected_outcomes, simulated_outcomes, sizing_paths
from policy_selector.selector import FixedSelector, PolicySelector, RuleSelector
from policy_selector.sizing import SizedCandidates, service_notes, size_candidates

__all__ = ["recommend_policies", "EXTRA_COLUMNS", "expected_outcomes", "presented_policy"]

#: Columns returned beyond the recommendations schema.
EXTRA_COLUMNS = ("candidate", "confidence", "selected_by", "expected_expiry_cost")
_SBC_NAMES = {v: k for k, v in SBC_CODES.items()}


def _pick(sized: SizedCandidates, choice: np.ndarray) -> PolicyParams:
    """Per item, the policy of its chosen candidate (batch shape (n_items,))."""
    idx = np.array([sized.names.index(c) for c in choice])
    cols = np.arange(len(choice))
    return PolicyParams(**{f: getattr(sized.policies, f)[idx, cols] for f in POLICY_FIELDS})


def presented_policy(policy_name: np.ndarray, policy: PolicyParams, order_cost: np.ndarray) -> dict[str, np.ndarray]:
    """What a planner reads: policy name, reorder point, order-up-to level and order quantity.

    ``s_Q`` rows show the highest inventory position an order reaches, ``s + Q``, as
    ``order_up_to`` (the simulator keeps s there). An (s, Q) with Q <= 1, no order cost and no
    MOQ above one unit orders whatever brings the position back above s every period: it is
    shown as the base-stock policy it is, S = s + Q (reorder point S, no order quantity),
    which replays the same (the simulator's base stock orders S - IP whenever IP < S).
    """
    name = np.asarray(policy_name, dtype=object).copy()
    s = np.asarray(policy.reorder_level, dtype=float).copy()
    S = np.asarray(policy.order_up_to, dtype=float).copy()
    fixed = np.asarray(policy.is_fixed_quantity)
    Q = np.where(fixed, policy.order_quantity, np.nan)
    S = np.where(fixed, s + np.nan_to_num(Q), S)
    base = fixed & (Q <= 1.0) & (np.asarray(order_cost) <= 0) & (np.asarray(policy.moq) <= 1.0)
    name[base] = "base_stock"
    s = np.where(base, S, s)
    Q = np.where(base, np.nan, Q)
    return {"policy": name, "reorder_point": s, "order_up_to": S, "order_quantity": Q}


def recommend_policies(
    selector: PolicySelector | FixedSelector | RuleSelector | None,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    cutoff=None,
    data: CutoffData | None = None,
    sized: SizedCandidates | None = None,
) -> pd.DataFrame:
    """One recommended policy per series: candidate, parameters, expected cost and service, reasons.

    Parameters
    ----------
    selector : PolicySelector, FixedSelector or RuleSelector, fitted, or None
        ``None`` uses the packaged default policy (:class:`FixedSelector`, the best
        single policy of the selector study; the SBC rule if it is not in
        ``config.space``). Items with missing core features fall back to the
        Syntetos-Boylan rule inside :class:`PolicySelector`; ``selected_by`` says which rows did.
    demand : pandas.DataFrame
        Long demand ``unique_id, ds, y``.
    items : pandas.DataFrame
        Item master.
    config : SelectorConfig
        Must hold the candidates the selector was fitted with.
    rng : numpy.random.Generator
        The whole-unit split of the outcome paths, lead-time sampling, the bootstrap of ``no_stock`` items.
    cutoff : str or Timestamp, optional
        Last period used; default the last date of ``demand``.
    data : CutoffData, optional
        The cutoff already prepared (:func:`prepare_cutoff` of the same demand, items,
        cutoff and config); saves a second backtest for callers that need it too.
    sized : SizedCandidates, optional
        The candidates already sized on ``data`` (:func:`size_candidates`, any space holding
        ``config.space``'s candidates); several decision paths judged at one cutoff share it.

    Returns
    -------
    pandas.DataFrame
        One row per unique_id: ``unique_id, item_id, location, sbc_class, forecaster, policy,
        review_period, lead_time, reorder_point, order_up_to, order_quantity, safety_stock,
        safety_stock_value, service_type, service_target, expected_*, reasons`` and
        :data:`EXTRA_COLUMNS`.

    Raises
    ------
    ValueError
        When the selector knows candidates that ``config.space`` lacks, or ``data`` / ``sized``
        do not match the cutoff and space.

    Examples
    --------
    >>> recs = recommend_policies(selector, demand, items, SelectorConfig(freq="W-MON"),
    ...                           np.random.default_rng(7))                      # doctest: +SKIP
    """
    if selector is None:
        selector = FixedSelector().fit(None, None, pd.DataFrame(columns=list(config.space.names)))
    unknown = sorted(set(getattr(selector, "candidates_", ())) - set(config.space.names))
    if unknown:
        raise ValueError(
            f"selector was fitted with candidates {unknown} that config.space lacks; "
            "use the same candidate space as in training"
        )
    cutoff = pd.Timestamp(cutoff) if cutoff is not None else pd.Timestamp(pd.to_datetime(demand["ds"]).max())
    if data is None:
        data = prepare_cutoff(demand, items, cutoff, config)
    elif data.cutoff != cutoff:
        raise ValueError(f"the prepared cutoff data end at {data.cutoff.date()}, not at the cutoff {cutoff.date()}")
    features = build_features(data, config.season_length)
    selection = selector.select(features)
    choice = selection.candidate
    if sized is None:  # only the chosen candidates: each is sized on its own, so their rows are the same
        sized = size_candidates(data, config, names=pd.unique(choice.to_numpy()))
    elif not set(config.space.names) <= set(sized.names) or not np.array_equal(sized.ids, data.ids):
        lacking = sorted(set(config.space.names) - set(sized.names))
        raise ValueError(f"the sized candidates lack {lacking} or were sized on other series; size them on data")
    policy = _pick(sized, choice.to_numpy())
    table = sized.table.set_index(["unique_id", "candidate"])
    chosen = table.loc[list(zip(choice.index, choice.to_numpy()))].reset_index()
    econ = data.economics
    ids = pd.Index(data.ids)
    shown = presented_policy(chosen["policy"].to_numpy(), policy, econ.order_cost)
    out = pd.DataFrame(
        {
            "unique_id": data.ids,
            "item_id": ids.str.split("@").str[0],
            "location": ids.str.split("@").str[1],
            "sbc_class": features["sbc_code"].map(_SBC_NAMES).to_numpy(),
            "forecaster": chosen["forecaster"].to_numpy(),
            "policy": shown["policy"],
            "review_period": policy.review_period,
            "lead_time": econ.lead_time,
            "reorder_point": shown["reorder_point"],
            "order_up_to": shown["order_up_to"],
            "order_quantity": shown["order_quantity"],
            "safety_stock": chosen["safety_stock"].to_numpy(),
            "safety_stock_value": chosen["safety_stock"].to_numpy() * econ.unit_cost,
            "service_type": econ.service_type,
            "service_target": econ.service_target,
        }
    )
    paths, totals = sizing_paths(data, choice.to_numpy(), config, config.sim_periods, rng, policy)
    outcomes = simulated_outcomes(data, policy, paths, rng).reset_index(drop=True)
    out = pd.concat([out, outcomes], axis=1)
    out["service_note"] = service_notes(data, chosen, outcomes, totals)
    out["reasons"] = selection.reasons.reindex(data.ids).to_numpy()
    out["candidate"] = choice.to_numpy()
    out["confidence"] = selection.confidence.reindex(data.ids).to_numpy()
    out["selected_by"] = selection.selected_by.reindex(data.ids).to_numpy()
    return out
