"""Item economics as flat arrays: costs per period, service targets, lead times.

The item master (docs/design.md) gives yearly holding rates and optional shortage
costs; the simulator and the sizing want per-period costs. When an item has
no shortage cost, it is implied by its service target through the newsvendor
critical ratio b / (b + h) = alpha, i.e. b = h alpha / (1 - alpha)
(Snyder & Shen 2019, eq. 4.30), so that every candidate is scored on all
cost types.

References
----------
L. V. Snyder and Z.-J. M. Shen, *Fundamentals of Supply Chain Theory*, 2nd ed.,
Wiley, 2019, sec. 4.3.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
import pandas as pd

from optimization import CostParams

__all__ = ["Economics", "periods_per_year", "REQUIRED_ITEM_COLUMNS"]

REQUIRED_ITEM_COLUMNS = ("unique_id", "unit_cost", "holding_rate", "order_cost", "lead_time", "review_period")
_PERIODS = {"D": 365.0, "B": 260.0, "W": 52.0, "M": 12.0, "Q": 4.0, "Y": 1.0, "A": 1.0, "H": 8760.0}


def periods_per_year(freq: str) -> float:
    """Periods per year of a pandas frequency string (``W-MON`` -> 52, ``MS`` -> 12).

    Raises
    ------
    ValueError
        For a frequency without a yearly count.
    """
    mult = int(re.match(r"\d*", freq).group() or 1)  # "2W-MON": two weeks per period
    key = freq.upper().lstrip("0123456789")
    key = "Q" if key.startswith(("QS", "QE")) else key[:1]
    if key not in _PERIODS:
        raise ValueError(f"no periods-per-year for frequency {freq!r}; use D, B, W-<DAY>, MS/ME, QS/QE")
    return _PERIODS[key] / mult


def _column(items: pd.DataFrame, name: str, default: float) -> np.ndarray:
    if name not in items.columns:
        return np.full(len(items), default, dtype=float)
    return pd.to_numeric(items[name], errors="coerce").fillna(default).to_numpy(dtype=float)


@dataclass(frozen=True)
class Economics:
    """Per-item economics aligned to ``ids`` (all arrays shape (n_items,)).

    Build with :meth:`from_items`; fields are per period unless stated.
    """

    ids: np.ndarray
    unit_cost: np.ndarray
    holding_cost: np.ndarray
    order_cost: np.ndarray
    shortage_cost: np.ndarray
    shortage_implied: np.ndarray
    service_type: np.ndarray  # "csl" | "fill_rate" | "cost"
    service_target: np.ndarray  # NaN for "cost"
    lead_time: np.ndarray  # int periods
    lead_time_std: np.ndarray
    review_period: np.ndarray  # int periods
    moq: np.ndarray
    order_multiple: np.ndarray
    shelf_life: np.ndarray  # int periods, 0 = no expiry
    lost_sales: np.ndarray
    periods_per_year: float

    @classmethod
    def from_items(cls, items: pd.DataFrame, ids, freq: str) -> Economics:
        """Align the item master to ``ids`` and convert to per-period arrays.

        Parameters
        ----------
        items : pandas.DataFrame
            Item master (docs/design.md); needs :data:`REQUIRED_ITEM_COLUMNS`.
        ids : sequence of str
            Series to keep, in this order.
        freq : str
            Demand frequency (yearly holding rate -> per period).

        Raises
        ------
        ValueError
            Missing columns, ids absent from the item master, or items with neither a
            shortage cost nor a service target.
        """
        missing = [c for c in REQUIRED_ITEM_COLUMNS if c not in items.columns]
        if missing:
            raise ValueError(f"item master lacks column(s) {missing}; needs {list(REQUIRED_ITEM_COLUMNS)}")
        ids = np.asarray(ids, dtype=str)
        table = items.assign(unique_id=items["unique_id"].astype(str)).drop_duplicates("unique_id")
        table = table.set_index("unique_id")
        absent = [i for i in ids if i not in table.index]
        if absent:
            raise ValueError(f"{len(absent)} series have no item-master row, e.g. {absent[:10]}; add them to items")
        t = table.loc[ids].reset_index()
        ppy = periods_per_year(freq)
        unit = _column(t, "unit_cost", 0.0)
        h = unit * _column(t, "holding_rate", 0.0) / ppy
        if "holding_cost" in t.columns:
            h = np.where(t["holding_cost"].notna(), _column(t, "holding_cost", 0.0), h)
        target = _column(t, "service_target", np.nan)
        kind = (
            t["service_type"].astype(str).str.lower().to_numpy()
            if "service_type" in t.columns
            else np.full(len(t), "csl")
        )
        kind = np.where(np.isnan(target), "cost", kind)
        b = _column(t, "shortage_cost", np.nan)
        implied = np.isnan(b)
        bad = implied & np.isnan(target)
        if bad.any():
            raise ValueError(
                f"items {ids[bad][:10].tolist()} have neither shortage_cost nor service_target; give one of them"
            )
        alpha = np.clip(np.nan_to_num(target, nan=0.5), 1e-3, 0.999)
        b = np.where(implied, h * alpha / (1 - alpha), b)
        shelf = _column(t, "shelf_life", 0.0)
        return cls(
            ids=ids,
            unit_cost=unit,
            holding_cost=np.maximum(h, 1e-9),
            order_cost=_column(t, "order_cost", 0.0),
            shortage_cost=np.maximum(b, 1e-9),
            shortage_implied=implied,
            service_type=kind.astype(object),
            service_target=target,
            lead_time=np.ceil(_column(t, "lead_time", 0.0) - 1e-9).astype(np.int64),
            lead_time_std=_column(t, "lead_time_std", 0.0),
            review_period=np.maximum(np.rint(_column(t, "review_period", 1.0)), 1).astype(np.int64),
            moq=_column(t, "moq", 0.0),
            order_multiple=_column(t, "order_multiple", 0.0),
            shelf_life=np.rint(shelf).astype(np.int64),
            lost_sales=(
                t["lost_sales"].fillna(False).astype(bool).to_numpy()
                if "lost_sales" in t.columns
                else np.zeros(len(t), dtype=bool)
            ),
            periods_per_year=ppy,
        )

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, mask) -> Economics:
        """Items where ``mask`` is true (or at the given positions)."""
        values = {f: getattr(self, f) for f in self.__dataclass_fields__}
        return Economics(**{k: (v[mask] if isinstance(v, np.ndarray) else v) for k, v in values.items()})

    def cost_params(self) -> CostParams:
        """Simulator costs: purchasing, ordering, holding, shortage per unit short.

        Expiry is charged through purchasing (an expired unit was bought and never
        sold), so ``expiry_cost`` is 0 here; see :func:`policy_selector.labels.score`.
        """
        return CostParams(
            unit_cost=self.unit_cost,
            order_cost=self.order_cost,
            holding_cost=self.holding_cost,
            shortage_cost=self.shortage_cost,
        )
