"""``python -m pipelines.cli``: the same as the ``stockwise`` command."""

from pipelines.cli import main

main()
