"""Service tuned inside the candidates: each candidate's shortfall scale chosen per segment.

A candidate space with shortfall variants (:meth:`CandidateSpace.with_shortfall_scales`:
``tsb_rss_negbin``, ``tsb_rss_negbin_x0.5``, ``tsb_rss_negbin_x2``, ...) can be used two ways:

- the classifier chooses among all of them per item (the variants are more classes);
- :class:`ShortfallTuned`: each base candidate's scale is chosen **per segment** (SBC class x
  batch ordering, :func:`shortfall_segments`) on the training rows' expected cost, so every
  base candidate becomes one tuned candidate; the inner selector (a classifier, or the best
  single tuned candidate) chooses among the tuned candidates, and the item gets the base
  candidate's variant of its segment. A per-segment choice pools hundreds of rows where a
  per-item label rests on one window.

With ``tune=False`` the variants are dropped (the inner selector sees the base candidates only):
the space without variants, judged on the same labels.

:class:`ShortfallPaths` fits, on one cost matrix with variants, every decision path ``stockwise
train --shortfall-scales`` judges: the classifier over the base candidates (as without variants),
the tuned classifier, the tuned best single policy and the best single base policy.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator, clone
from sklearn.utils.validation import check_is_fitted

from policy_selector.candidates import variant_bases, variant_scale
from policy_selector.features import SBC_CODES
from policy_selector.selector import FixedSelector, PolicySelector, Selection

__all__ = ["ShortfallTuned", "ShortfallPaths", "shortfall_segments", "base_columns", "BATCH_COVER"]

#: An item whose economic order quantity covers at least this many periods orders in batches.
BATCH_COVER = 2.0
_CODE_TO_SBC = {v: k for k, v in SBC_CODES.items()}


def shortfall_segments(features: pd.DataFrame) -> pd.Series:
    """Segment per row: ``<SBC class>|batch`` or ``|unit`` (EOQ cover >= :data:`BATCH_COVER` periods).

    Examples
    --------
    >>> shortfall_segments(pd.DataFrame({"sbc_code": [0, 3], "eoq_cover": [0.5, 4.0]})).tolist()
    ['smooth|unit', 'lumpy|batch']
    """
    sbc = features["sbc_code"].map(_CODE_TO_SBC).fillna("unknown")
    batch = np.where(features.get("eoq_cover", pd.Series(0.0, index=features.index)) >= BATCH_COVER, "batch", "unit")
    return (sbc + "|" + batch).rename("segment")


def base_columns(names) -> list[str]:
    """The names of ``names`` that are no shortfall variant of another (:func:`variant_bases`), in order.

    Examples
    --------
    >>> base_columns(["a", "a_x2", "b"])
    ['a', 'b']
    """
    return [n for n, b in variant_bases(names).items() if n == b]


class ShortfallTuned(BaseEstimator):
    """Per base candidate, the shortfall variant of least training cost per segment; an inner selector
    chooses among the tuned candidates.

    Parameters
    ----------
    inner : estimator or "best_single", default PolicySelector()
        Chooses among the tuned base candidates (fitted on the tuned cost matrix and its argmin);
        ``"best_single"``: the tuned candidate of least summed training cost, for every item.
    tune : bool, default True
        False: ignore the variants (the inner selector sees the base candidates only).
    min_rows : int, default 30
        A segment with fewer training rows takes the base candidate's pooled choice (all rows).

    Attributes
    ----------
    candidates_ : tuple of str
        Every column of the training cost matrix (what ``select`` may return).
    tuning_ : dict of str -> dict of str -> str
        Base candidate -> segment -> chosen variant (a base candidate itself at scale 1).
    pooled_ : dict of str -> str
        Base candidate -> its variant of least cost over all training rows.
    """

    def __init__(self, inner=None, tune: bool = True, min_rows: int = 30):
        self.inner = inner
        self.tune = tune
        self.min_rows = min_rows

    def fit(self, features: pd.DataFrame, labels, cost_matrix: pd.DataFrame) -> ShortfallTuned:
        """Tune the scales on ``cost_matrix`` per segment of ``features``, then fit the inner selector.

        ``labels`` is ignored: the labels of the tuned candidates are the argmin of the tuned costs.
        """
        self.candidates_ = tuple(str(c) for c in cost_matrix.columns)
        base_of = variant_bases(self.candidates_)
        self.groups_ = {b: [n for n in self.candidates_ if base_of[n] == b] for b in dict.fromkeys(base_of.values())}
        if not self.tune:
            self.groups_ = {b: [b] for b in self.groups_}
        segments = shortfall_segments(features)
        self.pooled_ = {b: str(cost_matrix[g].sum().idxmin()) for b, g in self.groups_.items()}
        self.segment_rows_ = {str(k): int(v) for k, v in segments.reindex(cost_matrix.index).value_counts().items()}
        self.tuning_ = {b: self._tune(cost_matrix[g], segments, self.pooled_[b]) for b, g in self.groups_.items()}
        tuned = self._tuned_costs(cost_matrix, segments)
        if self.inner == "best_single":
            self.inner_ = FixedSelector(str(tuned.sum().idxmin())).fit(None, None, tuned)
        else:
            inner = PolicySelector() if self.inner is None else clone(self.inner)
            self.inner_ = inner.fit(features, tuned.idxmin(axis=1), tuned)
        return self

    def _tune(self, costs: pd.DataFrame, segments: pd.Series, pooled: str) -> dict[str, str]:
        sums = costs.groupby(segments.reindex(costs.index).to_numpy())
        size = sums.size()
        best = sums.sum().idxmin(axis=1)
        return {str(s): (str(best[s]) if size[s] >= self.min_rows else pooled) for s in best.index}

    def _variant(self, base: str, segments: pd.Series) -> np.ndarray:
        """Per row, the variant of ``base`` for the row's segment (the pooled one for unseen segments)."""
        table = self.tuning_[base]
        return segments.map(lambda s: table.get(s, self.pooled_[base])).to_numpy(dtype=object)

    def _tuned_costs(self, cost_matrix: pd.DataFrame, segments: pd.Series) -> pd.DataFrame:
        seg = segments.reindex(cost_matrix.index)
        out = {}
        for base in self.groups_:
            cols = cost_matrix.columns.get_indexer(self._variant(base, seg))
            out[base] = cost_matrix.to_numpy()[np.arange(len(cols)), cols]
        return pd.DataFrame(out, index=cost_matrix.index)

    def select(self, features: pd.DataFrame) -> Selection:
        """The inner selector's tuned candidate per row, as the variant of the row's segment."""
        check_is_fitted(self, "inner_")
        inner = self.inner_.select(features)
        segments = shortfall_segments(features)
        cand = inner.candidate.astype(object).copy()
        proba = pd.DataFrame(0.0, index=features.index, columns=list(self.candidates_))
        reasons = inner.reasons.astype(object).copy()
        rows = np.arange(len(features))
        for base in self.groups_:
            variant = self._variant(base, segments)
            cols = proba.columns.get_indexer(variant)
            vals = proba.to_numpy()
            vals[rows, cols] = inner.proba[base].to_numpy() if base in inner.proba else 0.0
            proba = pd.DataFrame(vals, index=proba.index, columns=proba.columns)
            chosen = (inner.candidate == base).to_numpy()
            mine = chosen & (variant != base)
            cand[mine] = variant[mine]
            reasons[mine] = [
                f"{v}{r[len(base) :]}; {self._why(base, v, s)}"
                for v, r, s in zip(variant[mine], reasons[mine], segments[mine])
            ]
            kept = chosen & (variant == base) & (len(self.groups_[base]) > 1)
            reasons[kept] = [f"{r}; {self._why(base, base, s)}" for r, s in zip(reasons[kept], segments[kept])]
        return Selection(cand.rename("candidate"), proba, inner.selected_by, reasons)

    def _why(self, base: str, variant: str, segment: str) -> str:
        """Why ``variant`` of ``base`` sizes items of ``segment``: its scale and the evidence."""
        scale = f"{variant_scale(variant):g}x the shortfall of the item's target" if variant != base else "its target"
        rows = self.segment_rows_.get(segment, 0)
        if segment in self.tuning_[base] and rows >= self.min_rows:
            where = f"in segment {segment} ({rows} training rows) that level cost least on the training windows"
        else:
            where = (
                f"segment {segment} has {rows} training rows (< {self.min_rows}): the level of least cost over "
                "all training rows"
            )
        return f"sized to {scale} (shortfall scale tuned per segment): {where}"

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Candidate per row."""
        return self.select(features).candidate

    def describe(self) -> str:
        """One line for the outputs: which inner path and that the scales are tuned per segment."""
        check_is_fitted(self, "inner_")
        chosen = getattr(self.inner_, "chosen_", None)
        what = f"best single policy {chosen!r}" if chosen is not None else "classifier"
        return f"{what}, shortfall scale tuned per segment ({len(self.tuning_)} base candidates)"


class ShortfallPaths(BaseEstimator):
    """Every decision path of a candidate space with shortfall variants, fitted on the same labels.

    ``stockwise train`` with ``shortfall_scales`` fits this wherever it fits a classifier (the
    study's folds, its held-out-time model, each gate origin, the final model), so the replay gate
    judges the tuned paths next to the plain ones, each as it could be known at its origin.

    Parameters
    ----------
    classifier : estimator, default PolicySelector()
        The classifier (cloned for the plain and the tuned path).
    min_rows : int, default 30
        :class:`ShortfallTuned`'s.

    Attributes
    ----------
    classifier_ : PolicySelector
        Fitted on the base candidates only (the cost matrix without its variants, labels its argmin):
        the classifier as trained without ``shortfall_scales``.
    tuned_ : ShortfallTuned
        The tuned classifier (inner: ``classifier``).
    tuned_single_ : ShortfallTuned
        The tuned best single policy (inner ``"best_single"``).
    best_single_ : str
        The base candidate of least summed cost (the best single policy without variants).
    candidates_ : tuple of str
        The plain classifier's (what :meth:`select` may return).
    """

    def __init__(self, classifier=None, min_rows: int = 30):
        self.classifier = classifier
        self.min_rows = min_rows

    def fit(self, features: pd.DataFrame, labels, cost_matrix: pd.DataFrame) -> ShortfallPaths:
        """Fit the four paths on ``cost_matrix`` (its variant columns are tuned, its base ones classified).

        Raises
        ------
        ValueError
            When ``cost_matrix`` holds no shortfall variant (nothing to tune).
        """
        base = base_columns(cost_matrix.columns)
        if len(base) == cost_matrix.shape[1]:
            raise ValueError(
                f"no shortfall variant among the candidates {list(map(str, cost_matrix.columns))}: nothing to tune "
                "(add variants with CandidateSpace.with_shortfall_scales / train's shortfall_scales)"
            )
        classifier = PolicySelector() if self.classifier is None else self.classifier
        plain = cost_matrix[base]
        self.classifier_ = clone(classifier).fit(features, plain.idxmin(axis=1), plain)
        self.tuned_ = ShortfallTuned(classifier, min_rows=self.min_rows).fit(features, labels, cost_matrix)
        self.tuned_single_ = ShortfallTuned("best_single", min_rows=self.min_rows).fit(features, labels, cost_matrix)
        self.best_single_ = str(plain.sum().idxmin())
        self.candidates_ = tuple(self.classifier_.candidates_)
        return self

    def select(self, features: pd.DataFrame) -> Selection:
        """The plain classifier's selection (the study's ``classifier``)."""
        check_is_fitted(self, "classifier_")
        return self.classifier_.select(features)

    def predict(self, features: pd.DataFrame) -> pd.Series:
        """Candidate per row (the plain classifier's)."""
        return self.select(features).candidate
