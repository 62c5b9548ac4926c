"""The selector study: label two cutoffs, evaluate on held-out items and time, fit the final model.

Time layout (T = ``config.test_periods``, last = last period of the data)::

    ... history ...| train labels (T) | test labels (T) |
                  c1                 c2               last

- held-out items: GroupKFold by item on the labels at c1 (features at c1);
- held-out time: fit on c1, choose at c2 from features at c2, judge on c2's labels;
- the final selector is fitted on the labels of both cutoffs.

Baselines in both: the SBC rule, and the single candidate with the lowest total cost
on the training part (best single policy).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff, wide_panel
from policy_selector.evaluation import evaluate_choices
from policy_selector.features import build_features
from policy_selector.labels import LabelSet, label_candidates
from policy_selector.selector import PolicySelector, RuleSelector
from policy_selector.sizing import size_candidates

__all__ = ["CutoffStudy", "StudyResult", "study_cutoff", "run_study", "default_cutoffs", "item_groups"]


@dataclass(frozen=True)
class CutoffStudy:
    """Features and labels of one cutoff."""

    data: CutoffData
    features: pd.DataFrame
    labels: LabelSet


@dataclass(frozen=True)
class StudyResult:
    """Everything ``stockwise train`` logs.

    Attributes
    ----------
    train, test : CutoffStudy
    evaluation : pandas.DataFrame
        ``split`` (held_out_items | held_out_time) x method rows of :func:`evaluate_choices`.
    choices : dict of str -> pandas.DataFrame
        Per split: unique_id, label and each method's choice.
    selector : PolicySelector
        Fitted on both cutoffs.
    best_single : str
        Best single candidate on the labels of both cutoffs.
    """

    train: CutoffStudy
    test: CutoffStudy
    evaluation: pd.DataFrame
    choices: dict
    selector: PolicySelector
    best_single: str


def default_cutoffs(demand: pd.DataFrame, test_periods: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(c1, c2) = (last - 2T, last - T) periods of the panel.

    Raises
    ------
    ValueError
        When the panel is shorter than 2T + 8 periods.
    """
    dates = wide_panel(demand).columns
    if len(dates) < 2 * test_periods + 8:
        raise ValueError(f"{len(dates)} periods cannot hold history plus two test windows of {test_periods}; "
                         f"lower test_periods to at most {(len(dates) - 8) // 2}")
    return pd.Timestamp(dates[-2 * test_periods - 1]), pd.Timestamp(dates[-test_periods - 1])


def item_groups(ids) -> pd.Series:
    """Group of each unique_id: the item part of ``item@location`` (the id itself otherwise)."""
    ids = pd.Index(np.asarray(ids, dtype=str))
    return pd.Series(ids.str.split("@").str[0], index=ids, name="group")


def study_cutoff(demand, items, cutoff, config: SelectorConfig, rng: np.random.Generator) -> CutoffStudy:
    """Prepare, size, label and featurise one cutoff."""
    data = prepare_cutoff(demand, items, cutoff, config)
    labels = label_candidates(data, size_candidates(data, config), demand, config, rng)
    features = build_features(data, config.season_length).loc[labels.cost.index]
    return CutoffStudy(data=data, features=features, labels=labels)


def _stack(studies: list[CutoffStudy]) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Features, labels and decision costs of several cutoffs with unique 'id|cutoff' rows."""
    feats, labs, costs = [], [], []
    for s in studies:
        tag = f"|{s.labels.cutoff.date()}"
        feats.append(s.features.rename(index=lambda i: i + tag))
        labs.append(s.labels.label.rename(index=lambda i: i + tag))
        costs.append(s.labels.decision_cost().rename(index=lambda i: i + tag))
    return pd.concat(feats), pd.concat(labs), pd.concat(costs)


def _oof(studies: list[CutoffStudy], make: Callable, n_splits: int) -> tuple[pd.Series, pd.Series]:
    """Out-of-fold choices on the first study's items, folds grouped by item; training rows from every study."""
    first = studies[0]
    ids = first.labels.cost.index
    groups = item_groups(ids)
    feats, labs, costs = _stack(studies)
    row_group = item_groups(feats.index.str.rsplit("|", n=1).str[0]).to_numpy()
    choice = pd.Series("", index=ids, dtype=object)
    single = pd.Series("", index=ids, dtype=object)
    for train_idx, test_idx in GroupKFold(n_splits=n_splits).split(ids, groups=groups.to_numpy()):
        held = np.isin(row_group, groups.iloc[test_idx].unique())
        sel = make().fit(feats[~held], labs[~held], costs[~held])
        choice.iloc[test_idx] = sel.predict(first.features.iloc[test_idx]).to_numpy()
        single.iloc[test_idx] = str(costs[~held].sum().idxmin())
    return choice, single


def run_study(demand: pd.DataFrame, items: pd.DataFrame, config: SelectorConfig, rng: np.random.Generator,
              make_selector: Callable[[], PolicySelector] | None = None, n_splits: int = 5,
              cutoffs: tuple | None = None, extra_train_cutoffs: int = 0) -> StudyResult:
    """Label two cutoffs, evaluate the selector against the oracle and the baselines, fit the final model.

    Parameters
    ----------
    demand, items : pandas.DataFrame
        Long demand and item master.
    config : SelectorConfig
    rng : numpy.random.Generator
    make_selector : callable, optional
        Fresh selector factory; default ``PolicySelector()``.
    n_splits : int, default 5
        GroupKFold folds (by item) for the held-out-items evaluation.
    cutoffs : (c1, c2), optional
        Default :func:`default_cutoffs`.
    extra_train_cutoffs : int, default 0
        More training cutoffs at c1 - k * max(1, T // 2), k = 1.. (more, less noisy labels per
        item; all before c2, so the held-out-time window stays unseen).

    Returns
    -------
    StudyResult
    """
    make = make_selector or PolicySelector
    c1, c2 = cutoffs or default_cutoffs(demand, config.test_periods)
    train = study_cutoff(demand, items, c1, config, rng)
    step = pd.tseries.frequencies.to_offset(config.freq) * max(1, config.test_periods // 2)
    extra = [study_cutoff(demand, items, c1 - step * k, config, rng) for k in range(1, extra_train_cutoffs + 1)]
    test = study_cutoff(demand, items, c2, config, rng)
    n_splits = min(n_splits, item_groups(train.labels.cost.index).nunique())
    oof, single_oof = _oof([train, *extra], make, n_splits)
    rule = RuleSelector().fit(None, None, train.labels.cost)
    items_choices = {"classifier": oof, "sbc_rule": rule.predict(train.features), "best_single": single_oof}
    train_f, train_l, train_c = _stack([train, *extra])
    time_sel = make().fit(train_f, train_l, train_c)
    single = str(train_c.sum().idxmin())
    time_choices = {"classifier": time_sel.predict(test.features), "sbc_rule": rule.predict(test.features),
                    "best_single": pd.Series(single, index=test.features.index)}
    evaluation = pd.concat([
        evaluate_choices(train.labels, items_choices).assign(split="held_out_items"),
        evaluate_choices(test.labels, time_choices).assign(split="held_out_time"),
    ], ignore_index=True)
    choices = {
        "held_out_items": pd.DataFrame({"label": train.labels.label, **items_choices}),
        "held_out_time": pd.DataFrame({"label": test.labels.label, **time_choices}),
    }
    feats, labs, costs = _stack([train, *extra, test])
    final = make().fit(feats, labs, costs)
    best_all = str(costs.sum().idxmin())
    cols = ["split"] + [c for c in evaluation.columns if c != "split"]
    return StudyResult(train=train, test=test, evaluation=evaluation[cols], choices=choices,
                       selector=final, best_single=best_all)
