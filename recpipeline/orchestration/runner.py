"""Running the jobs as the CLI does: the same definitions, IO managers and instance as the UI.

With ``execution.executor: in_process`` (the default) a job runs in this process (``execute_in_process``, with
a progress bar per step). With ``multiprocess`` it runs as a reconstructable job (``execute_job``): every step
process rebuilds the definitions from the configuration file, and the run needs a persistent instance.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import (
    DagsterEventType,
    DagsterInstance,
    ExecuteInProcessResult,
    JobDefinition,
    build_reconstructable_job,
    execute_job,
    logger,
)
from tqdm import tqdm

from recpipeline.config import ConfigError, RunConfig, load_config
from recpipeline.orchestration.definitions import build_definitions
from recpipeline.orchestration.resources import Warehouse

PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


class RunFailedError(RuntimeError):
    """A multiprocess run failed; the message names the step and the error it raised."""


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
    config_file = _multiprocess_config_file(config, instance)
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
    run = dict(instance=instance, outcome=outcome, progress=progress, log_level=log_level)

    def execute(job: JobDefinition, tags: dict[str, str], label: str) -> None:
        if config_file is None:
            _execute(job, tags=tags, label=label, **run)
        else:
            _execute_multiprocess(config_file, job.name, tags=tags, label=label, **run)

    execute(ingestion, tags, label)
    if not train:
        return outcome
    execute(defs.resolve_job_def("train_and_evaluate"), {}, "train and evaluate")
    outcome.metrics = Warehouse(root=config.storage).read_previous("metrics")
    return outcome


def reconstruct_job(config_file: str, job_name: str) -> JobDefinition:
    """The job ``job_name`` for the configuration in ``config_file``: how every step process of a
    multiprocess run rebuilds it (``build_reconstructable_job`` points here)."""
    return build_definitions(load_config(config_file)).resolve_job_def(job_name)


def _multiprocess_config_file(config: RunConfig, instance: DagsterInstance) -> str | None:
    """The absolute configuration file for a multiprocess run; ``None`` for an in-process one."""
    if config.execution.executor != "multiprocess":
        return None
    where = config.config_file
    if not Path(where).is_file():
        raise ConfigError(
            f"{where}: execution.executor: multiprocess runs load the configuration again in every step "
            "process, so it must come from a file (recpipeline run --config FILE)"
        )
    if instance.is_ephemeral:
        raise ConfigError(
            f"{where}: execution.executor: multiprocess runs need a persistent Dagster instance "
            "($DAGSTER_HOME); use in_process or pass a persistent instance"
        )
    return str(Path(where).resolve())


def _execute_multiprocess(config_file, job_name, instance, tags, label, outcome, progress, log_level):
    """Run one job with its multiprocess executor; step messages go to the console logger."""
    started = time.perf_counter()
    if progress:
        tqdm.write(f"{label}: one process per step (multiprocess executor)")
    job = build_reconstructable_job(__name__, reconstruct_job.__name__, (config_file, job_name))
    run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
    with execute_job(job, instance=instance, run_config=run_config, tags=tags) as result:
        if not result.success:
            raise RunFailedError(_failure_message(job_name, result))
    outcome.timings[job_name + "_s"] = round(time.perf_counter() - started, 2)


def _failure_message(job_name: str, result) -> str:
    """The failed step and the innermost error of its chain (the user's exception, not Dagster's wrapper)."""
    for event in result.all_events:
        if event.event_type != DagsterEventType.STEP_FAILURE:
            continue
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        reason = error.message.strip() if error is not None else "unknown error"
        return f"{job_name} (run {result.run_id}) failed in step {event.step_key}: {reason}"
    return f"{job_name} (run {result.run_id}) failed; see the run's log in the Dagster UI"


def _execute(job: JobDefinition, instance, tags, label, outcome, progress, log_level):
    steps = len(job.graph.node_dict)
    started = time.perf_counter()
    with tqdm(total=steps, desc=label, unit="step", disable=not progress, leave=True) as bar:
        execute_in_process_uncaptured(
            job.with_logger_defs({"progress": _progress_logger(bar)}),
            instance=instance,
            tags=tags,
            run_config={"loggers": {"progress": {"config": {"log_level": log_level}}}},
        )
    outcome.timings[job.name + "_s"] = round(time.perf_counter() - started, 2)


def execute_in_process_uncaptured(
    job: JobDefinition, instance: DagsterInstance, tags: dict[str, str], run_config: dict
) -> ExecuteInProcessResult:
    """``job.execute_in_process(...)`` without keeping every step's output in memory until the run ends.

    ``JobDefinition.execute_in_process`` always captures outputs (for ``output_for_node``): at 20M events
    that holds every table of the run at once. The IO managers have written them anyway, so the result's
    events are enough here. This calls Dagster's internal ``core_execute_in_process`` the way the public
    method does, with capturing off (dagster is pinned to 1.13.x in pyproject.toml).
    """
    from dagster._core.definitions.job_base import InMemoryJob
    from dagster._core.execution.execute_in_process import core_execute_in_process, merge_run_tags

    ephemeral = job.as_ephemeral_job(resource_defs={}, input_values={})
    return core_execute_in_process(
        run_config=run_config,
        job=InMemoryJob(job_def=ephemeral),
        instance=instance,
        output_capturing_enabled=False,
        raise_on_error=True,
        run_tags=merge_run_tags(
            job_def=job,
            partition_key=None,
            tags=tags,
            asset_selection=None,
            instance=instance,
            run_config=run_config,
        ),
    )


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
