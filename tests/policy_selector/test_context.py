"""prepare_cutoff on ragged panels: forecasts are aligned by step ahead, not by date."""

import numpy as np
import pandas as pd

from pipelines.data.demo_data import DemoConfig, generate_demo
from policy_selector import CandidateSpace, SelectorConfig, prepare_cutoff
from policy_selector.economics import periods_per_year


def test_series_that_end_early_keep_their_whole_forecast():
    ds = pd.date_range("2023-01-02", periods=60, freq="W-MON")
    demand = pd.concat(
        [
            pd.DataFrame({"unique_id": "A", "ds": ds, "y": 10.0}),
            pd.DataFrame({"unique_id": "B", "ds": ds[:57], "y": 10.0}),
        ]
    )
    items = (
        generate_demo(DemoConfig(n_items=8, n_weeks=70, seed=1))
        .items.iloc[:2]
        .assign(unique_id=["A", "B"], lead_time=2, review_period=1, lead_time_std=0.0)
    )
    cfg = SelectorConfig(space=CandidateSpace.from_names(["adida_rs_normal"]), n_windows=2, test_periods=4)
    data = prepare_cutoff(demand, items, ds[-1], cfg)
    cum = data.cum_forecast["ADIDA"]
    # a flat 10 per week forecasts 10 per step for both series, whatever their last date
    np.testing.assert_allclose(cum[:, :3], [[10, 20, 30], [10, 20, 30]], rtol=1e-6)


def test_periods_per_year_honours_the_multiplier():
    assert periods_per_year("W-MON") == 52 and periods_per_year("2W-MON") == 26
    assert periods_per_year("MS") == 12 and periods_per_year("QS") == 4
