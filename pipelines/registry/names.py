"""Registered model names and aliases: the one place these literals live."""

from __future__ import annotations

__all__ = ["MODEL_NAME", "CHAMPION_ALIAS", "DEFAULT_ALIAS"]

#: The policy selector's name in the MLflow model registry.
MODEL_NAME = "stockwise-policy-selector"
#: The alias `recommend` loads and `train` / `retrain` move.
CHAMPION_ALIAS = "champion"
#: The alias of the default path (a fixed best single policy) `recommend` uses when no champion is set.
DEFAULT_ALIAS = "default"
