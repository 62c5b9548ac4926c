"""The report's per-item payload and item table, converted once per column: the page the
per-cell code wrote (kept below as the reference), byte for byte."""

from __future__ import annotations

import html
import json
from typing import Any

import numpy as np
import pandas as pd

from pipelines.report import render
from pipelines.report.schema import conform_recommendations
from pipelines.report.template import fmt_number
from tests.pipelines.conftest import synthetic_run


def _ref_round(values: pd.Series) -> list:
    arr = pd.to_numeric(values, errors="coerce").to_numpy(dtype=float)
    return [None if not np.isfinite(v) else round(float(v), 2) for v in arr]


def _ref_dates(values: pd.Series) -> list[str]:
    return pd.to_datetime(values).dt.strftime("%Y-%m-%d").tolist()


def _ref_series_payload(recs, history, forecasts, sim_paths, history_periods) -> dict[str, Any]:
    uids = set(recs["unique_id"])
    hist = history[history["unique_id"].isin(uids)].sort_values(["unique_id", "ds"])
    hist = hist.groupby("unique_id", sort=False).tail(history_periods)
    groups = {
        "h": {k: g for k, g in hist.groupby("unique_id", sort=False)},
        "f": {k: g.sort_values("ds") for k, g in forecasts.groupby("unique_id", sort=False)}
        if forecasts is not None
        else {},
        "s": {k: g.sort_values("ds") for k, g in sim_paths.groupby("unique_id", sort=False)}
        if sim_paths is not None
        else {},
    }
    levels = recs.set_index("unique_id")[["reorder_point", "order_up_to"]].apply(pd.to_numeric, errors="coerce")
    empty = pd.DataFrame({"ds": pd.Series(dtype="datetime64[ns]")})
    out: dict[str, Any] = {}
    for uid in recs["unique_id"]:
        h, f, s = (groups[k].get(uid, empty) for k in ("h", "f", "s"))
        rop, out_to = levels.loc[uid]
        out[uid] = {
            "h": {"t": _ref_dates(h["ds"]), "y": _ref_round(h.get("y", pd.Series(dtype=float)))},
            "f": {
                "t": _ref_dates(f["ds"]),
                "y": _ref_round(f.get("forecast", pd.Series(dtype=float))),
                "lo": _ref_round(f["lo"]) if "lo" in f else [],
                "hi": _ref_round(f["hi"]) if "hi" in f else [],
            },
            "s": {"t": _ref_dates(s["ds"]), "y": _ref_round(s.get("on_hand", pd.Series(dtype=float)))},
            "s_": None if not np.isfinite(rop) else round(float(rop), 2),
            "S": None if not np.isfinite(out_to) else round(float(out_to), 2),
        }
    return out


def _ref_cell(col: str, value: Any) -> str:
    if col in render._TEXT_COLUMNS:
        text = "" if value is None or (isinstance(value, float) and np.isnan(value)) or value is pd.NA else str(value)
        cls = "reasons" if col == "reasons" else "t"
        return f'<td class="{cls}">{html.escape(text)}</td>'
    num = pd.to_numeric(pd.Series([value]), errors="coerce").iloc[0]
    digits = 3 if col.startswith(("expected_csl", "expected_fill", "service_target")) else 1
    shown = fmt_number(float(num), digits) if col != "expected_total_cost" else fmt_number(float(num), 0)
    data_v = "" if not np.isfinite(num) else repr(float(num))
    return f'<td data-v="{data_v}">{shown}</td>'


def _ref_item_table(recs: pd.DataFrame) -> str:
    cols = render.TABLE_COLUMNS
    head = "".join(f'<th data-col="{c}" class="{"t" if c in render._TEXT_COLUMNS else ""}">{c}</th>' for c in cols)
    body = []
    for row in recs[list(cols)].itertuples(index=False):
        cells = "".join(_ref_cell(c, v) for c, v in zip(cols, row, strict=True))
        body.append(
            f'<tr data-uid="{html.escape(str(row.unique_id))}" '
            f'data-policy="{html.escape(str(row.policy))}">{cells}</tr>'
        )
    return f'<table id="items-table"><thead><tr>{head}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def _awkward(run: dict) -> dict:
    """The synthetic run with the cases the per-cell code handled one by one: missing levels and
    costs, a text column of NaN, an item without forecast or simulation, a shuffled history."""
    recs = conform_recommendations(run["recommendations"]).copy()
    recs.loc[recs.index[0], ["reorder_point", "expected_total_cost"]] = np.nan
    recs.loc[recs.index[1], "abc"] = np.nan
    recs.loc[recs.index[2], "reasons"] = "<b>x</b> & y"
    first = recs["unique_id"].iloc[3]
    history = run["history"].sample(frac=1.0, random_state=0)
    forecasts = run["forecasts"][run["forecasts"]["unique_id"] != first]
    sims = run["sim_paths"][run["sim_paths"]["unique_id"] != first]
    return {"recs": recs, "history": history, "forecasts": forecasts, "sim_paths": sims}


def test_series_payload_is_the_per_item_one():
    case = _awkward(synthetic_run())
    for periods in (104, 5):
        args = (case["recs"], case["history"], case["forecasts"], case["sim_paths"], periods)
        new, ref = render._series_payload(*args), _ref_series_payload(*args)
        assert json.dumps(new, allow_nan=False) == json.dumps(ref, allow_nan=False)
    bare = render._series_payload(case["recs"], case["history"], None, None, 104)
    assert json.dumps(bare) == json.dumps(_ref_series_payload(case["recs"], case["history"], None, None, 104))
    assert bare[case["recs"]["unique_id"].iloc[0]]["s_"] is None


def test_item_table_is_the_per_cell_one():
    recs = _awkward(synthetic_run())["recs"]
    table = render._item_table(recs)
    assert table == _ref_item_table(recs)
    assert "&lt;b&gt;x&lt;/b&gt; &amp; y" in table and 'data-v=""' in table
