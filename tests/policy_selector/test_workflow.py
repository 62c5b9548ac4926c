"""The study: two cutoffs (plus extra training cutoffs), evaluation rows, final selector."""

from __future__ import annotations

import numpy as np

from policy_selector import PolicySelector, run_study


def test_study_with_an_extra_training_cutoff(tiny_demo, tiny_config):
    res = run_study(
        tiny_demo.demand,
        tiny_demo.items,
        tiny_config,
        np.random.default_rng(0),
        make_selector=lambda: PolicySelector(n_estimators=20, min_class_size=2),
        n_splits=2,
        extra_train_cutoffs=1,
    )
    ev = res.evaluation.set_index(["split", "method"])
    # the oracle's accuracy is 1 by definition; the classifier's regret is the cost gap to it
    gap = ev.xs("classifier", level="method")["total_cost"] - ev.xs("oracle", level="method")["total_cost"]
    assert np.allclose(ev.xs("classifier", level="method")["regret"], gap)
    assert res.train.labels.cutoff < res.test.labels.cutoff
    assert res.selector.predict(res.test.features).isin(tiny_config.space.names).all()
    for split, table in res.choices.items():
        assert table.drop(columns="label").isin(tiny_config.space.names).all().all(), split
