"""The selector study: label two cutoffs, evaluate on held-out items and time, fit the final model.

Time layout (T = ``config.test_periods``, last = last period of the data)::

    ... history ...| train labels (T) | test labels (T) |
                  c1                 c2               last

- held-out items: GroupKFold by item on the labels at c1 (features at c1);
- held-out time: fit on c1, choose at c2 from features at c2, judge on c2's labels;
- the final selector is fitted on the labels of both cutoffs.

Baselines in both: the SBC rule, the single candidate with the lowest expected
cost on the training part (best single policy) and the packaged default
(:class:`~policy_selector.selector.FixedSelector`). Training rows may come from
more cutoffs before c1 (``extra_train_cutoffs``; :func:`plan_study` chooses them
from the history length).
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
from policy_selector.selector import FixedSelector, PolicySelector, RuleSelector
from policy_selector.sizing import size_candidates

__all__ = [
    "CutoffStudy",
    "StudyResult",
    "StudyPlan",
    "plan_study",
    "study_cutoff",
    "run_study",
    "default_cutoffs",
    "item_groups",
    "MIN_HISTORY",
    "OriginFit",
    "most_gate_origins",
    "plan_gate_origins",
    "origin_fits",
    "held_out_time_fit",
    "stack_studies",
]


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
    time_selector : PolicySelector or None
        The held-out-time model: fitted on the training cutoffs only, before c2, so its
        decisions at c2 can be replayed on the held-out window it never saw.
    extra : tuple of CutoffStudy
        The training cutoffs before c1 (``extra_train_cutoffs``), latest first.
    """

    train: CutoffStudy
    test: CutoffStudy
    evaluation: pd.DataFrame
    choices: dict
    selector: PolicySelector
    best_single: str
    time_selector: PolicySelector | None = None
    extra: tuple[CutoffStudy, ...] = ()


@dataclass(frozen=True)
class StudyPlan:
    """Windows of the selector study chosen from the history length (see :func:`plan_study`).

    Attributes
    ----------
    n_periods : int
        Periods in the panel.
    test_periods : int
        Held-out periods per cutoff (T).
    n_windows : int
        Backtest windows before each cutoff.
    extra_train_cutoffs : int
        Training cutoffs before c1, every ``max(1, T // 2)`` periods.
    reason : str
        One sentence saying how the numbers were chosen (for the output and the log).
    """

    n_periods: int
    test_periods: int
    n_windows: int
    extra_train_cutoffs: int
    reason: str


#: Periods of history a cutoff needs before it (below, series are sized from history alone).
MIN_HISTORY = 10


def plan_study(
    n_periods: int,
    periods_per_year: float,
    test_periods: int | None = None,
    n_windows: int | None = None,
    extra_train_cutoffs: int | None = None,
) -> StudyPlan:
    """Choose test window, backtest windows and training cutoffs that fit ``n_periods``.

    Layout: ``history (>= MIN_HISTORY) | extra cutoffs | c1 | T | c2 | T``. Defaults: T = a
    third of what is left after ``MIN_HISTORY``, at most min(26, a year); 8 backtest windows
    or half the history before c1; up to 2 extra training cutoffs that keep ``MIN_HISTORY``.
    Given values are kept and checked.

    Parameters
    ----------
    n_periods : int
    periods_per_year : float
    test_periods, n_windows, extra_train_cutoffs : int, optional
        Fixed values (None = chosen).

    Returns
    -------
    StudyPlan

    Raises
    ------
    ValueError
        When nothing can be learned: the history cannot hold ``MIN_HISTORY`` periods and two
        test windows of at least one period (or of the given ``test_periods``).

    Examples
    --------
    >>> plan_study(51, 12).test_periods, plan_study(39, 52).test_periods
    (12, 9)
    """
    room = n_periods - MIN_HISTORY
    chosen = []
    if test_periods is None:
        cap = int(min(26, round(periods_per_year)))
        test_periods = min(cap, room // 3) if room // 3 >= 2 else room // 2
        chosen.append(f"test_periods={test_periods}")
    if test_periods < 1 or 2 * test_periods > room:
        most = room // 2
        hint = (
            f"lower test_periods to at most {most}"
            if most >= 1
            else f"nothing can be learned: give at least {MIN_HISTORY + 2} periods of demand"
        )
        raise ValueError(
            f"{n_periods} periods cannot hold {MIN_HISTORY} periods of history plus two test "
            f"windows of {test_periods}; {hint}"
        )
    before = n_periods - 2 * test_periods
    if n_windows is None:
        n_windows = int(np.clip(before // 2, 2, 8))
        chosen.append(f"n_windows={n_windows}")
    step = max(1, test_periods // 2)
    if extra_train_cutoffs is None:
        extra_train_cutoffs = int(np.clip((before - MIN_HISTORY) // step, 0, 2))
        chosen.append(f"extra_train_cutoffs={extra_train_cutoffs}")
    elif before - extra_train_cutoffs * step < 1:
        raise ValueError(
            f"{extra_train_cutoffs} extra training cutoffs every {step} periods do not fit before "
            f"the first cutoff ({before} periods); lower extra_train_cutoffs"
        )
    reason = (
        f"{n_periods} periods: {'chose ' + ', '.join(chosen) if chosen else 'all windows given'} "
        f"(cutoffs at periods {before - extra_train_cutoffs * step}..{before} for training, "
        f"{before + test_periods} for held-out time; test windows of {test_periods})"
    )
    return StudyPlan(n_periods, int(test_periods), int(n_windows), int(extra_train_cutoffs), reason)


def default_cutoffs(demand: pd.DataFrame, test_periods: int) -> tuple[pd.Timestamp, pd.Timestamp]:
    """(c1, c2) = (last - 2T, last - T) periods of the panel.

    Raises
    ------
    ValueError
        When the panel cannot hold ``MIN_HISTORY`` periods and two test windows.
    """
    dates = wide_panel(demand).columns
    if len(dates) < 2 * test_periods + MIN_HISTORY:
        raise ValueError(
            f"{len(dates)} periods cannot hold {MIN_HISTORY} periods of history plus two test "
            f"windows of {test_periods}; lower test_periods to at most "
            f"{max(0, (len(dates) - MIN_HISTORY) // 2)} (or leave it unset: plan_study chooses)"
        )
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


def stack_studies(studies: list[CutoffStudy]) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
    """Features, labels and decision costs of several cutoffs with unique 'id|cutoff' rows."""
    feats, labs, costs = [], [], []
    for s in studies:
        tag = f"|{s.labels.cutoff.date()}"
        feats.append(s.features.rename(index=lambda i: i + tag))
        labs.append(s.labels.label.rename(index=lambda i: i + tag))
        costs.append(s.labels.decision_cost().rename(index=lambda i: i + tag))
    return pd.concat(feats), pd.concat(labs), pd.concat(costs)


def _oof(
    studies: list[CutoffStudy], make: Callable, n_splits: int, views: dict[str, Callable] | None = None
) -> tuple[pd.Series, pd.Series, dict[str, pd.Series]]:
    """Out-of-fold choices on the first study's items, folds grouped by item; training rows from every study.

    (choice, best single, {view: choice}): each of ``views`` reads a path off the fold's one fitted selector."""
    first = studies[0]
    ids = first.labels.cost.index
    groups = item_groups(ids)
    feats, labs, costs = stack_studies(studies)
    row_group = item_groups(feats.index.str.rsplit("|", n=1).str[0]).to_numpy()
    choice = pd.Series("", index=ids, dtype=object)
    single = pd.Series("", index=ids, dtype=object)
    viewed = {name: pd.Series("", index=ids, dtype=object) for name in views or {}}
    for train_idx, test_idx in GroupKFold(n_splits=n_splits).split(ids, groups=groups.to_numpy()):
        held = np.isin(row_group, groups.iloc[test_idx].unique())
        sel = make().fit(feats[~held], labs[~held], costs[~held])
        choice.iloc[test_idx] = sel.predict(first.features.iloc[test_idx]).to_numpy()
        single.iloc[test_idx] = str(costs[~held].sum().idxmin())
        for name, view in (views or {}).items():
            viewed[name].iloc[test_idx] = view(sel).predict(first.features.iloc[test_idx]).to_numpy()
    return choice, single, viewed


def run_study(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    make_selector: Callable[[], PolicySelector] | None = None,
    n_splits: int = 5,
    cutoffs: tuple | None = None,
    extra_train_cutoffs: int = 0,
    challengers: dict[str, Callable[[], PolicySelector]] | None = None,
    views: dict[str, Callable[[PolicySelector], PolicySelector]] | None = None,
) -> StudyResult:
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
    challengers : dict of str -> callable, optional
        More selector factories judged on the same labels and folds, each as a method of
        that name in ``evaluation`` (a paired comparison of decision rules; e.g. abstention).
        Each is fitted again on every fold.
    views : dict of str -> callable, optional
        More paths read off each fitted selector, ``view(fitted) -> fitted selector`` (e.g.
        :class:`~policy_selector.shortfall_tuning.ShortfallPaths`' ``tuned_``): judged as methods of
        that name on the same folds and held-out time **from the same fits**, no refit.

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
    oof, single_oof, viewed = _oof([train, *extra], make, n_splits, views)
    rule = RuleSelector().fit(None, None, train.labels.cost)
    default = FixedSelector().fit(None, None, train.labels.cost)
    items_choices = {
        "classifier": oof,
        "sbc_rule": rule.predict(train.features),
        "best_single": single_oof,
        "default": default.predict(train.features),
        **viewed,
    }
    train_f, train_l, train_c = stack_studies([train, *extra])
    time_sel = make().fit(train_f, train_l, train_c)
    single = str(train_c.sum().idxmin())
    extra_time = {name: view(time_sel).predict(test.features) for name, view in (views or {}).items()}
    for name, factory in (challengers or {}).items():
        items_choices[name] = _oof([train, *extra], factory, n_splits)[0]
        extra_time[name] = factory().fit(train_f, train_l, train_c).predict(test.features)
    time_choices = {
        "classifier": time_sel.predict(test.features),
        "sbc_rule": rule.predict(test.features),
        "best_single": pd.Series(single, index=test.features.index),
        "default": default.predict(test.features),
        **extra_time,
    }
    evaluation = pd.concat(
        [
            evaluate_choices(train.labels, items_choices).assign(split="held_out_items"),
            evaluate_choices(test.labels, time_choices).assign(split="held_out_time"),
        ],
        ignore_index=True,
    )
    choices = {
        "held_out_items": pd.DataFrame({"label": train.labels.label, **items_choices}),
        "held_out_time": pd.DataFrame({"label": test.labels.label, **time_choices}),
    }
    feats, labs, costs = stack_studies([train, *extra, test])
    final = make().fit(feats, labs, costs)
    best_all = str(costs.sum().idxmin())
    cols = ["split"] + [c for c in evaluation.columns if c != "split"]
    return StudyResult(
        train=train,
        test=test,
        evaluation=evaluation[cols],
        choices=choices,
        selector=final,
        best_single=best_all,
        time_selector=time_sel,
        extra=tuple(extra),
    )


# -- the decision replay over several origins (stockwise train's gate) ---------------------------------


@dataclass(frozen=True)
class OriginFit:
    """What could be known at one replay origin: a classifier and a best single policy fitted only on
    labels whose windows end by the origin.

    Attributes
    ----------
    origin : pandas.Timestamp
        The last period before the replayed window.
    selector : PolicySelector
    best_single : str
        The candidate of least summed decision cost over ``cutoffs``.
    cutoffs : tuple of pandas.Timestamp
        The training cutoffs, latest first (the first one's window ends at the origin).
    """

    origin: pd.Timestamp
    selector: PolicySelector
    best_single: str
    cutoffs: tuple[pd.Timestamp, ...]


def most_gate_origins(plan: StudyPlan) -> int:
    """Replay origins ``T`` apart, the last at c2, whose own first training cutoff keeps ``MIN_HISTORY``."""
    before = plan.n_periods - 2 * plan.test_periods  # periods up to and including c1
    return 1 + max(0, (before - MIN_HISTORY) // plan.test_periods)


def plan_gate_origins(plan: StudyPlan, given: int | None, auto: int) -> tuple[int, str]:
    """(origins of the replay gate, the sentence saying why): ``given`` kept and checked, else ``auto``
    capped by what the history holds (:func:`most_gate_origins`).

    Raises
    ------
    ValueError
        When ``given`` origins do not fit; the message names the most that do.
    """
    most = most_gate_origins(plan)
    if given is not None and given > most:
        raise ValueError(
            f"{plan.n_periods} periods hold at most {most} replay origin(s) {plan.test_periods} periods apart, "
            f"each with {MIN_HISTORY} periods before its first training cutoff; lower gate_origins to {most}"
        )
    n = given if given is not None else min(auto, most)
    how = "given" if given is not None else f"chose: default {auto}, the history holds {most}"
    return n, f"replay gate over {n} origin(s) {plan.test_periods} periods apart ({how})"


def origin_fits(
    study: StudyResult,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rng: np.random.Generator,
    n_origins: int,
    extra_train_cutoffs: int,
    make_selector: Callable[[], PolicySelector] | None = None,
) -> list[OriginFit]:
    """The held-out-time fit of ``study`` repeated at earlier origins, oldest first, the study's own last.

    Origin ``j`` (0 = c2) is ``c2 - j T``. Its classifier is fitted, as the study's held-out-time
    model is at c2, on the labels at ``origin - T`` and up to ``extra_train_cutoffs`` cutoffs every
    ``max(1, T // 2)`` periods before it (those that keep ``MIN_HISTORY``): every label window ends
    by the origin, so the replay after it judges a model that never saw it. Cutoffs the study
    already labelled are reused; the others are labelled here.

    Raises
    ------
    ValueError
        When an origin's first training cutoff leaves fewer than ``MIN_HISTORY`` periods.
    """
    make = make_selector or PolicySelector
    T = config.test_periods
    period = pd.tseries.frequencies.to_offset(config.freq)
    dates = wide_panel(demand).columns
    known = {s.labels.cutoff: s for s in (study.train, *study.extra, study.test)}
    c2 = study.test.labels.cutoff
    fits = []
    for j in range(n_origins - 1, 0, -1):
        origin = c2 - period * (T * j)
        first = origin - period * T
        cutoffs = [first - period * (max(1, T // 2) * k) for k in range(extra_train_cutoffs + 1)]
        cutoffs = [c for c in cutoffs if (dates <= c).sum() >= MIN_HISTORY]
        if not cutoffs or cutoffs[0] != first:
            raise ValueError(
                f"the replay origin {origin.date()} leaves fewer than {MIN_HISTORY} periods before {first.date()}"
            )
        for c in cutoffs:
            if c not in known:
                known[c] = study_cutoff(demand, items, c, config, rng)
        f, lab, cost = stack_studies([known[c] for c in cutoffs])
        fits.append(OriginFit(origin, make().fit(f, lab, cost), str(cost.sum().idxmin()), tuple(cutoffs)))
    return fits + [held_out_time_fit(study)]


def held_out_time_fit(study: StudyResult) -> OriginFit:
    """The study's own fit at c2: its held-out-time classifier and the best single policy of the same
    training cutoffs (the held-out-time evaluation's ``best_single``, not ``study.best_single``,
    which also counts c2's window).

    Raises
    ------
    ValueError
        When the held-out-time evaluation does not hold exactly one best single policy.
    """
    chosen = study.choices["held_out_time"]["best_single"].dropna().unique()
    if len(chosen) != 1:
        raise ValueError(f"the held-out-time evaluation holds {len(chosen)} best single policies; expected one")
    cutoffs = (study.train.labels.cutoff, *(s.labels.cutoff for s in study.extra))
    return OriginFit(study.test.labels.cutoff, study.time_selector, str(chosen[0]), cutoffs)
