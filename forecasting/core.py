"""The forecasting front door: :class:`Forecaster`.

One object fits every configured candidate model on a long-format demand
panel (``unique_id, ds, y``), forecasts, and runs rolling-origin
cross-validation returning the statsforecast-shaped table
``unique_id, ds, cutoff, y, <model aliases>``.

Statistical and intermittent models run through one
:class:`statsforecast.StatsForecast` call (all cores); the global LightGBM
model runs through :class:`mlforecast.MLForecast`. A model that fails on a
series (raises, or returns a non-finite forecast) is replaced for that series
by the configured fallback model; every replacement is a row of
``fallbacks_``.
"""

from __future__ import annotations

import warnings
from contextlib import contextmanager

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError
from statsforecast import StatsForecast

from forecasting.config import ForecastConfig
from forecasting.models import FailureMarker, build_mlforecast, build_stat_model, build_stat_models
from forecasting.panel import REQUIRED_COLUMNS, ValidationReport, validate_demand

__all__ = ["Forecaster", "NotFittedError", "FALLBACK_COLUMNS"]

KEYS = ["unique_id", "ds"]
CV_KEYS = ["unique_id", "ds", "cutoff"]
#: Columns of ``Forecaster.fallbacks_``.
FALLBACK_COLUMNS = ["unique_id", "model", "fallback", "stage", "cutoff", "n_values"]


class Forecaster:
    """Fit, forecast and backtest the candidate models of a :class:`ForecastConfig`.

    Follows the scikit-learn estimator contract: ``__init__`` stores the
    config, ``fit`` learns and sets attributes ending in ``_``.

    Parameters
    ----------
    config : ForecastConfig, optional
        Models, frequency, season length, fallback; default ``ForecastConfig()``.

    Attributes
    ----------
    fallbacks_ : pandas.DataFrame
        Every fallback of the last call, one row per (series, model, cutoff):
        ``unique_id, model, fallback, stage, cutoff, n_values``.
    validation_ : ValidationReport
        Findings of the demand validator on the last input (excluded rows/series).
    ids_ : numpy.ndarray
        Series seen by ``fit``.
    mlforecast_ : mlforecast.MLForecast or None
        The fitted global LightGBM forecaster (``None`` without LightGBM);
        what pipelines log as an MLflow model.

    Examples
    --------
    >>> cfg = ForecastConfig(models=("Naive", "CrostonSBA"), freq="W-MON")
    >>> fc = Forecaster(cfg).fit(demand).predict(h=4)          # doctest: +SKIP
    >>> cv = Forecaster(cfg).cross_validation(demand, h=4, n_windows=8)  # doctest: +SKIP
    """

    def __init__(self, config: ForecastConfig | None = None):
        self.config = config

    # -- public API ---------------------------------------------------------------

    def fit(self, df: pd.DataFrame) -> Forecaster:
        """Fit every candidate on the whole history of each series.

        Parameters
        ----------
        df : pandas.DataFrame
            Long-format demand ``unique_id, ds, y`` (+ static feature columns).

        Returns
        -------
        Forecaster
            ``self``, fitted.

        Raises
        ------
        DemandValidationError
            When the demand panel has errors (see :func:`forecasting.panel.validate_demand`).
        """
        cfg = self._cfg
        data = self._prepare(df, min_length=1)
        self.fallbacks_ = _empty_fallbacks()
        self._train = data
        self._sf = None
        if cfg.stat_models:
            with _quiet():
                self._sf = self._stats_forecast().fit(df=data[["unique_id", "ds", "y"]])
        self._mlf = None
        if cfg.ml_models:
            self._mlf = build_mlforecast(cfg, _shortest(data)).fit(
                data, static_features=list(cfg.lightgbm.static_features)
            )
        self.mlforecast_ = self._mlf
        self.ids_ = data["unique_id"].unique()
        return self

    def predict(self, h: int) -> pd.DataFrame:
        """Forecast ``h`` periods after the end of the fitted history.

        Returns
        -------
        pandas.DataFrame
            ``unique_id, ds, <model aliases>``, sorted by series and date.

        Raises
        ------
        NotFittedError
            When called before :meth:`fit`.
        """
        if not hasattr(self, "ids_"):
            raise NotFittedError("this Forecaster is not fitted yet; call fit(df) first")
        _check_h(h)
        cfg = self._cfg
        parts = []
        fallbacks = _empty_fallbacks()
        if self._sf is not None:
            with _quiet():
                fc = self._sf.predict(h=h)
            fc, fallbacks = self._repair(fc, self._train, h, stage="predict")
            parts.append(fc)
        if self._mlf is not None:
            parts.append(_clip(self._mlf.predict(h=h), cfg.ml_models))
        self.fallbacks_ = fallbacks
        return _join(parts, KEYS)

    def forecast(self, df: pd.DataFrame, h: int) -> pd.DataFrame:
        """Fit on ``df`` and forecast ``h`` periods ahead in one pass.

        Same result as ``fit(df).predict(h)`` without keeping the fitted
        per-series models in memory.

        Returns
        -------
        pandas.DataFrame
            ``unique_id, ds, <model aliases>``.
        """
        _check_h(h)
        cfg = self._cfg
        data = self._prepare(df, min_length=1)
        parts = []
        fallbacks = _empty_fallbacks()
        if cfg.stat_models:
            with _quiet():
                fc = self._stats_forecast().forecast(h=h, df=data[["unique_id", "ds", "y"]])
            fc, fallbacks = self._repair(fc, data, h, stage="forecast")
            parts.append(fc)
        if cfg.ml_models:
            mlf = build_mlforecast(cfg, _shortest(data)).fit(data, static_features=list(cfg.lightgbm.static_features))
            parts.append(_clip(mlf.predict(h=h), cfg.ml_models))
        self.fallbacks_ = fallbacks
        return _join(parts, KEYS)

    def cross_validation(
        self, df: pd.DataFrame, h: int, n_windows: int = 4, step: int = 1, refit: bool | int = True
    ) -> pd.DataFrame:
        """Rolling-origin backtest of every candidate in one call.

        For each of ``n_windows`` cutoffs (``step`` periods apart, the last one
        ``h`` periods before the end of each series) every model is refit on
        the history up to and including the cutoff and forecasts the next
        ``h`` periods. Data after a cutoff is never used for its forecasts.

        With ``refit`` other than True, statsforecast models that can be
        applied to new data without re-estimation (a ``forward`` method:
        AutoETS, AutoARIMA, AutoTheta, Naive, SeasonalNaive, ...) are fitted
        at the first cutoff and every ``refit``-th one after it, and in between
        run their fitted parameters over the history up to each cutoff (still
        nothing after the cutoff). Models without ``forward`` (CrostonSBA, TSB,
        ADIDA, IMAPA: cheap closed-form or single-parameter fits) are refit at
        every cutoff as before, so their columns do not change.

        Parameters
        ----------
        df : pandas.DataFrame
            Long-format demand. Series shorter than ``h + (n_windows - 1) * step + 1``
            periods are excluded and reported in ``validation_``.
        h : int
            Forecast horizon (periods).
        n_windows : int, default 4
            Number of cutoffs.
        step : int, default 1
            Periods between consecutive cutoffs.
        refit : bool or int, default True
            True: re-estimate every model at every cutoff. An integer k:
            re-estimate the models that have ``forward`` every k cutoffs
            (1 is the same as True). False: estimate them once, at the first
            cutoff. Passed to mlforecast's ``cross_validation`` as is.

        Returns
        -------
        pandas.DataFrame
            ``unique_id, ds, cutoff, y, <model aliases>``.

        Raises
        ------
        ValueError
            When ``h``, ``n_windows`` or ``step`` is not a positive integer, or
            ``refit`` is not a bool or a positive integer.
        """
        _check_h(h)
        for name, value in (("n_windows", n_windows), ("step", step)):
            if not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        refit = _check_refit(refit)
        cfg = self._cfg
        data = self._prepare(df, min_length=h + (n_windows - 1) * step + 1)
        parts = []
        fallbacks = _empty_fallbacks()
        if cfg.stat_models:
            cv = self._stat_cross_validation(data[["unique_id", "ds", "y"]], h, n_windows, step, refit)
            cv, fallbacks = self._repair(cv, data, h, stage="cross_validation", n_windows=n_windows, step=step)
            parts.append(cv)
        if cfg.ml_models:
            first_train = _shortest(data) - h - (n_windows - 1) * step
            ml = build_mlforecast(cfg, first_train).cross_validation(
                data,
                n_windows=n_windows,
                h=h,
                step_size=step,
                static_features=list(cfg.lightgbm.static_features),
                refit=refit,
            )
            parts.append(_clip(ml, cfg.ml_models))
        self.fallbacks_ = fallbacks
        return _join(parts, CV_KEYS)

    # -- helpers ------------------------------------------------------------------

    def _stat_cross_validation(self, data: pd.DataFrame, h: int, n_windows: int, step: int, refit) -> pd.DataFrame:
        """statsforecast's cross-validation; with ``refit`` not True, one call for the models with
        ``forward`` (refit every ``refit`` windows) and one for the others (refit every window)."""
        models = build_stat_models(self._cfg)
        groups = [models] if refit is True else [[m for m in models if hasattr(m, "forward")]]
        if refit is not True:
            groups.append([m for m in models if not hasattr(m, "forward")])
        parts = []
        for group, group_refit in zip(groups, (refit, True)):
            if not group:
                continue
            with _quiet():
                parts.append(
                    self._stats_forecast(group).cross_validation(
                        h=h, df=data, n_windows=n_windows, step_size=step, refit=group_refit
                    )
                )
        out = parts[0]
        for part in parts[1:]:
            out = out.merge(part.drop(columns="y"), on=CV_KEYS, how="left", validate="one_to_one")
        return out[CV_KEYS + ["y"] + [m.alias for m in models]]

    @property
    def _cfg(self) -> ForecastConfig:
        cfg = self.config if self.config is not None else ForecastConfig()
        if not isinstance(cfg, ForecastConfig):
            raise TypeError(f"config must be a ForecastConfig, got {type(cfg).__name__}")
        return cfg

    def _stats_forecast(self, models: list | None = None) -> StatsForecast:
        """A StatsForecast whose fallback marks failures with NaN (see :class:`FailureMarker`)."""
        cfg = self._cfg
        return StatsForecast(
            models=models if models is not None else build_stat_models(cfg),
            freq=cfg.freq,
            n_jobs=cfg.n_jobs,
            fallback_model=FailureMarker(),
        )

    def _prepare(self, df: pd.DataFrame, min_length: int) -> pd.DataFrame:
        """Validate the panel (one validator for every front door) and keep the used columns."""
        cfg = self._cfg
        if not isinstance(df, pd.DataFrame):
            raise TypeError(f"demand must be a pandas DataFrame, got {type(df).__name__}")
        static = list(cfg.lightgbm.static_features) if cfg.ml_models else []
        missing = [c for c in static if c not in df.columns]
        if missing:
            raise ValueError(
                f"static feature column(s) {missing} not in the demand frame "
                f"(columns: {list(df.columns)}); add them or drop them from LightGBMConfig.static_features"
            )
        if cfg.validate:
            clean, report = validate_demand(df, source="demand", freq=cfg.freq, min_length=min_length)
            report.raise_if_errors()
        else:
            absent = [c for c in REQUIRED_COLUMNS if c not in df.columns]
            if absent:
                raise ValueError(f"demand lacks column(s) {absent}; need unique_id, ds, y")
            clean, report = df.sort_values(KEYS).reset_index(drop=True), ValidationReport()
        self.validation_ = report
        if clean.empty:
            raise ValueError(
                f"no series left to forecast after validation (each needs >= {min_length} periods):\n"
                + report.summary()
            )
        return clean[[*REQUIRED_COLUMNS, *static]]

    def _repair(
        self, out: pd.DataFrame, data: pd.DataFrame, h: int, stage: str, n_windows: int = 1, step: int = 1
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Replace failed (NaN) forecasts by the fallback model's, and count them."""
        cfg = self._cfg
        models = list(cfg.stat_models)
        failed = out[models].isna().to_numpy()
        if not failed.any():
            return out, _empty_fallbacks()
        rows, cols = np.nonzero(failed)
        bad_ids = out["unique_id"].to_numpy()[rows]
        subset = data.loc[data["unique_id"].isin(np.unique(bad_ids)), ["unique_id", "ds", "y"]]
        sf = StatsForecast(
            models=[build_stat_model(cfg.fallback_model, cfg, alias="_fallback")], freq=cfg.freq, n_jobs=1
        )
        keys = CV_KEYS if stage == "cross_validation" else KEYS
        if stage == "cross_validation":
            fb = sf.cross_validation(h=h, df=subset, n_windows=n_windows, step_size=step)
        else:
            fb = sf.forecast(h=h, df=subset)
        lookup = pd.MultiIndex.from_frame(fb[keys])
        where = lookup.get_indexer(pd.MultiIndex.from_frame(out[keys].iloc[rows]))
        values = fb["_fallback"].to_numpy()[where]
        if (where < 0).any() or not np.isfinite(values).all():
            raise ValueError(
                f"fallback model {cfg.fallback_model} also failed on series "
                f"{sorted(set(bad_ids[~np.isfinite(values) | (where < 0)]))[:20]}; "
                "check these series for constant or too-short histories"
            )
        out = out.copy()
        block = out[models].to_numpy(copy=True)
        block[rows, cols] = values
        out[models] = block
        cells = pd.DataFrame(
            {
                "unique_id": bad_ids,
                "model": np.asarray(models)[cols],
                "cutoff": out["cutoff"].to_numpy()[rows] if "cutoff" in out else pd.NaT,
            }
        )
        table = (
            cells.groupby(["unique_id", "model", "cutoff"], dropna=False, sort=True)
            .size()
            .rename("n_values")
            .reset_index()
        )
        table["fallback"] = cfg.fallback_model
        table["stage"] = stage
        return out, table[FALLBACK_COLUMNS]


@contextmanager
def _quiet():
    """NaN forecasts of too-short series are counted as fallbacks; statsforecast's warning adds nothing."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Historical data .* shorter than season_length")
        yield


def _check_refit(refit) -> bool | int:
    """True, False or a positive integer (1 is True: statsforecast then takes its plain path)."""
    if isinstance(refit, (bool, np.bool_)):
        return bool(refit)
    if not isinstance(refit, (int, np.integer)) or refit < 1:
        raise ValueError(f"refit must be True, False or a positive integer, got {refit!r}")
    return True if refit == 1 else int(refit)


def _shortest(data: pd.DataFrame) -> int:
    return int(data.groupby("unique_id", sort=False).size().min())


def _check_h(h: int) -> None:
    if not isinstance(h, (int, np.integer)) or h < 1:
        raise ValueError(f"h must be a positive integer number of periods, got {h!r}")


def _empty_fallbacks() -> pd.DataFrame:
    return pd.DataFrame({c: pd.Series(dtype=object) for c in FALLBACK_COLUMNS})


def _clip(df: pd.DataFrame, models) -> pd.DataFrame:
    """Demand is never negative: clip ML forecasts at zero."""
    out = df.copy()
    out[list(models)] = out[list(models)].clip(lower=0.0)
    return out


def _join(parts: list[pd.DataFrame], keys: list[str]) -> pd.DataFrame:
    out = parts[0]
    for part in parts[1:]:
        extra = [c for c in part.columns if c not in out.columns or c in keys]
        out = out.merge(part[extra], on=keys, how="left") if not out.empty else part
    if "y" in out.columns:
        first = keys + ["y"]
        out = out[first + [c for c in out.columns if c not in first]]
    order = ["unique_id", "cutoff", "ds"] if "cutoff" in keys else keys
    out = out.sort_values(order, kind="stable").reset_index(drop=True)
    out["unique_id"] = out["unique_id"].astype(str)
    return out
