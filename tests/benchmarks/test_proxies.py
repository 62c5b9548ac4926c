"""The proxies of issue 12's two real data sets: seeded, valid data folders, with the planted properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from benchmarks.proxies import (
    ProxyConfig,
    by_group,
    holiday_weeks,
    main,
    make_proxy,
    textbook_at_equal_csl,
    write_proxy,
)
from forecasting.characterise import characterise
from pipelines.data.validation import load_dataset


@pytest.fixture(scope="module")
def store():
    return make_proxy(ProxyConfig("store", n_series=120, seed=3))


@pytest.fixture(scope="module")
def retail():
    return make_proxy(ProxyConfig("retail", n_series=300, seed=3))


def _wide(demand: pd.DataFrame) -> pd.DataFrame:
    return demand.pivot(index="unique_id", columns="ds", values="y")


@pytest.mark.parametrize("kind", ["store", "retail"])
def test_the_same_seed_gives_the_same_tables_and_another_seed_others(kind):
    a, b = make_proxy(ProxyConfig(kind, 30, seed=11)), make_proxy(ProxyConfig(kind, 30, seed=11))
    pd.testing.assert_frame_equal(a.demand, b.demand)
    pd.testing.assert_frame_equal(a.items, b.items)
    pd.testing.assert_frame_equal(a.planted, b.planted)
    other = make_proxy(ProxyConfig(kind, 30, seed=12))
    assert not np.array_equal(a.demand["y"].to_numpy(), other.demand["y"].to_numpy()[: len(a.demand)])


@pytest.mark.parametrize("kind", ["store", "retail"])
def test_the_written_folder_validates_with_every_series_kept(tmp_path, kind):
    proxy = make_proxy(ProxyConfig(kind, 60, seed=5))
    write_proxy(proxy, tmp_path)
    data = load_dataset(tmp_path)
    assert data.report.ok, data.report.errors
    assert not any(i.n_excluded for i in data.report.issues), [str(i) for i in data.report.issues]
    assert data.freq == {"store": "W-FRI", "retail": "W-MON"}[kind]
    assert sorted(data.demand["unique_id"].unique()) == sorted(proxy.items["unique_id"])
    assert (data.items["service_target"] == 0.95).all() and (data.items["review_period"] == 1).all()


def test_the_cli_writes_a_folder_with_free_ordering(tmp_path, capsys):
    main(["make", "--kind", "retail", "--series", "12", "--order-cost-factor", "0", "--out", str(tmp_path)])
    assert {p.name for p in tmp_path.iterdir()} == {"demand.parquet", "items.csv", "planted.csv"}
    items = pd.read_csv(tmp_path / "items.csv")
    assert (items["order_cost"] == 0).all() and (items["lead_time"] == 2).all()
    assert "12 series" in capsys.readouterr().out


def test_bad_configs_say_what_to_use():
    with pytest.raises(ValueError, match="kind='shop' is not a proxy; use one of"):
        ProxyConfig("shop")
    with pytest.raises(ValueError, match="n_series=0 must be at least 1"):
        ProxyConfig("store", 0)
    with pytest.raises(ValueError, match="order_cost_factor=-1"):
        ProxyConfig("store", order_cost_factor=-1)


def test_store_is_smooth_weekly_143_weeks_with_lead_times_1_to_3(store):
    feats = characterise(store.demand)
    assert (feats["n_periods"] == 143).all()
    assert (store.demand["y"] == 0).mean() < 0.02
    assert (feats["sbc_class"] == "smooth").mean() > 0.9
    assert set(store.items["lead_time"]) == {1, 2, 3}
    level = store.planted["level"]
    assert level.max() / level.min() > 20  # log-normal across series


def test_holiday_weeks_end_with_the_week_holding_christmas_eve():
    ds = pd.date_range("2010-11-05", "2011-01-07", freq="W-FRI")
    pos = holiday_weeks(ds, 5)
    assert dict(zip(ds.strftime("%m-%d"), pos))["12-24"] == 5  # a Friday week holding Dec 24: the top
    assert pos.tolist() == [0, 0, 0, 1, 2, 3, 4, 5, 0, 0]  # from the week of Black Friday (Nov 26, 2010)
    assert holiday_weeks(ds, np.array([4, 6])).shape == (2, len(ds))


def test_store_has_the_planted_holiday_peak(store):
    wide = _wide(store.demand)
    pos = holiday_weeks(wide.columns, store.planted["holiday_weeks"].to_numpy())
    top = pos == store.planted["holiday_weeks"].to_numpy()[:, None]  # the week before Christmas, each year
    october = wide.columns.month == 10
    ratio = (wide.to_numpy() * top).sum(1) / top.sum(1) / wide.loc[:, october].mean(1).to_numpy()
    big = store.planted["holiday_peak"].to_numpy() >= 1.5
    assert 0.6 < big.mean() < 0.8
    assert np.median(ratio[big]) > 1.6  # 1.5-3x planted, times trend and noise
    assert np.median(ratio[~big]) < 1.4
    assert np.corrcoef(ratio, store.planted["holiday_peak"])[0, 1] > 0.7


def test_retail_is_mostly_lumpy_with_adi_2_to_8_and_wholesale_orders(retail):
    feats = characterise(retail.demand).set_index("unique_id")
    active = feats["n_demand"] > 3
    assert 0.5 < (retail.demand["y"] == 0).mean() < 0.8
    assert (feats.loc[active, "sbc_class"] == "lumpy").mean() > 0.6
    adi = feats.loc[active & (feats["sbc_class"] != "smooth"), "adi"]
    assert 2 <= adi.median() <= 6 and adi.quantile(0.9) < 12
    assert (retail.items["lead_time"] == 2).all()
    nz = retail.demand[retail.demand["y"] > 0].groupby("unique_id")["y"]
    spike = nz.max() / nz.median()
    assert (spike >= 10).sum() >= 0.05 * len(spike)  # a few wholesale orders, 10-50x the median


def test_retail_has_late_introductions_and_discontinued_items(retail):
    planted = retail.planted.set_index("unique_id")
    rows = retail.demand.groupby("unique_id").size()
    late = planted["launch_week"] > 0
    assert 0.1 < late.mean() < 0.3
    assert (rows[late] == 105 - planted.loc[late, "launch_week"]).all()  # no rows before the launch
    stopped = planted["stop_week"] < 105
    assert 0.05 < stopped.mean() < 0.2
    wide = _wide(retail.demand)
    for uid in planted.index[stopped][:20]:
        assert wide.loc[uid].iloc[int(planted.loc[uid, "stop_week"]) :].eq(0).all()  # zeros after, not gaps


def test_diagnose_reads_a_plan_that_is_the_textbook_as_1x_item_by_item(tmp_path):
    from optimization import r_s_policy
    from policy_selector.decision_eval import Z_GRID, replay, textbook_levels
    from policy_selector.economics import Economics

    proxy = make_proxy(ProxyConfig("store", 25, seed=2))
    write_proxy(proxy, tmp_path / "data")
    wide = _wide(proxy.demand)
    origin, holdout = wide.columns[-13], 13
    ids = wide.index.to_numpy()
    econ = Economics.from_items(proxy.items, ids, "W-FRI")
    k = Z_GRID.index(1.0)  # a "plan" that is the textbook at z = 1: the diagnosis must find it equal
    levels = textbook_levels(wide.loc[:, :origin].iloc[:, :-1].to_numpy(), econ.lead_time + 1, Z_GRID)
    out = replay(wide.iloc[:, -holdout:].to_numpy(), [r_s_policy(econ.review_period, levels)], econ)
    items = pd.DataFrame(
        {"unique_id": ids, "origin": 0, "origin_ds": origin, "forecaster": "AutoETS", "demand": 1.0}
        | {m: out[m][k] for m in ("csl", "inventory_value")}
    )
    (tmp_path / "run").mkdir()
    items.to_csv(tmp_path / "run" / "evaluation_items.csv", index=False)
    per_item = textbook_at_equal_csl(tmp_path / "run", tmp_path / "data", holdout)
    np.testing.assert_allclose(per_item["tb_value"], per_item["inventory_value"], rtol=1e-9)
    assert by_group(per_item, "forecaster")["ratio"].iloc[0] == pytest.approx(1.0)
    peak = by_group(per_item, "holiday_peak@1.5")
    assert peak["items"].sum() == 25 and len(peak) == 2
