"""The demand-panel validator: every defect named, nothing dropped silently."""

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from forecasting.panel import DataValidationError, validate_demand


def _frame(rows):
    return pd.DataFrame(rows, columns=["unique_id", "ds", "y"])


def test_clean_panel_passes_unchanged(panel_factory):
    panel = panel_factory(n_series=3, length=20)
    clean, report = validate_demand(panel)
    assert report.ok and not report.issues
    assert report.freq == "W-MON"
    pd.testing.assert_frame_equal(clean, panel.sort_values(["unique_id", "ds"]).reset_index(drop=True))


def test_missing_column_is_fatal_and_named():
    with pytest.raises(DataValidationError, match=r"missing required column\(s\) \['y'\]"):
        validate_demand(pd.DataFrame({"unique_id": ["a"], "ds": ["2024-01-01"]}), source="d.csv")


def test_not_a_dataframe():
    with pytest.raises(TypeError, match="expected a pandas DataFrame"):
        validate_demand([1, 2, 3])


@pytest.mark.parametrize(
    ("bad_row", "check", "column"),
    [
        (("A", "2024-13-45", 1), "bad_date", "ds"),
        (("A", "2024-01-29", -3), "negative_demand", "y"),
        (("A", "2024-01-29", "lots"), "non_numeric_demand", "y"),
        (("A", "2024-01-22", 5), "duplicate_row", "unique_id,ds"),
        ((None, "2024-01-29", 1), "missing_id", "unique_id"),
    ],
)
def test_row_defects_are_errors_naming_the_row(bad_row, check, column):
    rows = [("A", f"2024-01-{d:02d}", 1) for d in (1, 8, 15, 22)] + [bad_row]
    clean, report = validate_demand(_frame(rows), source="d.csv", freq="W-MON")
    (issue,) = report.issues
    assert (issue.severity, issue.check, issue.column, issue.rows) == ("error", check, column, (5,))
    assert "data row(s) 5" in issue.message
    assert len(clean) == 4 and report.n_excluded_rows == 1


def test_three_defects_reported_together():
    rows = [
        ("A", "2024-01-01", 1),
        ("A", "2024-01-08", 2),
        ("A", "2024-01-08", 2),
        ("A", "2024-01-15", -3),
        ("A", "not a date", 4),
    ]
    _, report = validate_demand(_frame(rows), min_length=1)
    assert {i.check: i.rows for i in report.errors} == {
        "duplicate_row": (3,),
        "negative_demand": (4,),
        "bad_date": (5,),
    }
    assert not report.ok


def test_gaps_excluded_unless_zero_filled():
    rows = [("A", d, 1) for d in ("2024-01-01", "2024-01-08", "2024-01-22")] + [
        ("B", d, 1) for d in ("2024-01-01", "2024-01-08", "2024-01-15")
    ]
    clean, report = validate_demand(_frame(rows), freq="W-MON")
    assert [(i.check, i.series, i.n_excluded) for i in report.issues] == [("gaps", ("A",), 3)]
    assert set(clean["unique_id"]) == {"B"}
    filled, report = validate_demand(_frame(rows), freq="W-MON", fill_gaps=True)
    assert report.issues[0].check == "gaps_filled" and report.ok
    a = filled[filled["unique_id"] == "A"]
    assert a["y"].tolist() == [1.0, 1.0, 0.0, 1.0]


def test_irregular_and_short_series_are_reported():
    rows = (
        [("A", f"2024-01-{d:02d}", 1) for d in (1, 8, 15, 22)]
        + [("B", f"2024-01-{d:02d}", 1) for d in (2, 9, 16, 23)]
        + [("C", "2024-01-01", 1)]
    )
    clean, report = validate_demand(_frame(rows), freq="W-MON", min_length=2)
    found = {i.check: i.series for i in report.issues}
    assert found == {"irregular_frequency": ("B",), "too_short": ("C",)}
    assert set(clean["unique_id"]) == {"A"}
    assert report.n_excluded_rows == 5


def test_unknown_demand_is_a_warning(shared_data):
    carparts = pd.read_parquet(shared_data / "carparts" / "carparts.parquet")
    clean, report = validate_demand(carparts, source="carparts.parquet")
    (issue,) = report.issues
    assert (issue.check, issue.severity, issue.n_excluded) == ("unknown_demand", "warning", 6122)
    assert report.freq == "MS" and clean["unique_id"].nunique() == 2674


def test_frequency_that_cannot_be_inferred_is_an_error():
    _, report = validate_demand(_frame([("A", "2024-01-01", 1), ("A", "2024-01-09", 1)]))
    assert [i.check for i in report.errors] == ["unknown_frequency"]


cell = st.one_of(
    st.none(),
    st.text(max_size=8),
    st.integers(-5, 5),
    st.floats(allow_nan=True),
    st.sampled_from(["2024-01-01", "2024-01-08", "x", ""]),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(cell, cell, cell), max_size=12))
def test_malformed_input_never_crashes_with_anything_but_a_clear_report(rows):
    try:
        clean, report = validate_demand(_frame(rows), source="fuzz.csv")
    except DataValidationError as exc:
        assert exc.report.errors
        return
    assert (clean["y"] >= 0).all() and np.isfinite(clean["y"]).all()
    assert not clean.duplicated(["unique_id", "ds"]).any()
    # every row that is gone is counted in some finding
    assert report.n_excluded_rows == len(rows) - len(clean)


def test_a_negative_row_inside_a_series_says_how_to_keep_the_series():
    """A return booked as negative demand mid-history: the row goes, and the gap it leaves takes the
    series with it unless gaps are zero-filled; the message says so (retail and store data carry returns)."""
    rows = [("A", f"2024-01-{d:02d}", 1) for d in (1, 8, 22, 29)] + [("A", "2024-01-15", -2)]
    clean, report = validate_demand(_frame(rows), source="d.csv", freq="W-MON")
    assert {"negative_demand", "gaps"} <= {i.check for i in report.issues} and clean.empty
    (neg,) = [i for i in report.errors if i.check == "negative_demand"]
    assert "--fill-gaps" in neg.message and "counts the period as no demand" in neg.message
    filled, report = validate_demand(_frame(rows), source="d.csv", freq="W-MON", fill_gaps=True)
    assert filled["y"].tolist() == [1.0, 1.0, 0.0, 1.0, 1.0]


# ---------------------------------------------------------------- issue 10: real data never crashes it

_WEEKS = [("A", f"2024-01-{d:02d}", 1) for d in (1, 8, 15, 22)]


@pytest.mark.parametrize(
    ("y", "check"),
    [
        (1e300, "implausible_demand"),
        (float("inf"), "non_finite_demand"),
        ("inf", "non_finite_demand"),
        (-3, "negative_demand"),
    ],
)
def test_absurd_or_non_finite_demand_is_a_named_error(y, check):
    clean, report = validate_demand(_frame([*_WEEKS, ("A", "2024-01-29", y)]), source="d.csv", freq="W-MON")
    (issue,) = report.errors
    assert (issue.check, issue.column, issue.rows, issue.source) == (check, "y", (5,), "d.csv")
    assert np.isfinite(clean["y"]).all() and len(clean) == 4


def test_demand_just_below_the_bound_is_kept():
    clean, report = validate_demand(_frame([*_WEEKS, ("A", "2024-01-29", 1e11)]), freq="W-MON")
    assert report.ok and clean["y"].max() == 1e11


def test_timezone_in_text_dates_is_dropped_keeping_the_local_date():
    rows = [("A", f"2024-01-{d:02d}T00:00:00+01:00", 1) for d in (1, 8, 15, 22)]
    clean, report = validate_demand(_frame(rows), source="d.csv", freq="W-MON")
    (issue,) = report.issues
    assert (issue.severity, issue.check, issue.column) == ("info", "timezone_dropped", "ds")
    assert "'2024-01-01T00:00:00+01:00' at data row 1" in issue.message
    # the local date, not 2023-12-31 23:00 UTC (which is off the W-MON grid)
    assert clean["ds"].dt.strftime("%Y-%m-%d").tolist() == ["2024-01-01", "2024-01-08", "2024-01-15", "2024-01-22"]


def test_timezone_aware_column_is_named_and_kept_in_local_time():
    ds = pd.date_range("2024-03-25", periods=4, freq="W-MON", tz="Europe/Berlin")  # crosses DST
    clean, report = validate_demand(pd.DataFrame({"unique_id": "A", "ds": ds, "y": 1.0}), source="d.parquet")
    (issue,) = report.issues
    assert issue.check == "timezone_dropped" and "Europe/Berlin" in issue.message
    assert report.freq == "W-MON" and clean["ds"].dt.tz is None and len(clean) == 4


def test_mixed_date_formats_are_named_with_file_column_and_rows():
    rows = [("A", "2024-01-01", 1), ("A", "01/08/2024", 1), ("A", "15.01.2024", 1), ("A", "2024-01-22", 1)]
    _, report = validate_demand(_frame(rows), source="d.csv", freq="W-MON")
    issue = report.errors[0]
    assert (issue.check, issue.source, issue.column, issue.rows) == ("mixed_date_formats", "d.csv", "ds", (2, 3))
    assert "'01/08/2024' at data row 2" in issue.message and "YYYY-MM-DD" in issue.message


def test_one_consistent_non_iso_format_is_read():
    rows = [("A", d, 1) for d in ("15.01.2024", "22.01.2024", "29.01.2024")]
    clean, report = validate_demand(_frame(rows), freq="W-MON")
    assert report.ok and clean["ds"].dt.day.tolist() == [15, 22, 29]


def test_daily_data_with_a_weekly_frequency_is_an_error_that_says_so():
    rows = [("A", f"2024-01-{d:02d}", 1) for d in range(1, 20)]
    clean, report = validate_demand(_frame(rows), source="d.csv", freq="W-MON")
    assert clean.empty and not report.ok
    with pytest.raises(DataValidationError, match=r"no_data.*on the W-MON grid \(the dates look like D data\)"):
        report.raise_if_errors()


def test_every_series_too_short_is_an_error():
    clean, report = validate_demand(_frame(_WEEKS), freq="W-MON", min_length=10)
    assert clean.empty
    assert [i.check for i in report.errors] == ["no_data"] and "lower min_length" in report.errors[0].message


@pytest.mark.parametrize("bad", [-5, 2.5, True])
def test_min_length_must_be_a_non_negative_whole_number(bad):
    with pytest.raises(ValueError, match=r"d.csv: min_length must be a whole number of periods >= 0"):
        validate_demand(_frame(_WEEKS), source="d.csv", min_length=bad)


def test_dead_series_are_kept_and_named():
    rows = _WEEKS + [("Z", d, 0) for _, d, _ in _WEEKS]
    clean, report = validate_demand(_frame(rows), freq="W-MON")
    (issue,) = report.issues
    assert (issue.severity, issue.check, issue.series) == ("info", "no_demand_series", ("Z",))
    assert set(clean["unique_id"]) == {"A", "Z"} and report.ok and not report.blocking


def test_every_series_zero_is_a_blocking_error():
    rows = [(u, d, 0) for u in ("A", "B") for _, d, _ in _WEEKS]
    _, report = validate_demand(_frame(rows), source="d.csv", freq="W-MON")
    assert [i.check for i in report.blocking] == ["all_zero_demand"]
    with pytest.raises(DataValidationError, match=r"every series \(2\) has zero demand in every period"):
        report.raise_if_blocking()
