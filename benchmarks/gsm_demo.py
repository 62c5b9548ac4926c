"""Node-by-node vs GSM on the demo network, checked by replaying held-out demand.

Run: ``.venv/bin/python -m benchmarks.gsm_demo [--target 0.95] [--holdout 52] [--replan 13]``.

Per demo store item-location the demand mean and standard deviation per week
come from the training weeks (all but the last ``--holdout``). Two plans for
the same end-customer cycle-service target:

- node-by-node: every stage quotes service time 0 and buffers its own lead
  time (tau_j = T_j);
- GSM: the Graves & Willems optimum.

each sized either by the normal demand bound (independent sqrt-sum-of-squares
pooling upstream), by empirical quantiles of cumulative errors of a naive
mean forecast on the training weeks (aggregated per stage before taking the
quantile, keeps correlation), or by the forecasting layer's ErrorModel fitted
on backtests of every stage's aggregated demand
(:func:`policy_selector.buffers.forecast_error_buffers`): the former setting
(WindowAverage, 26 windows, rate = 13-week mean) and the current default
(per-stage WindowAverage or SeasonalNaive by backtest MAE, 52 windows, rate =
launch-aware 13-week mean or the seasonal forecast's peak over the plan's life).
All plans are replayed on the held-out weeks
(:func:`optimization.meio_sim.replay_guaranteed_service`); the default is also
re-planned every ``--replan`` weeks on the demand known by then and replayed
with :func:`optimization.meio_sim.replay_rolling_plans`. Held-out customer CSL
is broken down by the demo's planted demand process (``truth`` table).
Plans are also simulated without expediting
(:func:`optimization.meio_sim.simulate_base_stock_network`: late upstream lots
delay everything below them) over training + held-out weeks, measured on the
held-out weeks. Then a service-target sweep (frontier) and three scenarios (CW lead time
+50 %, target 98 %, DC holding cost +50 %). Tables go to stdout and
``benchmarks/results/gsm_demo.md``.
"""

from __future__ import annotations

import argparse
import platform
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy.stats import norm

from optimization import Network, NormalDemandBound, evaluate_service_times, solve_gsm
from optimization.meio_demand import error_quantile_table
from optimization.meio_sim import replay_guaranteed_service, replay_rolling_plans, simulate_base_stock_network
from pipelines.data.demo_data import DemoConfig, generate_demo
from pipelines.data.network_io import network_from_frames
from policy_selector.buffers import forecast_error_buffers as pipeline_buffers

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"


def forecast_error_buffers(net: Network, holdout: int, target: float, seed: int = 7, **options):
    """Buffers from the forecasting layer (``policy_selector.buffers.forecast_error_buffers``: backtests of
    every stage's aggregated demand on the training weeks; ErrorModel quantiles over tau)."""
    demo = generate_demo(DemoConfig(seed=seed))
    last_train = sorted(demo.demand.ds.unique())[-holdout - 1]
    return pipeline_buffers(net, demo.demand[demo.demand.ds <= last_train], target, **options)


def rolling_plans(net: Network, holdout: int, target: float, every: int, seed: int = 7, **options):
    """Re-run the plan every ``every`` weeks of the hold-out on the demand known by then.

    Returns (GSM plans, node-by-node plans, start weeks, all weeks' demand (weeks x stages)).
    """
    demo = generate_demo(DemoConfig(seed=seed))
    dates = sorted(demo.demand.ds.unique())
    wide = demo.demand.pivot(index="ds", columns="unique_id", values="y").sort_index().fillna(0.0)
    full = np.zeros((len(dates), net.n_stages))
    for j, uid in enumerate(net.unique_ids):
        if uid is not None and uid in wide.columns:
            full[:, j] = wide[uid].to_numpy()
    starts = list(range(len(dates) - holdout, len(dates), every))
    gsm, node = [], []
    for start in starts:
        buffers = pipeline_buffers(
            net, demo.demand[demo.demand.ds <= dates[start - 1]], target, plan_periods=every, **options
        )
        gsm.append(solve_gsm(net, buffers))
        node.append(evaluate_service_times(net, np.zeros(net.n_stages), buffers))
    return gsm, node, starts, full


def rolling_row(name: str, net: Network, plans, starts, full: np.ndarray, holdout: int) -> dict:
    replay = replay_rolling_plans(net, plans, starts, full, measure_from=len(full) - holdout)
    cf = replay[replay.is_customer_facing]
    weights = full[-holdout:].sum(axis=0)[net.is_sink]
    return {
        "plan": name,
        "safety stock units": round(float(np.mean([p.safety_stock.sum() for p in plans]))),
        "holding cost / week": round(float(np.mean([p.total_cost for p in plans])), 2),
        "stocking stages": round(float(np.mean([(p.net_replenishment_time > 0).sum() for p in plans]))),
        "customer CSL (training weeks)": np.nan,
        "customer CSL (held-out)": round(float(cf.csl.mean()), 3),
        "customer fill rate (demand-weighted)": round(float(np.average(cf.fill_rate, weights=weights)), 3),
        "upstream promises kept": round(float(replay[~replay.is_customer_facing].csl.mean()), 3),
        "avg on hand, units (held-out)": round(float(np.nansum(replay.avg_on_hand))),
        "customer CSL, no expediting (held-out)": np.nan,
    }


def by_process(net: Network, replays: dict[str, pd.DataFrame], seed: int = 7) -> pd.DataFrame:
    """Held-out customer CSL per planted demand process (the demo's ``truth`` table)."""
    truth = generate_demo(DemoConfig(seed=seed)).truth.set_index("unique_id")["process"]
    out = {}
    for name, replay in replays.items():
        cf = replay[replay.is_customer_facing]
        out[name] = cf.groupby(cf.stage_id.map(truth)).csl.mean()
    table = pd.DataFrame(out).round(3)
    counts = pd.Series(net.unique_ids, dtype=object).dropna().map(truth).value_counts()
    return table.assign(**{"store item-locations": counts.reindex(table.index)}).reset_index(names="process")


def demo_network(holdout: int, seed: int = 7) -> tuple[Network, np.ndarray, np.ndarray]:
    """Demo network with training-window moments; training errors and held-out demand (weeks x stages)."""
    demo = generate_demo(DemoConfig(seed=seed))
    wide = demo.demand.pivot(index="ds", columns="unique_id", values="y").sort_index().fillna(0.0)
    train, test = wide.iloc[:-holdout], wide.iloc[-holdout:]
    stages = demo.stages.copy()
    stats = pd.DataFrame({"demand_mean": train.mean(), "demand_std": train.std(ddof=1)})
    stages = stages.join(stats, on="unique_id")
    net = network_from_frames(stages, demo.edges, "demo stages", "demo edges")
    held = np.zeros((holdout, net.n_stages))
    errors = np.zeros((len(train), net.n_stages))
    for j, uid in enumerate(net.unique_ids):
        if uid is not None and uid in test.columns:
            held[:, j] = test[uid].to_numpy()
            errors[:, j] = train[uid].to_numpy() - train[uid].mean()
    return net, errors, held


def with_target(net: Network, target: float) -> NormalDemandBound:
    return NormalDemandBound(net, safety_factor=float(norm.ppf(target)))


def plan_row(name: str, net: Network, result, held: np.ndarray, train: np.ndarray) -> dict:
    replay = replay_guaranteed_service(net, result, held)
    in_sample = replay_guaranteed_service(net, result, train)
    sim = simulate_base_stock_network(net, result, np.vstack([train, held]), measure_from=len(train))
    sim_cf = sim[sim.is_customer_facing]
    cf = replay[replay.is_customer_facing]
    weights = held.sum(axis=0)[net.is_sink]
    return {
        "plan": name,
        "safety stock units": round(float(result.safety_stock.sum())),
        "holding cost / week": round(result.total_cost, 2),
        "stocking stages": int((result.net_replenishment_time > 0).sum()),
        "customer CSL (training weeks)": round(float(in_sample[in_sample.is_customer_facing].csl.mean()), 3),
        "customer CSL (held-out)": round(float(cf.csl.mean()), 3),
        "customer fill rate (demand-weighted)": round(float(np.average(cf.fill_rate, weights=weights)), 3),
        "upstream promises kept": round(float(replay[~replay.is_customer_facing].csl.mean()), 3),
        "avg on hand, units (held-out)": round(float(np.nansum(replay.avg_on_hand))),
        "customer CSL, no expediting (held-out)": round(float(sim_cf.on_time.mean()), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", type=float, default=0.95)
    parser.add_argument("--holdout", type=int, default=52)
    parser.add_argument("--replan", type=int, default=13, help="weeks between re-plans in the rolling rows")
    args = parser.parse_args()
    net, errors, held = demo_network(args.holdout)
    model = with_target(net, args.target)
    gsm = solve_gsm(net, model)
    node = evaluate_service_times(net, np.zeros(net.n_stages), model)
    max_tau = int(net.longest_inbound_time().max())
    empirical = error_quantile_table(net, errors, args.target, max_tau, np.nan_to_num(net.demand_mean))
    train = np.clip(errors + np.nan_to_num(net.demand_mean)[None, :], 0, None)
    compare = pd.DataFrame(
        [
            plan_row("node-by-node, normal (S=0 everywhere)", net, node, held, train),
            plan_row("GSM, normal sqrt-sum-of-squares", net, gsm, held, train),
            plan_row(
                "node-by-node, empirical error quantiles",
                net,
                evaluate_service_times(net, np.zeros(net.n_stages), empirical),
                held,
                train,
            ),
            plan_row("GSM, empirical error quantiles", net, solve_gsm(net, empirical), held, train),
        ]
    )
    wa = forecast_error_buffers(net, args.holdout, args.target, model="WindowAverage", n_windows=26)
    fe = forecast_error_buffers(net, args.holdout, args.target, plan_periods=args.holdout)
    gsm_wa, gsm_fe = solve_gsm(net, wa), solve_gsm(net, fe)
    gsm_r, node_r, starts, full = rolling_plans(net, args.holdout, args.target, args.replan)
    compare = pd.concat(
        [
            compare,
            pd.DataFrame(
                [
                    plan_row(
                        "node-by-node, forecast-error buffers (WindowAverage, 26 windows)",
                        net,
                        evaluate_service_times(net, np.zeros(net.n_stages), wa),
                        held,
                        train,
                    ),
                    plan_row("GSM, forecast-error buffers (WindowAverage, 26 windows)", net, gsm_wa, held, train),
                    plan_row(
                        "node-by-node, forecast-error buffers (per-stage WA/SeasonalNaive, 52 windows)",
                        net,
                        evaluate_service_times(net, np.zeros(net.n_stages), fe),
                        held,
                        train,
                    ),
                    plan_row(
                        "GSM, forecast-error buffers (per-stage WA/SeasonalNaive, 52 windows)", net, gsm_fe, held, train
                    ),
                    rolling_row(
                        f"node-by-node, same, re-planned every {args.replan} weeks",
                        net,
                        node_r,
                        starts,
                        full,
                        args.holdout,
                    ),
                    rolling_row(
                        f"GSM, same, re-planned every {args.replan} weeks", net, gsm_r, starts, full, args.holdout
                    ),
                ]
            ),
        ],
        ignore_index=True,
    )
    processes = by_process(
        net,
        {
            "GSM, WindowAverage 26 windows": replay_guaranteed_service(net, gsm_wa, held),
            "GSM, WA/SeasonalNaive 52 windows": replay_guaranteed_service(net, gsm_fe, held),
            f"same, re-planned every {args.replan} weeks": replay_rolling_plans(
                net, gsm_r, starts, full, measure_from=len(full) - args.holdout
            ),
        },
    )
    sweep = []
    for target in (0.80, 0.85, 0.90, 0.95, 0.975, 0.99):
        m = with_target(net, target)
        sweep.append(
            {
                "target CSL": target,
                "GSM cost / week": round(solve_gsm(net, m).total_cost, 2),
                "node-by-node cost / week": round(evaluate_service_times(net, np.zeros(net.n_stages), m).total_cost, 2),
            }
        )
    cw = {s: {"processing_time": t * 1.5} for s, t in zip(net.stage_ids, net.processing_time) if s.endswith("@CW")}
    dc = {s: {"holding_cost": h * 1.5} for s, h in zip(net.stage_ids, net.holding_cost) if "@DC" in s}
    scen = []
    for name, n2, target in [
        ("base", net, args.target),
        ("CW lead time +50%", net.with_stages(**cw), args.target),
        ("target 98%", net, 0.98),
        ("DC holding cost +50%", net.with_stages(**dc), args.target),
    ]:
        r = solve_gsm(n2, with_target(n2, target))
        scen.append(
            {
                "scenario": name,
                "holding cost / week": round(r.total_cost, 2),
                "safety stock units": round(float(r.safety_stock.sum())),
                "stocking CW": int(
                    sum(t > 0 for s, t in zip(r.stage_ids, r.net_replenishment_time) if s.endswith("@CW"))
                ),
                "stocking DC": int(sum(t > 0 for s, t in zip(r.stage_ids, r.net_replenishment_time) if "@DC" in s)),
                "stocking stores": int(sum(t > 0 for s, t in zip(r.stage_ids, r.net_replenishment_time) if "@S" in s)),
            }
        )
    stamp = f"{datetime.now(timezone.utc):%Y-%m-%d %H:%M} UTC, {platform.node()}"
    parts = [
        f"# GSM on the demo network ({stamp})",
        "",
        f"`.venv/bin/python -m benchmarks.gsm_demo --target {args.target} --holdout {args.holdout} "
        f"--replan {args.replan}`; "
        f"{net.n_stages} stages, {net.n_edges} edges, {int(net.is_sink.sum())} store item-locations.",
        "",
    ]
    for title, table in [
        ("Node-by-node vs GSM", compare),
        ("Held-out customer CSL by planted demand process", processes),
        ("Service-target sweep", pd.DataFrame(sweep)),
        ("Scenarios", pd.DataFrame(scen)),
    ]:
        parts += [f"## {title}", "", table.to_markdown(index=False), ""]
    text = "\n".join(parts)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "gsm_demo.md").write_text(text)


if __name__ == "__main__":
    main()
