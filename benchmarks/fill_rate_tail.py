"""Held-out loss E[(D - y)^+] of carparts demand over H against the fill-rate curves' models (issue 12).

At the target backtest's earlier origin (2000-06, 9 held-out months) for a seeded sample of
carparts series sized by ``sba_sq_empirical`` (the candidate of 84 % of carparts' held-out
demand): the summed loss of the actual demand over H = 2 (8 overlapping windows) at levels
read off the calibrated sample grid (its 0.8 / 0.9 / 0.95 quantiles, its largest sample, one
above, 1.5x), against the loss of each model at the same levels: the calibrated grid alone, with
the exponential tail, times the group's demand scale (1.55 on all of carparts), with the NB
mixture, the uncalibrated error grid, NB laws of the history's or forecast's moments, and the
fill-rate curves' body since branch ``pfill4``: the grid mixed with weight w with the NB of the
forecast's mean and the history's index of dispersion, or with the NB of the forecast plus the backtest
errors' mean and their variance, without the conformal map (:func:`policy_selector.service_curves._body_moments`).

Run: ``PYTHONPATH=$PWD nice -n 10 .venv/bin/python -m benchmarks.fill_rate_tail [--sample 400] [--seed 2]``
(~1 min). Prints a markdown table (docs/benchmarks/decisions.md, branches ``pfill3``, ``pfill4``).
"""

from __future__ import annotations

import argparse
from unittest import mock

import numpy as np
import pandas as pd

import policy_selector.service_curves as pf
from benchmarks.decisions import RESULTS, carparts_folder
from optimization.distributions import count_demand
from policy_selector import CandidateSpace, SelectorConfig
from policy_selector.context import prepare_cutoff, wide_panel
from policy_selector.sizing import _samples, exposure
from policy_selector.sizing_choice import sizing_options

ORIGIN = pd.Timestamp("2000-06-01")
SCALE = 1.55  # the intermittent group's demand scale on all of carparts (decisions.md)
BODY_WEIGHTS = (0.3, 0.5, 0.7, 1.0)


def _tail(kind: str, weight: float = pf.NB_WEIGHT):
    """The curves' tail and weight set for a ``with`` block (restored after it)."""
    return mock.patch.multiple(pf, TAIL=kind, NB_WEIGHT=weight)


def _nb_loss(mean: np.ndarray, var: np.ndarray, y: np.ndarray) -> np.ndarray:
    pmf = count_demand(np.maximum(mean, 1e-9), np.maximum(var, mean + 1e-9)).pmf
    d = np.arange(pmf.shape[1])
    return (np.maximum(d[None, :] - y[:, None], 0) * pmf).sum(axis=1)


def _grids(sample: int, seed: int):
    folder = carparts_folder(0, 7, RESULTS / "fill_rate_tail_data")
    demand, items = pd.read_parquet(folder / "demand.parquet"), pd.read_csv(folder / "items.csv")
    ids = pd.Series(demand["unique_id"].unique()).sample(sample, random_state=seed)
    demand = demand[demand["unique_id"].isin(ids)]
    items = items[items["unique_id"].astype(str).isin(ids.astype(str))]
    options = sizing_options(CandidateSpace.from_names(["ets_sq_normal"]).candidates[0])
    config = SelectorConfig(space=CandidateSpace(tuple(o for o in options if o.name == "sba_sq_empirical")), freq="MS")
    data = prepare_cutoff(demand, items, ORIGIN, config)
    wide = wide_panel(demand).reindex(index=data.ids)
    act = wide.loc[:, wide.columns > ORIGIN].iloc[:, :9].fillna(0.0).to_numpy(float)
    cand, econ = config.space["sba_sq_empirical"], data.economics
    H = np.minimum(exposure(cand, econ.lead_time, econ.review_period), data.horizon)
    f = data.cum_forecast[cand.forecaster][np.arange(len(data.ids)), H - 1]
    calibrated = np.sort(_samples(data, cand, H, f, config), axis=1)
    errors = pf._error_moments(data, np.arange(len(data.ids)), cand, H, f)  # the "errors" body's mean, variance
    par = data.error_models[cand.distribution]._params[cand.forecaster]
    cal = par.pop("calibration", None)  # the same errors without the conformal level map
    raw = np.sort(_samples(data, cand, H, f, config), axis=1)
    par["calibration"] = cal
    return act[:, :-1] + act[:, 1:], calibrated, raw, f, data.history, errors


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=400)
    parser.add_argument("--seed", type=int, default=2)
    args = parser.parse_args()
    A, S, raw, f, hist, errors = _grids(args.sample, args.seed)
    err_body = (errors[0], np.maximum(errors[1], errors[0]))  # service_curves._body_moments, BODY = "errors"
    k = S.shape[1]
    hm, hv = np.nanmean(hist, axis=1) * 2, np.nanvar(hist, axis=1) * 2
    index = np.where(hm > 0, hv / np.where(hm > 0, hm, 1.0), 1.0)
    fc_body = (np.maximum(f, 0.0), np.maximum(f, 0.0) * np.maximum(index, 1.0))  # service_curves._body_moments
    levels = {f"q{p}": np.ceil(S[:, int(np.ceil(p * k)) - 1]) for p in (0.8, 0.9, 0.95)}
    levels.update(
        {"largest": np.ceil(S[:, -1]), "largest + 1": np.ceil(S[:, -1]) + 1, "1.5 x largest": np.ceil(1.5 * S[:, -1])}
    )
    rows = []
    for name, y in levels.items():
        x = y[:, None]
        with _tail("exp"):
            e, es = pf._tail_loss(S, x, True), pf._tail_loss(S * SCALE, x, True)
        with _tail("nb", 0.3):
            nb = pf._tail_loss(S * SCALE, x, True)
        body = {}
        for w in BODY_WEIGHTS:  # the curves' body since pfill4: (1 - w) the grid + w NB(forecast, history's index)
            with _tail("nb", w):
                body[w] = pf._tail_loss(S, x, True, fc_body)
                body["errors", w] = pf._tail_loss(S, x, True, err_body)
        rows.append(
            {
                "level": name,
                "actual": np.maximum(A - x, 0).mean(axis=1).sum(),
                "calibrated grid": pf._loss(S, x).sum(),
                "+ exp tail": e.sum(),
                f"x {SCALE}": pf._loss(S * SCALE, x).sum(),
                f"x {SCALE} + exp tail": es.sum(),
                f"x {SCALE} + NB 0.3": nb.sum(),
                "uncalibrated grid": pf._loss(raw, x).sum(),
                "NB(history)": _nb_loss(hm, hv, y).sum(),
                **{f"grid + NB(forecast) w = {w}": body[w].sum() for w in BODY_WEIGHTS},
                **{f"grid + NB(errors) w = {w}": body["errors", w].sum() for w in BODY_WEIGHTS},
            }
        )
    print(
        f"{len(A)} series, mean demand over H: held out {A.mean(axis=1).sum():.1f}, calibrated grid "
        f"{S.mean(axis=1).sum():.1f}, uncalibrated {raw.mean(axis=1).sum():.1f}, forecast {f.sum():.1f}, history {hm.sum():.1f}"
    )
    body_means = {w: ((1 - w) * S.mean(axis=1) + w * fc_body[0]).sum() for w in BODY_WEIGHTS}
    print(f"forecast + the errors' mean (the errors body): {err_body[0].sum():.1f}")
    print("mean of the grid + NB(forecast) body: " + ", ".join(f"w = {w}: {m:.1f}" for w, m in body_means.items()))
    cover = {p: (A <= S[:, int(np.ceil(p * k)) - 1][:, None]).mean() for p in (0.5, 0.8, 0.9, 0.95, 0.99)}
    print(
        "held-out coverage of the calibrated grid's quantiles: " + ", ".join(f"{p}: {c:.3f}" for p, c in cover.items())
    )
    print(pd.DataFrame(rows).round(1).to_markdown(index=False))


if __name__ == "__main__":
    main()
