"""Running the jobs in process, as the CLI does: the same definitions, IO managers and instance as the UI."""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field

import pandas as pd
from dagster import DagsterInstance, JobDefinition, logger
from tqdm import tqdm

from recpipeline.config import ConfigError, RunConfig
from recpipeline.orchestration.definitions import build_definitions

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


@dataclass
class PipelineOutcome:
    partitions: list[str]
    metrics: pd.DataFrame | None = None
    timings: dict[str, float] = field(default_factory=dict)


def run_pipeline(
    config: RunConfig,
    instance: DagsterInstance | None = None,
    start: str | None = None,
    end: str | None = None,
    train: bool = True,
    progress: bool = False,
    log_level: str = "WARNING",
) -> PipelineOutcome:
    """Ingest the days ``start``..``end`` (default: every partition) as one run, then train and evaluate.

    Re-running a day replaces its files, so this doubles as an idempotent backfill.
    """
    defs = build_definitions(config)
    instance = instance or DagsterInstance.ephemeral()
    ingestion = defs.resolve_job_def("daily_ingestion")
    keys = ingestion.partitions_def.get_partition_keys()
    if not keys:
        raise ConfigError(f"{config.config_file}: the source has no complete day to ingest yet")
    selected = [k for k in keys if (start is None or k >= start) and (end is None or k <= end)]
    if not selected:
        raise ConfigError(
            f"no partitions between {start} and {end}; the source's days are {keys[0]} .. {keys[-1]}"
        )
    outcome = PipelineOutcome(partitions=selected)
    tags = {PARTITION_RANGE_START: selected[0], PARTITION_RANGE_END: selected[-1]}
    label = f"ingest {len(selected)} day(s) {selected[0]}..{selected[-1]}"
    _execute(ingestion, instance, tags, label, outcome, progress, log_level)
    if train:
        result = _execute(
            defs.resolve_job_def("train_and_evaluate"),
            instance,
            {},
            "train and evaluate",
            outcome,
            progress,
            log_level,
        )
        outcome.metrics = result.output_for_node("metrics")
    return outcome


def _execute(job: JobDefinition, instance, tags, label, outcome, progress, log_level):
    steps = len(job.graph.node_dict)
    started = time.perf_counter()
    with tqdm(total=steps, desc=label, unit="step", disable=not progress, leave=True) as bar:
        result = job.with_logger_defs({"progress": _progress_logger(bar)}).execute_in_process(
            instance=instance,
            tags=tags,
            run_config={"loggers": {"progress": {"config": {"log_level": log_level}}}},
        )
    outcome.timings[job.name + "_s"] = round(time.perf_counter() - started, 2)
    return result


def _progress_logger(bar: tqdm):
    """A Dagster logger that advances the bar per finished step and prints messages above it."""

    class _Handler(logging.Handler):
        def __init__(self, message_level: str) -> None:
            super().__init__(level=logging.DEBUG)  # step events arrive at DEBUG
            self.message_level = logging.getLevelName(message_level)

        def emit(self, record: logging.LogRecord) -> None:
            meta = getattr(record, "dagster_meta", {})
            event = meta.get("dagster_event")
            if event is not None and event.event_type_value == "STEP_SUCCESS":
                bar.update(1)
                bar.set_postfix_str(event.step_key or "")
            elif event is None and record.levelno >= self.message_level:
                tqdm.write(f"  {meta.get('step_key') or ''} {meta.get('orig_message', record.getMessage())}")

    @logger(config_schema={"log_level": str}, description="tqdm progress per step")
    def progress_logger(init_context):
        log = logging.Logger("recpipeline.progress", level=logging.DEBUG)
        log.addHandler(_Handler(init_context.logger_config["log_level"]))
        return log

    return progress_logger
