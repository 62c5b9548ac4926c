"""Period-by-period event table of a simulation (for audits and plots).

Same engine and arguments as :func:`optimization.simulator.simulate`; this
function returns the trajectory instead of the KPIs (one return type per function).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from optimization.policies import PolicyParams
from optimization.sim_engine import _Recorder, _run
from optimization.simulator import CostParams, InitialState, _prepare

__all__ = ["simulate_events"]


def simulate_events(
    demand,
    policy: PolicyParams,
    lead_time,
    *,
    unique_id=None,
    costs: CostParams | None = None,
    initial: InitialState | None = None,
    sampled_lead_times=None,
    orders_cross: bool = True,
    shelf_life=None,
) -> pd.DataFrame:
    """Event table, one row per (batch, item, period).

    Parameters
    ----------
    demand, policy, lead_time, costs, initial, sampled_lead_times, orders_cross, shelf_life
        As in :func:`optimization.simulator.simulate`.
    unique_id : sequence of str, shape (n_items,), optional
        Item labels (default ``0..n-1``).

    Returns
    -------
    pandas.DataFrame
        Columns ``batch`` (flat index of the leading axes; 0 without a batch),
        ``unique_id``, ``period`` and, in order of events: ``received``,
        ``backorders_filled``, ``inventory_position`` (before ordering),
        ``ordered``, ``demand``, ``served``, ``shortage`` (unmet on arrival),
        ``lost``, ``expired``, ``on_hand``, ``backlog``, ``on_order`` (end of period).

    Examples
    --------
    >>> from optimization.policies import base_stock_policy
    >>> ev = simulate_events([[2.0, 1.0]], base_stock_policy([2.0]), 1, unique_id=["A"])
    >>> ev[["period", "ordered", "served", "on_hand"]].values.tolist()
    [[0.0, 0.0, 2.0, 0.0], [1.0, 2.0, 0.0, 0.0]]
    """
    x = _prepare(demand, policy, lead_time, costs, initial, sampled_lead_times, orders_cross, shelf_life, warmup=0)
    m, T = x.on_hand0.shape[0], x.T
    recorder = _Recorder(m, T)
    _run(x, recorder)
    n_items = x.batch[-1]
    labels = np.arange(n_items).astype(str) if unique_id is None else np.asarray(unique_id, dtype=str)
    if labels.shape != (n_items,):
        raise ValueError(f"unique_id has {labels.size} labels for {n_items} items")
    flat = np.arange(m)
    frame = {
        "batch": np.repeat(flat // n_items, T),
        "unique_id": np.repeat(labels[flat % n_items], T),
        "period": np.tile(np.arange(T), m),
    }
    frame.update({name: values.ravel() for name, values in recorder.data.items()})
    return pd.DataFrame(frame)
