"""Per segment, the forecaster and error family of the buffer, chosen by held-out service at an earlier origin.

Issue 12, item 2: no one family sizes every data set well. On carparts the default AutoETS +
calibrated normal holds 1.01x the best baseline's stock; CrostonSBA + negative binomial does
better there but worse on the demo's intermittent items. So the choice is made from the data,
as :func:`policy_selector.service_target.backtest_target` measures a target's shortfall: size every
option at an origin ``periods`` before the last date, replay each on the actual demand of the
periods that followed (:func:`policy_selector.decision_eval.replay`, as ``stockwise evaluate``
counts service), and per segment (SBC class x history band) keep the option whose replayed
service reaches the segment's target (within :data:`TOLERANCE`) at the least inventory value;
when none does, the one serving best. Segments with fewer than :data:`MIN_ITEMS` items with
demand after the earlier origin take the choice of all items pooled (the reason says so).

The options keep the default candidate's policy type (so order costs and batches behave as
before) and vary the forecaster (the default's, CrostonSBA, TSB) and the error family
(calibrated normal, empirical, negative binomial / best calibrated count family). Only items
the default path gives its default candidate are re-sized; a trained selector is left alone.

Replay correction (``SelectorConfig.replay_correction``, ``sparse``: intermittent and lumpy segments;
its decisions in :mod:`policy_selector.replay_correction`): the replay measures what the calibrated error
model cannot, its coverage of the windows *after* the backtest. Such a segment whose chosen option
replays more than :data:`TOLERANCE` under its target takes that option sized for a smaller shortfall
``f (1 - target)``, the first ``f`` of :data:`CORRECTION_FACTORS` whose replay meets the target (retail
proxy: intermittent items replayed 0.911 for 0.95, corrected to 0.944 at level 0.99 for +48 % of their
stock; docs/benchmarks/proxies.md). With ``sparse_both`` (the default) / ``all_both`` also down: a
segment whose chosen option replays more than :data:`TOLERANCE` *over* its target is sized for a larger
shortfall, the largest of :data:`DOWN_FACTORS` whose replay still serves the target plus :data:`TOLERANCE`
(the replay that picks a segment for being high also judges the factor; carparts' lumpy segment, replayed
0.982 for 0.95, no longer clears that bar: docs/methods/sizing.md).
"""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimization import PolicyType, r_s_policy
from policy_selector.candidates import Candidate, CandidateSpace, Distribution, shortfall_variant
from policy_selector.config import SelectorConfig
from policy_selector.context import CutoffData, prepare_cutoff, wide_panel
from policy_selector.decision_eval import Z_GRID, replay, textbook_levels
from policy_selector.economics import periods_per_year
from policy_selector.features import SBC_CODES, build_features
from policy_selector.replay_correction import (
    CORRECTION_FACTORS,
    DOWN_FACTORS,
    TOLERANCE,
    correction,
    down_bar_met,
    side,
)
from policy_selector.selector import FixedSelector, Selection
from policy_selector.sizing import size_candidates

__all__ = [
    "CORRECTION_FACTORS",
    "DOWN_FACTORS",
    "MARGIN",
    "MIN_ITEMS",
    "RULES",
    "allowed_options",
    "TOLERANCE",
    "SizingChoice",
    "SizingChoiceSelector",
    "choose_sizing",
    "history_band",
    "segment_labels",
    "with_sizing_choice",
    "sizing_options",
]

logger = logging.getLogger(__name__)

#: Items with demand after the earlier origin a segment needs for its own choice (else the pooled one).
MIN_ITEMS = 30
#: How a segment's option is chosen from the replay. ``yardstick`` (default): among the options serving
#: no more than :data:`TOLERANCE` below the default's service or the target (the lower), the least
#: value relative to the textbook formula's frontier at the same replayed service (``ratio``;
#: ``stockwise evaluate``'s headline), if it is :data:`MARGIN` below the default's. ``target``: the
#: least value among the options whose replayed service reaches the target less :data:`TOLERANCE`,
#: else the least value within :data:`TOLERANCE` of the best served.
RULES = ("yardstick", "target")
#: Rule ``yardstick`` leaves the default unless an option holds this share less stock than it for its
#: service: one replay of under a year on a few dozen items moves the ratio by a few per cent (the
#: demo's lumpy and smooth segments: 1-2 % apart at the earlier origin, the other way round after).
MARGIN = 0.05
#: Forecasters (besides the default's) and families an option combines.
_FORECASTERS = ("CrostonSBA", "TSB")
_FAMILIES = (Distribution.NORMAL, Distribution.EMPIRICAL, Distribution.NEGBIN)
_SHORT = {"AutoETS": "ets", "CrostonSBA": "sba", "TSB": "tsb", "ADIDA": "adida", "IMAPA": "imapa"}
_SBC_NAMES = {v: k for k, v in SBC_CODES.items()}
_INTERMITTENT = ("intermittent", "lumpy")
_POLICY = {PolicyType.S_Q: "sq", PolicyType.R_S: "rs", PolicyType.R_S_S: "rss", PolicyType.BASE_STOCK: "basestock"}


def sizing_options(default: Candidate) -> tuple[Candidate, ...]:
    """The default candidate first, then its policy with every other forecaster x family."""
    out = [default]
    for fc in dict.fromkeys((default.forecaster, *_FORECASTERS)):
        for fam in _FAMILIES:
            if (fc, fam) == (default.forecaster, default.distribution):
                continue
            name = f"{_SHORT.get(fc, fc.lower())}_{_POLICY.get(default.policy, default.policy.value)}_{fam.value}"
            out.append(Candidate(name, fc, fam, default.policy))
    return tuple(out)


def history_band(observed: np.ndarray, per_year: float) -> np.ndarray:
    """``short`` (under two years of observed periods: few backtest windows of its own) or ``long``."""
    return np.where(np.asarray(observed) < 2 * per_year, "short", "long").astype(object)


def segment_labels(features: pd.DataFrame, per_year: float) -> pd.Series:
    """``sbc_class|band`` per item from :func:`policy_selector.features.build_features` (index: unique_id)."""
    sbc = features["sbc_code"].map(_SBC_NAMES).fillna("no_demand")
    band = history_band(features["n_periods"].to_numpy(), per_year)
    return pd.Series([f"{a}|{b}" for a, b in zip(sbc, band)], index=features.index, dtype=object)


@dataclass(frozen=True)
class SizingChoice:
    """Chosen option per segment and the evidence.

    Attributes
    ----------
    origin : pandas.Timestamp or None
        Last period the earlier sizing saw (None: not run, see ``reason``).
    periods : int
    chosen : dict of str -> str
        Segment (``sbc_class|band``) -> option name; segments not listed keep the default.
    table : pandas.DataFrame
        ``segment, option, items, sold, target, achieved, inventory_value, chosen, reason``:
        one row per segment (and ``all``) and option.
    reason : str or None
        Why no choice was made (every item keeps the default).
    corrections : dict of str -> (str, float)
        Corrected option name (a shortfall variant, :func:`~policy_selector.candidates.shortfall_variant`) -> the option and its shortfall factor
        (``SelectorConfig.replay_correction``); its rows in ``table`` hold its replay.
    """

    origin: pd.Timestamp | None
    periods: int
    chosen: dict
    table: pd.DataFrame
    reason: str | None = None
    corrections: dict = dataclasses.field(default_factory=dict)

    def frame(self) -> pd.DataFrame:
        """``table`` with the origin, held-out periods and reason on every row (one row when not run)."""
        table = self.table
        if table.empty:
            table = pd.DataFrame([{"segment": "all", "items": 0}], columns=_COLUMNS)
        origin = str(self.origin.date()) if self.origin is not None else None
        return table.assign(origin=origin, periods=self.periods, why_not=self.reason)


_COLUMNS = ["segment", "option", "items", "sold", "target", "achieved", "inventory_value", "ratio", "chosen", "reason"]


def _pick(target: float, achieved: np.ndarray, value: np.ndarray, ratio: np.ndarray, rule: str) -> tuple[int, str]:
    """Index of the chosen option (0 = the default) and why (see :data:`RULES`)."""
    if not np.isfinite(achieved).any():
        return 0, "no replayed service: the default"
    if rule == "target":
        ok = np.isfinite(achieved) & (achieved >= target - TOLERANCE)
        if ok.any():
            k = int(np.flatnonzero(ok)[np.argmin(value[ok])])
            return k, f"least stock among {int(ok.sum())} option(s) reaching {target:.3f} - {TOLERANCE:g} when replayed"
        best = np.nanmax(achieved)
        near = np.isfinite(achieved) & (achieved >= best - TOLERANCE)
        k = int(np.flatnonzero(near)[np.argmin(value[near])])
        return k, (
            f"no option reached {target:.3f} - {TOLERANCE:g} when replayed: the least stock among "
            f"{int(near.sum())} within {TOLERANCE:g} of the best served ({best:.3f})"
        )
    if not np.isfinite(achieved[0]):
        return 0, "no replayed service for the default: the default"
    floor = min(achieved[0], target) - TOLERANCE
    ok = np.isfinite(achieved) & (achieved >= floor - 1e-12) & np.isfinite(ratio)
    if not np.isfinite(ratio[0]) or not ok.any():
        return 0, "the default: its replayed service lies outside the yardstick's frontier"
    k = int(np.flatnonzero(ok)[np.argmin(ratio[ok])])
    if ratio[k] > (1.0 - MARGIN) * ratio[0]:
        return 0, (
            f"the default ({ratio[0]:.3f}x the textbook yardstick's stock at equal replayed service): no option "
            f"serving at least {floor:.3f} holds {MARGIN:.0%} less for its service (best {ratio[k]:.3f}x)"
        )
    return k, (
        f"least stock for its service against the textbook yardstick ({ratio[k]:.3f}x; default "
        f"{ratio[0]:.3f}x) among {int(ok.sum())} option(s) serving at least {floor:.3f} when replayed"
    )


def _yardstick(history: np.ndarray, actual: np.ndarray, econ) -> dict:
    """The textbook formula mu H + z sigma sqrt(H) (H = L + R) at every z of the evaluation's grid, replayed."""
    levels = textbook_levels(history, econ.lead_time + econ.review_period, Z_GRID)
    return replay(
        actual,
        [
            r_s_policy(
                econ.review_period, levels, moq=econ.moq, order_multiple=econ.order_multiple, lost_sales=econ.lost_sales
            )
        ],
        econ,
    )


def _value_at(service: np.ndarray, value: np.ndarray, at: np.ndarray) -> np.ndarray:
    """A frontier's value at each service of ``at`` (cheapest point reaching it, linear between); NaN outside."""
    order = np.argsort(value)
    x, y = np.maximum.accumulate(service[order]), value[order]
    ok = np.isfinite(x)
    x, y = x[ok], y[ok]
    out = np.full(len(at), np.nan)
    if not x.size:
        return out
    inside = np.isfinite(at) & (at >= x[0] - 1e-12) & (at <= x[-1] + 1e-12)
    for i in np.flatnonzero(inside):
        j = min(int(np.searchsorted(x, at[i], side="left")), x.size - 1)
        out[i] = y[j] if (x[j] == at[i] or j == 0) else np.interp(at[i], x[j - 1 : j + 1], y[j - 1 : j + 1])
    return out


def _segment_service(out: dict, service: np.ndarray, sold_rows: np.ndarray, fill: bool) -> np.ndarray:
    """A segment's replayed service per option: served / demand for a fill-rate measure, else the mean over sold items."""
    if fill:
        with np.errstate(invalid="ignore", divide="ignore"):
            return out["served"][:, sold_rows].sum(axis=1) / out["demand"][:, sold_rows].sum(axis=1)
    return service[:, sold_rows].mean(axis=1)


def _evidence(
    data: CutoffData,
    options,
    policies,
    actual: np.ndarray,
    eligible: np.ndarray,
    labels: np.ndarray,
    measure: str | None = None,
    target: float | None = None,
    yard: dict | None = None,
):
    """Per segment and option: items, items with demand, mean target, replayed service, inventory value.

    An item's replayed service is its CSL, or its fill rate where that is its target's measure;
    a segment's is the mean over its items with demand (as ``stockwise evaluate`` counts CSL).
    With ``measure`` (a segment / portfolio target's) every item is judged on it, a fill rate
    as the segment's served / demand (as ``evaluate`` counts it), against ``target``.
    ``yard``: the textbook yardstick's replay (:func:`_yardstick`) when already made.
    """
    econ = data.economics
    out = replay(actual, [policies], econ)
    yard = _yardstick(data.history, actual, econ) if yard is None else yard
    fill = econ.service_type == "fill_rate" if measure is None else np.full(len(econ.ids), measure == "fill_rate")
    pooled_fill = measure == "fill_rate"
    service = np.where(fill[None, :], out["fill_rate"], out["csl"])
    yard_service = np.where(fill[None, :], yard["fill_rate"], yard["csl"])
    target = np.nan_to_num(econ.service_target, nan=0.5) if target is None else np.full(len(econ.ids), target)
    frames, counts = [], {}
    for seg in [*sorted(set(labels[eligible])), "all"]:
        rows = eligible & ((labels == seg) | (seg == "all"))
        sold_rows = rows & (out["demand"][0] > 0)
        sold = int(sold_rows.sum())
        tgt = float(target[sold_rows].mean()) if sold else np.nan
        achieved = _segment_service(out, service, sold_rows, pooled_fill) if sold else np.full(len(options), np.nan)
        counts[seg] = sold
        value = out["inventory_value"][:, rows].sum(axis=1)
        frontier = (
            _segment_service(yard, yard_service, sold_rows, pooled_fill),
            yard["inventory_value"][:, rows].sum(axis=1),
        )
        with np.errstate(invalid="ignore", divide="ignore"):
            ratio = value / _value_at(*frontier, achieved) if sold else np.full(len(options), np.nan)
        frames.append(
            pd.DataFrame(
                {
                    "segment": seg,
                    "option": [o.name for o in options],
                    "items": int(rows.sum()),
                    "sold": sold,
                    "target": tgt,
                    "achieved": achieved,
                    "inventory_value": value,
                    "ratio": ratio,
                }
            )
        )
    return pd.concat(frames, ignore_index=True), counts


def allowed_options(segment: str, options: tuple[Candidate, ...]) -> list[str]:
    """Options a segment may take: every one for intermittent and lumpy items (and the pool of all
    items), the default forecaster's only for smooth and erratic ones (Croston-type forecasters
    are meant for intermittent demand, and the default's may carry a season or trend that they
    drop; Syntetos, Boylan & Croston 2005)."""
    if segment == "all" or segment.split("|")[0] in _INTERMITTENT:
        return [o.name for o in options]
    return [o.name for o in options if o.forecaster == options[0].forecaster]


def _decide(table: pd.DataFrame, counts: dict, rule: str = "yardstick", allowed: dict | None = None):
    """Chosen option per segment (from the pool of all items under :data:`MIN_ITEMS` items with
    demand), among the segment's ``allowed`` options (default every option), and the reasons.

    Returns
    -------
    (dict, pandas.DataFrame)
        Segment -> option (without ``all``), and ``table`` with ``chosen`` and ``reason``.
    """
    allowed = allowed or {}
    chosen, reasons = {}, {}
    for seg in table["segment"].unique():
        small = seg != "all" and counts[seg] < MIN_ITEMS
        part = table[table["segment"] == ("all" if small else seg)]
        names = allowed.get(seg)
        if names is not None:
            part = part[part["option"].isin(names)]
        k, why = _pick(
            float(part["target"].iloc[0]),
            part["achieved"].to_numpy(),
            part["inventory_value"].to_numpy(),
            part["ratio"].to_numpy(),
            rule,
        )
        chosen[seg] = part["option"].iloc[k]
        reasons[seg] = f"pooled: {counts[seg]} items with demand < {MIN_ITEMS}; all items: {why}" if small else why
        if names is not None and len(names) < table["option"].nunique():
            reasons[seg] += f" (options: the default forecaster's, {len(names)})"
    table = table.assign(
        chosen=table["option"].to_numpy() == table["segment"].map(chosen).to_numpy(),
        reason=table["segment"].map(reasons),
    )
    return {s: o for s, o in chosen.items() if s != "all"}, table


def _correct(data, cfg, options, actual, eligible, labels, table, counts, chosen, scope, directions=("up",)) -> tuple:
    """Replay correction of the chosen option of every segment in ``scope``, up (:data:`CORRECTION_FACTORS`)
    and, if in ``directions``, down (:data:`DOWN_FACTORS`); a segment under :data:`MIN_ITEMS` items with demand
    takes the correction measured on all items, as its choice, but only the way its own replay misses too
    (the pooled row is mostly other segments' items).

    Returns
    -------
    (dict, pandas.DataFrame, dict)
        ``chosen`` with corrected names, ``table`` with the corrected options' rows (for the segments
        that take them and the segment measured), and the corrections.
    """
    by_name = {o.name: o for o in options}
    yard = _yardstick(data.history, actual, data.economics)

    def replay_option(name: str, f: float) -> pd.DataFrame:
        cand = shortfall_variant(by_name[name], f)
        c = dataclasses.replace(cfg, space=CandidateSpace((cand,)))
        sized = size_candidates(data, c).policies
        return _evidence(data, (cand,), sized, actual, eligible, labels, yard=yard)[0]  # item targets only

    found, keys, out, why = {}, {}, dict(chosen), {}
    for seg, name in chosen.items():
        ev = "all" if counts[seg] < MIN_ITEMS else seg
        dirs = directions if ev == seg else tuple(d for d in directions if d == side(table, seg, name))
        if seg not in scope or not dirs:
            continue  # a small segment takes the pooled correction only the way its own replay misses too
        key = (ev, name, dirs)
        if key not in found:
            part = table[(table["segment"] == ev) & (table["option"] == name)].iloc[0]
            found[key] = correction(part, lambda f, name=name: replay_option(name, f), dirs)
        if found[key] is not None and (ev == seg or "down" not in dirs or down_bar_met(found[key][1], seg)):
            keys[seg] = key
            out[seg], why[seg] = shortfall_variant(by_name[name], found[key][0]).name, found[key][2]
    table = _with_corrections(table, found, out, why, by_name)
    corrections = {out[s]: (chosen[s], found[keys[s]][0]) for s in why}
    return out, table, corrections


def _with_corrections(table, found, out, why, by_name) -> pd.DataFrame:
    """``table`` with the corrected options' rows (the segment measured and those taking them), ``chosen``
    after the corrections and their reasons appended."""
    final = {**out, "all": table.loc[(table["segment"] == "all") & table["chosen"], "option"].iloc[0]}
    rows = []
    for (ev, name, _), hit in found.items():
        if hit is not None:
            takers = {ev} | {s for s, o in out.items() if o == shortfall_variant(by_name[name], hit[0]).name}
            rows.append(hit[1][hit[1]["segment"].isin(takers)])
    reasons = table.drop_duplicates("segment").set_index("segment")["reason"]
    # two segments may take the same corrected option (same option and factor): one row per segment
    table = pd.concat([table, *rows], ignore_index=True).drop_duplicates(["segment", "option"])
    return table.assign(
        chosen=table["option"].to_numpy() == table["segment"].map(final).to_numpy(),
        reason=table["segment"].map(reasons) + table["segment"].map(lambda g: why.get(g, "")),
    )


def _no_choice(periods: int, reason: str) -> SizingChoice:
    return SizingChoice(None, periods, {}, pd.DataFrame(columns=_COLUMNS), reason)


def choose_sizing(
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    default: Candidate,
    periods: int | None = None,
    rule: str = "yardstick",
    measure: str | None = None,
    target: float | None = None,
) -> SizingChoice:
    """Choose each segment's option (:func:`sizing_options` of ``default``) at an earlier origin.

    Parameters
    ----------
    periods : int, optional
        Held-out periods after the earlier origin; default one year, at most a quarter of the history.
    rule : {"yardstick", "target"}, default "yardstick"
        How a segment's option is chosen (:data:`RULES`).
    measure, target : optional
        A segment / portfolio target's measure (``csl`` / ``fill_rate``) and level: every item is
        judged on that measure (a segment's fill rate as served / demand) against that target,
        instead of its own per-item target; None: each item's own. With either, no replay
        correction (the target's own backtest re-levels).

    With ``config.replay_correction`` (item targets), a segment whose chosen option replays more
    than :data:`TOLERANCE` under its target takes that option sized for a smaller shortfall
    (:data:`CORRECTION_FACTORS`, named as :func:`~policy_selector.candidates.shortfall_variant`;
    ``corrections`` and the reason say by how much and at what stock); with ``*_both`` one replaying
    more than :data:`TOLERANCE` over it takes a larger shortfall (:data:`DOWN_FACTORS`).

    Returns
    -------
    SizingChoice
        With ``reason`` and no choice when the history is too short for an earlier origin with
        its own forecast backtest, or no item had demand after it.
    """
    if rule not in RULES:
        raise ValueError(f"unknown sizing-choice rule {rule!r}; use one of {list(RULES)}")
    dates = np.sort(pd.to_datetime(demand["ds"]).unique())
    periods = periods or int(min(round(periods_per_year(config.freq)), len(dates) // 4))
    if periods < 1 or len(dates) <= periods:
        return _no_choice(periods, f"{len(dates)} periods of history leave none before an earlier origin")
    origin = pd.Timestamp(dates[-periods - 1])
    options = sizing_options(default)
    cfg = dataclasses.replace(config, space=CandidateSpace(options))
    data = prepare_cutoff(demand, items, origin, cfg)
    if data.cv.empty:
        return _no_choice(periods, f"no series has history for a forecast backtest before {origin.date()}")
    wide = wide_panel(demand).reindex(index=data.ids)
    actual = wide.loc[:, wide.columns > origin].iloc[:, :periods].fillna(0.0).to_numpy(float)
    sized = size_candidates(data, cfg)
    labels = segment_labels(build_features(data, config.season_length), data.economics.periods_per_year)
    labels = labels.reindex(data.ids).to_numpy(dtype=object)
    eligible = (data.economics.service_type != "cost") & (np.nansum(data.history, axis=1) > 0)
    table, counts = _evidence(data, options, sized.policies, actual, eligible, labels, measure, target)
    if counts.get("all", 0) == 0:
        return _no_choice(periods, f"no item with a target had demand in the {periods} periods after {origin.date()}")
    allowed = {seg: allowed_options(seg, options) for seg in table["segment"].unique()}
    chosen, table = _decide(table, counts, rule, allowed)
    corrections = {}
    # a segment / portfolio target re-levels in its own replay (service_target.backtest_target): not twice
    mode = config.replay_correction
    if mode != "off" and measure is None and target is None:
        scope = {s for s in chosen if mode.startswith("all") or s.split("|")[0] in _INTERMITTENT}
        directions = ("up", "down") if mode.endswith("_both") else ("up",)
        chosen, table, corrections = _correct(
            data, cfg, options, actual, eligible, labels, table, counts, chosen, scope, directions
        )
    return SizingChoice(origin, periods, chosen, table[_COLUMNS], corrections=corrections)


class SizingChoiceSelector:
    """The default path with each segment's chosen option in place of the default candidate.

    Wraps a fitted :class:`FixedSelector`; items it gives another candidate (no demand:
    ``no_stock``) keep it. ``candidates_`` adds the options, so use it with
    :meth:`config_for`'s candidate space.
    """

    def __init__(self, base: FixedSelector, choice: SizingChoice, options: tuple[Candidate, ...], per_year: float):
        self.base, self.choice, self.options, self.per_year = base, choice, options, per_year
        self.candidates_ = list(dict.fromkeys([*base.candidates_, *(o.name for o in options)]))
        self.chosen_ = base.chosen_

    def config_for(self, config: SelectorConfig) -> SelectorConfig:
        """``config`` with the options (corrected ones included: shortfall variants) added to its candidate space."""
        known = set(config.space.names)
        extra = tuple(o for o in self.options if o.name not in known)
        return dataclasses.replace(config, space=CandidateSpace(config.space.candidates + extra))

    def select(self, features: pd.DataFrame) -> Selection:
        base = self.base.select(features)
        seg = segment_labels(features, self.per_year)
        new = seg.map(self.choice.chosen).reindex(base.candidate.index)
        swap = (base.candidate == self.base.chosen_) & new.notna() & (new != base.candidate)
        cand, by, why = base.candidate.copy(), base.selected_by.copy(), base.reasons.copy()
        cand[swap] = new[swap]
        by[swap] = "sizing choice"
        reason = self.choice.table.drop_duplicates("segment").set_index("segment")["reason"]
        why[swap] = [
            f"{c}: chosen for segment {s} by replayed service after {self.choice.origin.date()} ({reason.get(s, '')})"
            for c, s in zip(cand[swap], seg.reindex(cand.index)[swap])
        ]
        proba = pd.DataFrame(0.0, index=cand.index, columns=self.candidates_)
        proba.values[np.arange(len(cand)), proba.columns.get_indexer(cand.to_numpy())] = 1.0
        return Selection(cand, proba, by, why)


def with_sizing_choice(
    selector,
    demand: pd.DataFrame,
    items: pd.DataFrame,
    config: SelectorConfig,
    rule: str = "yardstick",
    measure: str | None = None,
    target: float | None = None,
):
    """The default path with its sizing chosen per segment; any other selector unchanged.

    ``measure`` and ``target``: a segment / portfolio target's, the service the options are
    judged on (:func:`choose_sizing`).

    Returns
    -------
    (selector, SelectorConfig, SizingChoice or None)
        ``selector`` is a :class:`SizingChoiceSelector` and the config's space holds the options
        when the selector is the packaged default (None or a :class:`FixedSelector` with a
        candidate); otherwise the inputs and None.
    """
    if selector is None:
        selector = FixedSelector().fit(None, None, pd.DataFrame(columns=list(config.space.names)))
    if not isinstance(selector, FixedSelector) or selector.chosen_ is None:
        return selector, config, None
    default = config.space[selector.chosen_]
    if default.policy is PolicyType.NO_STOCK:
        return selector, config, None
    choice = choose_sizing(demand, items, config, default, rule=rule, measure=measure, target=target)
    logger.info(
        "sizing choice at %s (%d periods, %s):\n%s",
        choice.origin,
        choice.periods,
        choice.reason or "measured",
        choice.table.round(4).to_string(index=False),
    )
    used = set(choice.chosen.values())  # only the options some segment uses are sized at the real origin
    options = tuple(o for o in sizing_options(default) if o.name in used)
    by_name = {o.name: o for o in sizing_options(default)}
    options += tuple(
        shortfall_variant(by_name[base], f) for name, (base, f) in choice.corrections.items() if name in used
    )
    wrapped = SizingChoiceSelector(selector, choice, options, periods_per_year(config.freq))
    return wrapped, wrapped.config_for(config), choice
