"""The ``stockwise`` command line: one module per command, commands only.

Each command is a thin wrapper: parse options, call a flow in :mod:`pipelines.flows`, print where
the outputs went, exit with a documented code (0 ok, 1 invalid input / failed check, 2 usage
error). :func:`main` is the one error printer: any input or file-system error that a command did
not handle itself ends as one line on stderr and exit code 1.
"""

from __future__ import annotations

import os
import sys

import typer

from pipelines.cli.backtest import backtest_command
from pipelines.cli.compare import compare_command
from pipelines.cli.evaluate import evaluate_command
from pipelines.cli.forecast import forecast_command
from pipelines.cli.gsm import gsm_command
from pipelines.cli.plan import demo_command, recommend_command
from pipelines.cli.retrain import retrain_command
from pipelines.cli.simulate import simulate_command
from pipelines.cli.train import train_command
from pipelines.cli.triggers import triggers_command
from pipelines.cli.validate import validate_command

app = typer.Typer(
    name="stockwise",
    help="Stockwise: how much of each item to hold, where, and under which policy.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)


@app.callback()
def _main() -> None:
    """Stockwise command line."""


for _name, _command in (
    ("validate", validate_command),
    ("demo", demo_command),
    ("recommend", recommend_command),
    ("backtest", backtest_command),
    ("simulate", simulate_command),
    ("gsm", gsm_command),
    ("retrain", retrain_command),
    ("compare", compare_command),
    ("triggers", triggers_command),
    ("train", train_command),
    ("evaluate", evaluate_command),
    ("forecast", forecast_command),
):
    app.command(_name)(_command)


def main() -> None:
    """Console entry point: any input or file-system error ends as one line and exit code 1.

    Set ``STOCKWISE_DEBUG=1`` to see the full traceback instead.
    """
    try:
        app()
    except (OSError, ValueError) as exc:
        if os.environ.get("STOCKWISE_DEBUG"):
            raise
        print(f"stockwise: error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
