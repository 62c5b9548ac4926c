"""Fixtures of the forecasting tests: small mixed panels and fast configs."""

from __future__ import annotations

import pandas as pd
import pytest

from forecasting import ForecastConfig
from tests.conftest import make_panel


@pytest.fixture
def mixed_panel() -> pd.DataFrame:
    """Three smooth and three intermittent weekly series, 60 periods each."""
    smooth = make_panel(n_series=3, length=60, kind="smooth", seed=11)
    sparse = make_panel(n_series=3, length=60, kind="intermittent", seed=12)
    sparse["unique_id"] = "I" + sparse["unique_id"]
    return pd.concat([smooth, sparse], ignore_index=True)


@pytest.fixture
def fast_config():
    """Config factory: single process, short LightGBM, weekly data."""

    def make(models, **kwargs) -> ForecastConfig:
        from forecasting import LightGBMConfig

        kwargs.setdefault("lightgbm", LightGBMConfig(n_estimators=30, lags=(1, 2, 4), rolling_windows=(4,)))
        return ForecastConfig(models=tuple(models), freq="W-MON", n_jobs=1, **kwargs)

    return make
