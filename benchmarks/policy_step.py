"""The policy step's block ("choose, size, simulate") before and after its hot path was cut, in one process.

Run (from the project root, on a panel from ``python -m benchmarks.scale generate``)::

    python -m benchmarks.policy_step --data /tmp/sw-scale/panel-3000 --sample 1000 --rounds 3
    python -m benchmarks.policy_step --data /tmp/sw-scale/panel-3000 --sample 300 --profile /tmp/policy_step.prof

What it times: :func:`pipelines.flows.plan_blocks._select_block` on one block of ``sample``
series drawn with ``seed``, with the selector the driver hands every block
(:func:`pipelines.flows.plan_steps.sizing_step` on the same series, computed once, outside
the timing; it also warms statsforecast's compiled code). Each round runs the block twice,
main's code path and this code's, in turns first (so load on a shared machine hits both alike
and neither always runs second); the ratio of their CPU seconds
(``os.times`` of this process, ``n_jobs=1``) is the result, and every round checks that the
two recommendation tables are equal value for value (``check_exact``).

Main's code path (:func:`main_path`) is this code with two things put back as they were at
cbc5a1c: the simulator kept on-hand lots by age for every item of a simulation block when any
item had a shelf life (:class:`MainLots`, a verbatim copy), and ``recommend_policies`` sized
every candidate of the space, not only the chosen ones. The copies live here, for the
benchmark and for ``tests/optimization/test_simulator.py`` / ``tests/policy_selector/test_recommend_subset.py``,
which hold the new code to them.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import json
import os
import pstats
import time
from collections.abc import Iterator
from pathlib import Path
from unittest import mock

import numpy as np
import pandas as pd

from optimization import sim_engine

RESULTS = Path(__file__).resolve().parent / "results"


class MainLots:
    """``optimization.sim_engine._Lots`` at cbc5a1c: lots by age for every item of the block."""

    def __init__(self, x) -> None:
        shelf_items = x.shelf > 0
        self.active = bool(shelf_items.any())
        n_ages = max(int(x.shelf.max()), 2) if self.active else 0
        self.lots = np.zeros((x.on_hand0.shape[0], n_ages))
        if self.active:
            self.lots[:, 0] = x.on_hand0
        self.expire_age = np.where(shelf_items, x.shelf - 1, n_ages + 1)[:, None] <= np.arange(n_ages)[None, :]

    def receive(self, q: np.ndarray) -> None:
        if self.active:
            self.lots[:, 0] += q

    def issue(self, served: np.ndarray) -> None:
        if self.active:
            sim_engine._consume_fifo(self.lots, served)

    def expire_and_age(self, zeros: np.ndarray) -> np.ndarray:
        if not self.active:
            return zeros
        lots = self.lots
        expired = np.where(self.expire_age, lots, 0.0).sum(axis=1)
        lots[self.expire_age] = 0.0
        oldest = lots[:, -1] + lots[:, -2]  # items without shelf life pool in the last bucket
        lots[:, 1:-1] = lots[:, :-2].copy()
        lots[:, -1] = oldest
        lots[:, 0] = 0.0
        return expired


@contextlib.contextmanager
def main_path() -> Iterator[None]:
    """Run the policy step as main at cbc5a1c did: every item's lots, every candidate sized."""
    from policy_selector import recommend, sizing

    def size_all(data, config, names=None):
        return sizing.size_candidates(data, config)

    with mock.patch.object(sim_engine, "_Lots", MainLots), mock.patch.object(recommend, "size_candidates", size_all):
        yield


def block_inputs(data: Path, sample: int, seed: int = 1, freq: str = "W-MON", refit_every="auto"):
    """``sample`` series of the panel in ``data`` and the selector the driver would hand their block."""
    from benchmarks.scale import _read_folder
    from pipelines.data.config import ServiceSettings
    from pipelines.flows.plan_steps import sizing_step

    demand, items = _read_folder(data)
    ids = demand["unique_id"].drop_duplicates().sample(sample, random_state=seed)
    demand, items = demand[demand["unique_id"].isin(ids)], items[items["unique_id"].isin(ids)]
    selector, _ = sizing_step(demand, items, freq, None, ServiceSettings(), n_jobs=1, refit_every=refit_every)
    return demand, items, selector


def _block(demand, items, selector, refit_every="auto") -> tuple[pd.DataFrame, float]:
    from pipelines.flows.plan_blocks import _select_block

    t = os.times()
    rec = _select_block(demand, items, 0, "W-MON", selector, 0, 1, refit_every=refit_every)
    u = os.times()
    return rec, (u.user + u.system) - (t.user + t.system)


def compare(data: Path, sample: int, rounds: int, seed: int = 1) -> dict:
    """CPU s per series of main's path and this one, alternating, with the tables checked equal."""
    demand, items, selector = block_inputs(data, sample, seed)
    cpu = {"main": [], "new": []}
    for r in range(rounds):
        if r % 2:  # every other round this code first, so neither path always runs second
            after, cpu_new = _block(demand, items, selector)
        with main_path():
            before, cpu_main = _block(demand, items, selector)
        if not r % 2:
            after, cpu_new = _block(demand, items, selector)
        pd.testing.assert_frame_equal(before, after, check_exact=True)
        cpu["main"].append(cpu_main / sample)
        cpu["new"].append(cpu_new / sample)
        print(
            f"round {r + 1}: main {cpu_main / sample:.4f}, new {cpu_new / sample:.4f} CPU s per series "
            f"(ratio {cpu_new / cpu_main:.3f}), tables equal, load {os.getloadavg()[0]:.1f}",
            flush=True,
        )
    ratios = np.array(cpu["new"]) / np.array(cpu["main"])
    row = {
        "when": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "data": str(data),
        "sample": sample,
        "rounds": rounds,
        "main_cpu_s_per_series": [round(v, 4) for v in cpu["main"]],
        "new_cpu_s_per_series": [round(v, 4) for v in cpu["new"]],
        "ratio_median": round(float(np.median(ratios)), 3),
        "load_end": round(os.getloadavg()[0], 1),
        "equal": True,
    }
    RESULTS.mkdir(parents=True, exist_ok=True)
    with open(RESULTS / "policy_step.jsonl", "a") as fh:
        fh.write(json.dumps(row) + "\n")
    print(f"median ratio new / main: {row['ratio_median']:.3f} ({1 - row['ratio_median']:.1%} less CPU)")
    return row


def profile(data: Path, sample: int, out: Path, seed: int = 1, main: bool = False, top: int = 40) -> None:
    """cProfile one block (this code, or main's path with ``main``) in CPU seconds; top functions by cumulative
    and own time."""
    demand, items, selector = block_inputs(data, sample, seed)
    prof = cProfile.Profile(time.process_time)  # CPU seconds, as the comparison: a loaded machine inflates wall time
    with main_path() if main else contextlib.nullcontext():
        prof.enable()
        _, cpu = _block(demand, items, selector)
        prof.disable()
    print(f"{cpu / sample:.4f} CPU s per series under cProfile")
    prof.dump_stats(out)
    stats = pstats.Stats(prof)
    stats.sort_stats("cumulative").print_stats(top)
    stats.sort_stats("tottime").print_stats(top)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, required=True, help="a folder with demand.csv and items.csv")
    parser.add_argument("--sample", type=int, default=1000, help="series in the block")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--profile", type=Path, default=None, help="profile one block into this file instead")
    parser.add_argument("--main-path", action="store_true", help="with --profile: profile main's code path")
    args = parser.parse_args(argv)
    if args.profile is not None:
        profile(args.data, args.sample, args.profile, args.seed, main=args.main_path)
    else:
        compare(args.data, args.sample, args.rounds, args.seed)


if __name__ == "__main__":
    main()
