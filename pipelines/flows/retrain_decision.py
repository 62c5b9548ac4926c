"""The champion-challenger decision of ``stockwise retrain``: its settings, what the steps get, the
decision record and the pure rule :func:`decide`. Importable from :mod:`pipelines.flows.retrain` as before.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from enum import IntEnum
from pathlib import Path
from typing import Any

import pandas as pd

from pipelines.data.config import RunConfig
from pipelines.registry.names import CHAMPION_ALIAS, MODEL_NAME

__all__ = [
    "Checkpoint",
    "Decision",
    "EvalRequest",
    "EvaluateFn",
    "RetrainConfig",
    "RetrainExit",
    "TrainFn",
    "TrainRequest",
    "decide",
    "run_settings",
]


class RetrainExit(IntEnum):
    """Process exit codes of ``stockwise retrain``."""

    PROMOTED = 0
    FAILED = 1
    KEPT = 3
    LOCKED = 75


@dataclass(frozen=True)
class RetrainConfig:
    """Champion-challenger settings; defaults live only here.

    Parameters
    ----------
    model_name : registered model holding champion and challengers.
    alias : registry alias that ``recommend`` uses.
    holdout_periods : latest periods held out for the comparison (never trained on by the challenger).
    margin : relative cost improvement the challenger needs (0.02 = 2 % cheaper).
    max_service_drop : service the challenger may lose against the champion (absolute).
    out : folder of decision records.
    tracking_uri : MLflow store (default per :func:`pipelines.registry.tracking.resolve_tracking_uri`).
    run : the run's settings (``RunConfig``: frequency, seed, service) the evaluation replays
        with, so the judgement uses the economics of the run; None = the evaluate step's defaults
        (the policy selector's: the frequency inferred from the data, the train seed, default service).
        The train step gets them too (the challenger trains with the run's seed and frequency).
    train_settings : the ``train:`` settings of the run's config file
        (:class:`pipelines.flows.train.TrainSettings`), given to the train step; None = the train
        step's defaults with the run's seed and frequency.
    """

    model_name: str = MODEL_NAME
    alias: str = CHAMPION_ALIAS
    holdout_periods: int = 13
    margin: float = 0.02
    max_service_drop: float = 0.005
    out: Path = Path("runs/retrain")
    tracking_uri: str | None = None
    run: RunConfig | None = None
    train_settings: Any = None

    def __post_init__(self) -> None:
        if self.holdout_periods < 1:
            raise ValueError(f"holdout_periods={self.holdout_periods} must be >= 1")
        if not 0 <= self.margin < 1 or not 0 <= self.max_service_drop < 1:
            raise ValueError(f"margin={self.margin} and max_service_drop={self.max_service_drop} must be in [0, 1)")


@dataclass(frozen=True)
class TrainRequest:
    """What the train callable gets: data up to ``cutoff`` only, and the run's settings
    (:attr:`RetrainConfig.run`, :attr:`RetrainConfig.train_settings`; None = the step's defaults)."""

    demand: pd.DataFrame
    items: pd.DataFrame
    cutoff: pd.Timestamp
    model_name: str
    tracking_uri: str
    items_subset: tuple[str, ...] | None = None
    run_config: RunConfig | None = None
    train_settings: Any = None


@dataclass(frozen=True)
class EvalRequest:
    """What the evaluate callable gets: the training data, the held-out window after it and the
    run's settings (``run_config``, :attr:`RetrainConfig.run`; None = the evaluate step's defaults)."""

    demand: pd.DataFrame
    holdout: pd.DataFrame
    items: pd.DataFrame
    cutoff: pd.Timestamp
    model_name: str
    tracking_uri: str
    run_config: RunConfig | None = None


#: trains on ``request.demand``, registers a version and returns it (never moves an alias); it may tag the version
#: with :data:`~pipelines.registry.names.PATH_TAG` / ``GATE_TAG`` (which of train's paths it is, and why)
TrainFn = Callable[[TrainRequest], str]
#: scores one registered version on ``request.holdout`` (``total_cost``, ``service``, ...). Optional attribute
#: ``many``: ``(versions, EvalRequest) -> {version: mapping}``, judging challenger and champion in one pass.
#: Optional attribute ``with_selectors``: ``(versions, EvalRequest, {key: (selector, name)}) -> {key: mapping}``,
#: which also judges selector objects: with neither a ``champion`` nor a ``default`` alias the challenger is
#: judged through it against the packaged default; an ``evaluate`` without it cannot, and the first challenger
#: is then promoted unjudged (the reason says so)
EvaluateFn = Callable[[str, EvalRequest], Mapping[str, float]]
Checkpoint = Callable[[str], None]


@dataclass(frozen=True)
class Decision:
    """One retrain decision, as written to ``<out>/<decision_id>/decision.json``."""

    decision_id: str
    created_at: str
    model_name: str
    alias: str
    champion_before: str | None
    challenger: str
    action: str  # "promote" | "keep"
    reason: str
    scores: dict[str, dict[str, float] | None]
    cutoff: str
    holdout_periods: int
    margin: float
    max_service_drop: float
    data: dict[str, str] = field(default_factory=dict)
    items_subset: list[str] | None = None
    mlflow_run_id: str | None = None
    alias_applied: bool = False
    #: what this run's recovery cleaned up after a killed retrain, in plain sentences
    recovered: list[str] | None = None
    #: what the challenger was judged against (``scores["champion"]``): the champion's version, else
    #: the ``default`` alias's that ``stockwise train`` registered, else ``"packaged"`` (the packaged
    #: default policy): what ``recommend`` used; None only when the evaluate step cannot judge it
    incumbent: str | None = None
    #: the run settings the evaluation replayed with (freq, seed, service), None = the step's defaults
    run_settings: dict[str, Any] | None = None
    #: which of train's paths the challenger is (its version tag ``stockwise.path``: ``classifier``, with
    #: ``shortfall_scales`` the one train's gate chose, e.g. ``classifier_tuned``); None when the train step
    #: does not say (a custom one)
    challenger_path: str | None = None
    #: why train chose that path (its version tag ``stockwise.gate``: train's gate's reason)
    challenger_why: str | None = None

    @property
    def exit_code(self) -> RetrainExit:
        return RetrainExit.PROMOTED if self.action == "promote" else RetrainExit.KEPT


def decide(
    champion: Mapping[str, float] | None, challenger: Mapping[str, float], config: RetrainConfig
) -> tuple[str, str]:
    """``("promote" | "keep", reason)`` from the two score sets (keys ``total_cost``, ``service``). Pure.

    The challenger is promoted when its ``total_cost`` is lower by at least ``config.margin``
    (relative) and its ``service`` at most ``config.max_service_drop`` lower. For the policy
    selector (:func:`pipelines.flows.train.evaluate_version`) these are the decision replay's
    yearly cost with shortages priced and its achieved CSL on the held-out periods. The reason
    names both numbers of each side, and the inventory value and fill rate when both sides have them.

    Raises
    ------
    ValueError
        When a score set lacks ``total_cost`` or ``service``.

    Examples
    --------
    >>> decide({"total_cost": 100.0, "service": 0.95}, {"total_cost": 90.0, "service": 0.95}, RetrainConfig())[0]
    'promote'
    """
    for name, scores in (("challenger", challenger), ("champion", champion)):
        if scores is not None and not {"total_cost", "service"} <= set(scores):
            raise ValueError(f"{name} scores need total_cost and service; got {sorted(scores)}")
    if champion is None:
        return "promote", "no champion yet: the first model becomes champion"
    cost_c, cost_n = float(champion["total_cost"]), float(challenger["total_cost"])
    serv_c, serv_n = float(champion["service"]), float(challenger["service"])
    gain = (cost_c - cost_n) / cost_c if cost_c > 0 else 0.0
    facts = (
        f"challenger cost {cost_n:,.2f} vs champion {cost_c:,.2f} ({gain:+.1%}), service {serv_n:.4f} vs {serv_c:.4f}"
    )
    for key, label, fmt in (("inventory_value", "inventory value", ",.0f"), ("fill_rate", "fill rate", ".4f")):
        if key in champion and key in challenger:
            facts += f", {label} {float(challenger[key]):{fmt}} vs {float(champion[key]):{fmt}}"
    if serv_n < serv_c - config.max_service_drop:
        return "keep", f"{facts}: service drops by more than {config.max_service_drop}"
    if gain < config.margin:
        return "keep", f"{facts}: cost gain below the {config.margin:.1%} margin"
    return "promote", f"{facts}: cheaper by at least the {config.margin:.1%} margin"


def run_settings(run: RunConfig | None) -> dict[str, Any] | None:
    """The run settings a decision record keeps (those the evaluation's economics depend on)."""
    if run is None:
        return None
    return {
        "freq": run.freq,
        "seed": run.seed,
        "service": run.service.model_dump(mode="json"),
        "selector_refit_every": run.selector_refit_every,
        "error_model": run.error_model.model_dump(mode="json"),
    }
