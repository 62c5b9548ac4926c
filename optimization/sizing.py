"""Sizing of policy parameters from the distribution over H = L + R.

The distribution is whatever the caller gives (see
:mod:`optimization.distributions`): demand over H, or forecast over H plus the
cumulative forecast error over H. The buffer then covers forecast error, not
demand variance (docs/design.md).

- cycle service level (CSL) target alpha: S = F_H^{-1}(alpha);
- fill-rate target beta: smallest S with expected shortage per cycle
  n_H(S) <= (1 - beta) * (demand per cycle) -- the standard approximation that
  ignores the backlog carried into the cycle (Silver et al. 2017, eq. 6.19 ff.),
  solved with the distribution's own loss function (normal, empirical or discrete);
- cost target: newsvendor critical ratio b / (b + h) as the CSL (Snyder & Shen
  2019, eq. 4.30);
- Q from the EOQ (Harris 1913; Snyder & Shen 2019, eq. 3.4);
- (s, S): s from the service target over H, S = s + EOQ, or the power
  approximation of Ehrhardt & Mosier (1984) when costs are given.

References
----------
F. W. Harris, How many parts to make at once, *Factory, The Magazine of
Management* 10(2), 135-136 (1913).
R. Ehrhardt and C. Mosier, A revision of the power approximation for computing
(s, S) policies, *Management Science* 30(5), 618-622 (1984).
E. A. Silver, D. F. Pyke and D. J. Thomas, *Inventory and Production Management
in Supply Chains*, 4th ed., CRC Press, 2017, ch. 6-7.
L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed.,
Wiley, 2019, ch. 3-4.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Callable, Protocol

import numpy as np

from optimization.policies import (
    PolicyParams,
    PolicyType,
    base_stock_policy,
    no_stock_policy,
    r_s_policy,
    r_s_s_policy,
    s_q_policy,
)

__all__ = [
    "ServiceType",
    "ServiceTarget",
    "HorizonDistribution",
    "critical_ratio",
    "eoq",
    "eoq_cost",
    "newsvendor_cost",
    "level_for_csl",
    "level_for_fill_rate",
    "level_for_target",
    "power_approximation",
    "size_policy",
]


class HorizonDistribution(Protocol):
    """What sizing needs from a distribution over H (see optimization.distributions)."""

    @property
    def mean(self) -> np.ndarray: ...

    def quantile(self, p) -> np.ndarray: ...

    def loss(self, x) -> np.ndarray: ...

    def bounds(self) -> tuple[np.ndarray, np.ndarray]: ...


class ServiceType(str, Enum):
    """How the target is expressed."""

    CSL = "csl"
    FILL_RATE = "fill_rate"
    COST = "cost"


@dataclass(frozen=True)
class ServiceTarget:
    """A service target per item.

    Parameters
    ----------
    kind : ServiceType
    level : array_like, shape (n_items,) or scalar
        CSL or fill rate in (0, 1); ignored for ``COST`` (the critical ratio is used).
    """

    kind: ServiceType
    level: np.ndarray | float = 0.95

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", ServiceType(self.kind))
        level = np.asarray(self.level, dtype=float)
        if self.kind is not ServiceType.COST and ((level <= 0) | (level >= 1)).any():
            raise ValueError(f"{self.kind.value} target must be in (0, 1), got {np.ravel(level)[:5]}")
        object.__setattr__(self, "level", level)


def critical_ratio(shortage_cost, holding_cost) -> np.ndarray:
    """Newsvendor critical ratio b / (b + h) (Snyder & Shen 2019, eq. 4.30).

    Examples
    --------
    >>> float(critical_ratio(0.70, 0.18).round(4))
    0.7955
    """
    b, h = np.asarray(shortage_cost, dtype=float), np.asarray(holding_cost, dtype=float)
    if (b <= 0).any() or (h <= 0).any():
        raise ValueError("critical_ratio needs shortage_cost > 0 and holding_cost > 0 per item")
    return b / (b + h)


def eoq(order_cost, holding_cost, demand_rate) -> np.ndarray:
    """Economic order quantity Q* = sqrt(2 K lambda / h) (Harris 1913).

    Parameters
    ----------
    order_cost : K per order; holding_cost : h per unit per time; demand_rate : lambda per time.

    Examples
    --------
    Snyder & Shen (2019), Example 3.1 (K = 8, h = 0.225, lambda = 1300):

    >>> float(eoq(8, 0.225, 1300).round(2))
    304.05
    """
    K, h, lam = (np.asarray(v, dtype=float) for v in (order_cost, holding_cost, demand_rate))
    if (K < 0).any() or (h <= 0).any() or (lam < 0).any():
        raise ValueError("eoq needs order_cost >= 0, holding_cost > 0 and demand_rate >= 0")
    return np.sqrt(2 * K * lam / h)


def eoq_cost(order_cost, holding_cost, demand_rate, order_quantity) -> np.ndarray:
    """Cost per time g(Q) = K lambda / Q + h Q / 2 (Snyder & Shen 2019, eq. 3.4).

    Examples
    --------
    >>> float(eoq_cost(8, 0.225, 1300, eoq(8, 0.225, 1300)).round(2))
    68.41
    """
    K, h, lam, Q = (np.asarray(v, dtype=float) for v in (order_cost, holding_cost, demand_rate, order_quantity))
    if (Q <= 0).any():
        raise ValueError("order_quantity must be > 0")
    return K * lam / Q + h * Q / 2


def newsvendor_cost(dist: HorizonDistribution, level, holding_cost, shortage_cost) -> np.ndarray:
    """Expected cost h E[(S - D)^+] + b E[(D - S)^+] = h (S - mu + n(S)) + b n(S)."""
    level = np.asarray(level, dtype=float)
    n = dist.loss(level)
    return np.asarray(holding_cost) * (level - dist.mean + n) + np.asarray(shortage_cost) * n


def level_for_csl(dist: HorizonDistribution, csl) -> np.ndarray:
    """Level S with P(D_H <= S) >= csl (the quantile)."""
    return dist.quantile(csl)


def _bisect_decreasing(f: Callable[[np.ndarray], np.ndarray], lo, hi, target, iters: int = 60) -> np.ndarray:
    """Smallest x in [lo, hi] with f(x) <= target for decreasing f (vectorised bisection)."""
    lo, hi = np.array(lo, dtype=float), np.array(hi, dtype=float)
    for _ in range(iters):
        mid = 0.5 * (lo + hi)
        ok = f(mid) <= target
        hi = np.where(ok, mid, hi)
        lo = np.where(ok, lo, mid)
    return hi


def level_for_fill_rate(dist: HorizonDistribution, fill_rate, cycle_demand) -> np.ndarray:
    """Smallest S with n_H(S) <= (1 - beta) * cycle_demand.

    Parameters
    ----------
    dist : distribution over H (normal, empirical or discrete)
    fill_rate : array_like, beta in (0, 1)
    cycle_demand : array_like
        Expected demand per replenishment cycle: mu_d R for (R, S), Q for (s, Q).

    Returns
    -------
    ndarray, shape (n_items,)
        For discrete distributions the level is rounded up to an integer.

    Examples
    --------
    >>> from optimization.distributions import NormalDemand
    >>> float(level_for_fill_rate(NormalDemand([100.0], [20.0]), 0.98, [50.0])[0].round(1))
    125.1
    """
    beta = np.asarray(fill_rate, dtype=float)
    if ((beta <= 0) | (beta >= 1)).any():
        raise ValueError(f"fill_rate must be in (0, 1), got {np.ravel(beta)[:5]}")
    cycle = np.asarray(cycle_demand, dtype=float)
    if (cycle < 0).any():
        raise ValueError("cycle_demand must be >= 0")
    lo, hi = dist.bounds()
    level = _bisect_decreasing(dist.loss, lo, hi, (1 - beta) * cycle)
    if hasattr(dist, "pmf"):
        level = np.ceil(level - 1e-9)
    return level


def level_for_target(
    dist: HorizonDistribution, target: ServiceTarget, cycle_demand, holding_cost=None, shortage_cost=None
) -> np.ndarray:
    """Dispatch a :class:`ServiceTarget` to the CSL, fill-rate or cost rule."""
    if target.kind is ServiceType.COST:
        if holding_cost is None or shortage_cost is None:
            raise ValueError("a cost target needs holding_cost and shortage_cost (b/(b+h) critical ratio)")
    rules = {
        ServiceType.CSL: lambda: level_for_csl(dist, target.level),
        ServiceType.FILL_RATE: lambda: level_for_fill_rate(dist, target.level, cycle_demand),
        ServiceType.COST: lambda: level_for_csl(dist, critical_ratio(shortage_cost, holding_cost)),
    }
    return rules[target.kind]()


def power_approximation(
    holding_cost, shortage_cost, order_cost, demand_mean, demand_std, lead_time=0
) -> tuple[np.ndarray, np.ndarray]:
    """(s, S) by the power approximation of Ehrhardt & Mosier (1984), normal demand.

    Q_p = 1.30 mu^0.494 (K/h)^0.506 (1 + sigma_L^2/mu^2)^0.116,
    z = sqrt(Q_p h / (sigma_L p)), s = 0.973 mu_L + sigma_L (0.183/z + 1.063 - 2.192 z),
    S = s + Q_p, with mu_L = mu (L + 1) and sigma_L^2 = sigma^2 (L + 1) (periodic
    review, per-period holding h and backorder cost p; Snyder & Shen 2019, eqs. 4.77-4.80).

    Returns
    -------
    (s, S) : tuple of ndarray

    Examples
    --------
    Snyder & Shen (2019), Example 4.7:

    >>> s, S = power_approximation(0.18, 0.70, 2.5, 50, 8)
    >>> round(float(s), 2), round(float(S), 2)
    (40.19, 74.29)
    """
    h, p, K, mu, sd, L = (
        np.asarray(v, dtype=float)
        for v in (holding_cost, shortage_cost, order_cost, demand_mean, demand_std, lead_time)
    )
    if (h <= 0).any() or (p <= 0).any() or (K <= 0).any() or (mu <= 0).any() or (sd <= 0).any():
        raise ValueError("power_approximation needs holding, shortage and order cost > 0, demand mean and std > 0")
    mu_l, sd_l = mu * (L + 1), sd * np.sqrt(L + 1)
    q = 1.30 * mu**0.494 * (K / h) ** 0.506 * (1 + sd_l**2 / mu**2) ** 0.116
    z = np.sqrt(q * h / (sd_l * p))
    s = 0.973 * mu_l + sd_l * (0.183 / z + 1.063 - 2.192 * z)
    return s, s + q


def _order_quantity(demand_rate, order_cost, holding_cost, n: int) -> np.ndarray:
    """EOQ where order and holding costs are given, else one period of demand (at least 1)."""
    if order_cost is None or holding_cost is None:
        return np.maximum(np.broadcast_to(np.asarray(demand_rate, dtype=float), n), 1.0)
    return np.maximum(eoq(order_cost, holding_cost, demand_rate), 1.0)


def size_policy(
    policy_type: PolicyType | str,
    dist: HorizonDistribution,
    target: ServiceTarget,
    *,
    demand_rate,
    review_period=1,
    order_cost=None,
    holding_cost=None,
    shortage_cost=None,
    integer: bool = False,
    lost_sales=False,
    moq=0.0,
    order_multiple=0.0,
) -> PolicyParams:
    """Size one policy type for every item from its distribution over H.

    Parameters
    ----------
    policy_type : PolicyType or its string value
    dist : distribution over H = L + R per item (for ``s_Q`` and ``base_stock``, R = 1)
    target : ServiceTarget
    demand_rate : array_like, shape (n_items,)
        Mean demand per period (for EOQ and the cycle demand of the fill-rate rule).
    review_period : int or array_like, default 1
    order_cost, holding_cost, shortage_cost : array_like, optional
        K per order, h per unit-period, b per unit short; EOQ needs K and h, a
        cost target needs h and b.
    integer : bool, default False
        Round levels up to whole units (use for count demand).
    lost_sales, moq, order_multiple : passed to the policy.

    Returns
    -------
    PolicyParams

    Raises
    ------
    ValueError
        Unknown policy type, or a cost target without costs.

    Examples
    --------
    >>> from optimization.distributions import NormalDemand
    >>> p = size_policy("R_S", NormalDemand([30.0], [6.0]), ServiceTarget("csl", 0.95),
    ...                 demand_rate=[10.0], review_period=2)
    >>> round(float(p.order_up_to[0]), 2)
    39.87
    """
    ptype = PolicyType(policy_type)
    n = np.asarray(dist.mean).shape[0]
    R = np.broadcast_to(np.asarray(review_period), n)
    rate = np.broadcast_to(np.asarray(demand_rate, dtype=float), n)
    Q = _order_quantity(rate, order_cost, holding_cost, n)

    def level(cycle) -> np.ndarray:
        x = level_for_target(dist, target, cycle, holding_cost, shortage_cost)
        return np.ceil(x - 1e-9) if integer else x

    def q_units() -> np.ndarray:
        return np.ceil(Q - 1e-9) if integer else Q

    opts = {"moq": moq, "order_multiple": order_multiple, "lost_sales": lost_sales}
    builders = {
        PolicyType.S_Q: lambda: s_q_policy(level(Q), q_units(), **opts),
        PolicyType.R_S: lambda: r_s_policy(R, level(rate * R), **opts),
        PolicyType.R_S_S: lambda: _min_max(R, level(np.maximum(Q, rate * R)), q_units(), opts),
        PolicyType.BASE_STOCK: lambda: base_stock_policy(level(rate), **opts),
        PolicyType.NO_STOCK: lambda: no_stock_policy(n, lost_sales=lost_sales),
    }
    return builders[ptype]()


def _min_max(R, s, Q, opts) -> PolicyParams:
    """(R, s, S) with s the service level over H and S = s + Q (Silver et al. 2017, sec. 7.2)."""
    return r_s_s_policy(R, s, s + Q, **opts)
