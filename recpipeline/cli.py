"""The ``recpipeline`` command line: runs the same Dagster definitions in process."""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence

from recpipeline.config import ConfigError, RunConfig, load_config

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


def run_pipeline(config: RunConfig, log_level: str = "INFO") -> dict:
    """Materialize everything for ``config``: all daily partitions (as one run), then training and evaluation.

    Uses the Dagster instance of $DAGSTER_HOME when set (runs then show in the UI), else an ephemeral one.
    Returns the metrics table and the wall time per job.
    """
    from dagster import DagsterInstance

    from recpipeline.orchestration.definitions import build_definitions

    defs = build_definitions(config)
    instance = DagsterInstance.get() if os.environ.get("DAGSTER_HOME") else DagsterInstance.ephemeral()
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    keys = defs.resolve_job_def("daily_ingestion").partitions_def.get_partition_keys()
    if not keys:
        raise ConfigError(f"{config.config_file}: the source has no complete day to ingest yet")

    timings = {}
    started = time.perf_counter()
    _print(f"[1/2] ingesting {len(keys)} days ({keys[0]} .. {keys[-1]}) as one run")
    defs.resolve_job_def("daily_ingestion").execute_in_process(
        instance=instance,
        run_config=run_config,
        tags={PARTITION_RANGE_START: keys[0], PARTITION_RANGE_END: keys[-1]},
    )
    timings["ingestion_s"] = time.perf_counter() - started

    started = time.perf_counter()
    _print(f"[2/2] encoding, splitting, training {', '.join(config.model_names)} and evaluating")
    result = defs.resolve_job_def("train_and_evaluate").execute_in_process(
        instance=instance, run_config=run_config
    )
    timings["train_and_evaluate_s"] = time.perf_counter() - started
    return {"metrics": result.output_for_node("metrics"), "timings": timings}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="recpipeline", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser("run", help="materialize every asset for a configuration and print the metrics")
    run.add_argument("--config", help="run configuration YAML (default: the embedded synthetic shop)")
    run.add_argument("--log-level", default="INFO", choices=["DEBUG", "INFO", "WARNING", "ERROR"])
    args = parser.parse_args(argv)

    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"recpipeline: configuration error: {exc}", file=sys.stderr)
        return 2

    from recpipeline.reports import markdown_table, metrics_summary

    try:
        outcome = run_pipeline(config, log_level=args.log_level)
    except ConfigError as exc:
        print(f"recpipeline: {exc}", file=sys.stderr)
        return 2
    _print("\n" + markdown_table(metrics_summary(outcome["metrics"])))
    _print(
        "\n"
        + ", ".join(f"{name} {seconds:.1f}" for name, seconds in outcome["timings"].items())
        + f"; outputs under {config.storage}"
    )
    return 0


def _print(message: str) -> None:
    print(message, flush=True)


if __name__ == "__main__":
    sys.exit(main())
