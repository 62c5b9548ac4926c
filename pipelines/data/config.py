"""Typed run configuration, loadable from YAML; every default lives here.

Example ``stockwise.yaml``::

    data: data/my_network          # folder with demand.csv, items.csv [, stages.csv, edges.csv]
    freq: W-MON
    forecast:
      models: [AutoETS, CrostonSBA, SeasonalNaive]
      n_windows: 6
    scenario:                       # optional what-if on the item master
      service_target: 0.98
      lead_time_factor: 1.5
    service:                        # optional: one target per segment or for the whole portfolio
      mode: portfolio               # item (default) | segment | portfolio
      target: 0.95
      measure: csl                  # csl | fill_rate
    error_model:
      shrinkage: estimate           # or a number k of pseudo-windows (8 = the old fixed credibility)
    tracking_uri: sqlite:///mlruns/mlflow.db
    engine: dask                    # per-series steps on a Dask cluster (pip install 'stockwise[dask]')
    scheduler: tcp://scheduler:8786 # omit for a LocalCluster on this machine (spark: the master URL)
    block_size: 2000                # series per block

Every key, with its default, is in ``docs/guide/errors.md`` (section "stockwise.yaml");
a ``train:`` section in the same file is read by ``stockwise train`` and ignored here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import yaml
from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
)

from forecasting import ErrorModelConfig
from pipelines.data.demo_data import DemoConfig

__all__ = [
    "ForecastSettings",
    "ScenarioSettings",
    "ServiceSettings",
    "ErrorModelSettings",
    "RunConfig",
    "load_config",
    "service_override",
    "read_yaml_mapping",
    "ConfigError",
    "SELECTOR_FORMS",
]

#: The decision paths ``RunConfig.selector`` names (resolved by :func:`pipelines.flows.plan.load_selector`).
SELECTOR_FORMS = ("registry", "packaged", "sbc", "policy:<candidate>", "model:<version or alias>")


def _refit_rule(value: int | str) -> int | str:
    if value != "auto" and (isinstance(value, str) or value < 1):
        raise ValueError(f"must be an integer >= 1 or 'auto', got {value!r}")
    return value


#: How often a backtest re-estimates AutoETS: every k windows, or ``auto`` by each series' history.
RefitEvery = Annotated[int | Literal["auto"], AfterValidator(_refit_rule)]


def _shrinkage_rule(value: float | str) -> float | str:
    if value == "estimate" or not isinstance(value, str) and value >= 0:
        return value
    raise ValueError(f"must be 'estimate' or a number of pseudo-windows >= 0 (e.g. 8), got {value!r}")


def _not_a_bool(value):
    if isinstance(value, bool):  # YAML true would otherwise read as 1 pseudo-window
        raise ValueError(f"must be 'estimate' or a number of pseudo-windows >= 0 (e.g. 8), got {value!r}")
    return value


#: The error model's credibility (:attr:`forecasting.ErrorModelConfig.shrinkage`): ``estimate`` or k pseudo-windows.
Shrinkage = Annotated[float | str, BeforeValidator(_not_a_bool), AfterValidator(_shrinkage_rule)]


class ConfigError(ValueError):
    """The configuration file is missing, unreadable or has invalid values."""


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class ForecastSettings(_Frozen):
    """Which forecasters to backtest and how."""

    models: tuple[str, ...] = ("SeasonalNaive", "AutoETS", "CrostonSBA", "TSB")
    season_length: int | None = Field(None, ge=1, description="periods per season; None = from freq")
    n_windows: int = Field(6, ge=2, description="rolling-origin backtest windows")
    step: int = Field(1, ge=1)
    horizon: int | None = Field(None, ge=1, description="backtest horizon; None = max(L + R) rounded up")

    @field_validator("models")
    @classmethod
    def _known_models(cls, value: tuple[str, ...]) -> tuple[str, ...]:
        from forecasting.config import ML_MODELS, STAT_MODELS

        unknown = [m for m in value if m not in STAT_MODELS + ML_MODELS]
        if unknown or not value:
            raise ValueError(f"unknown forecaster(s) {unknown}; choose from {list(STAT_MODELS + ML_MODELS)}")
        return value


class ScenarioSettings(_Frozen):
    """What-if changes applied to the item master before planning (for ``stockwise compare``)."""

    service_target: float | None = Field(None, gt=0, lt=1, description="one target for every item")
    lead_time_factor: float = Field(1.0, gt=0, description="scale every lead time (1.5 = +50%)")
    holding_rate_factor: float = Field(1.0, gt=0, description="scale every holding rate")
    order_cost_factor: float = Field(1.0, ge=0, description="scale every order cost (0 = ordering is free)")


class ServiceSettings(_Frozen):
    """Whose target sets the levels: each item's own (default), one per segment, or the portfolio's.

    With ``segment`` or ``portfolio`` the levels are allocated along every item's
    service-vs-value curve (:mod:`policy_selector.portfolio`) so that each segment (or the
    whole portfolio) reaches ``target`` in ``measure`` at least inventory value.
    """

    mode: Literal["item", "segment", "portfolio"] = "item"
    target: float | None = Field(None, gt=0, le=1, description="segment / portfolio target")
    measure: Literal["csl", "fill_rate"] = "csl"
    segment_by: Literal["sbc_class"] = "sbc_class"
    backtest: bool = Field(
        True,
        description="raise each segment's target by the allocation's held-out shortfall at an earlier origin "
        "(policy_selector.service_target.backtest_target; one more forecast backtest)",
    )
    sizing_choice: Literal["yardstick", "target", "off"] = Field(
        "yardstick",
        description="default path: choose each segment's forecaster and error family for the buffer by replayed "
        "service at an earlier origin (policy_selector.sizing_choice; one more forecast backtest): yardstick = least "
        "stock for its service against the textbook formula, 5 % better than the default's; target = least stock "
        "reaching the target; off = the default candidate for every item",
    )

    @model_validator(mode="after")
    def _target_matches_mode(self) -> ServiceSettings:
        if self.mode == "item" and self.target is not None:
            raise ValueError(
                "service.target applies to mode segment or portfolio; per-item targets come "
                "from the item master (or scenario.service_target)"
            )
        if self.mode != "item" and self.target is None:
            raise ValueError(f"service.mode {self.mode!r} needs service.target, e.g. 0.95")
        return self


class ErrorModelSettings(_Frozen):
    """How the error model weighs each series' own backtest errors against its segment's pool.

    One setting for every front door: the plan's error quantiles and its policy step's buffers,
    ``stockwise forecast`` and ``stockwise backtest`` (:attr:`forecasting.ErrorModelConfig.shrinkage`,
    whose default this is).
    """

    shrinkage: Shrinkage = Field(
        ErrorModelConfig.shrinkage,
        description="estimate: each segment's credibility estimated from its own windows; a number k: "
        "k pseudo-windows of the segment pool for every segment (8 = the fixed credibility before 2026-11-30)",
    )

    def config(self) -> ErrorModelConfig:
        """The library config of these settings (its other fields at their defaults)."""
        return ErrorModelConfig(shrinkage=self.shrinkage)


class RunConfig(_Frozen):
    """Everything one ``stockwise`` run needs; defaults run the demo."""

    data: Path | None = Field(None, description="data folder; None = generated demo data")
    out: Path = Path("runs")
    freq: str | None = None
    min_length: int = Field(8, ge=1)
    fill_gaps: bool = False
    strict: bool = Field(False, description="stop on validation errors instead of excluding rows")
    seed: int = DemoConfig.seed
    demo_items: int = Field(DemoConfig.n_items, ge=8, description="items in the generated demo network")
    demo_weeks: int = Field(DemoConfig.n_weeks, ge=60, description="weeks of generated demo history")
    forecast: ForecastSettings = ForecastSettings()
    scenario: ScenarioSettings = ScenarioSettings()
    service: ServiceSettings = ServiceSettings()
    error_model: ErrorModelSettings = ErrorModelSettings()
    tracking_uri: str | None = None
    engine: Literal["local", "dask", "spark"] = Field(
        "local", description="where the per-series steps run: local processes, a Dask cluster or Spark (through Fugue)"
    )
    scheduler: str | None = Field(
        None,
        description="Dask scheduler address (None = a LocalCluster for the run); for spark the master URL "
        "(spark://host:7077, local[2]; None = local[<workers>])",
    )
    block_size: int = Field(2000, ge=1, description="series per block (hash bucket of unique_id)")
    workers: int | None = Field(None, ge=1, description="local processes / LocalCluster workers; None = all cores")
    selector: str = Field(
        "registry",
        description="decision path: registry (champion, else default alias, else packaged default), packaged, "
        "sbc, policy:<candidate>, model:<version or alias>",
    )
    selector_refit_every: RefitEvery = Field(
        "auto",
        description="policy step's backtest: re-estimate AutoETS every k of its 16 windows, run the fitted "
        "model forward in between (1 = every window, exact; 16 = once per series, ~3x less policy-step CPU); "
        "auto (default) = once for a series with >= 75 periods before the first cutoff, every window for "
        "shorter ones (carparts' 39-51 months stay exact; docs/guide/scale.md)",
    )

    @field_validator("selector")
    @classmethod
    def _known_selector(cls, value: str) -> str:
        kind, sep, arg = value.partition(":")
        if value in SELECTOR_FORMS[:3] or (sep and kind in ("policy", "model") and arg):
            return value
        raise ValueError(f"unknown selector {value!r}; use one of {list(SELECTOR_FORMS)}")

    @field_validator("freq")
    @classmethod
    def _known_freq(cls, value: str | None) -> str | None:
        if value is not None:
            import pandas as pd

            try:
                pd.tseries.frequencies.to_offset(value)
            except ValueError as exc:
                raise ValueError(f"unknown frequency {value!r}; use e.g. D, W-MON or MS") from exc
        return value


def service_override(portfolio_target: float | None, segment_target: float | None, measure: str | None) -> dict | None:
    """``service`` settings from the CLI's ``--portfolio-target / --segment-target / --service-measure``.

    Raises
    ------
    ConfigError
        Both targets given, or a measure without a target.
    """
    if portfolio_target is not None and segment_target is not None:
        raise ConfigError("give --portfolio-target or --segment-target, not both")
    target = portfolio_target if portfolio_target is not None else segment_target
    if target is None:
        if measure is not None:
            raise ConfigError("--service-measure needs --portfolio-target or --segment-target")
        return None
    mode = "portfolio" if portfolio_target is not None else "segment"
    return {"mode": mode, "target": target} | ({"measure": measure} if measure else {})


def read_yaml_mapping(path: str | Path, section: str | None = None) -> dict:
    """The mapping in a YAML file (``section`` of it when that key is present).

    Raises
    ------
    ConfigError
        Missing file, invalid YAML, or not a mapping; the message names the file.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        raw = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: not valid YAML ({exc})") from exc
    if isinstance(raw, dict) and section is not None:
        raw = raw.get(section, raw)
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping of settings")
    return dict(raw)


def load_config(path: str | Path | None = None, **overrides) -> RunConfig:
    """Read a YAML config (or defaults) and apply non-None ``overrides``.

    Raises
    ------
    ConfigError
        With the file name and the offending field when the file is invalid.
    """
    raw = read_yaml_mapping(path) if path is not None else {}
    raw.pop("train", None)  # the train: section of a shared stockwise.yaml belongs to `stockwise train`
    raw.update({k: v for k, v in overrides.items() if v is not None})
    try:
        return RunConfig(**raw)
    except ValidationError as exc:
        where = f"{path}: " if path else ""
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(f"{where}invalid configuration: {problems}") from exc
