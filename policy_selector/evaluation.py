"""Judge selectors by cost: regret against the oracle, the SBC rule and the best single policy.

The oracle picks each item's best candidate in hindsight on the realised
held-out periods (``LabelSet.oracle``). Costs are yearly and *priced*: a unit
short costs at least what the item's service target implies
(:mod:`policy_selector.labels`). The *controllable* cost leaves out the
purchasing of all demand (``LabelSet.baseline``), which no policy changes, so
its regret is the honest percentage. Accuracy and the confusion matrix are secondary: a
"wrong" class that costs the same as the label is no loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
from sklearn.model_selection import GroupKFold

from policy_selector.labels import LabelSet

__all__ = [
    "best_single_candidate",
    "evaluate_choices",
    "grouped_oof_predictions",
    "confusion",
    "gate",
    "ReplayDecision",
    "replay_gate",
]


def best_single_candidate(labels: LabelSet) -> str:
    """Candidate with the lowest summed expected priced cost over all items."""
    return str(labels.decision_cost().sum().idxmin())


def evaluate_choices(labels: LabelSet, choices: dict[str, pd.Series]) -> pd.DataFrame:
    """One row per method: total and controllable cost, regret, service, accuracy.

    Parameters
    ----------
    labels : LabelSet
        Held-out outcomes to judge on.
    choices : dict of str -> pandas.Series
        Method name -> candidate per ``unique_id`` (e.g. classifier, SBC rule, best single).
        The oracle row is added.

    Returns
    -------
    pandas.DataFrame
        ``method, n_items, total_cost, controllable_cost, regret, regret_pct,
        controllable_regret_pct, service_met, mean_service, accuracy, expected_regret_pct``;
        costs are realised and priced, ``accuracy`` is agreement with the oracle.
        ``expected_regret_pct`` is the controllable regret on the *expected* cost matrix
        (mean over the label paths around the same window) against its row minimum: the
        same comparison with most of one window's luck averaged out.

    Raises
    ------
    ValueError
        A choice outside the candidate set or an item without a choice.
    """
    rows = []
    oracle_cost = labels.priced_of(labels.oracle)
    base = labels.baseline.reindex(labels.cost.index)
    oracle_ctrl = float((oracle_cost - base).sum())
    expected = labels.expected.to_numpy(float)
    exp_best = expected.min(axis=1)
    exp_ctrl = float((exp_best - labels.expected_baseline.reindex(labels.cost.index).to_numpy()).sum())
    for name, choice in {"oracle": labels.oracle, **choices}.items():
        regret = labels.regret(choice)
        cost = labels.priced_of(choice)
        service = labels.service_of(choice)
        rows.append(
            {
                "method": name,
                "n_items": len(cost),
                "total_cost": float(cost.sum()),
                "controllable_cost": float((cost - base).sum()),
                "regret": float(regret.sum()),
                "regret_pct": 100 * float(regret.sum()) / float(oracle_cost.sum()),
                "controllable_regret_pct": 100 * float(regret.sum()) / oracle_ctrl if oracle_ctrl else np.nan,
                "service_met": float(labels.feasible_of(choice).mean()),
                "mean_service": float(service.mean()),
                "accuracy": float((choice.reindex(labels.cost.index) == labels.oracle).mean()),
                "expected_regret_pct": 100
                * float((_take_cols(expected, labels.expected.columns, choice, labels.cost.index) - exp_best).sum())
                / exp_ctrl
                if exp_ctrl
                else np.nan,
            }
        )
    return pd.DataFrame(rows)


def _take_cols(matrix: np.ndarray, columns: pd.Index, choice: pd.Series, index: pd.Index) -> np.ndarray:
    """matrix[row, column of choice[row]]."""
    cols = columns.get_indexer(choice.reindex(index).to_numpy())
    return matrix[np.arange(len(cols)), cols]


def grouped_oof_predictions(
    features: pd.DataFrame, labels: LabelSet, groups: pd.Series, make_selector: Callable[[], object], n_splits: int = 5
) -> tuple[pd.Series, pd.Series]:
    """Out-of-fold choices with folds grouped by item (no item in both train and test).

    Parameters
    ----------
    features : pandas.DataFrame, index unique_id (same items as ``labels``)
    labels : LabelSet
    groups : pandas.Series
        Group per unique_id (e.g. the item part of item@location).
    make_selector : callable
        Returns a fresh, unfitted selector.
    n_splits : int, default 5

    Returns
    -------
    (choice, best_single) : tuple of pandas.Series
        The selector's out-of-fold choice and the best single candidate of each
        training fold applied to its test fold.

    Raises
    ------
    ValueError
        Fewer groups than folds.
    """
    ids = labels.cost.index
    f = features.reindex(ids)
    g = groups.reindex(ids).to_numpy()
    if len(np.unique(g)) < n_splits:
        raise ValueError(f"only {len(np.unique(g))} item groups for {n_splits} folds; lower n_splits")
    choice = pd.Series("", index=ids, dtype=object)
    single = pd.Series("", index=ids, dtype=object)
    decision = labels.decision_cost()
    for train, test in GroupKFold(n_splits=n_splits).split(f, groups=g):
        sel = make_selector().fit(f.iloc[train], labels.label.iloc[train], decision.iloc[train])
        choice.iloc[test] = sel.predict(f.iloc[test]).to_numpy()
        single.iloc[test] = str(decision.iloc[train].sum().idxmin())
    return choice, single


def confusion(truth: pd.Series, predicted: pd.Series) -> pd.DataFrame:
    """Counts of (label, predicted) pairs; rows = label, columns = prediction."""
    return pd.crosstab(truth.rename("label"), predicted.reindex(truth.index).rename("predicted"))


def gate(
    evaluation: pd.DataFrame,
    margin: float,
    max_service_drop: float,
    baselines: tuple[str, ...] = ("default", "best_single"),
) -> tuple[str, str]:
    """``("promote" | "keep", reason)``: may a trained classifier replace the default path?

    The classifier must be cheaper than every baseline by ``margin`` (relative) in
    controllable cost -- the part of the cost a policy changes -- on every split of
    ``evaluation`` (held-out items and held-out time), and lose at most
    ``max_service_drop`` of mean service against each. Pure: the caller moves aliases.

    Parameters
    ----------
    evaluation : pandas.DataFrame
        Rows of :func:`evaluate_choices` with a ``split`` column (``run_study().evaluation``).
    margin, max_service_drop : float
        As in ``stockwise retrain``.
    baselines : tuple of str
        Methods to beat; those absent from a split are skipped (and said).

    Raises
    ------
    ValueError
        When ``evaluation`` has no classifier row or lacks the needed columns.

    Examples
    --------
    >>> ev = pd.DataFrame({"split": ["t", "t"], "method": ["classifier", "best_single"],
    ...                    "controllable_cost": [90.0, 100.0], "mean_service": [0.95, 0.95]})
    >>> gate(ev, 0.02, 0.005)[0]
    'promote'
    """
    need = {"split", "method", "controllable_cost", "mean_service"}
    if not need <= set(evaluation.columns):
        raise ValueError(f"evaluation lacks column(s) {sorted(need - set(evaluation.columns))}")
    if not (evaluation["method"] == "classifier").any():
        raise ValueError("evaluation has no 'classifier' row to judge")
    facts, fails = _label_facts(evaluation, margin, max_service_drop, baselines)
    if fails:
        return "keep", (
            f"the classifier does not beat the default path by the {margin:.1%} margin "
            f"(service drop at most {max_service_drop}): " + "; ".join(fails)
        )
    return "promote", f"the classifier beats every baseline by at least {margin:.1%}: " + "; ".join(facts)


def _label_facts(evaluation: pd.DataFrame, margin: float, max_service_drop: float, baselines) -> tuple[list, list]:
    """(every comparison, those the classifier fails): per split of ``evaluation``, against each baseline."""
    facts, fails = [], []
    for split, rows in evaluation.groupby("split", sort=False):
        rows = rows.set_index("method")
        mine = rows.loc["classifier"]
        for base in baselines:
            if base not in rows.index:
                facts.append(f"{split}: no {base} row")
                continue
            other = rows.loc[base]
            cost_b = float(other["controllable_cost"])
            gain = (cost_b - float(mine["controllable_cost"])) / cost_b if cost_b > 0 else 0.0
            drop = float(other["mean_service"]) - float(mine["mean_service"])
            fact = f"{split} vs {base}: controllable cost {gain:+.1%}, service {-drop:+.4f}"
            facts.append(fact)
            if gain < margin or drop > max_service_drop:
                fails.append(fact)
    return facts, fails


@dataclass(frozen=True)
class ReplayDecision:
    """What :func:`replay_gate` decided.

    Attributes
    ----------
    default : str
        The path the ``default`` alias should hold (a key of the scores).
    promote : bool
        Whether a challenger (the trained classifier) takes the ``champion`` alias.
    reason : str
        The comparisons behind both, with their numbers.
    champion : str or None
        Which challenger is promoted (None when none is).
    """

    default: str
    promote: bool
    reason: str
    champion: str | None = None


def _beats(scores: pd.DataFrame, a: str, b: str, margin: float, max_service_drop: float) -> tuple[bool, str]:
    """Is path ``a`` cheaper than ``b`` by ``margin`` at no worse CSL (within ``max_service_drop``)? And the facts."""
    ra, rb = scores.loc[a], scores.loc[b]
    cost_a, cost_b = float(ra["yearly_cost"]), float(rb["yearly_cost"])
    change = (cost_a - cost_b) / cost_b if cost_b > 0 else 0.0
    inventory = float(ra["ratio_csl"]) / float(rb["ratio_csl"]) if float(rb["ratio_csl"]) > 0 else np.nan
    fact = (
        f"{a} vs {b}: yearly cost {cost_a:,.0f} vs {cost_b:,.0f} ({change:+.1%}), "
        f"CSL {float(ra['csl']):.3f} vs {float(rb['csl']):.3f}, inventory at equal CSL {inventory:.3f}x"
    )
    service_ok = bool(float(ra["csl"]) >= float(rb["csl"]) - max_service_drop)  # NaN service fails
    return bool(-change >= margin and service_ok), fact


def replay_gate(
    scores: pd.DataFrame,
    margin: float,
    max_service_drop: float,
    incumbent: str = "packaged",
    fixed: tuple[str, ...] = ("best_single", "sbc_rule"),
    challenger: str | tuple[str, ...] = "classifier",
    singles: tuple[str, ...] | None = None,
) -> ReplayDecision:
    """The default path and the champion gate from a decision replay of every path. Pure.

    A path *beats* another when its replayed yearly cost (shortages priced as the labels price
    them) is lower by at least ``margin`` (relative) and its achieved CSL is at most
    ``max_service_drop`` lower (the rule of ``stockwise retrain``'s ``decide``). The default
    path is the ``incumbent`` (what ``recommend`` uses with nothing trained) unless a path of
    ``fixed`` beats it; of those that do, the cheapest. A ``challenger`` qualifies only when it
    beats the default path and every best single policy of ``singles`` (default ``fixed[0]``);
    of several that qualify (e.g. the classifier and the shortfall-tuned classifier), the
    cheapest is promoted (:attr:`ReplayDecision.champion`).

    Parameters
    ----------
    scores : pandas.DataFrame
        One row per path (index = path key) with ``yearly_cost``, ``csl`` and ``ratio_csl``
        (inventory over the best baseline's at equal CSL), e.g.
        :func:`pipelines.flows.evaluate.replay_selectors`.
    margin, max_service_drop : float
        As in ``stockwise retrain``.
    incumbent : str
    fixed : tuple of str
        Paths that may become the default; those absent from ``scores`` are skipped.
    challenger : str or tuple of str
        The path(s) that may take the ``champion`` alias; each must be in ``scores``.
    singles : tuple of str, optional
        The best single policies a challenger must beat besides the default path (absent ones
        skipped); default ``fixed[:1]``.

    Raises
    ------
    ValueError
        When ``scores`` lacks a needed column, the incumbent or a challenger.

    Examples
    --------
    >>> sc = pd.DataFrame({"yearly_cost": [100.0, 90.0, 120.0, 85.0], "csl": [0.95, 0.95, 0.93, 0.95],
    ...                    "ratio_csl": [1.0, 0.9, 0.8, 0.85]},
    ...                   index=["packaged", "best_single", "sbc_rule", "classifier"])
    >>> d = replay_gate(sc, 0.02, 0.005)
    >>> d.default, d.promote, d.champion
    ('best_single', True, 'classifier')
    """
    challengers = (challenger,) if isinstance(challenger, str) else tuple(challenger)
    _check_replay_scores(scores, (incumbent, *challengers))
    default, winners, facts = _default_of(scores, incumbent, fixed, margin, max_service_drop)
    singles = tuple(fixed[:1]) if singles is None else tuple(singles)
    targets = list(dict.fromkeys(t for t in (default, *singles) if t in scores.index))
    champion, said = _champion_of(scores, challengers, targets, margin, max_service_drop)
    head = f"default path {default!r}" + ("" if winners else f" (no path beats {incumbent!r})")
    rule = f"margin {margin:.1%} on yearly cost, CSL drop at most {max_service_drop}"
    reason = f"decision replay ({rule}): {head}; {said} | " + "; ".join(facts)
    return ReplayDecision(default=default, promote=champion is not None, reason=reason, champion=champion)


def _check_replay_scores(scores: pd.DataFrame, paths) -> None:
    """Raise a ``ValueError`` naming what ``scores`` lack: a needed column or a row of ``paths``."""
    need = {"yearly_cost", "csl", "ratio_csl"}
    if not need <= set(scores.columns):
        raise ValueError(f"replay scores lack column(s) {sorted(need - set(scores.columns))}")
    missing = [k for k in paths if k not in scores.index]
    if missing:
        raise ValueError(f"replay scores have no row for {missing}; paths present: {list(scores.index)}")


def _default_of(scores: pd.DataFrame, incumbent: str, fixed, margin: float, max_service_drop: float):
    """(default path, the fixed paths that beat the incumbent, the facts): the cheapest that beats it, else it."""
    facts, winners = [], []
    for path in (f for f in fixed if f in scores.index and f != incumbent):
        wins, fact = _beats(scores, path, incumbent, margin, max_service_drop)
        facts.append(fact + (" -> beats it" if wins else ""))
        winners += [path] if wins else []
    default = min(winners, key=lambda k: float(scores.loc[k, "yearly_cost"])) if winners else incumbent
    return default, winners, facts


def _champion_of(scores: pd.DataFrame, challengers, targets, margin: float, max_service_drop: float):
    """(the promoted challenger or None, what is said of each): the cheapest that beats every target."""
    qualified, said = [], []
    for c in challengers:
        verdicts = [_beats(scores, c, t, margin, max_service_drop) for t in targets]
        ok = all(w for w, _ in verdicts)
        qualified += [c] if ok else []
        said.append((c, ok, "; ".join(f for _, f in verdicts)))
    champion = min(qualified, key=lambda k: float(scores.loc[k, "yearly_cost"])) if qualified else None
    text = "; ".join(
        f"{c} {'promoted' if c == champion else 'qualifies, not the cheapest' if ok else 'not promoted'}: {f}"
        for c, ok, f in said
    )
    return champion, text
