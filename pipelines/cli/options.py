"""Options several commands share, defined once so their names and help stay the same."""

from __future__ import annotations

import typer

PORTFOLIO_TARGET = typer.Option(
    None,
    help="one CSL (or --service-measure) target for the whole portfolio, met at least inventory value "
    "by marginal allocation",
)
SEGMENT_TARGET = typer.Option(None, help="the same, per SBC segment")
SERVICE_MEASURE = typer.Option(None, help="csl (default) or fill_rate, for the two targets above")
TRACKING_URI = typer.Option(None, help="MLflow store")
SELECTOR = typer.Option(
    None,
    help="decision path: registry (default: champion, else the default alias, else the packaged default), "
    "packaged, sbc, policy:<candidate> (one candidate for every item), model:<version or alias>",
)
