"""Frontier plots are written (PNG + self-contained HTML) and bad input is named."""

from __future__ import annotations

import pandas as pd
import pytest

from pipelines.report.frontier_plot import write_frontier_plots


def _summary():
    return pd.DataFrame(
        {
            "target": [0.8, 0.9, 0.8, 0.9],
            "segment": ["A", "A", "B", "B"],
            "inventory_value": [10.0, 14.0, 5.0, 8.0],
            "fill_rate": [0.85, 0.93, 0.8, 0.9],
            "cost_total": [100.0, 90.0, 50.0, 48.0],
        }
    )


def test_writes_png_and_html(tmp_path):
    paths = write_frontier_plots(_summary(), tmp_path)
    assert paths["png"].read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    html = paths["html"].read_text(encoding="utf-8")
    assert "plotly" in html and "target 0.900" in html
    assert not list(tmp_path.glob(".*.tmp"))


def test_missing_columns_named(tmp_path):
    with pytest.raises(ValueError, match=r"lacks columns \['fill_rate'\]"):
        write_frontier_plots(_summary().drop(columns="fill_rate"), tmp_path)
