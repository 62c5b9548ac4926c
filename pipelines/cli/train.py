"""`stockwise train`: the command; the computation is in :mod:`pipelines.flows.train`."""

from __future__ import annotations

from pathlib import Path

import typer

from pipelines.flows.train import load_train_config, load_train_inputs, parse_list, run_train, with_options


def train_command(
    data: Path = typer.Option(None, help="data folder with demand and items"),
    demo: bool = typer.Option(False, "--demo", help="train on the generated demo data"),
    config: Path = typer.Option(
        None,
        help="train settings YAML (top level or under 'train:'), or the run config recommend/retrain read "
        "(stockwise.yaml: its data, freq, seed, service and forecast settings set the decision replay; train "
        "settings under 'train:')",
    ),
    test_periods: int = typer.Option(None, min=1, help="held-out periods per cutoff (default: from the history)"),
    n_windows: int = typer.Option(None, min=2, help="backtest windows per cutoff (default: from the history)"),
    extra_cutoffs: int = typer.Option(None, min=0, help="training cutoffs before the first (default: from history)"),
    label_paths: int = typer.Option(None, min=0, help="demand paths per item for the expected-cost labels"),
    replay: bool = typer.Option(
        None,
        "--replay/--no-replay",
        help="judge the paths by the decision replay on the held-out window (default); --no-replay: by the "
        "labels only (faster)",
    ),
    gate_origins: int = typer.Option(
        None,
        min=1,
        help="origins of the replay gate, pooled, each judging a classifier fitted before it "
        "(default: from the history)",
    ),
    shortfall_scales: str = typer.Option(
        None,
        help="add shortfall variants at these scales (e.g. 0.5,2: sized to half / twice the item's shortfall), fit "
        "the shortfall-tuned classifier and best single policy (scale chosen per segment) and let the replay gate "
        "judge them next to the others (default: none)",
    ),
    scale_candidates: str = typer.Option(
        None, help="candidates that get the variants, comma-separated (default: every stocking candidate)"
    ),
    tracking_uri: str = typer.Option(
        None, help="MLflow store (default: the run config's, else sqlite:///mlruns/mlflow.db)"
    ),
    out: Path = typer.Option(Path("runs/train"), help="folder for labels, cost matrix, evaluation"),
) -> None:
    """Label policies by simulation, train the policy selector, evaluate it and register it.

    The paths (the classifier, the packaged default, the best single policy, the SBC rule) are
    judged by the decision replay of `stockwise evaluate` on the held-out window: the cheapest
    by the retrain margin at no worse service becomes the default path; the classifier becomes
    champion only if it beats the default path and the best single policy that way.
    """
    given = dict(test_periods=test_periods, n_windows=n_windows, extra_train_cutoffs=extra_cutoffs)
    given |= dict(label_paths=label_paths, replay=replay, gate_origins=gate_origins)
    try:
        given["shortfall_scales"] = parse_list(shortfall_scales, "--shortfall-scales", float)
        given["scale_candidates"] = parse_list(scale_candidates, "--scale-candidates")
        result = _train(config, given, data, demo, tracking_uri, out)
    except (ValueError, TypeError, OSError) as exc:
        typer.echo(f"train failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    _echo_result(result, out)


def _train(config: Path | None, given: dict, data: Path | None, demo: bool, tracking_uri: str | None, out: Path):
    """Settings from the config file and the options, the data (the run config's folder, else its demo), train."""
    settings, run = load_train_config(config)
    settings = with_options(settings, given)
    if run is not None and data is None and not demo:  # the run config's data folder, else its demo
        data, demo = run.data, run.data is None
    uri = tracking_uri or (run.tracking_uri if run is not None else None)
    demand, items, freq = load_train_inputs(data, demo, settings)
    return run_train(demand, items, settings.freq or freq, settings, out, uri, run_config=run)


def _echo_result(result, out: Path) -> None:
    """The windows, the label-based evaluation, the replay (each origin's and pooled), the decision, and every
    registered version with its alias."""
    typer.echo(f"windows: {result.plan}")
    cols = ["split", "method", "total_cost", "controllable_regret_pct", "regret_pct", "service_met", "accuracy"]
    typer.echo(result.evaluation[cols].round(3).to_string(index=False))
    if result.replay is not None:
        cols = ["csl", "fill_rate", "inventory_value", "yearly_cost", "ratio_csl", "ratio_fill_rate", "name"]
        n = int(result.replay["origins"].iloc[0])
        if n > 1:
            typer.echo(f"decision replay at each of {n} origins:")
            typer.echo(result.replay_origins.set_index(["origin", "path"])[cols[:-1]].round(3).to_string())
        typer.echo(
            f"decision replay on the held-out window{f's, pooled over {n} origins' if n > 1 else ''} (yearly cost "
            "with shortages priced; ratio = inventory over the best baseline's at the same achieved service):"
        )
        typer.echo(result.replay[cols].round(3).to_string())
    typer.echo(result.decision)
    versions = getattr(result, "registered", ()) or ()
    said = (
        ", ".join(f"v{r.version} {r.path} ({r.alias or 'no alias'})" for r in versions) or f"version {result.version}"
    )
    typer.echo(
        f"model {result.model_name}: {said} (champion: {result.champion}); run {result.run_id}; outputs in {out}"
    )
