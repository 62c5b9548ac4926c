"""Building the candidate models named in a :class:`~forecasting.config.ForecastConfig`.

Statistical and intermittent models are statsforecast's own classes; the
global LightGBM model is an :class:`mlforecast.MLForecast`. Nothing here fits
anything: the builders return unfitted model objects.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from statsforecast import models as sf_models
from statsforecast.models import _TS

from forecasting.config import ML_MODELS, ForecastConfig, freq_defaults

__all__ = ["build_stat_model", "build_stat_models", "build_mlforecast", "models_season", "FailureMarker"]


def _season(cfg: ForecastConfig) -> dict:
    return {"season_length": cfg.resolved_season_length}


#: Longest season ETS and ARIMA fit as a seasonal state; as in R's forecast::ets
#: ("frequency too high"), weekly seasons (52) are left to SeasonalNaive, Theta
#: and LightGBM: a 52-state seasonal ETS took 437 s vs 30 s non-seasonal for 279 demo series
#: x 6 backtest windows on a loaded 2-core machine.
MAX_STATE_SEASON = 24


def _state_season(cfg: ForecastConfig) -> dict:
    m = cfg.resolved_season_length
    return {"season_length": m if m <= MAX_STATE_SEASON else 1}


def _mstl(cfg: ForecastConfig) -> dict:
    """MSTL: STL season (any length, kept as a seasonal naive of the last cycle) + a non-seasonal
    AutoETS on the seasonally adjusted series (trend allowed). The season is a decomposition,
    not an ETS state, so weekly seasons (52) cost one STL fit, not a 52-state likelihood."""
    return {"season_length": cfg.resolved_season_length, "trend_forecaster": sf_models.AutoETS(model="ZZN")}


#: name -> keyword arguments taken from the config (dispatch table, no if/elif).
_STAT_KWARGS: dict[str, Callable[[ForecastConfig], dict]] = {
    "Naive": lambda cfg: {},
    "SeasonalNaive": _season,
    "WindowAverage": lambda cfg: {"window_size": cfg.resolved_window_size},
    "HistoricAverage": lambda cfg: {},
    "AutoETS": _state_season,
    "AutoARIMA": _state_season,
    "AutoTheta": _season,
    "CrostonClassic": lambda cfg: {},
    "CrostonSBA": lambda cfg: {},
    "CrostonOptimized": lambda cfg: {},
    "ADIDA": lambda cfg: {},
    "IMAPA": lambda cfg: {},
    "TSB": lambda cfg: {"alpha_d": cfg.tsb_alpha_d, "alpha_p": cfg.tsb_alpha_p},
    "MSTL": _mstl,
}


def models_season(name: str, cfg: ForecastConfig) -> bool:
    """Whether model ``name`` forecasts a season at ``cfg``'s season length.

    AutoETS and AutoARIMA only up to :data:`MAX_STATE_SEASON`; SeasonalNaive, AutoTheta and
    MSTL always (m > 1); LightGBM through its seasonal lags; the intermittent models never.

    Examples
    --------
    >>> models_season("AutoETS", ForecastConfig(freq="W-MON")), models_season("AutoETS", ForecastConfig(freq="MS"))
    (False, True)
    """
    if name in ML_MODELS:
        return cfg.resolved_season_length > 1
    if name not in _STAT_KWARGS:
        raise ValueError(f"unknown model {name!r}; choose from {sorted(_STAT_KWARGS) + list(ML_MODELS)}")
    return _STAT_KWARGS[name](cfg).get("season_length", 1) > 1


def build_stat_model(name: str, cfg: ForecastConfig, alias: str | None = None):
    """One statsforecast model by name, aliased ``alias`` (default: the name).

    Raises
    ------
    ValueError
        When ``name`` is not a statsforecast model known to Stockwise.
    """
    if name not in _STAT_KWARGS:
        raise ValueError(f"unknown statsforecast model {name!r}; choose from {sorted(_STAT_KWARGS)}")
    return getattr(sf_models, name)(alias=alias or name, **_STAT_KWARGS[name](cfg))


def build_stat_models(cfg: ForecastConfig) -> list:
    """The statsforecast candidates of ``cfg`` in configured order."""
    return [build_stat_model(name, cfg) for name in cfg.stat_models]


class FailureMarker(_TS):
    """statsforecast ``fallback_model`` that returns NaN, so failures can be counted.

    statsforecast swaps in its ``fallback_model`` silently (and inside worker
    processes, where no counter survives). Marking the failed cells with NaN
    lets the front door find every failure afterwards, count it and refit the
    configured fallback model on exactly those series.
    """

    def __init__(self, alias: str = "FailureMarker"):
        self.alias = alias

    def fit(self, y: np.ndarray, X=None):
        self.n_ = len(y)
        return self

    def predict(self, h: int, X=None, level=None):
        return {"mean": np.full(h, np.nan)}

    def forecast(self, h: int, y: np.ndarray, X=None, X_future=None, fitted: bool = False, level=None):
        out = {"mean": np.full(h, np.nan)}
        if fitted:
            out["fitted"] = np.full(len(y), np.nan)
        return out

    def forward(self, h: int, y: np.ndarray, X=None, X_future=None, fitted: bool = False, level=None):
        """NaN as :meth:`forecast`: statsforecast's cross-validation with ``refit`` other than
        True needs a fallback that has ``forward``."""
        return self.forecast(h, y, X, X_future, fitted, level)


def _features(cfg: ForecastConfig, min_history: int) -> tuple[list[int], list[int]]:
    """Lags and rolling windows; default ones longer than half the shortest history are dropped."""
    lg, defaults = cfg.lightgbm, freq_defaults(cfg.freq)
    room = max(min_history // 2, 1)
    if lg.lags is None:
        lags = [lag for lag in defaults.lags if lag <= room] or [1]
    else:
        lags = list(lg.lags)
        if max(lags) >= min_history:
            raise ValueError(
                f"LightGBM lag {max(lags)} needs more history than the shortest series "
                f"has ({min_history} periods); lower LightGBMConfig.lags"
            )
    windows = (
        lg.rolling_windows
        if lg.rolling_windows is not None
        else tuple(w for w in defaults.rolling_windows if w + 1 <= room)
    )
    return lags, list(windows)


def build_mlforecast(cfg: ForecastConfig, min_history: int = 10**9):
    """Unfitted :class:`mlforecast.MLForecast` with the configured LightGBM model.

    Lags, rolling means (as ``lag_transforms`` on lag 1) and calendar features
    default by frequency (:data:`forecasting.config.FREQ_DEFAULTS`); default
    lags and windows longer than half of ``min_history`` (the shortest
    training history) are left out so that every series has training rows.

    Raises
    ------
    ValueError
        When an explicitly configured lag is not shorter than ``min_history``.
    """
    import lightgbm as lgb
    from mlforecast import MLForecast
    from mlforecast.lag_transforms import RollingMean

    lg = cfg.lightgbm
    defaults = freq_defaults(cfg.freq)
    params = {
        "objective": lg.objective,
        "n_estimators": lg.n_estimators,
        "learning_rate": lg.learning_rate,
        "num_leaves": lg.num_leaves,
        "min_child_samples": lg.min_child_samples,
        "random_state": lg.seed,
        "n_jobs": lg.n_threads,
        "deterministic": True,
        "force_col_wise": True,
        "verbosity": -1,
    }
    if lg.objective == "tweedie":
        params["tweedie_variance_power"] = lg.tweedie_variance_power
    lags, windows = _features(cfg, min_history)
    return MLForecast(
        models={"LightGBM": lgb.LGBMRegressor(**params)},
        freq=cfg.freq,
        lags=lags,
        lag_transforms={1: [RollingMean(window_size=w) for w in windows]} if windows else None,
        date_features=list(lg.date_features if lg.date_features is not None else defaults.date_features),
        num_threads=1,
    )
