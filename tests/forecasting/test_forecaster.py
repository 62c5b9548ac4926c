"""Invariants and errors of the forecasting front door."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from forecasting import ForecastConfig, Forecaster, NotFittedError
from forecasting.config import INTERMITTENT_MODELS, STAT_MODELS
from forecasting.panel import DemandValidationError

ALL_MODELS = STAT_MODELS + ("LightGBM",)
# Models whose forecasts depend only on data up to the cutoff by construction, all of them.
FAST_MODELS = (
    "Naive",
    "SeasonalNaive",
    "WindowAverage",
    "HistoricAverage",
    "AutoETS",
    "AutoTheta",
    "CrostonClassic",
    "CrostonSBA",
    "CrostonOptimized",
    "ADIDA",
    "IMAPA",
    "TSB",
    "LightGBM",
)


def test_fit_predict_equals_forecast(mixed_panel, fast_config):
    cfg = fast_config(ALL_MODELS)
    via_fit = Forecaster(cfg).fit(mixed_panel).predict(h=5)
    one_pass = Forecaster(cfg).forecast(mixed_panel, h=5)
    assert list(via_fit.columns) == ["unique_id", "ds", *ALL_MODELS]
    assert len(via_fit) == 6 * 5
    pd.testing.assert_frame_equal(via_fit, one_pass, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("model", INTERMITTENT_MODELS + ("LightGBM",))
def test_intermittent_forecasts_never_negative(mixed_panel, fast_config, model):
    forecaster = Forecaster(fast_config([model]))
    fc = forecaster.forecast(mixed_panel, h=6)
    cv = forecaster.cross_validation(mixed_panel, h=3, n_windows=3)
    assert np.isfinite(fc[model]).all() and (fc[model] >= 0).all()
    assert (cv[model] >= 0).all()


def test_cross_validation_shape_and_actuals(mixed_panel, fast_config):
    cv = Forecaster(fast_config(["Naive", "CrostonSBA"])).cross_validation(mixed_panel, h=4, n_windows=3, step=2)
    assert list(cv.columns) == ["unique_id", "ds", "cutoff", "y", "Naive", "CrostonSBA"]
    assert len(cv) == 6 * 3 * 4
    assert (cv["ds"] > cv["cutoff"]).all()
    actual = mixed_panel.assign(ds=pd.to_datetime(mixed_panel["ds"])).set_index(["unique_id", "ds"])["y"]
    np.testing.assert_array_equal(cv["y"].to_numpy(), actual.loc[list(zip(cv["unique_id"], cv["ds"]))].to_numpy())
    gaps = cv.groupby("unique_id")["cutoff"].unique().map(lambda c: np.diff(np.sort(c)))
    assert all((g == np.timedelta64(14, "D")).all() for g in gaps)


@pytest.mark.parametrize("model", FAST_MODELS)
def test_spike_after_cutoff_never_changes_backtest(mixed_panel, fast_config, model):
    forecaster = Forecaster(fast_config([model]))
    base = forecaster.cross_validation(mixed_panel, h=3, n_windows=4)
    spike_ds = np.sort(base["cutoff"].unique())[1] + pd.Timedelta(weeks=1)
    spiked = mixed_panel.copy()
    hit = (spiked["unique_id"] == "S000") & (pd.to_datetime(spiked["ds"]) == spike_ds)
    spiked.loc[hit, "y"] = 10_000.0
    after = forecaster.cross_validation(spiked, h=3, n_windows=4)
    before_spike = base["cutoff"] < spike_ds
    assert before_spike.sum() > 0
    assert (after["y"] != base["y"]).any()  # the spike is inside the backtest
    np.testing.assert_allclose(after.loc[before_spike, model], base.loc[before_spike, model], rtol=1e-9)
    assert mixed_panel.loc[hit, "y"].iloc[0] != 10_000.0  # the input was not mutated


def test_fallback_is_counted_and_fills_forecasts(mixed_panel, fast_config):
    short = mixed_panel[mixed_panel["unique_id"] == "S001"].head(20).assign(unique_id="SHORT")
    panel = pd.concat([mixed_panel, short], ignore_index=True)
    forecaster = Forecaster(fast_config(["SeasonalNaive", "Naive"], fallback_model="HistoricAverage"))
    fc = forecaster.forecast(panel, h=4)
    assert np.isfinite(fc["SeasonalNaive"]).all()
    table = forecaster.fallbacks_
    assert table[["unique_id", "model", "fallback", "stage", "n_values"]].values.tolist() == [
        ["SHORT", "SeasonalNaive", "HistoricAverage", "forecast", 4]
    ]
    expected = short["y"].mean()
    np.testing.assert_allclose(fc.loc[fc["unique_id"] == "SHORT", "SeasonalNaive"], expected)
    cv = forecaster.cross_validation(panel, h=2, n_windows=3)
    assert len(forecaster.fallbacks_) == 3 and set(forecaster.fallbacks_["cutoff"]) == set(
        cv.loc[cv["unique_id"] == "SHORT", "cutoff"]
    )


def test_short_series_excluded_and_reported(mixed_panel, fast_config):
    short = mixed_panel[mixed_panel["unique_id"] == "S001"].head(5).assign(unique_id="TINY")
    forecaster = Forecaster(fast_config(["Naive"]))
    cv = forecaster.cross_validation(pd.concat([mixed_panel, short]), h=4, n_windows=3)
    assert "TINY" not in set(cv["unique_id"])
    assert [i.series for i in forecaster.validation_.issues if i.check == "too_short"] == [("TINY",)]


def test_predict_before_fit_raises():
    with pytest.raises(NotFittedError, match="call fit"):
        Forecaster().predict(h=3)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"models": ("Prophet",)}, "unknown model"),
        ({"models": ("Naive", "Naive")}, "listed twice"),
        ({"models": ()}, "empty"),
        ({"fallback_model": "LightGBM"}, "fallback_model"),
        ({"freq": "Y"}, "no defaults for frequency"),
        ({"season_length": 0}, "season_length must be >= 1"),
        ({"n_jobs": 0}, "n_jobs"),
        ({"tsb_alpha_d": 1.5}, "tsb_alpha_d"),
    ],
)
def test_config_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        ForecastConfig(**kwargs)


def test_bad_inputs_raise(mixed_panel, fast_config):
    forecaster = Forecaster(fast_config(["Naive"]))
    with pytest.raises(ValueError, match="h must be a positive integer"):
        forecaster.forecast(mixed_panel, h=0)
    with pytest.raises(ValueError, match="n_windows must be a positive integer"):
        forecaster.cross_validation(mixed_panel, h=2, n_windows=0)
    with pytest.raises(DemandValidationError, match="missing required column"):
        forecaster.forecast(mixed_panel.rename(columns={"y": "qty"}), h=2)
    bad = mixed_panel.copy()
    bad.loc[3, "y"] = -1.0
    with pytest.raises(DemandValidationError, match="negative"):
        forecaster.forecast(bad, h=2)
    with pytest.raises(TypeError, match="DataFrame"):
        forecaster.forecast(mixed_panel.to_numpy(), h=2)
    with pytest.raises(ValueError, match="static feature"):
        Forecaster(
            fast_config(["LightGBM"], lightgbm=__import__("forecasting").LightGBMConfig(static_features=("price",)))
        ).forecast(mixed_panel, h=2)


def test_season_length_defaults_by_frequency():
    assert ForecastConfig(freq="W-SUN").resolved_season_length == 52
    assert ForecastConfig(freq="D").resolved_season_length == 7
    assert ForecastConfig(freq="MS").resolved_season_length == 12
    assert ForecastConfig(freq="MS", season_length=4).resolved_season_length == 4


# -- refit: re-estimate every k windows, forward in between ----------------------------


def _count_fits(monkeypatch, cls) -> list:
    """Count ``cls.fit`` calls in this process (n_jobs=1 keeps statsforecast in-process)."""
    calls = []
    original = cls.fit

    def counted(self, *args, **kwargs):
        calls.append(1)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(cls, "fit", counted)
    return calls


@pytest.mark.parametrize("refit, fits_per_series", [(False, 1), (2, 3), (4, 2), (6, 1)])
def test_refit_fits_autoets_every_k_windows(mixed_panel, fast_config, monkeypatch, refit, fits_per_series):
    from statsforecast.models import AutoETS

    calls = _count_fits(monkeypatch, AutoETS)
    cv = Forecaster(fast_config(["AutoETS"])).cross_validation(mixed_panel, h=3, n_windows=6, refit=refit)
    assert len(calls) == 6 * fits_per_series
    assert len(cv) == 6 * 6 * 3 and np.isfinite(cv["AutoETS"]).all()


def test_refit_true_and_one_refit_every_window(mixed_panel, fast_config, monkeypatch):
    from statsforecast.models import AutoETS

    calls = _count_fits(monkeypatch, AutoETS)
    forecaster = Forecaster(fast_config(["AutoETS"]))
    every = forecaster.cross_validation(mixed_panel, h=3, n_windows=4, refit=True)
    one = forecaster.cross_validation(mixed_panel, h=3, n_windows=4, refit=1)
    assert calls == []  # the plain path: forecast() per window, no fit + forward
    pd.testing.assert_frame_equal(every, one)


def test_refit_changes_only_the_models_with_forward(mixed_panel, fast_config):
    models = ["AutoETS", "CrostonSBA", "TSB", "ADIDA", "IMAPA"]
    forecaster = Forecaster(fast_config(models))
    every = forecaster.cross_validation(mixed_panel, h=3, n_windows=6)
    once = forecaster.cross_validation(mixed_panel, h=3, n_windows=6, refit=False)
    assert list(once.columns) == list(every.columns)
    pd.testing.assert_frame_equal(once.drop(columns="AutoETS"), every.drop(columns="AutoETS"))
    first = once["cutoff"] == once["cutoff"].min()  # fitted there in both: the same forecast
    np.testing.assert_allclose(once.loc[first, "AutoETS"], every.loc[first, "AutoETS"], rtol=1e-9)
    assert not np.allclose(once.loc[~first, "AutoETS"], every.loc[~first, "AutoETS"])


@pytest.mark.parametrize("model", ["AutoETS", "Naive", "CrostonSBA", "LightGBM"])
def test_spike_after_cutoff_never_changes_backtest_without_refit(mixed_panel, fast_config, model):
    forecaster = Forecaster(fast_config([model]))
    base = forecaster.cross_validation(mixed_panel, h=3, n_windows=4, refit=False)
    spike_ds = np.sort(base["cutoff"].unique())[1] + pd.Timedelta(weeks=1)
    spiked = mixed_panel.copy()
    spiked.loc[(spiked["unique_id"] == "S000") & (pd.to_datetime(spiked["ds"]) == spike_ds), "y"] = 10_000.0
    after = forecaster.cross_validation(spiked, h=3, n_windows=4, refit=False)
    before_spike = base["cutoff"] < spike_ds
    np.testing.assert_allclose(after.loc[before_spike, model], base.loc[before_spike, model], rtol=1e-9)
    later = (after["cutoff"] >= spike_ds) & (after["unique_id"] == "S000")
    assert not np.allclose(after.loc[later, model], base.loc[later, model])  # forward sees the spike


@pytest.mark.parametrize("refit", [0, -2, 1.5, "4"])
def test_refit_must_be_bool_or_positive_integer(mixed_panel, fast_config, refit):
    with pytest.raises(ValueError, match="refit must be True, False or a positive integer"):
        Forecaster(fast_config(["Naive"])).cross_validation(mixed_panel, h=3, n_windows=3, refit=refit)


def test_refit_failures_still_fall_back(mixed_panel, fast_config):
    short = mixed_panel[mixed_panel["unique_id"] == "S001"].head(20).assign(unique_id="SHORT")
    panel = pd.concat([mixed_panel, short], ignore_index=True)
    forecaster = Forecaster(fast_config(["SeasonalNaive", "Naive"], fallback_model="HistoricAverage"))
    cv = forecaster.cross_validation(panel, h=3, n_windows=3, refit=False)
    assert np.isfinite(cv[["SeasonalNaive", "Naive"]]).all().all()
    failed = forecaster.fallbacks_
    assert set(failed["unique_id"]) == {"SHORT"} and set(failed["model"]) == {"SeasonalNaive"}
