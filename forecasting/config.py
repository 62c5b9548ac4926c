"""Configuration of the forecasting front door.

One frozen dataclass, :class:`ForecastConfig`, holds every choice a
:class:`~forecasting.core.Forecaster` makes: which candidate models run, the
period frequency, the season length and the fallback model. Defaults live
only here; per-frequency defaults come from :data:`FREQ_DEFAULTS`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

__all__ = [
    "ForecastConfig",
    "LightGBMConfig",
    "STAT_MODELS",
    "INTERMITTENT_MODELS",
    "ML_MODELS",
    "FREQ_DEFAULTS",
    "freq_defaults",
]

#: statsforecast models selectable by name (the alias is the name).
STAT_MODELS = (
    "Naive",
    "SeasonalNaive",
    "WindowAverage",
    "HistoricAverage",
    "AutoETS",
    "AutoARIMA",
    "AutoTheta",
    "CrostonClassic",
    "CrostonSBA",
    "CrostonOptimized",
    "ADIDA",
    "IMAPA",
    "TSB",
    "MSTL",
)
#: models designed for intermittent demand (their forecasts are never negative).
INTERMITTENT_MODELS = ("CrostonClassic", "CrostonSBA", "CrostonOptimized", "ADIDA", "IMAPA", "TSB")
#: global machine-learning models (mlforecast).
ML_MODELS = ("LightGBM",)


@dataclass(frozen=True)
class FreqDefaults:
    """Per-frequency defaults: season length, moving-average window, lags, rolling windows, calendar."""

    season_length: int
    window_size: int
    lags: tuple[int, ...]
    rolling_windows: tuple[int, ...]
    date_features: tuple[str, ...]


#: Defaults keyed by the pandas offset prefix (``W-MON`` -> ``W``, ``MS`` -> ``M``).
FREQ_DEFAULTS: dict[str, FreqDefaults] = {
    "D": FreqDefaults(7, 28, (1, 2, 3, 7, 14, 28), (7, 28), ("dayofweek", "month")),
    "B": FreqDefaults(5, 20, (1, 2, 5, 10, 20), (5, 20), ("dayofweek", "month")),
    "W": FreqDefaults(52, 13, (1, 2, 3, 4, 8, 13, 52), (4, 13), ("week", "month")),
    "M": FreqDefaults(12, 6, (1, 2, 3, 6, 12), (3, 6, 12), ("month",)),
    "Q": FreqDefaults(4, 4, (1, 2, 4), (2, 4), ("quarter",)),
    "H": FreqDefaults(24, 24, (1, 2, 24, 48, 168), (24, 168), ("hour", "dayofweek")),
}


def freq_defaults(freq: str) -> FreqDefaults:
    """Defaults for a pandas frequency string (``"W-MON"``, ``"D"``, ``"MS"``, ``"ME"`` ...).

    Raises
    ------
    ValueError
        When the frequency is not one of daily, business-daily, weekly, monthly,
        quarterly or hourly.
    """
    key = freq.upper().lstrip("0123456789")[:1]
    if freq.upper().startswith(("QS", "QE")):
        key = "Q"
    if key not in FREQ_DEFAULTS:
        raise ValueError(
            f"no defaults for frequency {freq!r}; use one of D, B, W-<DAY>, MS/ME, QS/QE, h "
            "or pass season_length explicitly"
        )
    return FREQ_DEFAULTS[key]


@dataclass(frozen=True)
class LightGBMConfig:
    """Global LightGBM model trained through mlforecast.

    Parameters
    ----------
    objective : {"tweedie", "poisson", "regression"}, default "tweedie"
        Tweedie/Poisson suit counts with many zeros.
    tweedie_variance_power : float, default 1.1
    n_estimators, learning_rate, num_leaves, min_child_samples : LightGBM settings.
    lags, rolling_windows, date_features : optional
        Feature set; ``None`` takes the per-frequency default of :data:`FREQ_DEFAULTS`.
    static_features : tuple of str, default ()
        Extra columns of the demand frame, constant per series (item/location
        attributes), passed to mlforecast as static features.
    n_threads : int, default 1
        LightGBM (OpenMP) threads. One by default: on a shared machine idle
        OpenMP threads spin and can slow training tenfold; raise it on a
        dedicated box with large panels.
    seed : int, default 0
    """

    objective: str = "tweedie"
    tweedie_variance_power: float = 1.1
    n_estimators: int = 200
    learning_rate: float = 0.05
    num_leaves: int = 31
    min_child_samples: int = 20
    lags: tuple[int, ...] | None = None
    rolling_windows: tuple[int, ...] | None = None
    date_features: tuple[str, ...] | None = None
    static_features: tuple[str, ...] = ()
    n_threads: int = 1
    seed: int = 0

    def __post_init__(self) -> None:
        if self.objective not in ("tweedie", "poisson", "regression"):
            raise ValueError(f"LightGBM objective {self.objective!r} not supported; use tweedie, poisson or regression")
        if self.n_threads < 1:
            raise ValueError(f"n_threads must be >= 1, got {self.n_threads}")
        if not 1.0 < self.tweedie_variance_power < 2.0:
            raise ValueError(f"tweedie_variance_power must lie in (1, 2), got {self.tweedie_variance_power}")


@dataclass(frozen=True)
class ForecastConfig:
    """What a :class:`~forecasting.core.Forecaster` fits.

    Parameters
    ----------
    models : tuple of str
        Candidate models by name: any of :data:`STAT_MODELS` and ``"LightGBM"``.
    freq : str, default "W-MON"
        Pandas frequency of the demand periods.
    season_length : int, optional
        Periods per season; default by frequency (W: 52, D: 7, M: 12, Q: 4).
    window_size : int, optional
        Window of ``WindowAverage``; default by frequency (W: 13, D: 28, M: 6).
    fallback_model : str, default "Naive"
        Model (from :data:`STAT_MODELS`) used for a series on which a candidate
        fails or returns non-finite forecasts; every such case is counted in
        ``Forecaster.fallbacks_``.
    tsb_alpha_d, tsb_alpha_p : float, default 0.1
        Smoothing constants of TSB for demand size and probability.
    n_jobs : int, default -1
        Processes for statsforecast (-1: all cores) and threads for LightGBM.
    lightgbm : LightGBMConfig
        Settings of the global LightGBM model.
    validate : bool, default True
        Run :func:`forecasting.panel.validate_demand` on every input frame.

    Examples
    --------
    >>> cfg = ForecastConfig(models=("Naive", "CrostonSBA"), freq="MS")
    >>> cfg.resolved_season_length
    12
    """

    models: tuple[str, ...] = ("Naive", "SeasonalNaive", "AutoETS", "CrostonSBA", "TSB")
    freq: str = "W-MON"
    season_length: int | None = None
    window_size: int | None = None
    fallback_model: str = "Naive"
    tsb_alpha_d: float = 0.1
    tsb_alpha_p: float = 0.1
    n_jobs: int = -1
    lightgbm: LightGBMConfig = field(default_factory=LightGBMConfig)
    validate: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.models, str):
            raise TypeError(f"models must be a tuple of names, got the string {self.models!r}")
        object.__setattr__(self, "models", tuple(self.models))
        if not self.models:
            raise ValueError("models is empty; name at least one model, e.g. ('Naive',)")
        known = STAT_MODELS + ML_MODELS
        unknown = [m for m in self.models if m not in known]
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; choose from {list(known)}")
        if len(set(self.models)) != len(self.models):
            raise ValueError(f"models listed twice in {list(self.models)}; list each once")
        if self.fallback_model not in STAT_MODELS:
            raise ValueError(f"fallback_model {self.fallback_model!r} unknown; choose from {list(STAT_MODELS)}")
        for name in ("season_length", "window_size"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name in ("tsb_alpha_d", "tsb_alpha_p"):
            if not 0.0 < getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must lie in (0, 1], got {getattr(self, name)}")
        if self.n_jobs == 0 or self.n_jobs < -1:
            raise ValueError(f"n_jobs must be -1 (all cores) or >= 1, got {self.n_jobs}")
        if self.season_length is None or self.window_size is None:
            freq_defaults(self.freq)  # raises early on an unknown frequency
        if "MSTL" in self.models and self.resolved_season_length < 2:
            raise ValueError(
                f"MSTL decomposes a season and needs season_length >= 2, got {self.resolved_season_length}; "
                "drop MSTL or give the season length (52 weekly, 12 monthly)"
            )

    @property
    def resolved_season_length(self) -> int:
        """Season length, from the frequency default when not given."""
        return self.season_length or freq_defaults(self.freq).season_length

    @property
    def resolved_window_size(self) -> int:
        """``WindowAverage`` window, from the frequency default when not given."""
        return self.window_size or freq_defaults(self.freq).window_size

    @property
    def resolved_n_jobs(self) -> int:
        """Number of workers (-1 resolved to the machine's cores)."""
        return (os.cpu_count() or 1) if self.n_jobs == -1 else self.n_jobs

    @property
    def stat_models(self) -> tuple[str, ...]:
        """The statsforecast models among :attr:`models`, in order."""
        return tuple(m for m in self.models if m in STAT_MODELS)

    @property
    def ml_models(self) -> tuple[str, ...]:
        """The mlforecast models among :attr:`models`, in order."""
        return tuple(m for m in self.models if m in ML_MODELS)
