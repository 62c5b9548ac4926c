"""Everything known at a cutoff: history, backtest, forecasts and error models.

One :class:`CutoffData` is built per cutoff and shared by the features, the
sizing of candidates and the recommendation, so the (expensive) backtest runs
once. Nothing after the cutoff is ever read here: the no-leakage guarantee of
the selector rests on this module.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from forecasting import ErrorModel, ErrorModelConfig, ForecastConfig, Forecaster
from forecasting.characterise import sbc_class
from forecasting.config import freq_defaults
from policy_selector.candidates import Distribution
from policy_selector.config import SelectorConfig
from policy_selector.economics import Economics
from policy_selector.phased import SEASONAL_MODEL, seasonal_gate

__all__ = ["CutoffData", "prepare_cutoff", "wide_panel"]

# Count candidates ("negbin") get the error model's calibrated "auto" choice: negative binomial
# unless, recalibrated to the same held-out coverage, another family needs less stock for the
# segment (issue 12: an assumed negative binomial left lumpy items far below target).
_ERROR_FAMILIES = {Distribution.NORMAL: "normal", Distribution.EMPIRICAL: "empirical", Distribution.NEGBIN: "auto"}
#: The season-blind forecaster whose forecast and backtest :data:`SEASONAL_MODEL` replaces on the
#: series of :func:`policy_selector.phased.seasonal_gate` (issue 12: the default path's AutoETS runs
#: with season length 1 and cannot hold a 52-week season).
SEASONAL_BASE = "AutoETS"


def wide_panel(demand: pd.DataFrame) -> pd.DataFrame:
    """Long demand -> wide (series x periods), NaN where a series has no row.

    Raises
    ------
    ValueError
        Missing columns or repeated (unique_id, ds) rows.
    """
    missing = [c for c in ("unique_id", "ds", "y") if c not in demand.columns]
    if missing:
        raise ValueError(f"demand lacks column(s) {missing}; need unique_id, ds, y")
    keys = demand[["unique_id", "ds"]].astype({"unique_id": str})
    if keys.duplicated().any():
        dup = keys[keys.duplicated()].head(5).to_dict("records")
        raise ValueError(f"demand has repeated (unique_id, ds) rows, e.g. {dup}; aggregate them first")
    frame = pd.DataFrame(
        {"unique_id": keys["unique_id"], "ds": pd.to_datetime(demand["ds"]), "y": demand["y"].to_numpy(dtype=float)}
    )
    return frame.pivot(index="unique_id", columns="ds", values="y").sort_index()


@dataclass(frozen=True)
class CutoffData:
    """History and backtest of every series at one cutoff (see :func:`prepare_cutoff`).

    Attributes
    ----------
    cutoff : pandas.Timestamp
        Last period of the history.
    ids : ndarray of str
        Series with at least one observed period up to the cutoff (sorted).
    history : ndarray, shape (n_items, n_periods)
        Demand up to the cutoff; NaN before a series starts.
    economics : Economics
        Item economics aligned to ``ids``.
    cum_forecast : dict of str -> ndarray, shape (n_items, horizon)
        Cumulative point forecast after the cutoff per forecaster.
    cv : pandas.DataFrame
        Backtest table before the cutoff (may lack short series).
    error_models : dict of Distribution -> ErrorModel or None
    horizon : int
        Longest exposure available (max over items of L + R, L + 1).
    integral : bool
        Whether every observed demand is a whole number.
    fallbacks : pandas.DataFrame
        Counted fallbacks: ``unique_id, step, reason``.
    seasonal : pandas.DataFrame, optional
        :func:`~policy_selector.phased.seasonal_gate` per series, aligned to ``ids``; ``seasonal``
        is True where :data:`SEASONAL_MODEL` replaced :data:`SEASONAL_BASE` (forecast and backtest).
    window_step : pandas.Series, optional
        Periods between the backtest windows of each series in ``cv`` (index ``unique_id``): the
        config's ``step``, or :meth:`SelectorConfig.season_step` for the season-blind smooth series
        of :attr:`SelectorConfig.spread_season_blind`.
    """

    cutoff: pd.Timestamp
    ids: np.ndarray
    history: np.ndarray
    economics: Economics
    cum_forecast: dict
    cv: pd.DataFrame
    error_models: dict
    horizon: int
    integral: bool
    fallbacks: pd.DataFrame
    seasonal: pd.DataFrame | None = None
    window_step: pd.Series | None = None

    def forecaster_names(self, name: str) -> np.ndarray:
        """The model behind candidate forecaster ``name`` per item: :data:`SEASONAL_MODEL` where it
        replaced :data:`SEASONAL_BASE`, ``name`` elsewhere."""
        out = np.full(len(self.ids), name, dtype=object)
        if name == SEASONAL_BASE and self.seasonal is not None:
            out[self.seasonal["seasonal"].to_numpy(dtype=bool)] = SEASONAL_MODEL
        return out


def _horizon(econ: Economics) -> int:
    exposure = np.maximum(econ.lead_time + econ.review_period, econ.lead_time + 1)
    spread = np.ceil(2 * econ.lead_time_std)
    return int(max(np.max(exposure + spread, initial=1), 2))


def _long_enough(history_long, cfg: SelectorConfig, horizon: int) -> pd.Index:
    """Series with enough periods for ``cfg``'s backtest windows."""
    counts = history_long.groupby("unique_id").size()
    return counts.index[counts >= horizon + (cfg.n_windows - 1) * cfg.step + 1]


def _backtest(history_long, cfg: SelectorConfig, fc_cfg: ForecastConfig, horizon: int, spread=()) -> pd.DataFrame:
    """Rolling-origin backtest; an empty table when no series is long enough.

    The series in ``spread`` (ids long enough for them) get windows :meth:`SelectorConfig.season_step`
    apart, the others ``cfg.step`` apart: one backtest per group, rows in id order.
    """
    wide = replace(cfg, step=cfg.season_step(_season_length(cfg)))
    spread = _long_enough(history_long, wide, horizon).intersection(pd.Index(spread))  # too short: recent windows
    tables = []
    for group_cfg, ids in ((cfg, None), (wide, spread)):
        keep = _long_enough(history_long, group_cfg, horizon)
        keep = keep.difference(spread) if ids is None else keep.intersection(ids)
        if len(keep):
            part = history_long[history_long["unique_id"].isin(keep)]
            tables.append(_refit_cross_validation(Forecaster(fc_cfg), part, group_cfg, horizon, refit_cfg=cfg)[0])
    if not tables:
        return pd.DataFrame(columns=["unique_id", "ds", "cutoff", "y"])
    return tables[0] if len(tables) == 1 else _by_id(pd.concat(tables))


def _by_id(cv: pd.DataFrame) -> pd.DataFrame:
    """Backtest rows in statsforecast's (id) order."""
    return cv.sort_values("unique_id", kind="stable").reset_index(drop=True)


def _season_length(config: SelectorConfig) -> int:
    return config.seasonal_period or freq_defaults(config.freq).season_length


def _spread_candidates(long, segments: pd.Series, config: SelectorConfig, horizon: int) -> pd.Index:
    """Smooth series long enough for windows spread over a season (empty when the option is off, the
    forecasters model a season themselves (``season_length > 1``) or ``n_windows * step`` already spans
    the season); whether their forecaster models the season is decided afterwards (:func:`_respread`)."""
    wide = replace(config, step=config.season_step(_season_length(config)))
    if not config.spread_season_blind or config.season_length > 1 or wide.step == config.step:
        return pd.Index([], dtype=object)
    smooth = segments.index[segments.eq("smooth").to_numpy()]
    return _long_enough(long, wide, horizon).intersection(smooth)


def _respread(long, cv, gate, spread: pd.Index, config, fc_cfg, horizon: int) -> pd.DataFrame:
    """Backtest again, spread, the candidates that were held back for the seasonal swap (gated) and
    stayed season-blind (not swapped); their recent windows in ``cv`` are replaced."""
    again = spread.intersection(gate.loc[~gate["seasonal"].to_numpy(dtype=bool), "unique_id"])
    if len(again) == 0 or cv.empty:
        return cv
    spread_cv = _backtest(long[long["unique_id"].isin(again)], config, fc_cfg, horizon, spread=again)
    if spread_cv.empty:
        return cv
    return _by_id(pd.concat([cv[~cv["unique_id"].astype(str).isin(again)], spread_cv]))


def _window_steps(cv: pd.DataFrame, spread: pd.Index, config: SelectorConfig) -> pd.Series:
    ids = pd.Index(cv["unique_id"].astype(str).unique() if not cv.empty else [], name="unique_id")
    wide = config.season_step(_season_length(config))
    return pd.Series(np.where(ids.isin(spread), wide, config.step), index=ids, name="window_step")


def _refit_cross_validation(
    forecaster: Forecaster, part: pd.DataFrame, cfg: SelectorConfig, horizon: int, refit_cfg=None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``forecaster``'s cross-validation with each series' refit (:meth:`SelectorConfig.refit_per_series`
    of its periods before the first cutoff): one call per refit value, rows in statsforecast's
    (id) order; and the fallbacks of every call.

    ``refit_cfg`` (default ``cfg``) sets the threshold: the season-spread windows take the recent
    windows' (75 periods at the defaults) against the periods before their own first window, so AutoETS
    is fitted once where at least that much history precedes the first spread window, else at every
    window (their own threshold, 5 spans of 45 weeks, would refit every 2-3-year weekly series at every
    window: +40 % CPU on the demo). Measured against the recent windows' rule whole (fit once when 75
    periods precede the first *recent* window): the store proxy 1.02x vs 1.05x at equal CSL
    (docs/benchmarks/proxies.md).
    """
    refit_cfg = cfg if refit_cfg is None else refit_cfg
    counts = part.groupby("unique_id").size()
    first = counts - horizon - (cfg.n_windows - 1) * cfg.step  # periods before this backtest's first window
    refit = pd.Series(refit_cfg.refit_per_series(first), index=counts.index)
    tables, failed = [], []
    for every, ids in refit.groupby(refit).groups.items():
        tables.append(
            forecaster.cross_validation(
                part if refit.nunique() == 1 else part[part["unique_id"].isin(ids)],
                h=horizon,
                n_windows=cfg.n_windows,
                step=cfg.step,
                refit=True if every == 1 else int(every),
            )
        )
        failed.append(forecaster.fallbacks_)
    if len(tables) == 1:
        return tables[0], failed[0]
    # statsforecast returns the series in id order; keep it when the series were split by refit
    cv = pd.concat(tables).sort_values("unique_id", kind="stable").reset_index(drop=True)
    return cv, pd.concat([f for f in failed if len(f)] or failed[:1], ignore_index=True)


def _seasonal_swap(long, fc, cv, gate, models, config: SelectorConfig, horizon: int):
    """Replace :data:`SEASONAL_BASE`'s forecast and backtest by :data:`SEASONAL_MODEL`'s on the gated series
    where the seasonal model's backtest is the more accurate one.

    Only the gated series are fitted (the selector's backtest is most of the policy step's CPU).
    A smooth season is often tracked well enough by the level of a non-seasonal ETS over a short
    exposure, and an STL season estimated from two or three cycles carries their noise, so the
    swap is kept only where the mean absolute error of the cumulative forecast over the backtest
    horizon is lower with the seasonal model. Returns the two tables, the gate with ``seasonal``
    True only where the swap happened, and the seasonal model's counted fallbacks.
    """
    want = gate["seasonal"].to_numpy(dtype=bool) & (SEASONAL_BASE in models) & (not cv.empty)
    if want.any():
        want &= gate["unique_id"].isin(cv["unique_id"].unique()).to_numpy()
    gate = gate.assign(seasonal=False)
    none = pd.DataFrame(columns=["unique_id", "step", "reason"])
    if not want.any():
        return fc, cv, gate, none
    m = config.seasonal_period or freq_defaults(config.freq).season_length
    cfg = ForecastConfig(models=(SEASONAL_MODEL,), freq=config.freq, season_length=m, n_jobs=config.n_jobs)
    seasonal = Forecaster(cfg)
    part = long[long["unique_id"].isin(gate.loc[want, "unique_id"])]
    scv, scv_failed = _refit_cross_validation(seasonal, part, config, horizon)
    failed = [scv_failed]
    base_err, seas_err = _cumulative_mae(cv, SEASONAL_BASE), _cumulative_mae(scv, SEASONAL_MODEL)
    better = seas_err.lt(base_err.reindex(seas_err.index))
    note = [
        f"; backtest MAE over {horizon} periods {a:.1f} vs {b:.1f} ({SEASONAL_BASE})"
        for a, b in zip(seas_err, base_err.reindex(seas_err.index))
    ]
    gate = gate.set_index("unique_id")
    gate.loc[seas_err.index, "reason"] = gate.loc[seas_err.index, "reason"] + note
    gate.loc[better.index[better], "seasonal"] = True
    gate = gate.reset_index()
    keep = better.index[better]
    if len(keep):
        cv = _replace(cv, scv[scv["unique_id"].isin(keep)], ["unique_id", "ds", "cutoff"])
        fc = _replace(fc, seasonal.forecast(part[part["unique_id"].isin(keep)], h=horizon), ["unique_id", "ds"])
        failed.append(seasonal.fallbacks_)
    failed = pd.concat(failed, ignore_index=True)
    table = pd.DataFrame(
        {
            "unique_id": failed["unique_id"].astype(str),
            "step": "seasonal " + failed["stage"].astype(str),
            "reason": f"{SEASONAL_MODEL} failed, fallback used",
        }
    )
    return fc, cv, gate, table if len(table) else none


def _cumulative_mae(cv: pd.DataFrame, model: str) -> pd.Series:
    """Per series, mean over backtest windows of |actual - forecast| summed over the whole horizon."""
    err = (cv["y"] - cv[model]).groupby([cv["unique_id"].astype(str), cv["cutoff"]]).sum()
    return err.abs().groupby(level=0).mean()


def _replace(table: pd.DataFrame, seasonal: pd.DataFrame, keys: list) -> pd.DataFrame:
    """``table`` with its :data:`SEASONAL_BASE` column taken from ``seasonal``'s :data:`SEASONAL_MODEL` where given."""
    out = table.copy()
    lookup = seasonal.assign(unique_id=seasonal["unique_id"].astype(str)).set_index(keys)[SEASONAL_MODEL]
    where = pd.MultiIndex.from_frame(out[keys].astype({"unique_id": str}))
    values = lookup.reindex(where).to_numpy(dtype=float)
    hit = np.isfinite(values)
    out.loc[hit, SEASONAL_BASE] = values[hit]
    return out


def _error_models(
    cv: pd.DataFrame,
    models,
    cfg: SelectorConfig,
    segments: pd.Series,
    history: pd.DataFrame,
    phased: pd.Series | None = None,
    reference: dict | None = None,
) -> dict:
    """One :class:`~forecasting.ErrorModel` per candidate distribution; ``phased`` / ``reference`` as in
    :meth:`~forecasting.ErrorModel.fit` (the series swapped to :data:`SEASONAL_MODEL`)."""
    out: dict = {}
    for dist, family in _ERROR_FAMILIES.items():
        if cv.empty:
            out[dist] = None
            continue
        em_cfg = ErrorModelConfig(
            shrinkage=cfg.shrinkage,
            distribution=family,
            min_empirical=min(cfg.min_empirical, cfg.n_windows),
            phased_shrinkage=cfg.shrinkage if cfg.phased_shrinkage is None else cfg.phased_shrinkage,
            relative_phased=cfg.relative_errors,
        )
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            in_cv = cv["unique_id"].unique()
            out[dist] = ErrorModel(em_cfg).fit(
                cv,
                segments=segments.reindex(in_cv),
                history=history,
                models=list(models),
                phased=None if phased is None else phased.reindex(in_cv).fillna(False).astype(bool),
                reference=reference,
            )
    return out


def _segments(history: np.ndarray, ids: np.ndarray) -> pd.Series:
    """Syntetos-Boylan class per series: the error model's shrinkage and calibration segments.

    Intermittent and lumpy items miss a quantile in opposite directions, so they
    are calibrated apart (ADI = observed / positive periods, CV^2 of the non-zero
    sizes with ddof 0, as in :func:`forecasting.characterise`).
    """
    observed = np.isfinite(history).sum(axis=1)
    sizes = np.where(np.nan_to_num(history) > 0, history, np.nan)
    positive = np.isfinite(sizes).sum(axis=1)
    adi = np.where(positive > 0, observed / np.maximum(positive, 1), np.inf)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        cv2 = (np.nanstd(sizes, axis=1) / np.nanmean(sizes, axis=1)) ** 2
    return pd.Series(sbc_class(adi, cv2), index=ids)


def prepare_cutoff(demand: pd.DataFrame, items: pd.DataFrame, cutoff, config: SelectorConfig) -> CutoffData:
    """Backtest, forecast and fit error models on the demand up to ``cutoff``.

    Parameters
    ----------
    demand : pandas.DataFrame
        Long demand ``unique_id, ds, y``; rows after ``cutoff`` are ignored.
    items : pandas.DataFrame
        Item master (docs/design.md).
    cutoff : str or Timestamp
        Last period of the history.
    config : SelectorConfig

    Returns
    -------
    CutoffData

    Raises
    ------
    ValueError
        No series has history up to the cutoff, or the item master lacks series.
    """
    cutoff = pd.Timestamp(cutoff)
    wide = wide_panel(demand)
    wide = wide.loc[:, wide.columns <= cutoff]
    wide = wide[wide.notna().any(axis=1)]
    if wide.empty:
        raise ValueError(f"no series has demand on or before the cutoff {cutoff.date()}; choose a later cutoff")
    ids = wide.index.to_numpy(dtype=str)
    history = wide.to_numpy(dtype=float)
    econ = Economics.from_items(items, ids, config.freq)
    horizon = _horizon(econ)
    long = wide.stack().rename("y").reset_index()
    long.columns = ["unique_id", "ds", "y"]
    models = config.space.forecasters or ("Naive",)
    fc_cfg = ForecastConfig(models=models, freq=config.freq, season_length=config.season_length, n_jobs=config.n_jobs)
    forecaster = Forecaster(fc_cfg)
    fc = forecaster.forecast(long, h=horizon)
    fallbacks = [forecaster.fallbacks_.assign(step="forecast", reason="model failed, fallback used")]
    segments = _segments(history, ids)
    seasonal_on = config.seasonal_model and SEASONAL_BASE in models
    gate = seasonal_gate(history, ids, _season_length(config) if seasonal_on else 1, segments.to_numpy())
    spread = _spread_candidates(long, segments, config, horizon)
    gated = pd.Index(gate.loc[gate["seasonal"].to_numpy(dtype=bool), "unique_id"])
    cv = _backtest(long, config, fc_cfg, horizon, spread=spread.difference(gated))
    fc, cv, gate, failed = _seasonal_swap(long, fc, cv, gate, models, config, horizon)
    cv = _respread(long, cv, gate, spread.intersection(gated), config, fc_cfg, horizon)
    swapped = gate.loc[gate["seasonal"].to_numpy(dtype=bool), "unique_id"]
    fallbacks.append(failed)
    cum = {}
    # align by step ahead, not by date: series that end earlier must not get leading gaps
    fc["step"] = fc.groupby("unique_id").cumcount()
    for m in models:
        block = fc.pivot(index="unique_id", columns="step", values=m).reindex(ids).to_numpy(dtype=float)
        cum[m] = np.cumsum(np.clip(np.nan_to_num(block, nan=0.0), 0.0, None), axis=1)
    short = np.setdiff1d(ids, cv["unique_id"].unique() if not cv.empty else [])
    fallbacks.append(
        pd.DataFrame(
            {"unique_id": short, "step": "backtest", "reason": "history too short for the backtest; sized from history"}
        )
    )
    phased, reference = None, None
    if (config.phased_shrinkage is not None or config.relative_errors) and len(swapped):
        phased = pd.Series(np.isin(ids, swapped), index=ids)
        reference = {m: pd.DataFrame(c, index=ids, columns=range(1, c.shape[1] + 1)) for m, c in cum.items()}
    errors = _error_models(cv, models, config, segments, long, phased, reference)
    obs = history[np.isfinite(history)]
    table = pd.concat([f[["unique_id", "step", "reason"]] if "step" in f else f for f in fallbacks], ignore_index=True)
    return CutoffData(
        cutoff=cutoff,
        ids=ids,
        history=history,
        economics=econ,
        cum_forecast=cum,
        cv=cv,
        error_models=errors,
        horizon=horizon,
        integral=bool(np.all(obs == np.round(obs))),
        fallbacks=table,
        seasonal=gate,
        window_step=_window_steps(cv, spread.difference(swapped), config),
    )
