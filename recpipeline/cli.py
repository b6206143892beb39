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
from recpipeline.models.threads import passive_waits

if TYPE_CHECKING:
    import pandas as pd
    from dagster import DagsterInstance

LOG_LEVELS = ["DEBUG", "INFO", "WARNING", "ERROR"]


def main(argv: Sequence[str] | None = None) -> int:
    passive_waits()  # before any step loads torch
    parser = argparse.ArgumentParser(prog="recpipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="materialize every asset for a configuration and print the metrics")
    _common(run)

    backfill = commands.add_parser("backfill", help="(re-)ingest a date range as one run, then retrain")
    _common(backfill)
    backfill.add_argument("--start", required=True, help="first day, YYYY-MM-DD")
    backfill.add_argument("--end", required=True, help="last day (inclusive), YYYY-MM-DD")
    backfill.add_argument("--no-train", action="store_true", help="only ingest and clean the days")

    backtest = commands.add_parser(
        "backtest",
        help="rolling-origin backtest: the chain at every cut date in a range, then the verdict over time",
    )
    _common(backtest)
    backtest.add_argument("--start", required=True, help="first cut date (the last day before a test window)")
    backtest.add_argument("--end", required=True, help="last cut date (inclusive), YYYY-MM-DD")
    backtest.add_argument(
        "--every", type=_positive_int, help="days between cuts (default: backtest.every_days)"
    )
    backtest.add_argument(
        "--cold", action="store_true", help="every cut starts cold, as if run alone (no warm starts)"
    )

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
    _add_report(commands)
    _add_datasets(commands)

    args = parser.parse_args(argv)
    try:
        if args.command == "ui":
            return _ui(args)
        if args.command == "bench":
            return _bench(args)
        if args.command == "evaluate":
            return _evaluate(args)
        if args.command == "report":
            return _report(args)
        if args.command == "backtest":
            return _backtest(args)
        if args.command == "datasets":
            return _datasets(args)
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
    # dates are compared as text further on: 2026-01-1 would sort after 2026-01-10
    for flag in ("start", "end"):
        if getattr(args, flag, None) is not None:
            setattr(args, flag, _iso_date(getattr(args, flag), f"--{flag}"))
    config = load_config(args.config)
    from dagster import BetaWarning, DagsterInstance

    from recpipeline.orchestration.instance import ensure_dagster_home, exit_on_signals
    from recpipeline.orchestration.runner import run_pipeline

    warnings.filterwarnings("ignore", category=BetaWarning)  # backfill_policy is beta; nothing to act on
    home = ensure_dagster_home()
    # SIGINT / SIGTERM: the runs under way are canceled and their pool slots freed, exit 130 / 143
    with DagsterInstance.get() as instance, exit_on_signals(instance):
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
        print(_run_results(config, outcome.metrics, instance))
    timings = ", ".join(f"{name} {seconds:.1f}" for name, seconds in outcome.timings.items())
    print(f"\n{timings}; outputs under {config.storage}; runs recorded in {home}", flush=True)
    return 0


def _backtest(args: argparse.Namespace) -> int:
    config = load_config(args.config)
    from dagster import BetaWarning, DagsterInstance

    from recpipeline.evaluation.backtest import backtest_summary, verdict_over_time
    from recpipeline.evaluation.verdict import verdict_markdown
    from recpipeline.orchestration.instance import ensure_dagster_home, exit_on_signals
    from recpipeline.orchestration.resources import Warehouse
    from recpipeline.orchestration.runner import run_backtest

    warnings.filterwarnings("ignore", category=BetaWarning)
    start, end = (_iso_date(value, flag) for value, flag in ((args.start, "--start"), (args.end, "--end")))
    home = ensure_dagster_home()
    with DagsterInstance.get() as instance, exit_on_signals(instance):
        outcome = run_backtest(
            config,
            instance,
            start,
            end,
            every=args.every,
            progress=not args.no_progress,
            log_level=args.log_level,
            cold=args.cold,
        )
    table = Warehouse(root=config.storage).read_previous("backtest")
    lines = verdict_over_time(table, backtest_summary(table), config.k)
    print(f"\nCuts run: {', '.join(outcome.partitions)}\n\nVerdict over time:\n{verdict_markdown(lines)}")
    print(f"\noutputs under {config.storage} (backtest.parquet, backtest_costs.parquet); runs in {home}")
    return 0


def _iso_date(text: str, flag: str) -> str:
    """A YYYY-MM-DD date, normalised (``2026-1-5`` would otherwise compare as text)."""
    import datetime as dt

    try:
        return dt.date.fromisoformat(text).isoformat()
    except ValueError:
        raise ConfigError(f"{flag}: expected a date YYYY-MM-DD, got {text!r}") from None


def _run_results(config: RunConfig, metrics: pd.DataFrame, instance: DagsterInstance) -> str:
    """The headline segment's metrics table, then the verdict (significance read from the warehouse, how
    validation was drawn from the split's materialization on ``instance``)."""
    import pandas as pd

    from recpipeline.evaluation.protocol import headline_segment
    from recpipeline.evaluation.reports import markdown_table, metrics_summary
    from recpipeline.evaluation.significance import SIGNIFICANCE_COLUMNS
    from recpipeline.evaluation.verdict import evaluated_families, verdict_lines, verdict_markdown
    from recpipeline.orchestration.assets.evaluation import validation_drawn
    from recpipeline.orchestration.resources import Warehouse

    segment = headline_segment(metrics)
    significance = Warehouse(root=config.storage).read_previous("significance")
    if significance is None:
        significance = pd.DataFrame(columns=list(SIGNIFICANCE_COLUMNS))
    families = evaluated_families(metrics["model"], config.model_names)
    costs = Warehouse(root=config.storage).read_previous("model_costs")
    verdict = verdict_lines(metrics, significance, families, config.k, costs, validation_drawn(instance))
    table = markdown_table(metrics_summary(metrics, segment))
    return f"\nSegment {segment}:\n\n{table}\n\nVerdict:\n{verdict_markdown(verdict)}"


def _bench(args: argparse.Namespace) -> int:
    from recpipeline.bench.pipeline import format_report, run_benchmark

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
    warning = exposure_warning(args.host)
    if warning:
        print(f"recpipeline: warning: {warning}", file=sys.stderr, flush=True)
    # the report links of the metrics and report assets open what this serves
    _serve_report_beside_ui(os.environ.get(CONFIG_ENV_VAR))
    command = ui_command(args.host, args.port)
    os.execv(command[0], command)
    return 0  # not reached


def exposure_warning(host: str) -> str | None:
    """What binding the UI to ``host`` exposes, when that is beyond this machine's loopback."""
    import ipaddress

    if host.strip().lower() == "localhost":
        return None
    try:
        if ipaddress.ip_address(host.strip("[]")).is_loopback:
            return None
    except ValueError:
        pass  # a host name: it may resolve to any interface
    return (
        f"the Dagster UI binds to {host}, beyond loopback, with no authentication: anyone who reaches the "
        "port can launch, cancel and delete runs, start backfills and read every asset's metadata and logs "
        "(docs/operations.md: put it behind a reverse proxy with authentication)"
    )


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


def _add_report(commands: argparse._SubParsersAction) -> None:
    report = commands.add_parser(
        "report", help="serve the evaluation report (<storage>/report/report.html) on 127.0.0.1 until Ctrl-C"
    )
    report.add_argument("--config", help="run configuration YAML: whose storage (default: the embedded one)")
    report.add_argument("--port", type=int, help="port (default: $RECPIPELINE_REPORT_PORT, else 3001)")
    report.add_argument("--open", action="store_true", help="open the report in a web browser")
    report.add_argument("--while-parent-lives", action="store_true", help=argparse.SUPPRESS)


def _report(args: argparse.Namespace) -> int:
    import webbrowser

    from recpipeline.evaluation.serving import REPORT_PAGE, report_folder, report_port, serve

    config = load_config(args.config)
    page = report_folder(config.storage) / REPORT_PAGE

    def ready(url: str) -> None:
        if not args.while_parent_lives:  # beside the UI: quiet
            missing = "" if page.exists() else " (none yet: materialize the report asset)"
            print(f"Serving {page}{missing} at {url} — Ctrl-C to stop", flush=True)
        if args.open:
            webbrowser.open(url)

    try:
        serve(config.storage, args.port, ready=ready, while_parent_lives=args.while_parent_lives)
    except OSError as exc:  # the port is taken: say so in one line (beside the UI, only the links suffer)
        print(
            f"recpipeline: cannot serve the report on 127.0.0.1:{args.port or report_port()}: {exc}",
            file=sys.stderr,
        )
        return 2
    return 0


def _serve_report_beside_ui(config_file: str | None) -> None:
    """``recpipeline report`` in a child process that ends with the UI (same process group: Ctrl-C stops
    both; it also stops when the UI's process is gone); a taken port only costs the links."""
    import subprocess

    command = [sys.executable, "-m", "recpipeline.cli", "report", "--while-parent-lives"]
    subprocess.Popen([*command, *(["--config", config_file] if config_file else [])])


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


def _add_datasets(commands: argparse._SubParsersAction) -> None:
    from recpipeline.datasets import DATASETS

    datasets = commands.add_parser(
        "datasets", help="list or fetch the public datasets the example configurations and benchmarks read"
    )
    actions = datasets.add_subparsers(dest="action", required=True)
    actions.add_parser("list", help="each dataset's size, licence, URL and whether it is here")
    fetch = actions.add_parser("fetch", help="download, verify and unpack a dataset (resumable)")
    fetch.add_argument("name", choices=list(DATASETS))
    fetch.add_argument(
        "--to",
        type=Path,
        help="the folder holding datasets (default: $RECPIPELINE_DATA, else ./data/datasets)",
    )
    fetch.add_argument(
        "--from",
        dest="source",
        type=Path,
        help="register a copy downloaded elsewhere: the archive, the file, or the unpacked folder",
    )
    fetch.add_argument("--no-progress", action="store_true", help="no progress bar")


def _datasets(args: argparse.Namespace) -> int:
    from recpipeline import datasets

    if args.action == "list":
        print(datasets.format_listing())
        return 0
    try:
        folder = datasets.fetch(
            datasets.DATASETS[args.name],
            args.to,
            args.source,
            progress=not args.no_progress,
            notify=lambda line: print(f"recpipeline: {line}", file=sys.stderr, flush=True),
        )
    except datasets.DatasetError as exc:
        print(f"recpipeline: {exc}", file=sys.stderr)
        return 2
    print(folder)
    if folder.parent != datasets.data_location():  # configurations read ${RECPIPELINE_DATA}/<name>
        print(
            f"recpipeline: configurations find it with {datasets.DATA_ENV_VAR}={folder.parent}",
            file=sys.stderr,
        )
    return 0


def _output_problem(path: Path) -> str | None:
    """Why the metrics cannot be written to ``path``, or ``None``."""
    from recpipeline.contracts import TABLE_SUFFIXES

    if path.suffix.lower() not in TABLE_SUFFIXES:
        return f"{path}: the output must be a .csv or .parquet file"
    folder = path.expanduser().resolve().parent
    if not folder.is_dir():
        return f"{path}: the folder {folder} does not exist; create it first"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"{path}: cannot write in {folder}"
    if path.is_dir():
        return f"{path}: is a folder; name a file"
    return None


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a positive integer, got {text!r}")
    return int(text)


def _evaluate(args: argparse.Namespace) -> int:
    import math

    import pandas as pd

    from recpipeline.evaluation.external import ExternalDataError, evaluate_files, write_table
    from recpipeline.evaluation.reports import markdown_table, metrics_summary

    if args.min_rating is not None and not math.isfinite(args.min_rating):
        print(f"recpipeline: --min-rating: expected a finite number, got {args.min_rating}", file=sys.stderr)
        return 2
    if args.output is not None:  # checked before the work, not after it
        problem = _output_problem(args.output)
        if problem:
            print(f"recpipeline: --output: {problem}", file=sys.stderr)
            return 2
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
