"""Which is right for (s, Q) and (R, s, S): the portfolio curve's rule or the periodic-path simulation?

Run: ``PYTHONPATH=$PWD nice -n 10 /work/main/.venv/bin/python -m benchmarks.outcomes_truth``

On i.i.d. Poisson / negative-binomial demand per period (known truth: 40 x 5,000 periods of the
policy in the simulator) it prints, per case, the CSL

- ``uniform``: position after an order uniform on s+1..s+Q or (s, S] (:func:`optimization.period_csl`);
- ``renewal``: (R, s, S) positions S - x with the renewal mass of the demand per review
  (:func:`policy_selector.service_curves._min_max_positions`);
- ``periodic``: 100 periodic paths (one per grid point of demand over H, every H-window summing to it),
  52 periods from the top of the range (the expected outcomes before) and 1,000 periods;
- ``random``: 100 random block paths from the same grid, 52 periods from spread start positions (now).
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
from scipy import stats

from optimization import r_s_s_policy, s_q_policy, simulate
from policy_selector.outcomes import _block_paths, _spread_start
from policy_selector.service_curves import _cdf, _min_max_positions, _period_csl

CASES = [  # kind, mean, variance per period, L, R, s, S (S = s + Q for sQ)
    ("RsS", 5, 5, 1, 1, 3, 40),
    ("RsS", 55, 55, 3, 2, 265, 309),
    ("RsS", 20, 20, 1, 1, 10, 100),
    ("RsS", 3, 30, 1, 1, -2, 60),
    ("RsS", 30, 300, 1, 1, -9, 221),
    ("RsS", 8, 8, 2, 2, 20, 40),
    ("sQ", 5, 5, 2, 1, 8, 28),
    ("sQ", 20, 20, 1, 1, 30, 130),
    ("sQ", 3, 30, 1, 1, 0, 30),
]


def _dist(mean, var):
    if var <= mean:
        return stats.poisson(mean)
    p = mean / var
    return stats.nbinom(mean * p / (1 - p), p)


def _policy(kind, R, s, S):
    if kind == "sQ":
        return s_q_policy(np.array([float(s)]), np.array([float(S - s)]))
    return r_s_s_policy(np.array([R]), np.array([float(s)]), np.array([float(S)]))


def _paths_csl(kind, mean, var, L, R, s, S, T, periodic, rng):
    H = L + R
    grid = np.ceil(_dist(mean * H, var * H).ppf((np.arange(100) + 0.5) / 100)[None, :] - 1e-9)
    share, policy = np.full((1, H), 1.0 / H), _policy(kind, R, s, S)
    if periodic:
        pattern = rng.multinomial(grid[0].astype(int), share[0]).astype(float)[:, None, :]
        paths, initial = np.tile(pattern, (1, 1, -(-T // H)))[:, :, :T], None
    else:
        paths, initial = _block_paths(grid, share, True, T, rng), _spread_start(policy, 100, True, rng)
    return float(np.nanmean(simulate(paths, policy, np.array([L]), initial=initial, warmup=L).csl))


def main() -> None:
    rng = np.random.default_rng(0)
    print(
        "| policy | mean, var / period | L | R | s | S | truth | uniform | renewal | periodic 52 | periodic 1000 | random 52 |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for kind, mean, var, L, R, s, S in CASES:
        H = L + R
        samples = _dist(mean * H, var * H).ppf((np.arange(2000) + 0.5) / 2000)[None, :]
        uniform = _period_csl(samples, np.array([[float(s)]]), np.array([float(S - s)]), True)[0, 0]
        renewal = np.nan
        if kind == "RsS":
            rec = pd.DataFrame({"review_period": [R], "reorder_point": [float(s)], "order_up_to": [float(S)]})
            off, w = _min_max_positions(samples, rec, SimpleNamespace(integral=True), np.array([H]))
            renewal = float((_cdf(samples, s + off[:, None, :]) * w[:, None, :]).sum())
        d = _dist(mean, var).rvs(size=(40, 1, 5000), random_state=rng).astype(float)
        truth = float(np.nanmean(simulate(d, _policy(kind, R, s, S), np.array([L]), warmup=200).csl))
        sims = [_paths_csl(kind, mean, var, L, R, s, S, T, p, rng) for T, p in ((52, True), (1000, True), (52, False))]
        cells = [truth, uniform, renewal, *sims]
        print(f"| {kind} | {mean}, {var} | {L} | {R} | {s} | {S} | " + " | ".join(f"{x:.3f}" for x in cells) + " |")


if __name__ == "__main__":
    main()
