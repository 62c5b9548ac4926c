"""forecasting package."""

from forecasting.config import ForecastConfig, LightGBMConfig
from forecasting.core import Forecaster, NotFittedError

__all__ = ["ForecastConfig", "LightGBMConfig", "Forecaster", "NotFittedError"]
