"""Configuration of the policy selector; every default lives here."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import numpy as np

from forecasting import ErrorModelConfig
from policy_selector.candidates import CandidateSpace

__all__ = ["SelectorConfig", "AUTO_REFIT_SPAN_MULTIPLE"]

#: ``refit_every="auto"``: a series whose history before the backtest's first cutoff is at least this
#: many times the span of the windows, ``(n_windows - 1) * step`` (75 periods at the defaults), has
#: AutoETS (and MSTL, whose trend is an AutoETS, for a seasonal series) fitted once; a shorter one
#: at every window. At 5x the later windows add at most 20 % to
#: the history the parameters were estimated on (docs/guide/scale.md: carparts' 39-51 months are far
#: below, the 3-year weekly panel and the demo far above).
AUTO_REFIT_SPAN_MULTIPLE = 5
#: Segments the sizing choice's replay correction may raise (:attr:`SelectorConfig.replay_correction`);
#: ``*_both`` also lowers those that over-serve.
REPLAY_CORRECTIONS = ("sparse", "all", "off", "sparse_both", "all_both")


@dataclass(frozen=True)
class SelectorConfig:
    """How candidates are backtested, sized, simulated and scored.

    Parameters
    ----------
    space : CandidateSpace
        The candidates (default: :data:`~policy_selector.candidates.DEFAULT_CANDIDATES`).
    freq : str, default "W-MON"
        Demand frequency.
    season_length : int, default 1
        Season length for the forecasters (1 = non-seasonal; faster and robust on short histories).
    seasonal_model : bool, default True
        Give series with a season (:func:`policy_selector.phased.seasonal_gate`: smooth or
        erratic, >= 2 seasons of history, STL seasonal strength above the white-noise level)
        the season- and trend-capable forecaster ``MSTL`` (STL season + AutoETS trend) in place
        of ``AutoETS``, in the forecast and in the backtest that sizes their buffer. False =
        every series season-blind, as before.
    phased_shrinkage : float, "estimate" or None, default "estimate"
        The error model of the series given the seasonal forecaster (``seasonal_model``: the
        time-phased MSTL items) pools and calibrates them apart from their SBC segment and shrinks
        their variance toward that pool with the credibility estimated from the pool itself
        (``"estimate"``, Bühlmann-Straub) or with that many effective pseudo-windows, weighing each
        series' own variance by its effective rather than its overlapping windows
        (:attr:`forecasting.ErrorModelConfig.phased_shrinkage`). None: they stay in their segment
        with ``shrinkage``, as before.
    relative_errors : bool, default False
        Also take those series' errors relative to the forecast, rescaled to the forecast from the
        cutoff (:attr:`forecasting.ErrorModelConfig.relative_phased`); pair it with
        ``phased_plan(..., proportional=...)``. Tried on the store proxy, not kept.
    seasonal_period : int, optional
        The m of that season; default by frequency (52 weekly, 12 monthly, 4 quarterly).
    n_windows, step : int, default 16, 1
        Rolling-origin backtest windows before each cutoff (error model and forecastability).
    spread_season_blind : bool, default True
        Give smooth series (SBC class) whose forecaster does not model the season (not swapped to
        the seasonal model) their ``n_windows`` backtest windows spread over one season:
        :meth:`season_step` periods apart instead of ``step``, so the errors their static level is
        sized from sample the whole year rather than its last weeks (issue 12: a holiday peak
        before the cutoff set the buffer held through a season without one). Other series keep
        ``step``; so do all series when ``n_windows * step`` already spans a season (monthly data
        at the defaults) or a series is too short for the spread windows. False = ``step`` everywhere.
    refit_every : int or "auto", default 1
        Re-estimate the forecasters that can run fitted parameters over new data
        (AutoETS) every ``refit_every`` backtest windows, and in between only run
        their fitted parameters over the longer history (statsforecast's
        ``refit``); 1 = every window, >= ``n_windows`` = once per series. The
        intermittent forecasters are refit every window whatever the value.
        ``"auto"``: per series from its history (:meth:`refit_per_series`): once
        when the history before the first cutoff is at least
        :data:`AUTO_REFIT_SPAN_MULTIPLE` times the windows' span, else every window.
        The seasonal model's backtest (``seasonal_model``) follows the same value.
    test_periods : int, default 26
        Held-out periods after a cutoff on which candidates are replayed.
    service_tolerance : float, default 0.03
        A candidate meets a service target alpha when it achieves >= alpha - tolerance on
        the held-out periods (a finite replay cannot hit a 98 % CSL exactly).
    quantile_points : int, default 200
        Points of the quantile grid that represents each distribution over H.
    min_empirical : int, default 6
        Backtest windows a series needs for its own empirical error quantiles.
    shrinkage : float or "estimate", default: :class:`forecasting.ErrorModelConfig`'s (``"estimate"``)
        How much of its own backtest errors' variance and bias a series keeps against its segment's
        pooled, scale-free errors (the series not pooled apart; ``phased_shrinkage`` has those),
        passed to the error model as :attr:`forecasting.ErrorModelConfig.shrinkage`, whose default
        it is (one default for the selector and the plan's published quantiles).
        ``"estimate"``: each segment's credibility estimated from its own windows over effective
        windows, as for the phased pool (Bühlmann-Straub), each series' sampling noise taken from its
        own fourth moment so that heavy-tailed sparse errors are not read as real differences; a
        number: that many raw pseudo-windows for every segment (8: 16 overlapping windows keep 15/23
        of their own variance), the selector's default until 2026-11-30 (docs/benchmarks/proxies.md:
        the estimate holds less stock at equal CSL and fill rate on both store and both retail proxy
        seeds, the same on carparts, 2 % more on the demo).
    n_jobs : int, default 1
        statsforecast processes.
    sim_paths, sim_periods : int, default 30, 52
        Bootstrapped demand paths and their length for expected cost/service in
        :func:`~policy_selector.recommend.recommend_policies`.
    label_paths : int, default 40
        Demand paths per item on which every candidate is replayed to get its *expected*
        cost, the training label (moving-block bootstrap of the held-out window and the
        ``test_periods`` before the cutoff). 0 = label by the single realised path.
    block_length : int, optional
        Block length of that bootstrap; default ``clip(ceil(test_periods / 4), 2, 13)``.
    replay_correction : {"sparse", "all", "off", "sparse_both", "all_both"}, default "sparse_both"
        The sizing choice (:func:`policy_selector.sizing_choice.choose_sizing`) corrects a segment
        whose chosen option replays more than its tolerance under the target: it sizes that option
        for a smaller shortfall until the replay at its earlier origin meets the target.
        ``sparse``: intermittent and lumpy segments only (SBC class; where a few backtest windows
        with demand cannot show the tail of an L + R sum of sparse demand); ``all``: every segment
        (also smooth and erratic ones, whose replay misses follow level and season shifts of the
        replayed months); ``off``: the chosen options as sized. ``sparse_both`` / ``all_both``: the
        same segments, and also the correction down: a segment whose chosen option replays more than
        the tolerance *above* its target is sized for a larger shortfall, the factors tried in turn
        until one misses, keeping the largest whose replay still serves the target plus the tolerance.
    """

    space: CandidateSpace = field(default_factory=CandidateSpace)
    freq: str = "W-MON"
    season_length: int = 1
    seasonal_model: bool = True
    phased_shrinkage: float | Literal["estimate"] | None = "estimate"
    relative_errors: bool = False
    seasonal_period: int | None = None
    n_windows: int = 16
    step: int = 1
    spread_season_blind: bool = True
    refit_every: int | Literal["auto"] = 1
    test_periods: int = 26
    service_tolerance: float = 0.03
    quantile_points: int = 200
    min_empirical: int = 6
    shrinkage: float | Literal["estimate"] = ErrorModelConfig.shrinkage
    n_jobs: int = 1
    sim_paths: int = 30
    sim_periods: int = 52
    label_paths: int = 40
    block_length: int | None = None
    replay_correction: str = "sparse_both"

    def __post_init__(self) -> None:
        if not isinstance(self.space, CandidateSpace):
            raise TypeError(f"space must be a CandidateSpace, got {type(self.space).__name__}")
        for name in (
            "season_length",
            "n_windows",
            "step",
            "test_periods",
            "quantile_points",
            "n_jobs",
            "sim_paths",
            "sim_periods",
        ):
            if int(getattr(self, name)) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.refit_every != "auto" and (isinstance(self.refit_every, str) or int(self.refit_every) < 1):
            raise ValueError(f"refit_every must be an integer >= 1 or 'auto', got {self.refit_every!r}")
        if int(self.label_paths) < 0:
            raise ValueError(f"label_paths must be >= 0 (0 = realised path only), got {self.label_paths}")
        if self.seasonal_period is not None and int(self.seasonal_period) < 2:
            raise ValueError(f"seasonal_period must be >= 2 or None (from freq), got {self.seasonal_period}")
        if self.block_length is not None and int(self.block_length) < 1:
            raise ValueError(f"block_length must be >= 1 or None (automatic), got {self.block_length}")
        if self.n_windows < 2:
            raise ValueError(f"n_windows must be >= 2 for error distributions, got {self.n_windows}")
        if not 0.0 <= self.service_tolerance < 1.0:
            raise ValueError(f"service_tolerance must be in [0, 1), got {self.service_tolerance}")
        if self.min_empirical < 2:
            raise ValueError(f"min_empirical must be >= 2 windows, got {self.min_empirical}")
        if self.replay_correction not in REPLAY_CORRECTIONS:
            raise ValueError(
                f"replay_correction must be one of {list(REPLAY_CORRECTIONS)}, got {self.replay_correction!r}"
            )
        ErrorModelConfig(shrinkage=self.shrinkage)  # the error model's own check of the value
        k = self.phased_shrinkage
        if k is not None and (k != "estimate" if isinstance(k, str) else not float(k) >= 0):
            raise ValueError(f"phased_shrinkage must be 'estimate', >= 0 pseudo-windows or None, got {k!r}")

    def season_step(self, season_length: int) -> int:
        """Window spacing that spreads ``n_windows`` over one season: ``max(step, m // n_windows)``.

        Examples
        --------
        >>> SelectorConfig().season_step(52), SelectorConfig().season_step(12)
        (3, 1)
        """
        return max(int(self.step), int(season_length) // int(self.n_windows))

    def refit_per_series(self, n_before_first_cutoff) -> np.ndarray:
        """statsforecast's ``refit`` per series: 1 = every window, ``n_windows`` = once.

        Parameters
        ----------
        n_before_first_cutoff : array_like of int, shape (n_series,)
            Periods of history each series has up to the backtest's first cutoff.

        Examples
        --------
        >>> SelectorConfig(refit_every="auto").refit_per_series([24, 75, 130]).tolist()
        [1, 16, 16]
        >>> SelectorConfig(refit_every=4).refit_per_series([24, 130]).tolist()
        [4, 4]
        """
        n = np.asarray(n_before_first_cutoff, dtype=float)
        if self.refit_every != "auto":
            return np.full(n.shape, min(int(self.refit_every), self.n_windows), dtype=int)
        long = n >= AUTO_REFIT_SPAN_MULTIPLE * (self.n_windows - 1) * self.step
        return np.where(long, self.n_windows, 1).astype(int)
