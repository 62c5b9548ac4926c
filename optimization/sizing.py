"""Sizing of policy parameters from the distribution over H = L + R.

The distribution is whatever the caller gives (see
:mod:`optimization.distributions`): demand over H, or forecast over H plus the
cumulative forecast error over H. The buffer then covers forecast error, not
demand variance (docs/design.md).

- cycle service level (CSL) target alpha: S = F_H^{-1}(alpha) for policies whose
  review cycle is a replenishment cycle ((R, S), base stock);
  for an (s, Q) reviewed every period the CSL counts periods, so s is the smallest
  level whose share of periods ending without a stockout is alpha, with the
  inventory position after ordering uniform on (s, s + Q]
  (:func:`level_for_period_csl`; Axsäter 2006, sec. 5.3; Hadley & Whitin 1963);
- fill-rate target beta: smallest S with expected shortage per cycle
  n_H(S) <= (1 - beta) * (demand per cycle) -- the standard approximation that
  ignores the backlog carried into the cycle (Silver et al. 2017, eq. 6.19 ff.),
  solved with the distribution's own loss function (normal, empirical or discrete); for
  (s, Q) and (R, s, S) the shortage per review averaged over the positions a review leaves,
  (s, s + Q], against the demand per review (:func:`level_for_period_fill_rate`);
- cost target: newsvendor critical ratio b / (b + h) as the CSL (Snyder & Shen
  2019, eq. 4.30);
- Q from the EOQ (Harris 1913; Snyder & Shen 2019, eq. 3.4);
- (s, S): s from the service target over H, S = s + EOQ, or the power
  approximation of Ehrhardt & Mosier (1984) when costs are given; for a CSL the
  position after a review lies in (s, S], so s is the level whose CSL averaged over
  that range (taken as uniform, exact for unit demand) is the target (the rule of (s, Q), :func:`level_for_period_csl`, with
  H = L + R: a review cycle is short when the demand over H exceeds the position).

References
----------
S. Axsäter, *Inventory Control*, 2nd ed., Springer, 2006, sec. 5.3 (the inventory
position of an (R, Q) policy is uniform on R + 1, ..., R + Q).
G. Hadley and T. M. Whitin, *Analysis of Inventory Systems*, Prentice-Hall, 1963, ch. 4.
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
    "level_for_period_csl",
    "period_csl",
    "level_for_fill_rate",
    "level_for_period_fill_rate",
    "period_shortage",
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


def period_csl(dist: HorizonDistribution, reorder_level, order_quantity, integer: bool = False) -> np.ndarray:
    """Share of periods ending without a stockout of an (s, Q) reviewed every period.

    An order raises the inventory position above s, so after ordering it lies in
    (s, s + Q]; taken as uniform there (Axsäter 2006, sec. 5.3), a period ending
    ``H`` periods after the review is short exactly when the demand over H exceeds
    it. With the loss function n(x) = E[(D - x)^+]:

    - continuous: (1/Q) int_0^Q F(s + u) du = 1 - (n(s) - n(s + Q)) / Q;
    - integer demand, s and Q: (1/Q) sum_{j=1..Q} F(s + j) = 1 - (n(s + 1) - n(s + Q + 1)) / Q
      (for Q = 1 the base stock S = s + 1 at its quantile).

    Parameters
    ----------
    dist : distribution of the demand over H = L + 1 (integer-valued when ``integer``)
    reorder_level, order_quantity : array_like, shape (n_items,)
        Q > 0 (the batch an order actually brings, after MOQ and multiples).
    integer : bool, default False

    Examples
    --------
    >>> from optimization.distributions import DiscreteDemand
    >>> d = DiscreteDemand(np.array([[0.5, 0.3, 0.2]]))
    >>> period_csl(d, [0.0], [1.0], integer=True).round(2).tolist()  # base stock 1: F(1)
    [0.8]
    >>> period_csl(d, [0.0], [2.0], integer=True).round(2).tolist()  # (F(1) + F(2)) / 2
    [0.9]
    """
    s = np.asarray(reorder_level, dtype=float)
    Q = np.asarray(order_quantity, dtype=float)
    if (Q <= 0).any():
        raise ValueError("order_quantity must be > 0 for the per-period CSL of an (s, Q)")
    step = 1.0 if integer else 0.0
    return 1.0 - (dist.loss(s + step) - dist.loss(s + step + Q)) / Q


def level_for_period_csl(dist: HorizonDistribution, csl, order_quantity, integer: bool = False) -> np.ndarray:
    """Smallest reorder level s of an (s, Q) reviewed every period with :func:`period_csl` >= csl.

    The textbook rule s = F^{-1}(csl) protects each replenishment cycle; measured
    per period (as the simulator's CSL counts an (s, Q)) it over-covers by the
    periods where the position is well above s, and for integer demand with Q = 1
    (base stock S = s + 1) by one whole unit.

    Returns
    -------
    ndarray, shape (n_items,)
        Whole units when ``integer``.

    Examples
    --------
    >>> from optimization.distributions import DiscreteDemand
    >>> d = DiscreteDemand(np.array([[0.5, 0.3, 0.2]]))
    >>> level_for_period_csl(d, 0.85, [2.0], integer=True).tolist()  # s = 0 gives 0.9, s = -1 gives 0.65
    [0.0]
    """
    alpha = np.asarray(csl, dtype=float)
    Q = np.asarray(order_quantity, dtype=float)
    lo, hi = dist.bounds()
    lo, hi = np.asarray(lo, dtype=float) - Q - 1.0, np.asarray(hi, dtype=float) + 1.0
    if integer:
        lo, hi = np.floor(lo), np.ceil(hi)
        for _ in range(64):  # integer bisection: period_csl(hi) >= alpha > period_csl(lo)
            mid = np.floor(0.5 * (lo + hi))
            ok = period_csl(dist, mid, Q, integer=True) >= alpha - 1e-12
            hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
            if (hi - lo <= 1).all():
                break
        return hi
    return _bisect_decreasing(lambda s: 1.0 - period_csl(dist, s, Q), lo, hi, 1.0 - alpha)


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
        Expected demand per replenishment cycle: mu_d R for (R, S), mu_d for a base stock
        ((s, Q) and (R, s, S): :func:`level_for_period_fill_rate`).

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


def period_shortage(dist: HorizonDistribution, reorder_level, order_quantity, integer: bool = False) -> np.ndarray:
    """Expected shortage per review of an (s, Q) (or (R, s, S)), the position after it uniform on (s, s + Q].

    The fill-rate rule's n_H(y) (the backlog carried in ignored, as for a base stock) averaged
    over the positions a review leaves, as :func:`period_csl` averages the CSL: the whole units
    s + 1, ..., s + Q when ``integer`` (Q = 1: a base stock at s + 1), else the midpoints of
    :data:`_POSITION_POINTS` equal parts of (s, s + Q] (integer Q above that many, too).

    Examples
    --------
    >>> from optimization.distributions import DiscreteDemand
    >>> d = DiscreteDemand(np.array([[0.5, 0.3, 0.2]]))
    >>> period_shortage(d, [0.0], [2.0], integer=True).round(2).tolist()  # (n(1) + n(2)) / 2 = (0.2 + 0) / 2
    [0.1]
    """
    s = np.asarray(reorder_level, dtype=float)
    Q = np.broadcast_to(np.asarray(order_quantity, dtype=float), s.shape)
    if (Q <= 0).any():
        raise ValueError("order_quantity must be > 0 for the per-review shortage of an (s, Q)")
    m = _POSITION_POINTS
    exact = integer & (Q <= m)
    total = np.zeros(s.shape)
    for j in range(1, m + 1):
        y = np.where(exact, s + j, s + Q * (j - 0.5) / m)
        total += np.where(~exact | (j <= Q), dist.loss(y), 0.0)
    return total / np.where(exact, Q, m)


#: Positions :func:`period_shortage` averages over when an (s, Q)'s batch is not a few whole units.
_POSITION_POINTS = 24


def level_for_period_fill_rate(
    dist: HorizonDistribution, fill_rate, review_demand, order_quantity, integer: bool = False
) -> np.ndarray:
    """Smallest reorder level s of an (s, Q) or (R, s, S) with :func:`period_shortage` <= (1 - beta) x review demand.

    The per-cycle rule n_H(s) <= (1 - beta) Q is for a continuous review that orders at s exactly.
    Reviewed every period, an order of n x Q replenishes at least a period's demand: with Q = 1 as
    the cycle a 0.95 target asked n_H(s) <= 0.05 units (the demo planned its fill-rate items to an
    expected 0.995); and lumpy demand takes the position well below s before an order. Counting the
    shortage per review at the positions a review leaves is the base-stock rule for Q = 1 (S = s + 1
    in whole units) and conservative for big batches (a backlog is counted in every period it lasts;
    tests/optimization/test_sizing.py checks it against the simulator).

    Parameters
    ----------
    dist : distribution of the demand over H (L + 1 for an (s, Q); L + R for an (R, s, S))
    fill_rate : array_like, beta in (0, 1)
    review_demand : array_like
        Expected demand between reviews: mu_d for an (s, Q), mu_d R for an (R, s, S).
    order_quantity : array_like
        The batch an order brings (after MOQ and multiples); S - s for an (R, s, S).
    integer : bool, default False

    Returns
    -------
    ndarray, shape (n_items,)
        Whole units when ``integer``.
    """
    beta = np.asarray(fill_rate, dtype=float)
    if ((beta <= 0) | (beta >= 1)).any():
        raise ValueError(f"fill_rate must be in (0, 1), got {np.ravel(beta)[:5]}")
    demand = np.asarray(review_demand, dtype=float)
    Q = np.asarray(order_quantity, dtype=float)
    lo, hi = dist.bounds()
    lo, hi = np.asarray(lo, dtype=float) - Q - 1.0, np.asarray(hi, dtype=float) + 1.0
    allowed = (1.0 - beta) * demand + 1e-12
    if not integer:
        return _bisect_decreasing(lambda s: period_shortage(dist, s, Q), lo, hi, allowed)
    lo, hi = np.floor(lo), np.ceil(hi)
    for _ in range(64):  # integer bisection: shortage(hi) <= allowed < shortage(lo)
        mid = np.floor(0.5 * (lo + hi))
        ok = period_shortage(dist, mid, Q, integer=True) <= allowed
        hi, lo = np.where(ok, mid, hi), np.where(ok, lo, mid)
        if (hi - lo <= 1).all():
            break
    return hi


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

    def reorder_level(review_demand) -> np.ndarray:
        """s of (s, Q) and (R, s, S): CSL and fill rate per review, over the position's range (s, s + batch]."""
        batch = _batch(q_units(), moq, order_multiple)
        if target.kind is ServiceType.CSL:
            s = level_for_period_csl(dist, target.level, batch, integer)
        elif target.kind is ServiceType.FILL_RATE:
            s = level_for_period_fill_rate(dist, target.level, review_demand, batch, integer)
        else:
            return level(review_demand)
        # a big batch can put s below zero; under lost sales the position never falls below zero: s >= 0
        return np.where(np.asarray(lost_sales, dtype=bool), np.maximum(s, 0.0), s)

    opts = {"moq": moq, "order_multiple": order_multiple, "lost_sales": lost_sales}
    builders = {
        PolicyType.S_Q: lambda: s_q_policy(reorder_level(rate), q_units(), **opts),
        PolicyType.R_S: lambda: r_s_policy(R, level(rate * R), **opts),
        PolicyType.R_S_S: lambda: _min_max(R, reorder_level(rate * R), q_units(), opts),
        PolicyType.BASE_STOCK: lambda: base_stock_policy(level(rate), **opts),
        PolicyType.NO_STOCK: lambda: no_stock_policy(n, lost_sales=lost_sales),
    }
    return builders[ptype]()


def _batch(Q, moq, order_multiple) -> np.ndarray:
    """What an (s, Q) order brings: Q raised to the MOQ, rounded up to the order multiple (as the simulator does)."""
    q = np.maximum(Q, moq)
    mult = np.asarray(order_multiple, dtype=float)
    return np.where(mult > 0, np.ceil(q / np.where(mult > 0, mult, 1.0) - 1e-9) * mult, q)


def _min_max(R, s, Q, opts) -> PolicyParams:
    """(R, s, S) with s the service level over H and S = s + Q (Silver et al. 2017, sec. 7.2)."""
    return r_s_s_policy(R, s, s + Q, **opts)
