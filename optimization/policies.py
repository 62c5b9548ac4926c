"""Inventory policies as typed, item-vectorised parameter containers.

Every policy is stored in one normal form so the simulator can treat a mixed
portfolio (one policy type per item) with the same array code:

========================  =====  ===============  ==================  =====
policy                    R      reorder level s  order-up-to S      Q
========================  =====  ===============  ==================  =====
``s_Q``  (continuous)     1      s                (unused)            Q
``R_S``  order-up-to      R      S                S                   --
``R_s_S`` min-max         R      s                S                   --
``base_stock``            1      S                S                   --
``no_stock``              1      0                0                   --
========================  =====  ===============  ==================  =====

Decision rule at a review period (``t % R == 0``), with inventory position
IP = on-hand - backorders + on-order (Snyder & Shen 2019, sec. 4.4 and 5.2;
stockpyl uses the same ``IP <= s`` trigger):

- fixed quantity (``s_Q``): if IP <= s order the smallest multiple n*Q that lifts
  IP above s;
- order-up-to (all others): if IP <= s order S - IP (nothing when that is <= 0).

A positive order is then raised to the minimum order quantity ``moq`` and
rounded up to a multiple of ``order_multiple`` (0 = no rounding).
``s_Q`` is reviewed every period, which is continuous review observed at the
period grid. ``no_stock`` orders exactly what was demanded: under backorders
that is make-to-order (each customer waits the lead time); under lost sales it
means "do not serve this item".

References
----------
L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed.,
Wiley, 2019, chapters 4 and 5.
E. A. Silver, D. F. Pyke and D. J. Thomas, *Inventory and Production Management
in Supply Chains*, 4th ed., CRC Press, 2017, chapter 6.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from enum import Enum

import numpy as np

__all__ = [
    "ItemValueError",
    "MAX_UNITS",
    "PolicyType",
    "PolicyParams",
    "s_q_policy",
    "r_s_policy",
    "r_s_s_policy",
    "base_stock_policy",
    "no_stock_policy",
    "stack_policies",
    "mixed_policies",
]


class PolicyType(str, Enum):
    """Inventory policy families (value = code used in policy tables)."""

    S_Q = "s_Q"
    R_S = "R_S"
    R_S_S = "R_s_S"
    BASE_STOCK = "base_stock"
    NO_STOCK = "no_stock"


#: Integer code of each policy type inside :class:`PolicyParams`.
POLICY_CODES: dict[PolicyType, int] = {p: i for i, p in enumerate(PolicyType)}
#: Policy types that order a fixed quantity Q (the rest order up to S).
FIXED_QUANTITY_TYPES: frozenset[PolicyType] = frozenset({PolicyType.S_Q})


#: Largest stock level, order quantity or per-period demand the simulator accepts: above it
#: float64 running sums lose whole units (S = 1e17 with unit demand reported a 0 fill rate
#: at 100 % CSL). Demand panels stop far lower (``forecasting.panel.MAX_DEMAND`` per
#: period), so levels sized from valid demand stay below it.
MAX_UNITS = 1e15


class ItemValueError(ValueError):
    """An input is invalid for some items of a ``(..., n_items)`` batch.

    The message names the items by flat batch position; :meth:`named` returns the
    same error naming them by id, for callers that know the ids (policy tables).

    Attributes
    ----------
    positions : list of int
        Flat positions in the batch (item ``p % n_items`` of a batched input).
    values : list
        The offending values, in the order of ``positions``.
    """

    def __init__(self, what: str, positions, values, fix: str, ids=None):
        self.what, self.fix, self.ids = what, fix, ids
        self.positions = [int(p) for p in positions]
        self.values = list(values)
        super().__init__(self._message())

    def _message(self) -> str:
        shown = self.positions[:5]
        where = (
            f"items at positions {shown}"
            if self.ids is None
            else f"unique_id {[str(self.ids[p % len(self.ids)]) for p in shown]}"
        )
        got = ", ".join(str(v) for v in self.values[:5])
        return f"{self.what} for {where} (got {got}); {self.fix}"

    def named(self, ids) -> ItemValueError:
        """The same error with the items named by ``ids`` (length n_items)."""
        return ItemValueError(self.what, self.positions, self.values, self.fix, ids=list(ids))


def check_items(mask, values, what: str, fix: str) -> None:
    """Raise :class:`ItemValueError` for the items where ``mask`` is true."""
    mask = np.asarray(mask)
    if mask.any():
        flat = np.flatnonzero(mask.ravel())
        raise ItemValueError(what, flat[:5], np.broadcast_to(values, mask.shape).ravel()[flat[:5]].tolist(), fix)


def _as_float(name: str, value) -> np.ndarray:
    arr = np.asarray(value, dtype=float)
    check_items(~np.isfinite(arr), arr, f"{name} must be finite", "fill it in or drop the item")
    check_items(
        np.abs(arr) > MAX_UNITS,
        arr,
        f"{name} must be at most {MAX_UNITS:.0e} units",
        "check the units of the policy table",
    )
    return arr


def _as_periods(name: str, value) -> np.ndarray:
    arr = np.asarray(value)
    if arr.dtype.kind not in "iub":
        arr = arr.astype(float)
        check_items(
            ~np.isfinite(arr) | (np.mod(arr, 1) != 0),
            arr,
            f"{name} must be a whole number of periods",
            "round it to whole periods",
        )
    return arr.astype(np.int64)


@dataclass(frozen=True)
class PolicyParams:
    """Parameters of one policy per item, in the normal form of the module docstring.

    All fields are arrays broadcastable to a common batch shape ``(..., n_items)``;
    a leading axis may index candidate policies or scenarios. Build instances with
    the factory functions (:func:`r_s_policy` ...) rather than by hand.

    Parameters
    ----------
    policy_type : ndarray of int
        ``POLICY_CODES`` value per item.
    review_period : ndarray of int
        R >= 1, periods between reviews.
    reorder_level : ndarray of float
        s; an order is considered when IP <= s.
    order_up_to : ndarray of float
        S (order-up-to types).
    order_quantity : ndarray of float
        Q (fixed-quantity types), > 0 there.
    moq : ndarray of float, default 0
        Minimum order quantity.
    order_multiple : ndarray of float, default 0
        Orders are rounded up to a multiple of this (0 = continuous quantities).
    lost_sales : ndarray of bool, default False
        True: unmet demand is lost; False: it is backordered.

    Raises
    ------
    ValueError
        On shapes that do not broadcast, R < 1, S < s for order-up-to types,
        Q <= 0 for fixed-quantity types, negative MOQ or multiple.
    """

    policy_type: np.ndarray
    review_period: np.ndarray
    reorder_level: np.ndarray
    order_up_to: np.ndarray
    order_quantity: np.ndarray
    moq: np.ndarray = field(default_factory=lambda: np.zeros(1))
    order_multiple: np.ndarray = field(default_factory=lambda: np.zeros(1))
    lost_sales: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=bool))

    def __post_init__(self) -> None:
        fields = {
            "policy_type": np.asarray(self.policy_type, dtype=np.int64),
            "review_period": _as_periods("review_period", self.review_period),
            "order_up_to": _as_float("order_up_to", self.order_up_to),  # before s: R_S and base stock have s = S
            "reorder_level": _as_float("reorder_level", self.reorder_level),
            "order_quantity": _as_float("order_quantity", self.order_quantity),
            "moq": _as_float("moq", self.moq),
            "order_multiple": _as_float("order_multiple", self.order_multiple),
            "lost_sales": np.asarray(self.lost_sales, dtype=bool),
        }
        try:
            shape = np.broadcast_shapes(*(a.shape for a in fields.values()))
        except ValueError as exc:
            shapes = {k: v.shape for k, v in fields.items()}
            raise ValueError(f"policy parameter shapes do not broadcast: {shapes}") from exc
        for name, arr in fields.items():
            arr = np.broadcast_to(arr, shape).copy()
            arr.setflags(write=False)
            object.__setattr__(self, name, arr)
        self._check()

    def _check(self) -> None:
        codes = set(POLICY_CODES.values())
        if not np.isin(self.policy_type, list(codes)).all():
            raise ValueError(f"unknown policy_type codes {np.setdiff1d(self.policy_type, list(codes))}")
        check_items(
            self.review_period < 1,
            self.review_period,
            "review_period must be >= 1",
            "review at least every period (R = 1)",
        )
        fixed = self.is_fixed_quantity
        check_items(
            fixed & (self.order_quantity <= 0),
            self.order_quantity,
            "order_quantity Q must be > 0 (s_Q policy)",
            "give each s_Q item a positive Q",
        )
        bad_s = ~fixed & (self.order_up_to < self.reorder_level)
        if bad_s.any():  # values as text only on the error path
            pairs = np.array(
                [f"s={a:g} > S={b:g}" for a, b in zip(self.reorder_level.ravel(), self.order_up_to.ravel())]
            )
            check_items(
                bad_s, pairs.reshape(bad_s.shape), "order_up_to S must be >= reorder_level s", "raise S or lower s"
            )
        for name in ("moq", "order_multiple"):
            check_items(getattr(self, name) < 0, getattr(self, name), f"{name} must be >= 0", "use 0 for none")

    @property
    def shape(self) -> tuple[int, ...]:
        """Batch shape ``(..., n_items)``."""
        return self.policy_type.shape

    @property
    def is_fixed_quantity(self) -> np.ndarray:
        """Boolean mask of items that order a fixed quantity Q."""
        fixed_codes = [POLICY_CODES[p] for p in FIXED_QUANTITY_TYPES]
        return np.isin(self.policy_type, fixed_codes)

    def types(self) -> np.ndarray:
        """Policy types as an object array of :class:`PolicyType`."""
        lookup = np.array(list(POLICY_CODES), dtype=object)
        return lookup[self.policy_type]


def _build(ptype: PolicyType, review_period, s, S, Q, moq, order_multiple, lost_sales) -> PolicyParams:
    shape = np.broadcast_shapes(*(np.shape(v) for v in (review_period, s, S, Q)))
    return PolicyParams(
        policy_type=np.full(shape, POLICY_CODES[ptype]),
        review_period=review_period,
        reorder_level=s,
        order_up_to=S,
        order_quantity=Q,
        moq=moq,
        order_multiple=order_multiple,
        lost_sales=lost_sales,
    )


def s_q_policy(reorder_level, order_quantity, *, moq=0.0, order_multiple=0.0, lost_sales=False) -> PolicyParams:
    """Continuous-review (s, Q): when IP <= s order the smallest n*Q lifting IP above s.

    Examples
    --------
    >>> p = s_q_policy([10.0, 4.0], [30.0, 12.0])
    >>> p.shape
    (2,)
    """
    s = np.asarray(reorder_level, dtype=float)
    return _build(PolicyType.S_Q, 1, s, s, order_quantity, moq, order_multiple, lost_sales)


def r_s_policy(review_period, order_up_to, *, moq=0.0, order_multiple=0.0, lost_sales=False) -> PolicyParams:
    """Periodic (R, S) order-up-to: every R periods order S - IP when positive.

    Examples
    --------
    >>> r_s_policy(2, [50.0, 20.0]).review_period.tolist()
    [2, 2]
    """
    S = np.asarray(order_up_to, dtype=float)
    return _build(PolicyType.R_S, review_period, S, S, 0.0, moq, order_multiple, lost_sales)


def r_s_s_policy(
    review_period, reorder_level, order_up_to, *, moq=0.0, order_multiple=0.0, lost_sales=False
) -> PolicyParams:
    """Periodic (R, s, S) min-max: every R periods, if IP <= s order S - IP.

    Examples
    --------
    >>> r_s_s_policy(1, [5.0], [20.0]).order_up_to.tolist()
    [20.0]
    """
    return _build(PolicyType.R_S_S, review_period, reorder_level, order_up_to, 0.0, moq, order_multiple, lost_sales)


def base_stock_policy(order_up_to, *, moq=0.0, order_multiple=0.0, lost_sales=False) -> PolicyParams:
    """Base-stock level S reviewed every period (R = 1): order S - IP each period.

    Examples
    --------
    >>> base_stock_policy([7.0]).types()[0].value
    'base_stock'
    """
    S = np.asarray(order_up_to, dtype=float)
    return _build(PolicyType.BASE_STOCK, 1, S, S, 0.0, moq, order_multiple, lost_sales)


def no_stock_policy(n_items: int, *, lost_sales=False) -> PolicyParams:
    """Do not stock: order-up-to 0 every period (make-to-order under backorders).

    Examples
    --------
    >>> no_stock_policy(3).order_up_to.tolist()
    [0.0, 0.0, 0.0]
    """
    zeros = np.zeros(n_items)
    return _build(PolicyType.NO_STOCK, 1, zeros, zeros, 0.0, 0.0, 0.0, lost_sales)


#: The per-item arrays of a :class:`PolicyParams`, in field order (for stacking and picking).
POLICY_FIELDS = tuple(f.name for f in dataclasses.fields(PolicyParams))


def stack_policies(policies: list[PolicyParams]) -> PolicyParams:
    """Stack same-shaped policies on a new leading (candidate) axis.

    Parameters
    ----------
    policies : list of PolicyParams
        Each with the same batch shape ``(n_items,)`` (or broadcastable).

    Returns
    -------
    PolicyParams
        Batch shape ``(len(policies), n_items)``.

    Raises
    ------
    ValueError
        If the list is empty or the shapes differ.
    """
    if not policies:
        raise ValueError("stack_policies needs at least one PolicyParams")
    shape = np.broadcast_shapes(*(p.shape for p in policies))
    stacked = {n: np.stack([np.broadcast_to(getattr(p, n), shape) for p in policies]) for n in POLICY_FIELDS}
    return PolicyParams(**stacked)


def _parse_types(policy_type) -> np.ndarray:
    raw = np.atleast_1d(np.asarray(policy_type, dtype=object))
    valid = {p.value: p for p in PolicyType} | {p: p for p in PolicyType}
    bad = [v for v in raw if v not in valid]
    if bad:
        raise ValueError(
            f"unknown policy_type {sorted(set(map(str, bad)))[:5]}; use one of {[p.value for p in PolicyType]}"
        )
    return np.array([POLICY_CODES[valid[v]] for v in raw])


def mixed_policies(
    policy_type,
    *,
    review_period=1,
    reorder_level=0.0,
    order_up_to=0.0,
    order_quantity=0.0,
    moq=0.0,
    order_multiple=0.0,
    lost_sales=False,
    ids=None,
) -> PolicyParams:
    """One policy per item, of possibly different types (e.g. from a policy table).

    Fields a type does not use are ignored and normalised as in the module table:
    ``s_Q`` and ``base_stock`` and ``no_stock`` get R = 1; ``R_S`` and ``base_stock``
    get s = S; ``no_stock`` gets s = S = 0.

    Parameters
    ----------
    policy_type : sequence of str or PolicyType, shape (n_items,)
    review_period, reorder_level, order_up_to, order_quantity, moq, order_multiple, lost_sales
        Scalars or arrays of shape (n_items,); see :class:`PolicyParams`.
    ids : sequence of str, shape (n_items,), optional
        Item ids; errors then name the offending items by id instead of position.

    Returns
    -------
    PolicyParams

    Raises
    ------
    ValueError
        Unknown policy type names (message lists the valid ones).
    ItemValueError
        Invalid parameters (a ``ValueError``), naming the items.

    Examples
    --------
    >>> p = mixed_policies(["R_S", "s_Q"], review_period=[2, 1], order_up_to=[9.0, 0.0],
    ...                    reorder_level=[0.0, 3.0], order_quantity=[0.0, 5.0])
    >>> p.reorder_level.tolist()
    [9.0, 3.0]
    """
    codes = _parse_types(policy_type)
    n = codes.shape

    def code(p: PolicyType) -> np.ndarray:
        return codes == POLICY_CODES[p]

    R = np.broadcast_to(np.asarray(review_period), n)
    s = np.broadcast_to(np.asarray(reorder_level, dtype=float), n)
    S = np.broadcast_to(np.asarray(order_up_to, dtype=float), n)
    Q = np.broadcast_to(np.asarray(order_quantity, dtype=float), n)
    one_period = code(PolicyType.S_Q) | code(PolicyType.BASE_STOCK) | code(PolicyType.NO_STOCK)
    up_to_only = code(PolicyType.R_S) | code(PolicyType.BASE_STOCK)
    none = code(PolicyType.NO_STOCK)
    R = np.where(one_period, 1, R)
    s = np.where(up_to_only, S, np.where(none, 0.0, s))
    S = np.where(code(PolicyType.S_Q), s, np.where(none, 0.0, S))
    Q = np.where(code(PolicyType.S_Q), Q, 0.0)
    try:
        return PolicyParams(
            policy_type=codes,
            review_period=R,
            reorder_level=s,
            order_up_to=S,
            order_quantity=Q,
            moq=np.where(none, 0.0, moq),
            order_multiple=np.where(none, 0.0, order_multiple),
            lost_sales=lost_sales,
        )
    except ItemValueError as exc:
        if ids is None:
            raise
        raise exc.named(ids) from None
