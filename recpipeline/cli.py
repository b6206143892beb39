"""The ``recpipeline`` command line: runs the same Dagster definitions in process, or starts the UI."""

from __future__ import annotations

import argparse
import os
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from recpipeline.config import CONFIG_ENV_VAR, ConfigError, RunConfig, load_config
from recpipeline.contracts import EVENT_TYPES

if TYPE_CHECKING:
    import pandas as pd

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recpipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize every asset for a configuration and print the metrics")
    _common(run)

    backfill = commands.add_parser("backfill", help="(re-)ingest a date range as one run, then retrain")
    _common(backfill)
    backfill.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last day (inclusive), YYYY-MM-DD")
    backfill.add_argument("--no-train", action="store_true", help="only ingest and clean the days")

    ui = commands.add_parser("ui", help="start the Dagster web UI and daemon (dagster dev) on loopback")
    ui.add_argument("--config", help="run configuration YAML the code location loads")
    ui.add_argument("--host", default="127.0.0.1", help="bind address (default: loopback only)")
    ui.add_argument("--port", default="3000")

    bench = commands.add_parser("bench", help="time the pipeline's stages on generated data of a given size")
    bench.add_argument("--events", type=float, default=1e6, help="raw events to generate (e.g. 2e6)")
    bench.add_argument("--days", type=int, default=30, help="days the events spread over")
    bench.add_argument("--storage", help="where to write (default: a new temporary folder)")
    bench.add_argument(
        "--models",
        nargs="+",
        help="models to run: registered names, or 'all' (default: popularity als item_knn); torch models "
        "also get their bound ratio",
    )
    bench.add_argument(
        "--epochs", type=_positive_int, help="at most this many epochs per torch model (default: their own)"
    )

    _add_evaluate(commands)

    args = parser.parse_args(argv)
    try:
        if args.command == "ui":
            return _ui(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "evaluate":
            return _evaluate(args)
        return _run(args)
    except Exception as exc:
        clear = _clear_error(exc)
        if clear is None:
            raise
        print(f"recpipeline: {clear}", file=sys.stderr)
        return 2


def _clear_error(exc: BaseException) -> Exception | None:
    """The configuration, input or run failure behind ``exc`` (a failed run's message names the step and
    the user's error); ``None`` for anything else, which is a bug to show with its traceback."""
    from recpipeline.orchestration.runner import RunFailedError
    from recpipeline.sources.reading import SourceError

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:  # exception chains can be cycles
        seen.add(id(current))
        if isinstance(current, ConfigError | SourceError | RunFailedError):
            return current
        current = current.__cause__ or current.__context__
    return None


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", help="run configuration YAML (default: the embedded synthetic shop)")
    parser.add_argument(
        "--log-level", default="INFO", choices=LOG_LEVELS, help="messages shown from the steps"
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bars")


def _run(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from dagster import BetaWarning, DagsterInstance

    from recpipeline.orchestration.instance import ensure_dagster_home
    from recpipeline.orchestration.runner import run_pipeline

    warnings.filterwarnings("ignore", category=BetaWarning)  # backfill_policy is beta; nothing to act on
    home = ensure_dagster_home()
    with DagsterInstance.get() as instance:
        outcome = run_pipeline(
            config,
            instance=instance,
            start=getattr(args, "start", None),
            end=getattr(args, "end", None),
            train=not getattr(args, "no_train", False),
            progress=not args.no_progress,
            log_level=args.log_level,
        )
    if outcome.metrics is not None:
        print(_run_results(config, outcome.metrics))
    timings = ", ".join(f"{name} {seconds:.1f}" for name, seconds in outcome.timings.items())
    print(f"\n{timings}; outputs under {config.storage}; runs recorded in {home}", flush=True)
    return 0


def _run_results(config: RunConfig, metrics: pd.DataFrame) -> str:
    """The headline segment's metrics table, then the verdict (significance read from the warehouse)."""
    import pandas as pd

    from recpipeline.evaluation.protocol import headline_segment
    from recpipeline.evaluation.reports import markdown_table, metrics_summary
    from recpipeline.evaluation.significance import SIGNIFICANCE_COLUMNS
    from recpipeline.evaluation.verdict import evaluated_families, verdict_lines, verdict_markdown
    from recpipeline.orchestration.resources import Warehouse

    segment = headline_segment(metrics)
    significance = Warehouse(root=config.storage).read_previous("significance")
    if significance is None:
        significance = pd.DataFrame(columns=list(SIGNIFICANCE_COLUMNS))
    families = evaluated_families(metrics["model"], config.model_names)
    verdict = verdict_lines(metrics, significance, families, config.k)
    table = markdown_table(metrics_summary(metrics, segment))
    return f"\nSegment {segment}:\n\n{table}\n\nVerdict:\n{verdict_markdown(verdict)}"


def _bench(args: argparse.Namespace) -> int:
    from recpipeline.bench import format_report, run_benchmark

    warnings.filterwarnings("ignore")
    models = "all" if args.models == ["all"] else args.models
    result = run_benchmark(
        args.events,
        storage=args.storage,
        days=args.days,
        models=models,
        epochs=args.epochs,
        progress=lambda line: print(line, file=sys.stderr, flush=True),
    )
    print(format_report(result), flush=True)
    return 0


def _ui(args: argparse.Namespace) -> int:
    from recpipeline.orchestration.instance import ensure_dagster_home

    if args.config:
        load_config(args.config)  # fail here, clearly, rather than inside the code server
        os.environ[CONFIG_ENV_VAR] = os.path.abspath(args.config)
    ensure_dagster_home()
    command = ui_command(args.host, args.port)
    os.execv(command[0], command)
    return 0  # not reached


def ui_command(host: str, port: str) -> list[str]:
    """``dagster dev`` run by this interpreter, not found on PATH: ``.venv/bin/recpipeline ui`` works without
    activating the virtualenv (dagster dev starts its webserver and daemon with this interpreter too)."""
    return [
        sys.executable,
        "-m",
        "dagster",
        "dev",
        "-m",
        "recpipeline.orchestration.definitions",
        "-h",
        host,
        "-p",
        port,
    ]


def _add_evaluate(commands: argparse._SubParsersAction) -> None:
    evaluate = commands.add_parser(
        "evaluate", help="score top-K lists from a file with the pipeline's metric engine and segments"
    )
    files = "CSV or Parquet with user_id, item_id"
    evaluate.add_argument("--train", required=True, type=Path, help=f"training interactions ({files})")
    evaluate.add_argument(
        "--validation", type=Path, help=f"interactions between train and test, not relevant ({files})"
    )
    evaluate.add_argument("--test", required=True, type=Path, help=f"test interactions ({files})")
    evaluate.add_argument(
        "--recommendations", required=True, type=Path, help=f"top-K lists ({files} and rank or score)"
    )
    evaluate.add_argument("--k", required=True, type=_positive_int, nargs="+", help="one or more cut-offs")
    evaluate.add_argument("--item-features", type=Path, help="item_id, category: diversity, cross_category")
    evaluate.add_argument("--cold-max-interactions", type=int, default=5, help="cold: at most this history")
    evaluate.add_argument(
        "--relevant-event-types",
        nargs="+",
        choices=EVENT_TYPES,
        help="only test rows of these event types are relevant (needs an event_type column; default: all)",
    )
    evaluate.add_argument(
        "--min-rating", type=float, help="test ratings below this are not relevant (needs a rating column)"
    )
    evaluate.add_argument(
        "--sessions",
        action="store_true",
        help="session protocol: test has session_id, item_id, timestamp (user_id optional); the lists have "
        "session_id, position, item_id, rank, one per session position (docs/evaluation.md#sessions)",
    )
    evaluate.add_argument(
        "--session-targets", choices=("next", "rest"), default="next", help="sessions: what is relevant"
    )
    evaluate.add_argument("--output", type=Path, help="write the metrics table here (.csv or .parquet)")


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _evaluate(args: argparse.Namespace) -> int:
    import pandas as pd

    from recpipeline.evaluation.external import ExternalDataError, evaluate_files, write_table
    from recpipeline.evaluation.reports import markdown_table, metrics_summary

    try:
        if args.sessions:
            from recpipeline.evaluation.sessions import evaluate_session_files

            metrics, warnings = (
                evaluate_session_files(
                    args.train,
                    args.test,
                    args.recommendations,
                    args.k,
                    args.session_targets,
                    validation=args.validation,
                ),
                [],
            )
        else:
            metrics, warnings = evaluate_files(
                args.train,
                args.test,
                args.recommendations,
                args.k,
                item_features=args.item_features,
                validation=args.validation,
                cold_max_interactions=args.cold_max_interactions,
                relevant_event_types=args.relevant_event_types,
                min_rating=args.min_rating,
            )
        if args.output:
            write_table(metrics, args.output)
    except ExternalDataError as exc:
        print(f"recpipeline: {exc}", file=sys.stderr)
        return 2
    for message in warnings:
        print(f"recpipeline: warning: {message}", file=sys.stderr)
    for segment in pd.unique(metrics["segment"]):
        print(f"\n## {segment}\n\n{markdown_table(metrics_summary(metrics, segment))}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
