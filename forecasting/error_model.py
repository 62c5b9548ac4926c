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

from forecasting.calibration import Calibration, fit_calibration, loo_pit
from forecasting.core import NotFittedError
from forecasting.error_dists import CDF, PPF, empirical_cdf, empirical_ppf, lead_time_pmf, negbin_loglik, normal_loglik
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


def effective_windows(n: np.ndarray, horizon: int, step) -> np.ndarray:
    """Independent windows worth of the variance information in n overlapping ones, shape (S, H).

    Sums of H one-step errors from cutoffs ``step`` apart are correlated with
    rho_k = max(0, 1 - k step / H); the sample variance of n such sums has variance
    2 sigma^4 / n (1 + 2 sum_k (1 - k/n) rho_k^2) (Bartlett 1946), i.e. that of
    n / (1 + 2 sum_k (1 - k/n) rho_k^2) independent windows (16 windows one period
    apart: 16 at H = 1, 6.2 at H = 4).

    Examples
    --------
    >>> effective_windows(np.array([16]), 4, 1).round(1).tolist()
    [[16.0, 10.9, 7.9, 6.2]]
    """
    return _windows(n, horizon, step, power=2)


def _windows(n: np.ndarray, horizon: int, step, power: int) -> np.ndarray:
    """n / (1 + 2 sum_k (1 - k/n) rho_k^power) per series and H (:func:`effective_windows`, :func:`_mean_windows`)."""
    n = np.asarray(n, dtype=int)
    steps = np.broadcast_to(np.asarray(step, dtype=int), n.shape)
    out = np.ones((len(n), horizon)) * n[:, None].astype(float)
    h = np.arange(1, horizon + 1)[None, :]
    for size, gap in {(a, b) for a, b in zip(n.tolist(), steps.tolist()) if a > 1}:
        k = np.arange(1, size)[:, None]
        rho = np.clip(1.0 - k * gap / h, 0.0, None)
        inflation = 1.0 + 2.0 * ((1.0 - k / size) * rho**power).sum(axis=0)
        out[(n == size) & (steps == gap)] = size / inflation
    return out


def estimated_shrinkage(v: np.ndarray, dof: np.ndarray, z4: np.ndarray | None = None) -> float:
    """Credibility k (effective pseudo-windows) of scale-free variances ``v`` with ``dof`` degrees of freedom.

    Bühlmann-Straub's structural parameters by the method of moments: the spread of the true
    variances is tau^2 = var(v) - mean(sampling variance of v_i), and the weight nu / (nu + k) on a
    series' own variance minimises the mean squared error with k = mean(nu_i x sampling variance) /
    tau^2. For normal errors a sample variance of nu_i = n_eff - 1 degrees of freedom has sampling
    variance 2 sigma_i^4 / nu_i, estimated without bias by 2 v_i^2 / (nu_i + 2), so k = 2 (mean(v)^2
    + tau^2) / tau^2. With ``z4`` (each series' mean fourth power of its standardised errors,
    :func:`series_fourth_moments`) the sampling variance is the distribution-free
    (mu4_i - sigma_i^4 (n - 3) / (n - 1)) / n with mu4_i = z4_i v_i^2 (n = n_eff; z4 = 3, the normal's,
    where a series has too few windows for it): heavy-tailed errors (a few large orders in sparse
    demand) make sample variances noisier than the normal theory says, which would otherwise read
    that noise as a real difference between series. Overlapping windows (cutoffs closer than H)
    hide part of the tails from a window's own z4; :func:`overlap_fourth_moments` gives the z4 that
    carries the one-step tails into them (what :meth:`ErrorModel.fit` passes). tau^2 <= 0 (all the
    spread is sampling noise) gives k = inf: every series takes the pooled variance; a single series
    keeps its own (k = 0).

    Examples
    --------
    >>> estimated_shrinkage(np.array([1.0, 1.0, 1.0]), np.array([5.0, 5.0, 5.0]))
    inf
    >>> round(estimated_shrinkage(np.array([0.5, 1.0, 4.0, 8.0]), np.full(4, 1e6)), 3)
    3.915
    """
    ok = np.isfinite(v) & (dof > 0)
    v, dof = v[ok], dof[ok]
    if len(v) < 2:  # a series alone in its pool: nothing to pool toward but itself, keep its own (corrected) variance
        return 0.0
    if z4 is None:
        tau2 = np.var(v, ddof=1) - np.mean(2 * v**2 / (dof + 2))
        return float(2 * (np.mean(v) ** 2 + tau2) / tau2) if tau2 > 0 else np.inf
    n = dof + 1.0
    z4 = np.where(np.isfinite(z4[ok]), z4[ok], 3.0)  # too few windows for a fourth moment: the normal's
    noise = v**2 * (z4 - (n - 3) / (n - 1)) / n  # Var(s^2) = (mu4 - sigma^4 (n - 3) / (n - 1)) / n, n >= 2
    tau2 = np.var(v, ddof=1) - np.mean(noise)
    return float(np.mean(noise * dof) / tau2) if tau2 > 0 else np.inf


def series_fourth_moments(errors: np.ndarray) -> np.ndarray:
    """Mean fourth power (S, H) of each series' window errors standardised by its own mean and standard
    deviation (NaN with fewer than 4 windows or no spread): 3 for normal errors, more under heavy tails
    (a series whose windows hold one large order); :func:`estimated_shrinkage`'s ``z4``.

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> e = rng.standard_normal((50, 40, 1)); e[:25, 0, 0] += 30.0  # half the series with one large error
    >>> m4 = series_fourth_moments(e)[:, 0]
    >>> bool(m4[:25].mean() > 13 and abs(m4[25:].mean() - 3) < 0.5)
    True
    """
    n = np.sum(np.isfinite(errors), axis=1)  # (S, H)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        z = (errors - np.nanmean(errors, axis=1, keepdims=True)) / np.nanstd(errors, axis=1, keepdims=True)
        return np.where(n >= 4, np.nanmean(z**4, axis=1), np.nan)


def overlap_fourth_moments(m4: np.ndarray, n: np.ndarray, step) -> np.ndarray:
    """The z4 (S, H) that gives :func:`estimated_shrinkage` the sampling noise of overlapping windows.

    For sums S of H independent one-step errors (variance s^2, excess kurtosis kappa1) from cutoffs
    ``step`` apart, Cov(S_i^2, S_j^2) = 2 Cov(S_i, S_j)^2 + kappa1 s^4 overlap(i, j), so the sample
    variance's noise relative to (H s^2)^2 is about 2 / n_v + (kappa1 / H) / n_m: n_v the variance's
    effective windows (:func:`effective_windows`, rho^2), n_m the mean's (:func:`_mean_windows`, rho).
    A window's own z4 sees only part of the tails where windows overlap (one large one-step error
    moves several windows together and the series' standardisation absorbs it), so kappa1 is read
    from the series' one-step windows (H = 1, which never overlap) and shared across its H. Small
    samples: the normal part is the normal theory's unbiased 2 / (n_v + 1) (the plug-in sigma^4 = v^2
    is biased up by the noise itself), and kappa1 = z4_1 - 3 + 6 / (n + 1) (a sample kurtosis of n
    normal values averages 3 - 6 / (n + 1)). Unchanged (the series' own z4 at H) at H = 1, on windows
    that do not overlap (step >= H) and where a series has no one-step z4 (fewer than 4 windows, or
    no one-step spread).

    Examples
    --------
    >>> m4 = np.array([[9.0, 4.0, 3.5, 3.2]])  # heavy one-step tails, diluted in the overlapping sums
    >>> overlap_fourth_moments(m4, np.array([16]), 1).round(2).tolist()
    [[9.0, 6.82, 5.44, 4.59]]
    >>> overlap_fourth_moments(m4, np.array([16]), 4).tolist()  # windows 4 apart: none overlap
    [[9.0, 4.0, 3.5, 3.2]]
    """
    horizon = m4.shape[1]
    n = np.asarray(n, dtype=float)
    steps = np.broadcast_to(np.asarray(step, dtype=int), n.shape)
    n_v = effective_windows(n, horizon, steps)
    n_m = np.maximum(_mean_windows(n, horizon, steps), 1e-9)
    h = np.arange(1, horizon + 1)[None, :]
    kappa1 = m4[:, :1] - 3.0 + 6.0 / (n[:, None] + 1.0)
    relative = np.maximum(2.0 / (n_v + 1.0) + kappa1 / h / n_m, 0.0)  # Var(v) / sigma^4
    with np.errstate(invalid="ignore", divide="ignore"):
        z4 = n_v * relative + (n_v - 3.0) / (n_v - 1.0)  # estimated_shrinkage's noise is v^2 (z4 - (n-3)/(n-1)) / n
    overlapping = (steps[:, None] < h) & np.isfinite(m4[:, :1]) & (n_v > 1)
    return np.where(overlapping, z4, m4)


def _estimated_k(setting, own_var, scale, n, step, seg_code, rows, m4=None) -> np.ndarray:
    """Pseudo-windows (rows, H) of the series in ``rows`` (the phased pool, or the others under
    ``shrinkage="estimate"``) for the shrinker, which counts raw windows n.

    The effective weight (n_eff - 1) / (n_eff - 1 + k_eff) is the raw one with
    k = k_eff (n - 1) / (n_eff - 1); k_eff is ``setting`` or, for "estimate", per segment and
    H from the series' scale-free variances (:func:`estimated_shrinkage`).
    """
    n_eff = effective_windows(n[rows], own_var.shape[1], np.broadcast_to(step, n.shape)[rows])
    k_eff = np.full(n_eff.shape, np.inf if setting == "estimate" else float(setting))
    if setting == "estimate":
        v = own_var[rows] / np.where(scale[rows] > 0, scale[rows], np.nan)[:, None] ** 2
        for g in np.unique(seg_code[rows]):
            members = seg_code[rows] == g
            for h in range(own_var.shape[1]):
                z4 = None if m4 is None else m4[rows][members, h]
                k_eff[members, h] = estimated_shrinkage(v[members, h], n_eff[members, h] - 1, z4)
    with np.errstate(invalid="ignore", divide="ignore"):
        k = k_eff * (n[rows, None] - 1) / np.maximum(n_eff - 1, 1e-9)
    return np.where((n_eff > 1) & np.isfinite(k), k, np.inf)


def _credibility(cfg, own_mean, own_var, scale, n, step, seg_code, rel, m4=None) -> tuple[np.ndarray, np.ndarray]:
    """Pseudo-windows (S, H) of the variance's and of the mean's shrinkage, in the shrinker's raw windows.

    The phased series (``rel``) take ``phased_shrinkage``; the others ``shrinkage``: a fixed number
    of raw pseudo-windows, or with ``"estimate"`` each segment's own credibility over effective
    windows, as the phased pool (:func:`_estimated_k`, :func:`_estimated_k_mean`).
    """
    estimate = cfg.shrinkage == "estimate"
    k = np.full(own_var.shape, np.nan if estimate else float(cfg.shrinkage))
    k_mean = k.copy()
    m4 = m4 if estimate else None  # shrinkage=k: the model as it was before the estimate (normal-theory noise)
    for rows, setting in ((rel, cfg.phased_shrinkage), (~rel, "estimate" if estimate else None)):
        if setting is not None and rows.any():  # the variance's and the bias's credibility, each from its own spread
            k[rows] = _estimated_k(setting, own_var, scale, n, step, seg_code, rows, m4)
            k_mean[rows] = _estimated_k_mean(setting, own_mean, own_var, scale, n, step, seg_code, rows)
    return k, k_mean


def _mean_windows(n: np.ndarray, horizon: int, step) -> np.ndarray:
    """Independent windows worth of the *mean's* information in n overlapping ones, shape (S, H):
    n / (1 + 2 sum_k (1 - k/n) rho_k) with rho_k = max(0, 1 - k step / H) (the mean's variance;
    :func:`effective_windows` is the variance's, with rho_k^2)."""
    return _windows(n, horizon, step, power=1)


def estimated_mean_shrinkage(m: np.ndarray, v: np.ndarray, n_eff: np.ndarray) -> float:
    """Credibility k (effective pseudo-windows) of scale-free mean errors ``m`` (Buhlmann): the expected
    within-series variance ``mean(v)`` over the spread of the true means tau^2 = var(m) - mean(v / n_eff);
    tau^2 <= 0 (the biases differ by sampling noise only) gives inf: every series takes the pooled mean.

    Examples
    --------
    >>> estimated_mean_shrinkage(np.array([0.0, 0.1, -0.1]), np.ones(3), np.full(3, 6.0))
    inf
    >>> round(estimated_mean_shrinkage(np.array([0.0, 0.0, 0.0, 3.0]), np.ones(4), np.full(4, 6.0)), 3)
    0.48
    """
    ok = np.isfinite(m) & np.isfinite(v) & (n_eff > 0)
    m, v, n_eff = m[ok], v[ok], n_eff[ok]
    if len(m) < 2:
        return np.inf
    tau2 = np.var(m, ddof=1) - np.mean(v / n_eff)
    return float(np.mean(v) / tau2) if tau2 > 0 else np.inf


def _estimated_k_mean(setting, own_mean, own_var, scale, n, step, seg_code, rows) -> np.ndarray:
    """Pseudo-windows (rows, H) for the *mean* error (the bias) of the series in ``rows``, in the shrinker's raw windows:
    as :func:`_estimated_k` for the variance, with the mean's effective windows (:func:`_mean_windows`) and, for
    "estimate", Buhlmann's k of the segment's scale-free means (:func:`estimated_mean_shrinkage`)."""
    n_eff = _mean_windows(n[rows], own_var.shape[1], np.broadcast_to(step, n.shape)[rows])
    k_eff = np.full(n_eff.shape, np.inf if setting == "estimate" else float(setting))
    if setting == "estimate":
        s = np.where(scale[rows] > 0, scale[rows], np.nan)[:, None]
        m, v = own_mean[rows] / s, own_var[rows] / s**2
        for g in np.unique(seg_code[rows]):
            members = seg_code[rows] == g
            for h in range(own_var.shape[1]):
                k_eff[members, h] = estimated_mean_shrinkage(m[members, h], v[members, h], n_eff[members, h])
    with np.errstate(invalid="ignore", divide="ignore"):
        k = k_eff * n[rows, None] / np.maximum(n_eff, 1e-9)
    return np.where((n_eff > 1) & np.isfinite(k), k, np.inf)


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


def _overlap_correction(n: np.ndarray, horizon: int, step) -> np.ndarray:
    """Bias factor of the sample variance of overlapping cumulative errors, shape (S, H).

    Windows ``step`` periods apart summing H one-step errors overlap, so their
    sums are correlated with rho_k = max(0, 1 - k step / H). The sample variance
    then has expectation sigma^2 (1 - 2/(n-1) sum_k (1 - k/n) rho_k), which is
    divided out (Bartlett 1946, J. R. Stat. Soc. Suppl. 8, 27-41). ``step`` is one
    spacing for all series or one per series (shape (S,)): windows spread wider
    overlap less and need less correction.
    """
    steps = np.broadcast_to(np.asarray(step, dtype=int), np.shape(n))
    out = np.ones((len(n), horizon))
    h = np.arange(1, horizon + 1)[None, :]
    for size, gap in {(a, b) for a, b in zip(n.tolist(), steps.tolist()) if a > 2}:
        k = np.arange(1, size)[:, None]
        rho = np.clip(1.0 - k * gap / h, 0.0, None)
        shrink = 1.0 - 2.0 / (size - 1) * ((1.0 - k / size) * rho).sum(axis=0)
        out[(n == size) & (steps == gap)] = 1.0 / np.maximum(shrink, 0.25)
    return out


#: Target levels at which calibrated families are compared (``auto``): typical service targets.
CHOICE_LEVELS = (0.9, 0.95, 0.98)


def _family_options(integral: np.ndarray, n: np.ndarray, min_empirical: int) -> dict[str, np.ndarray]:
    """Family per series for each option of ``auto``: negative binomial needs integer demand,
    empirical needs ``min_empirical`` windows; otherwise the series stays normal."""
    normal = np.full(len(n), "normal", dtype=object)
    return {
        "normal": normal,
        "negbin": np.where(integral, "negbin", normal).astype(object),
        "empirical": np.where(n >= min_empirical, "empirical", normal).astype(object),
    }


def _levels_at(par: dict, family: np.ndarray, p_family: np.ndarray) -> np.ndarray:
    """Cumulative demand level fbar + q at the longest H for family levels ``p_family`` (S,)."""
    h = -1
    mean, var, fbar = par["mean"][:, h], par["var"][:, h], par["fbar"][:, h]
    q = np.empty(len(family))
    for name, ppf in PPF.items():
        rows = family == name
        q[rows] = ppf(p_family[rows], mean[rows], var[rows], fbar[rows])
    rows = family == "empirical"
    if rows.any():
        q[rows] = empirical_ppf(par["sorted"][rows, :, h], par["n"][rows], p_family[rows])
    return fbar + q


def _choose_calibrated(fits: dict, par: dict, seg_code: np.ndarray, integral: np.ndarray):
    """Per segment, the calibrated family that holds the least stock at equal held-out coverage.

    Every option is recalibrated to cover a share p of its segment's held-out
    windows, so at each level of :data:`CHOICE_LEVELS` they differ only in the
    stock they need (sharpness subject to calibration; Gneiting, Balabdaoui &
    Raftery 2007). An option whose calibration runs out of held-out scores
    (capped) cannot promise the coverage and is passed over while another can.

    Returns
    -------
    family : ndarray of str, shape (S,)
    calibration : Calibration
        The chosen option's per segment.
    """
    names = list(fits)
    n_seg = int(seg_code.max()) + 1  # per segment; segments short of scores share the pooled row
    cost = np.zeros((len(names), n_seg))
    for j, name in enumerate(names):
        fam, cal = fits[name]
        for p in CHOICE_LEVELS:
            pf = cal.level(np.full(len(seg_code), p), seg_code)[:, -1]
            level = _levels_at(par, fam, pf)
            level = np.where(integral, np.ceil(np.maximum(level, 0.0) - 1e-9), np.maximum(level, 0.0))
            stock = np.bincount(seg_code, weights=level, minlength=n_seg)
            capped = np.bincount(seg_code, weights=cal.capped(p, seg_code), minlength=n_seg) > 0
            cost[j] += np.where(capped, np.inf, stock)
    best = np.where(np.isfinite(cost).any(axis=0), np.argmin(cost, axis=0), names.index("normal"))
    total = cost.sum(axis=1)
    pooled = int(np.argmin(total)) if np.isfinite(total).any() else names.index("normal")
    any_cal = fits[names[0]][1]
    best[any_cal.counts[:n_seg, 0] < any_cal.min_count] = pooled  # short segments use the pooled row
    family = np.empty(len(seg_code), dtype=object)
    for g in range(n_seg):
        rows = seg_code == g
        family[rows] = fits[names[best[g]]][0][rows]
    rows = [fits[names[best[g]]][1] for g in range(n_seg)] + [fits[names[pooled]][1]]
    return family, _stack_calibrations(rows)


def _stack_calibrations(per_row: list) -> Calibration:
    """One Calibration whose row g comes from ``per_row[g]`` (the last row: the pool of all segments)."""
    width = max(c.scores.shape[2] for c in per_row)
    scores = np.full((len(per_row), per_row[0].scores.shape[1], width), np.nan)
    counts = np.zeros(scores.shape[:2], dtype=int)
    last = len(per_row) - 1
    for g, c in enumerate(per_row):
        src = g if g < last else c.counts.shape[0] - 1
        scores[g, :, : c.scores.shape[2]] = c.scores[src]
        counts[g] = c.counts[src]
    return Calibration(scores=scores, counts=counts, min_count=per_row[0].min_count)


def _shrinker(k, pool_mean: np.ndarray, pool_var: np.ndarray, k_mean=None):
    """Credibility shrinkage ``(own_mean, own_var, n) -> (mean, var)`` toward the segment pool (S, H).

    ``k`` (the variance's) is one number of pseudo-windows or one per series and H, shape (S, H)
    (the phased series' effective-window weight, :func:`_estimated_k`); ``k_mean``, the mean's, the
    same (default ``k``; the phased series' own estimate, :func:`_estimated_k_mean`: how their variances
    spread says nothing of how their biases do). Works on
    (S, H) moments or leave-one-out (S, w, H) moments alike.
    """
    k_arr = np.broadcast_to(np.asarray(k, dtype=float), pool_var.shape)
    km_arr = k_arr if k_mean is None else np.broadcast_to(np.asarray(k_mean, dtype=float), pool_var.shape)

    def shrink(own_mean, own_var, n):
        extra = (None,) * (own_mean.ndim - 2)
        index = (slice(None), *extra, slice(None))
        pm, pv, kk, km = pool_mean[index], pool_var[index], k_arr[index], km_arr[index]
        nn = np.asarray(n, dtype=float).reshape((-1,) + (1,) * (own_mean.ndim - 1))
        w_mean = np.where(km > 0, nn / np.maximum(nn + km, 1e-12), 1.0)
        w_var = np.where(nn > 1, (nn - 1) / np.maximum(nn - 1 + kk, 1e-12), 0.0)
        return w_mean * own_mean + (1 - w_mean) * pm, w_var * own_var + (1 - w_var) * pv

    return shrink


def _scales(demand: pd.DataFrame, ids: pd.Index) -> tuple[np.ndarray, np.ndarray]:
    """Mean demand and pooling scale (mean |y_t - y_t-1|, else the mean) per series."""
    data = demand[["unique_id", "ds", "y"]].drop_duplicates(["unique_id", "ds"])
    data = data.assign(unique_id=data["unique_id"].astype(str)).sort_values(["unique_id", "ds"])
    g = data.groupby("unique_id", sort=True)["y"]
    mean = g.mean().reindex(ids)
    if mean.isna().any():
        raise ValueError(
            f"history lacks series {mean.index[mean.isna()][:10].tolist()}; pass the demand the backtest ran on"
        )
    change = (data["y"] - g.shift(1)).abs().groupby(data["unique_id"], sort=True).mean().reindex(ids)
    scale = np.where(change.fillna(0) > 0, change, mean)
    return mean.to_numpy(float), np.asarray(scale, dtype=float)


def _pool(errors: np.ndarray, scale: np.ndarray, seg_code: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean and variance of scale-free errors per segment, shape (segments, H)."""
    n_seg, horizon = seg_code.max() + 1, errors.shape[2]
    usable = scale > 0
    z = errors / np.where(usable, scale, 1.0)[:, None, None]
    mean, var = np.zeros((n_seg, horizon)), np.zeros((n_seg, horizon))
    for g in range(n_seg):
        block = z[(seg_code == g) & usable].reshape(-1, horizon)
        block = block[~np.isnan(block[:, 0])]
        if len(block) > 1:
            mean[g], var[g] = block.mean(axis=0), block.var(axis=0, ddof=1)
    return mean, var


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
