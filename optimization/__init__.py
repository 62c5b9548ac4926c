"""optimization package."""

# -- policies, sizing, simulator --
from optimization.distributions import (
    DiscreteDemand,
    EmpiricalDemand,
    NormalDemand,
    count_demand,
    horizon_normal,
    negative_binomial_demand,
    poisson_demand,
)
from optimization.events import simulate_events
from optimization.frontier import efficient_frontier, summarise_frontier

# -- multi-echelon GSM --
from optimization.gsm import (
    GridTooLargeError,
    GSMConfig,
    GSMMethod,
    GSMResult,
    GSMTimeLimitError,
    NonFiniteCostError,
    evaluate_service_times,
    solve_gsm,
)
from optimization.meio_demand import NormalDemandBound, SafetyStockModel, TabulatedSafetyStock, bom_multipliers
from optimization.meio_generate import WillemsLikeConfig, willems_like_network
from optimization.network import CycleError, Edge, Network, NetworkError, Stage, UnknownStageError
from optimization.policies import (
    MAX_UNITS,
    ItemValueError,
    PolicyParams,
    PolicyType,
    base_stock_policy,
    mixed_policies,
    no_stock_policy,
    r_s_policy,
    r_s_s_policy,
    s_q_policy,
    stack_policies,
)
from optimization.simulator import CostParams, InitialState, SimulationResult, sample_lead_times, simulate
from optimization.sizing import (
    ServiceTarget,
    ServiceType,
    critical_ratio,
    eoq,
    eoq_cost,
    level_for_csl,
    level_for_fill_rate,
    level_for_period_csl,
    level_for_period_fill_rate,
    level_for_target,
    newsvendor_cost,
    period_csl,
    period_shortage,
    power_approximation,
    size_policy,
)

__all__ = [
    # -- policies, sizing, simulator --
    "PolicyType",
    "PolicyParams",
    "s_q_policy",
    "r_s_policy",
    "r_s_s_policy",
    "base_stock_policy",
    "no_stock_policy",
    "mixed_policies",
    "stack_policies",
    "ItemValueError",
    "MAX_UNITS",
    "NormalDemand",
    "EmpiricalDemand",
    "DiscreteDemand",
    "horizon_normal",
    "poisson_demand",
    "negative_binomial_demand",
    "count_demand",
    "ServiceType",
    "ServiceTarget",
    "critical_ratio",
    "eoq",
    "eoq_cost",
    "newsvendor_cost",
    "level_for_csl",
    "level_for_period_csl",
    "level_for_period_fill_rate",
    "period_csl",
    "period_shortage",
    "level_for_fill_rate",
    "level_for_target",
    "power_approximation",
    "size_policy",
    "CostParams",
    "InitialState",
    "SimulationResult",
    "simulate",
    "sample_lead_times",
    "simulate_events",
    "efficient_frontier",
    "summarise_frontier",
    # -- multi-echelon GSM --
    "Network",
    "Stage",
    "Edge",
    "NetworkError",
    "CycleError",
    "UnknownStageError",
    "NormalDemandBound",
    "TabulatedSafetyStock",
    "SafetyStockModel",
    "bom_multipliers",
    "GSMConfig",
    "GSMMethod",
    "GSMResult",
    "solve_gsm",
    "evaluate_service_times",
    # -- GSM at scale (issue 15) --
    "GSMTimeLimitError",
    "GridTooLargeError",
    "NonFiniteCostError",
    "WillemsLikeConfig",
    "willems_like_network",
]
