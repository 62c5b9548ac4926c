"""Exports of the recommendations: CSV, Parquet and Excel, atomic, schema columns in order."""

from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipelines.report.export import export_recommendations
from pipelines.report.schema import RECOMMENDATION_COLUMNS
from tests.pipelines.conftest import synthetic_run


@pytest.fixture(scope="module")
def recs() -> pd.DataFrame:
    return synthetic_run()["recommendations"]


def test_every_format_round_trips_the_schema(recs, tmp_path):
    paths = export_recommendations(recs, tmp_path, extra_sheets={"summary": pd.DataFrame({"a": [1]})})
    assert set(paths) == {"csv", "parquet", "xlsx"}
    csv = pd.read_csv(paths["csv"])
    pq = pd.read_parquet(paths["parquet"])
    for frame in (csv, pq):
        assert list(frame.columns) == list(RECOMMENDATION_COLUMNS)
        assert frame["unique_id"].tolist() == recs["unique_id"].tolist()
        pd.testing.assert_series_equal(
            frame["order_up_to"], recs["order_up_to"].reset_index(drop=True), check_names=False
        )
    book = load_workbook(paths["xlsx"], read_only=True)
    assert book.sheetnames == ["recommendations", "summary", "columns"]
    assert book["recommendations"].max_row == len(recs) + 1
    assert not list(tmp_path.glob(".*tmp")), "temporary files left behind"


def test_unknown_format_is_named(recs, tmp_path):
    with pytest.raises(ValueError, match=r"unknown export format\(s\) \['pdf'\]"):
        export_recommendations(recs, tmp_path, formats=("csv", "pdf"))
    assert not any(tmp_path.iterdir()), "nothing is written when a format is wrong"


def test_failed_write_keeps_the_previous_file(recs, tmp_path, monkeypatch):
    first = export_recommendations(recs, tmp_path, formats=("csv",))["csv"]
    before = first.read_bytes()

    def boom(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pd.DataFrame, "to_csv", boom)
    with pytest.raises(OSError, match="disk full"):
        export_recommendations(recs.head(2), tmp_path, formats=("csv",))
    assert first.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["recommendations.csv"]


def test_schema_breaking_table_is_rejected(recs, tmp_path):
    with pytest.raises(ValueError, match="one row per unique_id"):
        export_recommendations(pd.concat([recs, recs.head(1)]), tmp_path)
