"""Selectors: features -> candidate name. A LightGBM classifier and the SBC rule.

Both follow the scikit-learn estimator contract (``__init__`` stores, ``fit``
learns attributes ending in ``_``, ``predict`` before ``fit`` raises
:class:`sklearn.exceptions.NotFittedError`) and share one interface: ``fit(features,
labels, cost_matrix)`` and ``select(features) -> Selection``; ``predict``,
``predict_proba`` and ``explain`` are views of the same decision. Neither can
return a name outside the candidate set it was fitted with, and nothing is
written on the estimator after ``fit``.

There is one decision path: :meth:`PolicySelector.select` takes the candidate with
the least expected regret under the calibrated probabilities (the Bayes rule),
and its reasons explain that candidate. ``recommend``, ``train``'s evaluation and
``explain`` all go through it.

:class:`PolicySelector` is a cost-sensitive LightGBM multiclass model: sample
weights grow with what a wrong choice would cost on that item (mean minus
minimum of its cost row, normalised by the median), labels seen on fewer than
``min_class_size`` items are moved to their cheapest frequent candidate, and
probabilities are calibrated (sigmoid, 3-fold, :class:`sklearn.calibration.CalibratedClassifierCV`).
Rows whose core features are missing fall back to :class:`RuleSelector`; every
fallback is reported in ``selected_by``.

References
----------
Syntetos, A. A., Boylan, J. E. & Croston, J. D. (2005). On the categorization of
demand patterns. *JORS* 56, 495-503 (the rule).
Elkan, C. (2001). The foundations of cost-sensitive learning. *IJCAI* (example weights).
Ke, G. et al. (2017). LightGBM: a highly efficient gradient boosting decision tree. *NeurIPS*.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from lightgbm import LGBMClassifier, LGBMRegressor
from sklearn.base import BaseEstimator, clone
from sklearn.calibration import CalibratedClassifierCV
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from forecasting.characterise import ADI_CUTOFF, CV2_CUTOFF
from policy_selector.explain import render_reasons
from policy_selector.features import CORE_FEATURES, SBC_CODES

__all__ = [
    "PolicySelector",
    "RuleSelector",
    "FixedSelector",
    "Selection",
    "NotFittedError",
    "DEFAULT_RULE",
    "PACKAGED_DEFAULT",
]

_NOT_FITTED = "this %(name)s is not fitted yet; call fit(features, labels, cost_matrix) first"


@dataclass(frozen=True)
class Selection:
    """One decision per item and everything needed to show it.

    Attributes
    ----------
    candidate : pandas.Series of str
        Chosen candidate per unique_id (always one of the selector's ``candidates_``).
    proba : pandas.DataFrame, shape (n_items, n_candidates)
        Probability of each candidate being the cheapest (rows sum to 1; one-hot on rule rows).
    selected_by : pandas.Series of str
        "classifier", "rule" or "rule fallback: <why>".
    reasons : pandas.Series of str
        Plain sentences explaining ``candidate`` (each starts with the candidate's name).
    """

    candidate: pd.Series
    proba: pd.DataFrame
    selected_by: pd.Series
    reasons: pd.Series

    @property
    def confidence(self) -> pd.Series:
        """Probability the model gave the chosen candidate."""
        cols = self.proba.columns.get_indexer(self.candidate.to_numpy())
        return pd.Series(
            self.proba.to_numpy()[np.arange(len(cols)), cols], index=self.candidate.index, name="confidence"
        )


#: SBC class -> preferred candidates (first available wins): smooth/erratic -> ETS-based,
#: intermittent/lumpy -> Croston-SBA-based, no demand -> don't stock.
DEFAULT_RULE: dict[str, tuple[str, ...]] = {
    "smooth": ("ets_rs_normal", "ets_rs_empirical", "ets_sq_normal"),
    "erratic": ("ets_rs_normal", "ets_rs_empirical", "ets_sq_normal"),
    "intermittent": ("sba_rs_negbin", "sba_basestock_poisson", "tsb_rss_negbin"),
    "lumpy": ("sba_rs_negbin", "sba_basestock_poisson", "tsb_rss_negbin"),
    "no_demand": ("no_stock",),
}
_CODE_TO_SBC = {v: k for k, v in SBC_CODES.items()}


def _as_frame(features) -> pd.DataFrame:
    if not isinstance(features, pd.DataFrame):
        raise TypeError(f"features must be a pandas DataFrame indexed by unique_id, got {type(features).__name__}")
    return features


def _check_candidates(names) -> tuple[str, ...]:
    names = tuple(str(n) for n in names)
    if not names:
        raise ValueError("no candidates: cost_matrix needs one column per candidate")
    return names


class RuleSelector(BaseEstimator):
    """Syntetos-Boylan rule: the SBC class of an item picks its candidate.

    Parameters
    ----------
    mapping : dict of str -> tuple of str, optional
        SBC class -> candidates in order of preference; default :data:`DEFAULT_RULE`.
    period_name : str, default "period"
        Unit word for explanations ("week", "month").

    Examples
    --------
    >>> rule = RuleSelector().fit(None, None, pd.DataFrame(columns=["ets_rs_normal", "sba_rs_negbin"]))
    >>> rule.predict(pd.DataFrame({"adi": [1.0, 3.0], "cv2": [0.2, 0.2]}, index=["a", "b"])).tolist()
    ['ets_rs_normal', 'sba_rs_negbin']
    """

    def __init__(self, mapping: dict | None = None, period_name: str = "period"):
        self.mapping = mapping
        self.period_name = period_name

    def fit(self, features=None, labels=None, cost_matrix: pd.DataFrame | None = None) -> RuleSelector:
        """Resolve the rule against the candidate set (the columns of ``cost_matrix``).

        Raises
        ------
        ValueError
            When an SBC class has none of its preferred candidates in the set.
        """
        if cost_matrix is None:
            raise ValueError("RuleSelector.fit needs cost_matrix (its columns are the candidate set)")
        self.candidates_ = _check_candidates(cost_matrix.columns)
        mapping = self.mapping or DEFAULT_RULE
        resolved, first = {}, self.candidates_[0]
        for cls, prefs in mapping.items():
            found = [p for p in prefs if p in self.candidates_]
            resolved[cls] = found[0] if found else None
        smooth = resolved.get("smooth") or first
        self.choice_ = {
            cls: (name or (smooth if cls in ("smooth", "erratic") else resolved.get("intermittent") or smooth))
            for cls, name in resolved.items()
        }
        self.choice_.setdefault("no_demand", smooth)
        self.default_ = smooth
        return self

    def _check_fitted(self) -> None:
        check_is_fitted(self, "choice_", msg=_NOT_FITTED)

    def sbc_classes(self, features: pd.DataFrame) -> pd.Series:
        """SBC class per row from ``sbc_code``, else from ``adi``/``cv2``; 'unknown' when neither."""
        f = _as_frame(features)
        out = pd.Series("unknown", index=f.index, dtype=object)
        if "sbc_code" in f:
            out = f["sbc_code"].map(_CODE_TO_SBC).fillna("unknown").astype(object)
        if "adi" in f and "cv2" in f:
            adi, cv2 = f["adi"].to_numpy(float), f["cv2"].to_numpy(float)
            ok = (out == "unknown").to_numpy() & np.isfinite(adi)
            cls = np.where(
                adi >= ADI_CUTOFF,
                np.where(np.nan_to_num(cv2) >= CV2_CUTOFF, "lumpy", "intermittent"),
                np.where(np.nan_to_num(cv2) >= CV2_CUTOFF, "erratic", "smooth"),
            )
            out[ok] = cls[ok]
        return out

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Candidate per row (index kept)."""
        self._check_fitted()
        classes = self.sbc_classes(features)
        return classes.map(lambda c: self.choice_.get(c, self.default_)).rename("candidate")

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """One-hot probabilities over ``candidates_``."""
        pred = self.predict(features)
        return pd.DataFrame(
            (pred.to_numpy()[:, None] == np.asarray(self.candidates_)[None, :]).astype(float),
            index=pred.index,
            columns=list(self.candidates_),
        )

    def _reasons(self, f: pd.DataFrame, pred: pd.Series) -> pd.Series:
        classes = self.sbc_classes(f)
        out = []
        for uid in f.index:
            head = f"{pred[uid]} by the Syntetos-Boylan rule (class {classes[uid]})"
            if classes[uid] == "no_demand":
                out.append(f"{head}: no demand in the history")
                continue
            names = [c for c in ("adi", "cv2") if c in f and np.isfinite(f.at[uid, c])]
            out.append(render_reasons(head, names, [f.at[uid, c] for c in names], self.period_name))
        return pd.Series(out, index=f.index, name="reasons", dtype=object)

    def select(self, features: pd.DataFrame) -> Selection:
        """The rule's candidate per row with one-hot probabilities and its reasons."""
        f = _as_frame(features)
        pred = self.predict(f)
        return Selection(
            candidate=pred,
            proba=self.predict_proba(f),
            selected_by=pd.Series("rule", index=f.index, name="selected_by", dtype=object),
            reasons=self._reasons(f, pred),
        )

    def explain(self, features: pd.DataFrame) -> pd.Series:
        """'SBC rule, class X -> candidate: ...' with the ADI/CV² sentences."""
        return self.select(features).reasons


class PolicySelector(BaseEstimator):
    """Cost-sensitive, calibrated LightGBM multiclass selector with a rule fallback.

    Parameters
    ----------
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings.
    min_class_size : int, default 5
        Labels seen on fewer items move to the item's cheapest frequent candidate.
    calibrate : bool, default True
        Sigmoid calibration of the probabilities (3-fold).
    cost_weighting : bool, default True
        Sample weights from each item's cost spread (mean minus min of its cost row).
    decision : {"bayes", "argmax"}, default "bayes"
        ``argmax``: the most probable class. ``bayes``: the candidate with the least
        expected regret, ``argmin_c sum_k P(k | x) R[k, c]``, where ``R[k, c]`` is the
        mean regret of ``c`` (in units of the item's cost spread) on training items
        whose best candidate is ``k`` (Bayes decision rule; Elkan 2001).
    abstain : bool, default False
        With ``decision="bayes"``: keep the best single candidate of the training rows
        (``default_``) unless another candidate's expected regret is lower by more than
        ``margin_``, learned out of fold on the training rows (:meth:`_learn_margin`).
    abstain_folds : int, default 3
        Folds (grouped by item) for learning the margin.
    rule : RuleSelector, optional
        Fallback for rows with missing core features (default SBC rule).
    period_name : str, default "period"
        Unit word in explanations.
    random_state : int, default 0

    Attributes
    ----------
    candidates_ : tuple of str
        The candidate set (columns of the training cost matrix).
    classes_ : tuple of str
        Candidates the model can output (subset of ``candidates_``).
    feature_names_in_ : list of str
    default_ : str
        The best single candidate of the training rows (least summed cost).
    margin_ : float or None
        Expected-regret saving (units of the item's cost spread) needed to leave ``default_``;
        None without ``abstain``.

    Examples
    --------
    >>> sel = PolicySelector().fit(features, labels.label, labels.cost)   # doctest: +SKIP
    >>> sel.predict(new_features).isin(sel.candidates_).all()           # doctest: +SKIP
    True
    """

    def __init__(
        self,
        n_estimators: int = 200,
        learning_rate: float = 0.05,
        num_leaves: int = 15,
        min_child_samples: int = 10,
        min_class_size: int = 5,
        calibrate: bool = True,
        cost_weighting: bool = True,
        decision: str = "bayes",
        abstain: bool = False,
        abstain_folds: int = 3,
        rule: RuleSelector | None = None,
        period_name: str = "period",
        random_state: int = 0,
    ):
        self.n_estimators = n_estimators
        self.learning_rate = learning_rate
        self.num_leaves = num_leaves
        self.min_child_samples = min_child_samples
        self.min_class_size = min_class_size
        self.calibrate = calibrate
        self.cost_weighting = cost_weighting
        self.decision = decision
        self.abstain = abstain
        self.abstain_folds = abstain_folds
        self.rule = rule
        self.period_name = period_name
        self.random_state = random_state

    # -- fit ----------------------------------------------------------------------

    def _validate(self, features, labels, cost_matrix) -> tuple[pd.DataFrame, pd.Series, pd.DataFrame]:
        f = _as_frame(features)
        if not isinstance(cost_matrix, pd.DataFrame):
            raise TypeError("cost_matrix must be a DataFrame (items x candidates)")
        labels = pd.Series(labels)
        missing = f.index.difference(cost_matrix.index).union(f.index.difference(labels.index))
        if len(missing):
            raise ValueError(
                f"items {missing[:10].tolist()} lack a label or a cost row; align features, "
                "labels and cost_matrix on unique_id"
            )
        unknown = sorted(set(labels.reindex(f.index)) - set(cost_matrix.columns))
        if unknown:
            raise ValueError(f"labels {unknown} are not columns of cost_matrix (the candidate set)")
        cost = cost_matrix.reindex(f.index)
        if not np.isfinite(cost.to_numpy(float)).all():
            raise ValueError("cost_matrix has NaN/inf; score every candidate for every item")
        return f, labels.reindex(f.index), cost

    def _lgbm_params(self) -> dict:
        """The LightGBM settings the classifier and the per-candidate cost regressors share."""
        return dict(
            n_estimators=self.n_estimators,
            learning_rate=self.learning_rate,
            num_leaves=self.num_leaves,
            min_child_samples=self.min_child_samples,
            random_state=self.random_state,
            n_jobs=1,
            verbose=-1,
        )

    def _weights(self, cost: pd.DataFrame) -> np.ndarray:
        c = cost.to_numpy(float)
        spread = c.mean(axis=1) - c.min(axis=1)
        med = np.median(spread[spread > 0]) if (spread > 0).any() else 1.0
        return np.clip(spread / med, 0.05, 20.0) if self.cost_weighting else np.ones(len(c))

    def _regret_table(self, y: pd.Series, cost: pd.DataFrame, w: np.ndarray) -> np.ndarray:
        """R[k, c]: weighted mean regret of candidate c on items labelled k, in units of cost spread."""
        c = cost.to_numpy(float)
        spread = c.mean(axis=1) - c.min(axis=1)
        rel = (c - c.min(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)[:, None]
        table = np.zeros((len(self.classes_), c.shape[1]))
        for k, name in enumerate(self.classes_):
            rows = (y == name).to_numpy()
            table[k] = np.average(rel[rows], axis=0, weights=w[rows])
        return table

    def _fit_regressors(self, X: np.ndarray, cost: pd.DataFrame, w: np.ndarray) -> list:
        """One LightGBM regressor per candidate of its cost in units of the item's spread above the row minimum."""
        c = cost.to_numpy(float)
        spread = c.mean(axis=1) - c.min(axis=1)
        rel = np.clip((c - c.min(axis=1, keepdims=True)) / np.where(spread > 0, spread, 1.0)[:, None], 0, 10)
        out = []
        for k in range(c.shape[1]):
            reg = LGBMRegressor(**self._lgbm_params())
            out.append(reg.fit(X, rel[:, k], sample_weight=w))
        return out

    def _relabel(self, labels: pd.Series, cost: pd.DataFrame) -> pd.Series:
        counts = labels.value_counts()
        frequent = [c for c in cost.columns if counts.get(c, 0) >= self.min_class_size]
        if not frequent:
            frequent = [counts.index[0]]
        rare = ~labels.isin(frequent)
        out = labels.copy()
        if rare.any():
            sub = cost.loc[rare, frequent]
            out[rare] = sub.columns[sub.to_numpy(float).argmin(axis=1)]
        return out

    def fit(self, features: pd.DataFrame, labels: pd.Series, cost_matrix: pd.DataFrame) -> PolicySelector:
        """Learn features -> cheapest candidate.

        Parameters
        ----------
        features : pandas.DataFrame, shape (n_items, n_features), index unique_id
        labels : pandas.Series of str
            Best candidate per item (e.g. ``LabelSet.label``).
        cost_matrix : pandas.DataFrame, shape (n_items, n_candidates)
            Its columns define the candidate set; rows weight the items.

        Returns
        -------
        PolicySelector

        Raises
        ------
        ValueError
            Misaligned inputs, labels outside the candidate set, non-finite costs.
        """
        f, labels, cost = self._validate(features, labels, cost_matrix)
        self.candidates_ = _check_candidates(cost.columns)
        self.rule_ = (self.rule or RuleSelector(period_name=self.period_name)).fit(None, None, cost)
        self.feature_names_in_ = list(f.columns)
        y = self._relabel(labels, cost)
        self.classes_ = tuple(c for c in self.candidates_ if c in set(y))
        self.default_ = str(cost.sum().idxmin())
        self.margin_ = None
        self.bands_ = {
            c: tuple(np.nanquantile(f[c], [1 / 3, 2 / 3]))
            for c in ("unit_cost", "value_per_year")
            if c in f and f[c].notna().any()
        }
        if len(self.classes_) == 1:
            self.model_, self.booster_, self.regret_table_, self.regressors_ = None, None, None, None
            return self
        base = LGBMClassifier(**self._lgbm_params())
        X, w = f.to_numpy(float), self._weights(cost)
        if self.decision not in ("bayes", "argmax", "regression"):
            raise ValueError(f"decision must be 'bayes', 'argmax' or 'regression', got {self.decision!r}")
        self.regret_table_ = self._regret_table(y, cost, w)
        self.regressors_ = self._fit_regressors(X, cost, w) if self.decision == "regression" else None
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            if self.calibrate and y.value_counts().min() >= 3:
                model = CalibratedClassifierCV(base, method="sigmoid", cv=3, ensemble=False)
                model.fit(X, y.to_numpy(), sample_weight=w)
                self.booster_ = model.calibrated_classifiers_[0].estimator.booster_
            else:
                model = base.fit(X, y.to_numpy(), sample_weight=w)
                self.booster_ = model.booster_
        self.model_ = model
        self._model_classes = [str(c) for c in model.classes_]
        if self.abstain and self.decision == "bayes":
            self.margin_ = self._learn_margin(f, labels, cost)
        return self

    def _learn_margin(self, f: pd.DataFrame, labels: pd.Series, cost: pd.DataFrame) -> float:
        """The expected-regret saving above which leaving the default candidate paid off out of fold.

        Folds grouped by item (rows ``item@loc|cutoff`` of one item stay together). Each fold's
        model ranks the held-out rows by the saving ``s`` it predicts over its own default; the
        margin keeps the switches of largest ``s`` whose summed realised gain (cost of the
        default minus cost of the switch, on the held-out cost rows) is largest. 0 (the plain
        Bayes rule) when there are too few items to fold.
        """
        from sklearn.model_selection import GroupKFold

        groups = f.index.astype(str).str.rsplit("|", n=1).str[0].str.split("@").str[0]
        n_splits = min(self.abstain_folds, groups.nunique())
        if n_splits < 2:
            return 0.0
        saving, gain = [], []
        for tr, te in GroupKFold(n_splits=n_splits).split(f, groups=groups):
            fold = clone(self).set_params(abstain=False).fit(f.iloc[tr], labels.iloc[tr], cost.iloc[tr])
            expected, use = fold._expected_regret(f.iloc[te])
            if expected is None:
                continue
            d = list(fold.candidates_).index(fold.default_)
            best = expected.argmin(axis=1)
            c = cost.iloc[te].to_numpy(float)[use]
            rows = np.arange(len(best))
            saving.append(expected[:, d] - expected[rows, best])
            gain.append(c[:, d] - c[rows, best])
        if not saving:
            return 0.0
        s, g = np.concatenate(saving), np.concatenate(gain)
        order = np.argsort(-s, kind="stable")
        total = np.concatenate([[0.0], np.cumsum(g[order])])
        k = int(total.argmax())  # the k largest savings switch
        if k == 0:
            return float(np.inf)
        return float(s[order][k]) if k < len(s) else 0.0

    def _expected_regret(self, f: pd.DataFrame) -> tuple[np.ndarray | None, np.ndarray]:
        """(expected regret of every candidate on the classifier rows, which rows those are)."""
        proba, selected_by = self._proba(f)
        use = (selected_by == "classifier").to_numpy()
        if getattr(self, "regret_table_", None) is None or not use.any():
            return None, use
        return proba[list(self.classes_)].to_numpy()[use] @ self.regret_table_, use

    # -- decide -----------------------------------------------------------------

    def _check_fitted(self) -> None:
        check_is_fitted(self, "candidates_", msg=_NOT_FITTED)

    def _fallback_reason(self, f: pd.DataFrame) -> pd.Series:
        """Why a row cannot use the classifier ('' when it can)."""
        absent = [c for c in CORE_FEATURES if c in self.feature_names_in_ and c not in f.columns]
        reason = pd.Series("", index=f.index, dtype=object)
        if absent:
            reason[:] = f"rule fallback: feature column(s) {absent} missing"
            return reason
        core = [c for c in CORE_FEATURES if c in self.feature_names_in_]
        nan = f[core].isna()
        for uid in f.index[nan.any(axis=1)]:
            reason[uid] = f"rule fallback: {', '.join(nan.columns[nan.loc[uid]])} unknown"
        return reason

    def _matrix(self, f: pd.DataFrame) -> np.ndarray:
        return f.reindex(columns=self.feature_names_in_).to_numpy(float)

    def _proba(self, f: pd.DataFrame) -> tuple[pd.DataFrame, pd.Series]:
        """(probabilities over ``candidates_``, selected_by) -- nothing is stored."""
        out = pd.DataFrame(0.0, index=f.index, columns=list(self.candidates_))
        reason = self._fallback_reason(f)
        use = (reason == "").to_numpy()
        if use.any():
            if self.model_ is None:
                out.loc[use, self.classes_[0]] = 1.0
            else:
                proba = self.model_.predict_proba(self._matrix(f[use]))
                out.loc[f.index[use], self._model_classes] = proba
        if (~use).any():
            out.loc[~use] = self.rule_.predict_proba(f[~use]).reindex(columns=out.columns, fill_value=0.0).to_numpy()
        return out, reason.where(reason != "", "classifier").rename("selected_by")

    def _decide(self, f: pd.DataFrame) -> tuple[pd.Series, pd.DataFrame, pd.Series]:
        """(candidate, proba, selected_by): least expected regret on classifier rows, the rule elsewhere."""
        self._check_fitted()
        proba, selected_by = self._proba(f)
        pick = proba.to_numpy().argmax(axis=1)
        model_rows = (selected_by == "classifier").to_numpy()
        # models pickled before the Bayes rule existed have no `decision`: they used argmax
        decision = getattr(self, "decision", "argmax")
        if decision == "bayes" and getattr(self, "regret_table_", None) is not None and model_rows.any():
            expected = proba[list(self.classes_)].to_numpy()[model_rows] @ self.regret_table_
            best = expected.argmin(axis=1)
            margin = getattr(self, "margin_", None)
            if margin is not None:  # abstain: keep the default unless the saving clears the margin
                d = list(self.candidates_).index(self.default_)
                best = np.where(expected[:, d] - expected[np.arange(len(best)), best] > margin, best, d)
            pick[model_rows] = best
        if decision == "regression" and getattr(self, "regressors_", None) and model_rows.any():
            X = self._matrix(f[model_rows])
            pick[model_rows] = np.column_stack([r.predict(X) for r in self.regressors_]).argmin(axis=1)
        candidate = pd.Series(np.asarray(proba.columns)[pick], index=proba.index, name="candidate")
        return candidate, proba, selected_by

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """Calibrated probability of each candidate being the cheapest (rows sum to 1).

        Rule-fallback rows get a one-hot row on the rule's choice. The chosen candidate is
        *not* the argmax of these probabilities under the Bayes rule: use :meth:`select`.
        """
        self._check_fitted()
        return self._proba(_as_frame(features))[0]

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Chosen candidate per row (always one of ``candidates_``): ``select(features).candidate``
        without the explanations."""
        return self._decide(_as_frame(features))[0]

    def select(self, features: pd.DataFrame, top: int = 3) -> Selection:
        """The decision per row: candidate, probabilities, who decided, and why.

        Parameters
        ----------
        features : pandas.DataFrame, index unique_id
            Columns as in training (:func:`~policy_selector.features.build_features`).
        top : int, default 3
            Features named in each reason.

        Returns
        -------
        Selection
            ``reasons`` explain ``candidate`` (each starts with its name).

        Raises
        ------
        sklearn.exceptions.NotFittedError
            Before ``fit``.

        Examples
        --------
        >>> s = selector.select(features)                                   # doctest: +SKIP
        >>> s.reasons.str.startswith(s.candidate).all()                     # doctest: +SKIP
        True
        """
        f = _as_frame(features)
        candidate, proba, selected_by = self._decide(f)
        return Selection(
            candidate=candidate,
            proba=proba,
            selected_by=selected_by,
            reasons=self._reasons(f, candidate, selected_by, top),
        )

    def explain(self, features: pd.DataFrame, top: int = 3) -> pd.Series:
        """Plain-sentence reasons per row: ``select(features).reasons``."""
        return self.select(features, top).reasons

    def _reasons(self, f: pd.DataFrame, pred: pd.Series, selected: pd.Series, top: int) -> pd.Series:
        """Reasons for ``pred`` from the LightGBM feature contributions (TreeSHAP, ``pred_contrib``).

        The ``top`` features with the largest positive contribution to the chosen class are
        rendered with the item's values. Rule-fallback rows explain the rule and say why it was used.
        """
        out = pd.Series("", index=f.index, dtype=object, name="reasons")
        rule_rows = (selected != "classifier").to_numpy()
        if rule_rows.any():
            rule_text = self.rule_._reasons(f[rule_rows], pred[rule_rows])
            out[rule_rows] = [f"{r}; {s}" for r, s in zip(rule_text, selected[rule_rows])]
        rows = np.flatnonzero(~rule_rows)
        if len(rows) == 0:
            return out
        if self.booster_ is None:
            out.iloc[rows] = [f"{pred.iloc[i]}: the only candidate the training data supported" for i in rows]
            return out
        X = self._matrix(f.iloc[rows])
        chosen = self._contributions(X, pred.iloc[rows].to_numpy())
        texts = []
        for r, i in enumerate(rows):
            order = [j for j in np.argsort(-chosen[r])[:top] if chosen[r, j] > 0] or list(np.argsort(-chosen[r])[:1])
            names = [self.feature_names_in_[j] for j in order]
            texts.append(render_reasons(pred.iloc[i], names, [X[r, j] for j in order], self.period_name, self.bands_))
        out.iloc[rows] = texts
        return out

    def _contributions(self, X: np.ndarray, pred: np.ndarray) -> np.ndarray:
        """Per row, the feature contributions to the class of the chosen candidate, shape (n, n_features).

        A Bayes pick the model never outputs as a class is explained by its most probable class.
        """
        n_feat = len(self.feature_names_in_)
        if getattr(self, "decision", "") == "regression" and getattr(self, "regressors_", None):
            # the chosen candidate's cost model: features that lower its predicted cost speak for it
            out = np.zeros((len(X), n_feat))
            for k, name in enumerate(self.candidates_):
                rows = pred == name
                if rows.any():
                    contrib = self.regressors_[k].booster_.predict(X[rows], pred_contrib=True)
                    out[rows] = -np.asarray(contrib)[:, :n_feat]
            return out
        contrib = np.asarray(self.booster_.predict(X, pred_contrib=True))
        k = len(self._model_classes)
        if k == 2:  # binary boosters explain the positive class only; the other gets the opposite sign
            contrib = np.concatenate([-contrib, contrib], axis=1)
        contrib = contrib.reshape(len(X), k, n_feat + 1)[:, :, :n_feat]
        top_class = self.model_.predict_proba(X).argmax(axis=1)
        cls_idx = np.array(
            [self._model_classes.index(p) if p in self._model_classes else top_class[r] for r, p in enumerate(pred)],
            dtype=int,
        )
        return contrib[np.arange(len(X)), cls_idx]


#: The packaged default policy, in order of preference (the first in the candidate set wins):
#: the best single policies of the selector study on carparts and the demo network, ranked by
#: their expected controllable cost relative to each data set's best, summed over both
#: (ets_sq_normal 1.039 + 1.000, tsb_rss_negbin 1.000 + 1.064; docs/methods/selector.md).
PACKAGED_DEFAULT: tuple[str, ...] = ("ets_sq_normal", "tsb_rss_negbin")


class FixedSelector(BaseEstimator):
    """One candidate for every item (the default path), the SBC rule only when none is available.

    Parameters
    ----------
    candidate : str or tuple of str, default :data:`PACKAGED_DEFAULT`
        The policy, or policies in order of preference (the first in the candidate set wins).
    rule : RuleSelector, optional
        Used only when no ``candidate`` is in the fitted candidate set (``selected_by`` says so).
    period_name : str, default "period"

    Attributes
    ----------
    chosen_ : str or None
        The candidate used (None: the rule).

    Examples
    --------
    >>> sel = FixedSelector("ets_rs_normal").fit(None, None, pd.DataFrame(columns=["ets_rs_normal", "no_stock"]))
    >>> sel.predict(pd.DataFrame({"adi": [1.0, 3.0]}, index=["a", "b"])).tolist()
    ['ets_rs_normal', 'ets_rs_normal']
    """

    def __init__(
        self,
        candidate: str | tuple[str, ...] = PACKAGED_DEFAULT,
        rule: RuleSelector | None = None,
        period_name: str = "period",
    ):
        self.candidate = candidate
        self.rule = rule
        self.period_name = period_name

    def fit(self, features=None, labels=None, cost_matrix: pd.DataFrame | None = None) -> FixedSelector:
        """Resolve ``candidate`` against the candidate set (the columns of ``cost_matrix``)."""
        if cost_matrix is None:
            raise ValueError("FixedSelector.fit needs cost_matrix (its columns are the candidate set)")
        self.candidates_ = _check_candidates(cost_matrix.columns)
        self.rule_ = (self.rule or RuleSelector(period_name=self.period_name)).fit(None, None, cost_matrix)
        prefs = (self.candidate,) if isinstance(self.candidate, str) else tuple(self.candidate)
        self.chosen_ = next((str(c) for c in prefs if str(c) in self.candidates_), None)
        return self

    def select(self, features: pd.DataFrame) -> Selection:
        """The fixed candidate per row; the rule (and why) when none is in the candidate set."""
        check_is_fitted(self, "candidates_", msg=_NOT_FITTED)
        f = _as_frame(features)
        if self.chosen_ is None:
            s = self.rule_.select(f)
            why = f"rule fallback: default {self.candidate!r} is not a candidate"
            return Selection(
                s.candidate, s.proba, pd.Series(why, index=f.index, name="selected_by"), s.reasons + f"; {why}"
            )
        cand = pd.Series(self.chosen_, index=f.index, name="candidate", dtype=object)
        proba = pd.DataFrame(0.0, index=f.index, columns=list(self.candidates_))
        proba[self.chosen_] = 1.0
        text = (
            f"{self.chosen_}: the default policy (the best single policy: lowest expected cost over all "
            "items in the selector study)"
        )
        selection = Selection(
            cand,
            proba,
            pd.Series("default", index=f.index, name="selected_by", dtype=object),
            pd.Series(text, index=f.index, name="reasons", dtype=object),
        )
        return self._dead_items_by_rule(f, selection)

    def _dead_items_by_rule(self, f: pd.DataFrame, selection: Selection) -> Selection:
        """Items without any demand in their history follow the rule (``no_stock``), not the default policy."""
        dead = (self.rule_.sbc_classes(f) == "no_demand").to_numpy()
        if not dead.any():
            return selection
        rule = self.rule_.select(f[dead])
        idx = f.index[dead]
        cand, proba = selection.candidate.copy(), selection.proba.copy()
        by, why = selection.selected_by.copy(), selection.reasons.copy()
        cand[idx] = rule.candidate
        proba.loc[idx] = rule.proba.reindex(columns=proba.columns, fill_value=0.0)
        by[idx] = "rule: no demand in the history"
        why[idx] = rule.reasons
        return Selection(cand, proba, by, why)

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Candidate per row."""
        return self.select(features).candidate

    def predict_proba(self, features: pd.DataFrame) -> pd.DataFrame:
        """One-hot on the fixed candidate."""
        return self.select(features).proba

    def explain(self, features: pd.DataFrame) -> pd.Series:
        """Why: the default policy."""
        return self.select(features).reasons
