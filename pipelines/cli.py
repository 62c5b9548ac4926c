"""The ``stockwise`` command line.

Each command is a thin wrapper: parse options, call a pipeline function,
print where the outputs went, exit with a documented code (0 ok, 1 invalid
input / failed check, 2 usage error).
"""

from __future__ import annotations

import typer

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


from pipelines.validate_cmd import validate_command  # noqa: E402
from pipelines.demo_cmd import demo_command, recommend_command  # noqa: E402

app.command("validate")(validate_command)
app.command("demo")(demo_command)
app.command("recommend")(recommend_command)

from pipelines.backtest import backtest_command  # noqa: E402

app.command("backtest")(backtest_command)

from pipelines.simulate import simulate_command  # noqa: E402

app.command("simulate")(simulate_command)

from pipelines.gsm import gsm_command  # noqa: E402

app.command("gsm")(gsm_command)

from pipelines.compare import compare_command  # noqa: E402
from pipelines.retrain import retrain_command  # noqa: E402

app.command("retrain")(retrain_command)
app.command("compare")(compare_command)

from pipelines.triggers_cmd import triggers_command  # noqa: E402

app.command("triggers")(triggers_command)

from pipelines.train import train_command  # noqa: E402

app.command("train")(train_command)


def main() -> None:
    """Console entry point: any input or file-system error ends as one line and exit code 1.

    Set ``STOCKWISE_DEBUG=1`` to see the full traceback instead.
    """
    import os
    import sys

    try:
        app()
    except (OSError, ValueError) as exc:
        if os.environ.get("STOCKWISE_DEBUG"):
            raise
        print(f"stockwise: error: {exc}", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":  # pragma: no cover
    main()
