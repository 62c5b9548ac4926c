"""forecasting package."""

from forecasting.config import ForecastConfig, LightGBMConfig
from forecasting.characterise import characterise, sbc_class
from forecasting.core import Forecaster, NotFittedError
from forecasting.metrics import evaluate, rank_models, select_models, summarise

__all__ = [
    "ForecastConfig", "LightGBMConfig", "Forecaster", "NotFittedError",
    "characterise", "sbc_class", "evaluate", "summarise", "rank_models", "select_models",
]
