"""Distribution of the cumulative forecast error over H periods, per series and model.

The buffer an inventory policy holds covers the forecast error accumulated over
its exposure H = lead time + review period, not the demand variance. From a
rolling-origin backtest (``Forecaster.cross_validation``) every cutoff gives one
sample of ``E_H = sum(actual) - sum(forecast)`` over the first H steps after
it, for every H up to the backtest horizon.

A series has few such samples, so its mean and variance are shrunk toward the
pooled, scale-free errors of its segment (credibility weighting with ``k``
pseudo-windows, weight ``n / (n + k)`` on the series' own estimate: by default
(``shrinkage="estimate"``) a k estimated per segment over effective windows, or a
fixed k; time-phased series are pooled apart with a k estimated from their pool over
effective windows, :attr:`ErrorModelConfig.phased_shrinkage`). For
integer-valued demand the family (normal vs negative binomial) is chosen by
log-likelihood of the backtest samples; see :mod:`forecasting.error_dists`.

This module holds the configuration and the :class:`ErrorModel` itself. The credibility
estimators (the pool, k, the shrinker) live in :mod:`forecasting.credibility`, the arithmetic of
overlapping windows in :mod:`forecasting.overlap` and the calibrated family choice of ``auto`` in
:mod:`forecasting.family_choice`; their public names are importable from here too.

References
----------
Bühlmann, H. & Gisler, A. (2005). *A Course in Credibility Theory and its
Applications*. Springer (credibility weights n / (n + k)).
Silver, E. A., Pyke, D. F. & Thomas, D. J. (2017). *Inventory and Production
Management in Supply Chains*, 4th ed., ch. 6 (forecast errors over L + R;
lead-time variance term mu_d^2 sigma_L^2).
Syntetos, A. A. & Boylan, J. E. (2021). *Intermittent Demand Forecasting*. Wiley.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from forecasting.calibration import fit_calibration, loo_pit
from forecasting.core import NotFittedError
from forecasting.credibility import (  # noqa: F401  (estimated_*: re-exported, their home before the split)
    _credibility,
    _pool,
    _scales,
    _shrinker,
    estimated_mean_shrinkage,
    estimated_shrinkage,
    overlap_fourth_moments,
    series_fourth_moments,
)
from forecasting.error_dists import CDF, PPF, empirical_cdf, empirical_ppf, lead_time_pmf, negbin_loglik, normal_loglik
from forecasting.family_choice import CHOICE_LEVELS, _choose_calibrated, _family_options  # noqa: F401  (re-exported)
from forecasting.overlap import _overlap_correction, effective_windows  # noqa: F401  (re-exported)
from forecasting.windows import Windows, cumulative_windows, split_cv

__all__ = ["ErrorModel", "ErrorModelConfig", "split_cv", "lead_time_pmf", "cumulative_windows"]

DISTRIBUTIONS = ("auto", "normal", "negbin", "empirical")


@dataclass(frozen=True)
class ErrorModelConfig:
    """How the error distributions are fitted.

    Parameters
    ----------
    shrinkage : float or "estimate", default "estimate"
        How much of its own errors a series keeps against its segment's pool (its credibility).
        ``"estimate"``: per segment and H the credibility its own windows support, over effective
        windows, for the variance and the bias apart (as ``phased_shrinkage="estimate"`` for the
        phased pool; :func:`estimated_shrinkage`, :func:`estimated_mean_shrinkage`), each series'
        sampling noise from its own fourth moment. A number: ``k`` raw pseudo-windows of the
        segment pool for every segment (weight ``(n - 1) / (n - 1 + k)``; 0 uses each series' own
        errors only; 8 was the default until 2026-11-30). This one default serves every front door:
        the plan's and ``stockwise backtest``'s error quantiles, ``stockwise forecast`` and the
        policy selector (``SelectorConfig.shrinkage``); the run config's ``error_model.shrinkage``
        sets it for a run.
    distribution : {"auto", "normal", "negbin", "empirical"}, default "auto"
        ``auto``: with ``calibrate``, per segment the family (normal, negative
        binomial for integer demand, empirical where a series has
        ``min_empirical`` windows) that, recalibrated to the same held-out
        coverage, needs the least stock; without it, normal vs negative
        binomial by log-likelihood for integer demand, normal otherwise. ``negbin``: negative binomial wherever demand is
        integer. ``empirical``: the series' own error quantiles where it has at
        least ``min_empirical`` windows, normal otherwise.
    min_empirical : int, default 20
    calibrate : bool, default True
        Recalibrate each family's quantile levels per segment and H by the
        leave-one-window-out coverage of the backtest (split-conformal; see
        :mod:`forecasting.calibration`), so that the p-quantile covers a share p
        of held-out windows. False uses the family's own quantiles.
    min_calibration : int, default 20
        Held-out windows a segment needs before its levels are recalibrated;
        fewer leave the family's own levels (counted in ``uncalibrated_``).
    phased_shrinkage : float or "estimate", default "estimate"
        Credibility of the ``phased`` series of :meth:`ErrorModel.fit` (pooled apart from their
        segment): ``"estimate"`` takes the segment's k from its own windows (Bühlmann-Straub's
        structural parameters: how much of the item-to-item spread of the scale-free variance is
        more than sampling noise, :func:`estimated_shrinkage`); a number is that many *effective*
        pseudo-windows. Either weighs a series' variance by its effective windows
        (:func:`effective_windows`), not its overlapping ones.
    relative_phased : bool, default False
        Take the ``phased`` series' errors relative to the forecast, rescaled to the forecast from
        the cutoff (``reference`` of :meth:`ErrorModel.fit`). Tried on the store proxy and not kept
        (docs/benchmarks/proxies.md): noise that is not proportional to the level makes the
        rescaled sample scatter more.
    """

    shrinkage: float | str = "estimate"
    distribution: str = "auto"
    min_empirical: int = 20
    calibrate: bool = True
    min_calibration: int = 20
    phased_shrinkage: float | str = "estimate"
    relative_phased: bool = False

    def __post_init__(self) -> None:
        if self.distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution {self.distribution!r} unknown; use one of {DISTRIBUTIONS}")
        k = self.shrinkage
        if k is None or isinstance(k, str) and k != "estimate" or not isinstance(k, str) and not float(k) >= 0:
            raise ValueError(f"shrinkage must be 'estimate' or >= 0 pseudo-windows, got {k!r}")
        if self.min_empirical < 2:
            raise ValueError(f"min_empirical must be >= 2 windows, got {self.min_empirical}")
        if self.min_calibration < 2:
            raise ValueError(f"min_calibration must be >= 2 windows, got {self.min_calibration}")
        k = self.phased_shrinkage
        if k is None or isinstance(k, str) and k != "estimate" or not isinstance(k, str) and not float(k) >= 0:
            raise ValueError(f"phased_shrinkage must be 'estimate' or >= 0 effective pseudo-windows, got {k!r}")


class ErrorModel:
    """Cumulative forecast-error distributions per (series, model, H) from a backtest.

    Parameters
    ----------
    config : ErrorModelConfig, optional

    Attributes
    ----------
    ids_ : ndarray of str
    models_ : list of str
    horizon_ : int
        Longest H available (the backtest horizon).
    segment_ : pandas.Series
        Segment of each series (the shrinkage pool).
    mean_demand_ : pandas.Series
        Mean demand per period (mu_d in the lead-time variance term).
    scale_ : pandas.Series
        Pooling scale per series (mean absolute one-step change).
    family_ : pandas.DataFrame
        Chosen family per series (rows) and model (columns).
    phased_ : pandas.Series of bool
        The ``phased`` series of :meth:`fit` (pooled apart, ``phased_shrinkage``).

    Examples
    --------
    >>> em = ErrorModel().fit(cv, segments=chars.set_index("unique_id")["sbc_class"])  # doctest: +SKIP
    >>> em.quantile(["A", "B"], H=2.5, p=0.95, model="CrostonSBA")                      # doctest: +SKIP
    """

    def __init__(self, config: ErrorModelConfig | None = None):
        self.config = config

    def fit(
        self,
        cv: pd.DataFrame,
        segments: pd.Series | None = None,
        history: pd.DataFrame | None = None,
        models: list[str] | None = None,
        phased: pd.Series | None = None,
        reference: dict | None = None,
    ) -> ErrorModel:
        """Fit the error distributions of every model on a backtest table.

        Parameters
        ----------
        cv : pandas.DataFrame
            ``unique_id, ds, cutoff, y, <models>``.
        segments : pandas.Series, optional
            Segment label per ``unique_id`` (e.g. SBC class); one pool when omitted.
        history : pandas.DataFrame, optional
            Demand ``unique_id, ds, y``. Gives each series' pooling scale (mean
            absolute one-step naive change, which tracks the error std for both
            Poisson-like and multiplicative noise) and its mean demand mu_d.
            Default: both from the distinct actuals in ``cv``.
        models : list of str, optional
            Forecast columns to fit; default all.
        phased : pandas.Series of bool, optional
            By ``unique_id``, the time-phased series (the selector's MSTL ones,
            whose level moves with a season or trend). They are pooled and calibrated apart from
            their segment (segment + :data:`PHASED_SUFFIX`), and their variance is shrunk with
            ``phased_shrinkage`` over effective windows: 16 overlapping sums of 2-4 periods are a
            noisy per-item variance, while the pooling scale (the mean absolute one-step change of
            the whole history) is a steady one. With ``relative_phased`` their errors are relative
            to the forecast (:func:`_to_reference`).
        reference : dict of str -> pandas.DataFrame, optional
            Per model, the cumulative point forecast from the decision's cutoff, index
            ``unique_id``, columns the steps 1..H of the backtest horizon; needed by
            ``relative_phased`` (the level the relative errors are rescaled to).

        Returns
        -------
        ErrorModel
            ``self``.
        """
        cfg = self.config or ErrorModelConfig()
        win = cumulative_windows(cv, models)
        ids = pd.Index(win.ids)
        seg = pd.Series("all", index=ids) if segments is None else segments.reindex(ids)
        if seg.isna().any():
            raise ValueError(
                f"segments lack series {seg.index[seg.isna()][:10].tolist()}; give a segment for every unique_id"
            )
        source = cv if history is None else history
        mean_demand, scale = _scales(source, ids)
        rel = _phased_flags(phased, reference if cfg.relative_phased else {}, ids)
        # their errors are pooled and calibrated apart from the segment's static items
        if rel.any():
            seg = seg.astype(str).where(~rel, seg.astype(str) + PHASED_SUFFIX)
        seg_code, seg_names = pd.factorize(seg.to_numpy())
        self._win, self._scale, self._seg_code = win, mean_demand, seg_code
        self._params = {
            m: self._fit_model(win, m, cfg, scale, seg_code, rel, None if reference is None else reference.get(m))
            for m in win.forecast
        }
        self.ids_, self.models_, self.horizon_ = win.ids, list(win.forecast), win.actual.shape[1]
        self.segment_ = seg.rename("segment")
        self.mean_demand_ = pd.Series(mean_demand, index=ids, name="mean_demand")
        self.scale_ = pd.Series(scale, index=ids, name="scale")
        self.family_ = pd.DataFrame({m: p["family"] for m, p in self._params.items()}, index=ids)
        self.phased_ = pd.Series(rel, index=ids, name="phased")
        self._index = pd.Index(win.ids)
        self._whole = win.integral
        return self

    def _fit_model(
        self,
        win: Windows,
        model: str,
        cfg: ErrorModelConfig,
        scale: np.ndarray,
        seg_code: np.ndarray,
        rel: np.ndarray,
        reference: pd.DataFrame | None = None,
    ) -> dict:
        """Shrunk moments, mean cumulative forecast, chosen family and level calibration for one model."""
        errors = win.pad(win.actual - win.forecast[model])  # (S, w, H)
        forecasts = win.pad(win.forecast[model])
        if rel.any() and cfg.relative_phased:
            ref = reference.reindex(win.ids).to_numpy(dtype=float)[:, : errors.shape[2]]
            errors, forecasts = _to_reference(errors, forecasts, ref, rel)
        fbar = np.nanmean(forecasts, axis=1)  # (S, H)
        n = np.sum(~np.isnan(errors[:, :, 0]), axis=1)  # (S,)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)
            own_mean = np.nanmean(errors, axis=1)
            own_var = np.nan_to_num(np.nanvar(errors, axis=1, ddof=1))
        own_var = own_var * _overlap_correction(n, errors.shape[2], win.step)
        pool_mean, pool_var = _pool(errors, scale, seg_code)
        # the sample variances' noise grows with the errors' kurtosis, read from the one-step windows where they overlap
        m4 = overlap_fourth_moments(series_fourth_moments(errors), n, win.step)
        k, k_mean = _credibility(cfg, own_mean, own_var, scale, n, win.step, seg_code, rel, m4)
        shrink = _shrinker(k, pool_mean[seg_code] * scale[:, None], pool_var[seg_code] * scale[:, None] ** 2, k_mean)
        mean, var = shrink(own_mean, own_var, n)
        out = {"mean": mean, "var": var, "fbar": fbar, "n": n, "sorted": np.sort(errors, axis=1)}
        if not cfg.calibrate:
            out["family"] = self._choose_family(cfg, win, mean, var, forecasts, n)
            return out

        def calibrate(family: np.ndarray):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)
                pit = loo_pit(
                    errors,
                    forecasts,
                    family,
                    win.integral,
                    shrink,
                    lambda m: _overlap_correction(m, errors.shape[2], win.step),
                )
            return fit_calibration(pit, seg_code, cfg.min_calibration)

        if cfg.distribution == "auto":
            options = _family_options(win.integral, n, cfg.min_empirical)
            fits = {name: (fam, calibrate(fam)) for name, fam in options.items()}
            out["family"], out["calibration"] = _choose_calibrated(fits, out, seg_code, win.integral)
        else:
            out["family"] = self._choose_family(cfg, win, mean, var, forecasts, n)
            out["calibration"] = calibrate(out["family"])
        return out

    @staticmethod
    def _choose_family(cfg, win, mean, var, forecasts, n) -> np.ndarray:
        """Family per series: configured, or the higher log-likelihood for integer demand.

        Each window's demand is scored against the family centred on that
        window's own forecast, as the distribution is used at decision time.
        """
        family = np.full(len(n), "normal", dtype=object)
        if cfg.distribution == "negbin":
            family[win.integral] = "negbin"
        elif cfg.distribution == "empirical":
            family[n >= cfg.min_empirical] = "empirical"
        elif cfg.distribution == "auto" and win.integral.any():
            sel = win.integral
            demand = np.round(win.pad(win.actual)[sel])
            args = (mean[sel][:, None], var[sel][:, None], np.nan_to_num(forecasts[sel]))
            ok = ~np.isnan(demand)
            d = np.where(ok, demand, 0.0)
            ll_n = np.where(ok, normal_loglik(d, *args), 0.0).sum(axis=(1, 2))
            ll_nb = np.where(ok, negbin_loglik(d, *args), 0.0).sum(axis=(1, 2))
            family[np.flatnonzero(sel)[ll_nb > ll_n]] = "negbin"
        return family

    # -- queries ------------------------------------------------------------------

    def _check_fitted(self) -> None:
        if not hasattr(self, "ids_"):
            raise NotFittedError("this ErrorModel is not fitted yet; call fit(cv) first")

    def _codes(self, unique_id) -> np.ndarray:
        ids = np.asarray(unique_id, dtype=str)
        codes = self._index.get_indexer(ids.ravel())
        if (codes < 0).any():
            unknown = sorted(map(str, set(ids.ravel()[codes < 0])))[:10]
            raise ValueError(f"unknown series {unknown}; fit the ErrorModel on a backtest containing them")
        return codes.reshape(ids.shape)

    def _integral(self, unique_id) -> np.ndarray:
        return self._whole[self._codes(unique_id)]

    def _model_names(self, model, shape) -> np.ndarray:
        if model is None:
            if len(self.models_) > 1:
                raise ValueError(f"several models fitted {self.models_}; pass model=")
            model = self.models_[0]
        names = np.broadcast_to(np.asarray(model, dtype=object), shape)
        unknown = sorted(set(names.ravel()) - set(self.models_))
        if unknown:
            raise ValueError(f"unknown model(s) {unknown}; fitted models are {self.models_}")
        return names

    def _raw_grid(
        self, model: str, s: np.ndarray, p: np.ndarray, extra_var: np.ndarray, rate: np.ndarray | None = None
    ) -> np.ndarray:
        """Unenforced quantiles at every integer H = 1..horizon_, shape (len(s), horizon_)."""
        par = self._params[model]
        mean, var, fbar = par["mean"][s], par["var"][s] + extra_var[:, None], par["fbar"][s]
        if rate is not None:
            steps = np.arange(1, self.horizon_ + 1)[None, :]
            fbar = np.where(np.isnan(rate)[:, None], fbar, np.nan_to_num(rate)[:, None] * steps)
        fam = par["family"][s]
        out = np.empty(mean.shape)
        pp = self._levels(model, s, p, mean.shape)
        for name, ppf in PPF.items():
            rows = fam == name
            if rows.any():
                out[rows] = ppf(pp[rows], mean[rows], var[rows], fbar[rows])
        rows = np.flatnonzero(fam == "empirical")
        if len(rows):
            base_var = par["var"][s[rows]]
            lift = stats.norm.ppf(pp[rows]) * (np.sqrt(base_var + extra_var[rows, None]) - np.sqrt(base_var))
            for h in range(self.horizon_):
                out[rows, h] = empirical_ppf(par["sorted"][s[rows], :, h], par["n"][s[rows]], pp[rows, h])
            out[rows] += lift
        return out

    def _levels(self, model: str, s: np.ndarray, p: np.ndarray, shape) -> np.ndarray:
        """Family levels per row and H: the calibrated p' where fitted, else p itself."""
        cal = self._params[model].get("calibration")
        if cal is None:
            return np.broadcast_to(p[:, None], shape)
        return cal.level(p, self._seg_code[s])

    def capped(self, unique_id, p: float, model: str) -> np.ndarray:
        """Whether the calibrated target ``p`` lies beyond every held-out window of the series' segment.

        Such series are sized at the family's level :data:`forecasting.calibration.P_CAP`;
        their expected service may fall short of ``p`` (callers report it as a reason).
        """
        self._check_fitted()
        cal = self._params[self._model_names(model, ())[()]].get("calibration")
        s = self._codes(np.atleast_1d(unique_id))
        if cal is None:
            return np.zeros(len(s), dtype=bool)
        return cal.capped(float(p), self._seg_code[s])

    def quantile(self, unique_id, H, p, model=None, lead_time_std=0.0, forecast_rate=np.nan) -> np.ndarray:
        """p-quantile of the cumulative forecast error over H periods.

        Vectorised: ``unique_id``, ``H``, ``p``, ``model`` and ``lead_time_std``
        broadcast against each other. Fractional H interpolates linearly
        between integer horizons (from 0 at H = 0). The result is monotone in
        ``p`` and, on H >= 1, non-decreasing in H for p >= 0.5 (non-increasing
        for p < 0.5): a longer exposure never needs a smaller buffer.

        Parameters
        ----------
        unique_id : str or array-like of str
        H : float or array-like
            Exposure in periods, 0 < H <= ``horizon_``.
        p : float or array-like
            Probability in (0, 1).
        model : str or array-like of str, optional
            Required when several models were fitted.
        lead_time_std : float or array-like, default 0
            Std of the lead time in periods; adds mu_d^2 sigma_L^2 to the variance
            (exact for the normal family, a moment approximation otherwise).
        forecast_rate : float or array-like, optional
            Current point forecast per period. Discrete families are conditional
            on the forecast (demand ~ NB(forecast + bias, var)); give it to centre
            them on today's forecast instead of the backtest's mean forecast.
            Ignored by the normal and empirical families.

        Returns
        -------
        numpy.ndarray
            Broadcast shape of the inputs (0-d for scalars; use ``float()``).

        Raises
        ------
        ValueError
            Unknown series or model, H outside (0, horizon_], p outside (0, 1).
        """
        self._check_fitted()
        ids, H, p, sd, rate = np.broadcast_arrays(
            np.asarray(unique_id, dtype=str),
            np.asarray(H, float),
            np.asarray(p, float),
            np.asarray(lead_time_std, float),
            np.asarray(forecast_rate, float),
        )
        names = self._model_names(model, ids.shape)
        if ((H <= 0) | (H > self.horizon_)).any():
            raise ValueError(
                f"H must lie in (0, {self.horizon_}] (the backtest horizon); got "
                f"{sorted(set(H[(H <= 0) | (H > self.horizon_)].tolist()))[:5]}"
            )
        if ((p <= 0) | (p >= 1)).any():
            raise ValueError(f"p must lie in (0, 1); got {sorted(set(p[(p <= 0) | (p >= 1)].tolist()))[:5]}")
        if (sd < 0).any():
            raise ValueError("lead_time_std must be >= 0")
        s = self._codes(ids).ravel()
        H, p, sd, rate, names = H.ravel(), p.ravel(), sd.ravel(), rate.ravel(), names.ravel()
        out = np.empty(len(s))
        for m in np.unique(names):
            rows = names == m
            extra = (self._scale[s[rows]] * sd[rows]) ** 2
            grid = _enforce(self._raw_grid(m, s[rows], p[rows], extra, rate[rows]), p[rows])
            out[rows] = _interpolate(grid, H[rows], p[rows])
        return out.reshape(ids.shape)

    def quantile_mixture(self, unique_id, horizons, weights, p, model=None) -> np.ndarray:
        """p-quantile of the error over a random exposure H ~ {horizons: weights}.

        The CDF is the mixture ``sum_j w_j F_{H_j}(x)``; its quantile is found by
        bisection. Use :func:`lead_time_pmf` for a discretised normal lead time.

        Returns
        -------
        numpy.ndarray
            Shape of ``unique_id``/``p`` broadcast together.
        """
        self._check_fitted()
        h = np.asarray(horizons, dtype=int)
        w = np.asarray(weights, dtype=float)
        if h.shape != w.shape or h.ndim != 1 or (h < 1).any() or (h > self.horizon_).any():
            raise ValueError(f"horizons must be integers in [1, {self.horizon_}] matching weights")
        if not np.isclose(w.sum(), 1.0) or (w < 0).any():
            raise ValueError(f"weights must be >= 0 and sum to 1, got sum {w.sum():.4f}")
        ids, p = np.broadcast_arrays(np.asarray(unique_id, dtype=str), np.asarray(p, float))
        names = self._model_names(model, ids.shape).ravel()
        s, pr = self._codes(ids).ravel(), p.ravel()
        out = np.empty(len(s))
        for m in np.unique(names):
            rows = names == m
            out[rows] = self._mixture(m, s[rows], pr[rows], h, w)
        return out.reshape(ids.shape)

    def _mixture(self, model, s, p, h, w) -> np.ndarray:
        raw = self._raw_grid(model, s, p, np.zeros(len(s)))[:, h - 1]
        lo, hi = raw.min(axis=1) - 1e-6, raw.max(axis=1) + 1e-6
        for _ in range(60):
            mid = 0.5 * (lo + hi)
            below = self._mixture_cdf(model, s, mid, h, w) >= p
            hi, lo = np.where(below, mid, hi), np.where(below, lo, mid)
        return hi

    def _mixture_cdf(self, model, s, x, h, w) -> np.ndarray:
        par = self._params[model]
        fam = par["family"][s]
        total = np.zeros(len(s))
        for j, hj in enumerate(h - 1):
            cdf = np.empty(len(s))
            for name, fn in CDF.items():
                rows = fam == name
                cdf[rows] = fn(x[rows], par["mean"][s[rows], hj], par["var"][s[rows], hj], par["fbar"][s[rows], hj])
            rows = fam == "empirical"
            if rows.any():
                cdf[rows] = empirical_cdf(par["sorted"][s[rows], :, hj], par["n"][s[rows]], x[rows])
            if par.get("calibration") is not None:
                cdf = par["calibration"].cdf(cdf, self._seg_code[s], hj)
            total += w[j] * cdf
        return total

    def table(self, horizons=None, quantiles=(0.5, 0.8, 0.9, 0.95, 0.99)) -> pd.DataFrame:
        """Tidy table: one row per (series, model, H) with moments and quantiles.

        Returns
        -------
        pandas.DataFrame
            ``unique_id, model, H, mean, std, q0.5, ..., distribution, n_samples, segment``.
        """
        self._check_fitted()
        hs = np.arange(1, self.horizon_ + 1) if horizons is None else np.asarray(horizons, float)
        n_s, frames = len(self.ids_), []
        for m in self.models_:
            par = self._params[m]
            uid, hh = np.repeat(self.ids_, len(hs)), np.tile(hs, n_s)
            frame = pd.DataFrame({"unique_id": uid, "model": m, "H": hh})
            mean = _interp_moment(par["mean"], hs)
            var = _interp_moment(par["var"], hs)
            frame["mean"], frame["std"] = mean.ravel(), np.sqrt(np.maximum(var, 0)).ravel()
            for q in quantiles:
                frame[f"q{q:g}"] = self.quantile(uid, hh, q, model=m)
            frame["distribution"] = np.repeat(par["family"], len(hs))
            frame["n_samples"] = np.repeat(par["n"], len(hs))
            frame["segment"] = np.repeat(self.segment_.to_numpy(), len(hs))
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    def calibration(self, cv_holdout: pd.DataFrame, levels=(0.8, 0.9, 0.95, 0.99), horizons=None) -> pd.DataFrame:
        """Empirical coverage of the upper p-quantiles on held-out backtest windows.

        For each held-out window, model, H and level, checks whether the
        realised cumulative error is <= the fitted quantile (discrete families
        centred on that window's forecast, as at decision time; for integer
        demand the level forecast + quantile is rounded up to whole units, as
        the sizing does).

        Returns
        -------
        pandas.DataFrame
            ``model, level, n, coverage, gap`` (gap = coverage - level), pooled over
            ``horizons`` (default every H up to ``horizon_``).
        """
        self._check_fitted()
        win = cumulative_windows(cv_holdout, [m for m in self.models_ if m in cv_holdout.columns])
        hs = np.arange(1, self.horizon_ + 1) if horizons is None else np.asarray(horizons, int)
        if win.actual.shape[1] < hs.max():
            raise ValueError(f"held-out windows have {win.actual.shape[1]} steps, need {hs.max()}")
        rows = []
        uid = np.repeat(win.ids[win.code], len(hs))
        hh = np.tile(hs, len(win.code))
        for m in win.forecast:
            err = (win.actual - win.forecast[m])[:, hs - 1].ravel()
            rate = (win.forecast[m][:, hs - 1] / hs).ravel()
            whole = np.repeat(self._integral(win.ids[win.code]), len(hs))
            fc = win.forecast[m][:, hs - 1].ravel()
            for level in levels:
                q = self.quantile(uid, hh, level, model=m, forecast_rate=rate)
                # integer demand: the level is rounded up to whole units, as every sizing does
                q = np.where(whole, np.ceil(fc + q - 1e-9) - fc, q)
                covered = err <= q + 1e-9
                rows.append(
                    {
                        "model": m,
                        "level": level,
                        "n": len(err),
                        "coverage": covered.mean(),
                        "gap": covered.mean() - level,
                    }
                )
        return pd.DataFrame(rows)


#: Appended to the segment of the time-phased series (``phased`` of :meth:`ErrorModel.fit`).
PHASED_SUFFIX = " (phased)"


def _phased_flags(phased: pd.Series | None, reference: dict | None, ids: pd.Index) -> np.ndarray:
    """Per series (S,), whether it is time-phased; checks the inputs (``reference`` None: needed, missing)."""
    if phased is None:
        return np.zeros(len(ids), dtype=bool)
    if reference is None:
        raise ValueError("relative_phased errors need reference=: the cumulative forecast from the cutoff per model")
    flags = phased.reindex(ids)
    if flags.isna().any():
        raise ValueError(
            f"phased lacks series {flags.index[flags.isna()][:10].tolist()}; give True/False for every unique_id"
        )
    return flags.to_numpy(dtype=bool)


def _to_reference(errors, forecasts, ref, rel):
    """Phased series' errors relative to the forecast, rescaled to the reference level (``relative_phased``).

    ``errors, forecasts`` (S, w, H), ``ref`` (S, H) the cumulative forecast from the cutoff. Each
    window's error becomes e * ref / F and its forecast ref. A series keeps absolute errors when a
    window's forecast or its reference is not positive (a ratio to zero describes no level).
    """
    present = ~np.isnan(forecasts)
    positive = np.where(present, forecasts > 0, True).all(axis=(1, 2)) & (np.nan_to_num(ref) > 0).all(axis=1)
    rows = rel & positive
    if not rows.any():
        return errors, forecasts
    errors, forecasts = errors.copy(), forecasts.copy()
    errors[rows] = errors[rows] * ref[rows][:, None, :] / forecasts[rows]
    forecasts[rows] = np.where(present[rows], ref[rows][:, None, :], np.nan)
    return errors, forecasts


def _enforce(grid: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Upper quantiles non-decreasing in H, lower ones non-increasing (preserves order in p)."""
    up = p >= 0.5
    grid[up] = np.maximum.accumulate(grid[up], axis=1)
    grid[~up] = np.minimum.accumulate(grid[~up], axis=1)
    return grid


def _interpolate(grid: np.ndarray, H: np.ndarray, p: np.ndarray) -> np.ndarray:
    """Linear interpolation in H over columns H = 0, 1, ..., with a monotone anchor at 0."""
    first = grid[:, 0]
    anchor = np.where(p >= 0.5, np.minimum(first, 0.0), np.maximum(first, 0.0))
    full = np.column_stack([anchor, grid])
    lo = np.minimum(np.floor(H).astype(int), grid.shape[1] - 1)
    frac = H - lo
    rows = np.arange(len(H))
    return full[rows, lo] + frac * (full[rows, lo + 1] - full[rows, lo])


def _interp_moment(values: np.ndarray, hs: np.ndarray) -> np.ndarray:
    """Moments at (fractional) horizons, linear between integers from 0 at H = 0."""
    full = np.column_stack([np.zeros(len(values)), values])
    lo = np.minimum(np.floor(hs).astype(int), values.shape[1] - 1)
    frac = hs - lo
    return full[:, lo] + frac * (full[:, lo + 1] - full[:, lo])
