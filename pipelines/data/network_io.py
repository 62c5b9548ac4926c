"""Read multi-echelon networks from disk: Willems (2008) chains and Stockwise CSVs.

Both loaders return an immutable :class:`optimization.Network`. Every error
names the file, the row (1-based line number, header = line 1) and the column.

- Willems format (``shared/data/willems/README.md``): one line per stage with
  variable length (``csv.reader``); holding cost = holding rate x cumulative
  unit cost c_j = added_j + sum_i phi_ij c_i; fractional lead times are kept.
- Stockwise network CSVs: ``stages.csv`` (stage_id, processing_time,
  holding_cost, max_service_time [blank = unbounded], unique_id [blank for
  internal], optional demand_mean, demand_std, safety_factor) and
  ``edges.csv`` (upstream, downstream, quantity).
"""

from __future__ import annotations

import csv
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from optimization.network import Edge, Network, NetworkError, Stage

__all__ = [
    "NetworkFileError",
    "network_from_frames",
    "read_stockwise_network",
    "read_willems_chain",
    "write_stockwise_network",
]

WILLEMS_HEADER = [
    "stage_id",
    "lead_time",
    "max_s_time",
    "cost_rate",
    "risk_pool",
    "ext_demand_mean",
    "ext_demand_std",
    "ext_demand_thres",
    "up_stages",
]
STAGE_COLUMNS = ["stage_id", "processing_time", "holding_cost", "max_service_time", "unique_id"]
OPTIONAL_STAGE_COLUMNS = ["demand_mean", "demand_std", "safety_factor"]
EDGE_COLUMNS = ["upstream", "downstream", "quantity"]


class NetworkFileError(NetworkError):
    """A network file that cannot be read; the message names file, row and column."""


def _number(text: str, path: Path, row: int, column: str, blank: float | None = None) -> float | None:
    """Parse one numeric cell or raise naming file, row and column."""
    text = (text or "").strip()
    if text == "":
        if blank is not None or column in ("max_s_time", "max_service_time"):
            return blank
        raise NetworkFileError(f"{path}: row {row}, column {column!r} is blank; give a number")
    try:
        value = float(text)
    except ValueError:
        raise NetworkFileError(f"{path}: row {row}, column {column!r}: {text!r} is not a number") from None
    if not math.isfinite(value) or value < 0:
        raise NetworkFileError(f"{path}: row {row}, column {column!r}: {text!r} must be a finite number >= 0")
    return value


def _willems_row(line: list[str], path: Path, row: int) -> tuple[Stage, list[Edge]]:
    """One stage line of a Willems chain (added cost kept in holding_cost for now)."""
    if len(line) < 8:
        raise NetworkFileError(f"{path}: row {row} has {len(line)} fields; need at least 8 ({WILLEMS_HEADER[:8]})")
    sid = line[0].strip()
    if not sid:
        raise NetworkFileError(f"{path}: row {row}, column 'stage_id' is blank")
    is_demand = line[5].strip() != ""
    stage = Stage(
        stage_id=sid,
        processing_time=_number(line[1], path, row, "lead_time"),
        holding_cost=_number(line[3], path, row, "cost_rate"),
        max_service_time=_number(line[2], path, row, "max_s_time", blank=math.inf),
        demand_mean=_number(line[5], path, row, "ext_demand_mean") if is_demand else None,
        demand_std=_number(line[6], path, row, "ext_demand_std") if is_demand else None,
        safety_factor=_number(line[7], path, row, "ext_demand_thres") if is_demand else None,
        risk_pool=_number(line[4], path, row, "risk_pool", blank=2.0) or 2.0,
    )
    links = [x.strip() for x in line[8:]]
    while links and links[-1] == "":
        links.pop()
    if len(links) % 2:
        raise NetworkFileError(f"{path}: row {row}, column 'up_stages': {links} is not a list of (stage_id, phi) pairs")
    edges = [
        Edge(links[k], sid, _number(links[k + 1], path, row, f"up_stages[{k // 2}].phi"))
        for k in range(0, len(links), 2)
    ]
    return stage, edges


def read_willems_chain(path: str | Path, holding_rate: float = 0.35) -> Network:
    """Load a Willems (2008) chain CSV as a Network.

    Parameters
    ----------
    path : str or Path
        ``willems_NN.csv`` (see ``shared/data/willems/README.md``).
    holding_rate : float, default 0.35
        Holding cost per unit-period = holding_rate x cumulative unit cost.
        The reported optimal costs of Humair & Willems (2011) correspond to 0.35.

    Raises
    ------
    NetworkFileError
        Missing file, wrong header, bad number (file, row and column named).
    NetworkError
        Structural problems (cycles, unknown upstream ids, ...).

    Examples
    --------
    >>> net = read_willems_chain("../shared/data/willems/chains/willems_02.csv")  # doctest: +SKIP
    >>> net.n_stages, net.n_edges  # doctest: +SKIP
    (13, 13)
    """
    path = Path(path)
    if not path.is_file():
        raise NetworkFileError(f"{path}: file not found; give a Willems chain CSV (willems_NN.csv)")
    if not (math.isfinite(holding_rate) and holding_rate > 0):
        raise ValueError(f"holding_rate must be > 0, got {holding_rate!r}")
    with path.open(newline="") as fh:
        lines = list(csv.reader(fh))
    if not lines or [h.strip() for h in lines[0][:9]] != WILLEMS_HEADER:
        raise NetworkFileError(f"{path}: row 1 must be the header {','.join(WILLEMS_HEADER)}")
    stages, edges = [], []
    for row, line in enumerate(lines[1:], start=2):
        if not any(x.strip() for x in line):
            continue
        stage, links = _willems_row(line, path, row)
        stages.append(stage)
        edges.extend(links)
    try:
        added = Network(stages, edges)
    except NetworkError as exc:
        raise type(exc)(f"{path}: {exc}") from None
    cumulative = added.cumulative(added.holding_cost)
    by_id = dict(zip(added.stage_ids, cumulative))
    return Network([replace(s, holding_cost=holding_rate * by_id[s.stage_id]) for s in stages], edges)


def _read_table(path: Path, required: list[str]) -> pd.DataFrame:
    """Read a CSV as strings and check its columns."""
    if not path.is_file():
        raise NetworkFileError(f"{path}: file not found")
    frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise NetworkFileError(f"{path}: missing columns {missing}; required {required}")
    return frame


def read_stockwise_network(stages_path: str | Path, edges_path: str | Path) -> Network:
    """Load the Stockwise ``stages.csv`` + ``edges.csv`` pair.

    Raises
    ------
    NetworkFileError
        Missing file/column or a bad value (file, row and column named).
    NetworkError
        Structural problems (cycles, unknown ids, sinks without demand, ...).
    """
    stages_path, edges_path = Path(stages_path), Path(edges_path)
    return network_from_frames(
        _read_table(stages_path, STAGE_COLUMNS), _read_table(edges_path, EDGE_COLUMNS), stages_path, edges_path
    )


def _text(value) -> str:
    """Cell as text; NaN/None -> blank."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return str(value)


def network_from_frames(
    stages: pd.DataFrame,
    edges: pd.DataFrame,
    stages_name: str | Path = "stages",
    edges_name: str | Path = "edges",
) -> Network:
    """Build a Network from the stages/edges tables (e.g. ``generate_demo(...).stages``).

    Raises
    ------
    NetworkFileError
        Missing column or bad value (table name, row and column named).
    NetworkError
        Structural problems.
    """
    for frame, name, cols in ((stages, stages_name, STAGE_COLUMNS), (edges, edges_name, ["upstream", "downstream"])):
        missing = [c for c in cols if c not in frame.columns]
        if missing:
            raise NetworkFileError(f"{name}: missing columns {missing}; required {cols}")
    out = []
    for i, rec in enumerate(stages.to_dict("records"), start=2):
        opt = {
            c: _number(_text(rec[c]), stages_name, i, c, blank=np.nan)
            for c in OPTIONAL_STAGE_COLUMNS
            if c in stages.columns
        }
        out.append(
            Stage(
                stage_id=_text(rec["stage_id"]).strip(),
                processing_time=_number(_text(rec["processing_time"]), stages_name, i, "processing_time"),
                holding_cost=_number(_text(rec["holding_cost"]), stages_name, i, "holding_cost"),
                max_service_time=_number(
                    _text(rec["max_service_time"]), stages_name, i, "max_service_time", blank=math.inf
                ),
                unique_id=_text(rec["unique_id"]).strip() or None,
                **{k: (None if v is None or np.isnan(v) else v) for k, v in opt.items()},
            )
        )
    links = [
        Edge(
            _text(rec["upstream"]).strip(),
            _text(rec["downstream"]).strip(),
            _number(_text(rec.get("quantity", "")), edges_name, i, "quantity", blank=1.0),
        )
        for i, rec in enumerate(edges.to_dict("records"), start=2)
    ]
    try:
        return Network(out, links)
    except NetworkError as exc:
        raise type(exc)(f"{stages_name} / {edges_name}: {exc}") from None


def write_stockwise_network(network: Network, stages_path: str | Path, edges_path: str | Path) -> None:
    """Write a Network as the Stockwise ``stages.csv`` + ``edges.csv`` pair (blank = unbounded/none)."""
    rows = [
        {
            "stage_id": s.stage_id,
            "processing_time": s.processing_time,
            "holding_cost": s.holding_cost,
            "max_service_time": ""
            if s.max_service_time is None or math.isinf(s.max_service_time)
            else s.max_service_time,
            "unique_id": s.unique_id or "",
            "demand_mean": "" if s.demand_mean is None else s.demand_mean,
            "demand_std": "" if s.demand_std is None else s.demand_std,
            "safety_factor": "" if s.safety_factor is None else s.safety_factor,
        }
        for s in network.stages
    ]
    pd.DataFrame(rows).to_csv(stages_path, index=False)
    pd.DataFrame([vars(e) for e in network.edges], columns=EDGE_COLUMNS).to_csv(edges_path, index=False)
