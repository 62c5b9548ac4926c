"""Policy containers: normal form, validation, batching."""

from __future__ import annotations

import numpy as np
import pytest

from optimization.policies import (
    PolicyParams,
    PolicyType,
    base_stock_policy,
    mixed_policies,
    no_stock_policy,
    r_s_policy,
    r_s_s_policy,
    s_q_policy,
    stack_policies,
)


def test_mixed_policies_normalise_unused_fields():
    p = mixed_policies(
        ["R_S", "s_Q", "base_stock", "no_stock", "R_s_S"],
        review_period=[3, 5, 5, 5, 2],
        reorder_level=[1.0, 4.0, 1.0, 9.0, 3.0],
        order_up_to=[10.0, 0.0, 7.0, 9.0, 12.0],
        order_quantity=[0.0, 6.0, 0.0, 0.0, 0.0],
    )
    assert p.review_period.tolist() == [3, 1, 1, 1, 2]
    assert p.reorder_level.tolist() == [10.0, 4.0, 7.0, 0.0, 3.0]
    assert p.order_up_to.tolist() == [10.0, 4.0, 7.0, 0.0, 12.0]
    assert p.is_fixed_quantity.tolist() == [False, True, False, False, False]
    assert [t.value for t in p.types()] == ["R_S", "s_Q", "base_stock", "no_stock", "R_s_S"]


def test_factories_give_their_type():
    made = {
        PolicyType.S_Q: s_q_policy([1.0], [2.0]),
        PolicyType.R_S: r_s_policy(2, [5.0]),
        PolicyType.R_S_S: r_s_s_policy(2, [1.0], [5.0]),
        PolicyType.BASE_STOCK: base_stock_policy([5.0]),
        PolicyType.NO_STOCK: no_stock_policy(1),
    }
    for ptype, params in made.items():
        assert params.types()[0] is ptype


def test_params_are_read_only_copies():
    S = np.array([5.0, 6.0])
    p = base_stock_policy(S)
    S[0] = 99.0
    assert p.order_up_to[0] == 5.0
    with pytest.raises(ValueError, match="read-only"):
        p.order_up_to[0] = 1.0


def test_stack_adds_leading_axis():
    stacked = stack_policies([base_stock_policy([1.0, 2.0]), base_stock_policy([3.0, 4.0])])
    assert stacked.shape == (2, 2)
    assert stacked.order_up_to[1].tolist() == [3.0, 4.0]


@pytest.mark.parametrize(
    ("build", "match"),
    [
        (lambda: mixed_policies(["R_S", "sQ"]), r"unknown policy_type \['sQ'\]"),
        (lambda: s_q_policy([1.0, 2.0], [3.0, 0.0]), r"Q must be > 0 \(s_Q policy\) for items at positions \[1\]"),
        (
            lambda: r_s_s_policy(1, [5.0], [4.0]),
            r"S must be >= reorder_level s for items at positions \[0\] "
            r"\(got s=5 > S=4\)",
        ),
        (lambda: r_s_policy(0, [5.0]), r"review_period must be >= 1"),
        (lambda: base_stock_policy([1.0], moq=-1), r"moq must be >= 0"),
        (lambda: base_stock_policy([np.nan]), r"order_up_to must be finite"),
        (lambda: stack_policies([]), r"at least one"),
    ],
)
def test_invalid_parameters_raise(build, match):
    with pytest.raises(ValueError, match=match):
        build()


def test_shapes_must_broadcast():
    with pytest.raises(ValueError, match="do not broadcast"):
        PolicyParams(
            policy_type=[0, 0],
            review_period=1,
            reorder_level=[1.0, 2.0, 3.0],
            order_up_to=[1.0, 2.0, 3.0],
            order_quantity=[1.0, 1.0],
        )


def test_policy_and_simulation_modules_respect_layer_rules():
    """No I/O, printing, MLflow, global seeding or sibling imports in the policy/simulation modules."""
    import ast
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "optimization"
    names = ["policies", "distributions", "sizing", "simulator", "sim_engine", "events", "frontier"]
    for name in names:
        tree = ast.parse((root / f"{name}.py").read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, (ast.Import, ast.ImportFrom)):
                mods = [a.name for a in node.names] if isinstance(node, ast.Import) else [node.module or ""]
                assert not any(
                    m.split(".")[0] in {"mlflow", "forecasting", "policy_selector", "pipelines"} for m in mods
                ), f"{name}.py imports {mods}"
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
                assert node.func.id not in {"print", "open"}, f"{name}.py calls {node.func.id}()"
            if isinstance(node, ast.Attribute):
                assert node.attr not in {"seed", "to_csv", "read_csv", "to_parquet"}, f"{name}.py uses .{node.attr}"


# ------------------------------------------------ issue 10: policy inputs named by unique_id


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"order_up_to": [3.0, np.nan]}, r"order_up_to must be finite for unique_id \['B'\] \(got nan\)"),
        ({"order_up_to": [3.0, 1e300]}, r"order_up_to must be at most 1e\+15 units for unique_id \['B'\]"),
        (
            {"policy_type": ["R_S", "s_Q"], "order_quantity": [0.0, 0.0]},
            r"Q must be > 0 \(s_Q policy\) for unique_id \['B'\] \(got 0.0\)",
        ),
        ({"review_period": [1, 0]}, r"review_period must be >= 1 for unique_id \['B'\] \(got 0\)"),
        ({"review_period": [1, 1.5]}, r"review_period must be a whole number of periods for unique_id \['B'\]"),
        (
            {"policy_type": ["R_S", "R_s_S"], "reorder_level": [0.0, 5.0], "order_up_to": [3.0, 4.0]},
            r"S must be >= reorder_level s for unique_id \['B'\] \(got s=5 > S=4\); raise S or lower s",
        ),
    ],
)
def test_policy_table_errors_name_the_unique_id_not_an_index(kwargs, match):
    from optimization.policies import ItemValueError

    kwargs = {"policy_type": ["R_S", "R_S"], "order_up_to": [3.0, 3.0]} | kwargs
    with pytest.raises(ItemValueError, match=match):
        mixed_policies(kwargs.pop("policy_type"), ids=["A", "B"], **kwargs)
