"""forecasting package."""

from forecasting.characterise import characterise, sbc_class
from forecasting.config import ForecastConfig, LightGBMConfig
from forecasting.core import Forecaster, NotFittedError
from forecasting.error_model import ErrorModel, ErrorModelConfig, lead_time_pmf, split_cv
from forecasting.metrics import evaluate, rank_models, select_models, summarise

__all__ = [
    "ForecastConfig",
    "LightGBMConfig",
    "Forecaster",
    "NotFittedError",
    "ErrorModel",
    "ErrorModelConfig",
    "lead_time_pmf",
    "split_cv",
    "characterise",
    "sbc_class",
    "evaluate",
    "summarise",
    "rank_models",
    "select_models",
]
