"""Registered model names and aliases: the one place these literals live."""

from __future__ import annotations

__all__ = ["MODEL_NAME", "CHAMPION_ALIAS", "DEFAULT_ALIAS", "PATH_TAG", "GATE_TAG"]

#: The policy selector's name in the MLflow model registry.
MODEL_NAME = "stockwise-policy-selector"
#: The alias `recommend` loads and `train` / `retrain` move.
CHAMPION_ALIAS = "champion"
#: The alias of the default path (a fixed best single policy) `recommend` uses when no champion is set.
DEFAULT_ALIAS = "default"
#: Version tag: which of `train`'s decision paths a registered version holds (`classifier`, `classifier_tuned`,
#: or the default path's key); `retrain` records it for its challenger.
PATH_TAG = "stockwise.path"
#: Version tag: the alias `train`'s gate gave the version (or none) and why.
GATE_TAG = "stockwise.gate"
