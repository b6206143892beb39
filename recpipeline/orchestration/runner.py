"""Running the jobs as the CLI does: the same definitions, IO managers and instance as the UI.

Every job runs as a reconstructable job through Dagster's public ``execute_job``, which does not keep the
steps' outputs in memory. With ``execution.executor: in_process`` (the default) its steps run in this
process, with a progress bar per step. With ``multiprocess`` every step process rebuilds the definitions from
the configuration file, and the run needs a persistent instance; so with ``celery`` (dagster-celery's
executor), whose steps run in celery workers on any machine that shares the instance and the storage. A
failed run raises ``RunFailedError`` with the failed step and the user's error on one line.
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd
from dagster import (
    DagsterEventType,
    DagsterInstance,
    JobDefinition,
    LoggerDefinition,
    build_reconstructable_job,
    execute_job,
    logger,
)
from tqdm import tqdm

from recpipeline.config import ConfigError, RunConfig, load_config
from recpipeline.orchestration.assets.backtest import COLD_TAG
from recpipeline.orchestration.checks import failed_check_descriptions
from recpipeline.orchestration.definitions import build_definitions
from recpipeline.orchestration.instance import compact_event_log, process_tags, release_dead_runs
from recpipeline.orchestration.jobs import (
    BACKTEST_CUTS_JOB,
    BACKTEST_INPUTS_JOB,
    BACKTEST_SUMMARY_JOB,
    TRAINS_ITSELF_TAG,
)
from recpipeline.orchestration.resources import Warehouse
from recpipeline.preparation.cuts import select_cuts

PARTITION_TAG = "dagster/partition"
PARTITION_RANGE_START = "dagster/asset_partition_range_start"
PARTITION_RANGE_END = "dagster/asset_partition_range_end"


class RunFailedError(RuntimeError):
    """A job run failed; the message names the failed step and the error it raised, on one line."""


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

    Re-running a day replaces its files, so this doubles as an idempotent backfill. Stalled runs (a killed
    CLI process, a heartbeat older than the bound: ``release_dead_runs``) are marked failed first, and their
    pool slots freed, so they block nothing; runs that stall later are recovered by the runs' heartbeats.
    """
    defs = build_definitions(config)
    compact_event_log()  # a range run of hundreds of days stores a few events per day, not per asset and day
    instance = instance or DagsterInstance.ephemeral()
    _step_config_file(config, instance)  # fail before any run starts
    release_dead_runs(instance)
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
    if train:  # this run trains on the days it ingests: the retrain sensor need not
        tags[TRAINS_ITSELF_TAG] = "true"
    run = dict(instance=instance, outcome=outcome, progress=progress, log_level=log_level)
    _timed_run(config, ingestion, tags, f"ingest {len(selected)} day(s) {selected[0]}..{selected[-1]}", **run)
    if not train:
        return outcome
    _timed_run(config, defs.resolve_job_def("train_and_evaluate"), {}, "train and evaluate", **run)
    outcome.metrics = Warehouse(root=config.storage).read_previous("metrics")
    return outcome


def run_backtest(
    config: RunConfig,
    instance: DagsterInstance,
    start: str,
    end: str,
    every: int | None = None,
    progress: bool = False,
    log_level: str = "WARNING",
    cold: bool = False,
) -> PipelineOutcome:
    """A rolling-origin backtest: ingest every day, encode them, then run the cut partitions from ``start``
    to ``end`` every ``every`` days (default ``backtest.every_days``) in date order — each a run of the
    ``backtest_cuts`` job for its partition, as a backfill launched from the UI makes them — and the summary
    over every materialized cut. ``cold``: every cut starts cold, as if alone (``COLD_TAG``)."""
    every = every or config.backtest.every_days
    if every % config.backtest.every_days:
        raise ConfigError(
            f"--every {every}: the cut partitions are {config.backtest.every_days} day(s) apart "
            "(backtest.every_days); choose a multiple of it"
        )
    outcome = run_pipeline(config, instance, train=False, progress=progress, log_level=log_level)
    defs = build_definitions(config)
    if BACKTEST_CUTS_JOB not in {job.name for job in defs.resolve_all_job_defs()}:
        raise ConfigError(
            f"{config.config_file}: no backtest cut: it needs split.kind temporal and at least "
            "backtest.min_train_days + split.validation_days + split.test_days days of data"
        )
    keys = defs.resolve_job_def(BACKTEST_CUTS_JOB).partitions_def.get_partition_keys()
    cuts = select_cuts(keys, start, end, every)
    if not cuts:
        raise ConfigError(f"no cut between {start} and {end}; the possible cuts are {keys[0]} .. {keys[-1]}")
    run = dict(instance=instance, outcome=outcome, progress=progress, log_level=log_level)
    _timed_run(config, defs.resolve_job_def(BACKTEST_INPUTS_JOB), {}, "encode the days", **run)
    cuts_job = defs.resolve_job_def(BACKTEST_CUTS_JOB)
    for cut in cuts:
        tags = {PARTITION_TAG: cut, **({COLD_TAG: "true"} if cold else {})}
        _timed_run(config, cuts_job, tags, f"cut {cut}", **run)
    _timed_run(config, defs.resolve_job_def(BACKTEST_SUMMARY_JOB), {}, "verdict over time", **run)
    outcome.partitions = cuts
    return outcome


def execute(
    config: RunConfig,
    job_name: str,
    instance: DagsterInstance,
    tags: dict[str, str],
    loggers: dict[str, LoggerDefinition] | None = None,
    run_config: dict | None = None,
) -> str:
    """Run one job through Dagster's public ``execute_job``, return its run id, and raise
    ``RunFailedError`` naming the failed step and its error when the run fails. The run is tagged with this
    process's id and host, by which a later run finds it should this process be killed before the run ends
    (``release_dead_runs``).

    The job is reconstructable: with the multiprocess executor every step process rebuilds it from the
    configuration file; with the in-process executor it is rebuilt here from the configuration in memory
    (with ``loggers`` attached); with celery every step is a task that a worker runs after rebuilding the job
    from the configuration file. Outputs are not captured either way: the IO managers have written them.
    """
    from_file = _step_config_file(config, instance)
    reference = from_file or f"in-process:{uuid.uuid4().hex}"
    if from_file is None:
        _IN_PROCESS[reference] = (config, loggers or {})
    try:
        job = build_reconstructable_job(__name__, reconstruct_job.__name__, (reference, job_name))
        tags = {**tags, **process_tags()}
        with execute_job(job, instance=instance, run_config=run_config or {}, tags=tags) as result:
            if not result.success:
                raise RunFailedError(_failure_message(job_name, result))
            return result.run_id
    finally:
        _IN_PROCESS.pop(reference, None)


def reconstruct_job(reference: str, job_name: str) -> JobDefinition:
    """The job ``job_name`` for a configuration: one held in this process (in-process runs), else the
    configuration file ``reference`` (how every step process of a multiprocess or celery run rebuilds it)."""
    if reference in _IN_PROCESS:
        config, loggers = _IN_PROCESS[reference]
    else:
        config, loggers = load_config(reference), {}
    job = build_definitions(config).resolve_job_def(job_name)
    return job.with_logger_defs(loggers) if loggers else job


#: configurations of the in-process runs under way, by the reference their reconstructable job carries
_IN_PROCESS: dict[str, tuple[RunConfig, dict[str, LoggerDefinition]]] = {}


def _step_config_file(config: RunConfig, instance: DagsterInstance) -> str | None:
    """The absolute configuration file for a run whose steps run in other processes (multiprocess, celery);
    ``None`` for an in-process one."""
    executor = config.execution.executor
    if executor == "in_process":
        return None
    where = config.config_file
    if not Path(where).is_file():
        raise ConfigError(
            f"{where}: execution.executor: {executor} runs load the configuration again in every step "
            "process, so it must come from a file (recpipeline run --config FILE)"
        )
    if instance.is_ephemeral:
        raise ConfigError(
            f"{where}: execution.executor: {executor} runs need a persistent Dagster instance "
            "($DAGSTER_HOME); use in_process or pass a persistent instance"
        )
    return str(Path(where).resolve())


def _failure_message(job_name: str, result) -> str:
    """The failed step and the innermost error of its chain (the user's exception, not Dagster's wrapper),
    on one line; for a failed blocking check, the check's own description (which says what to change)."""
    checks = "; ".join(failed_check_descriptions(result.all_events))
    for event in result.all_events:
        if event.event_type != DagsterEventType.STEP_FAILURE:
            continue
        error = event.step_failure_data.error
        while error is not None and error.cause is not None:
            error = error.cause
        reason = " ".join(error.message.split()) if error is not None else "unknown error"
        reason = re.sub(r"^[\w.]+\.(\w+): ", r"\1: ", reason)  # the error's class without its module path
        if checks:
            reason = f"{reason}: {' '.join(checks.split())}"
        return f"{job_name} (run {result.run_id}) failed in step {event.step_key}: {reason}"
    return f"{job_name} (run {result.run_id}) failed; see the run's log in the Dagster UI"


def _timed_run(config, job, tags, label, instance, outcome, progress, log_level) -> None:
    """One job with a progress bar per step (in-process) or step messages on the console (multiprocess,
    celery)."""
    started = time.perf_counter()
    executor = config.execution.executor
    if executor != "in_process":
        if progress:
            where = "one process per step" if executor == "multiprocess" else "steps in celery workers"
            tqdm.write(f"{label}: {where} ({executor} executor)")
        run_config = {"loggers": {"console": {"config": {"log_level": log_level}}}}
        execute(config, job.name, instance, tags, run_config=run_config)
    else:
        with tqdm(total=len(job.graph.node_dict), desc=label, unit="step", disable=not progress) as bar:
            run_config = {"loggers": {"progress": {"config": {"log_level": log_level}}}}
            execute(config, job.name, instance, tags, {"progress": _progress_logger(bar)}, run_config)
    name = job.name + (f"[{tags[PARTITION_TAG]}]" if PARTITION_TAG in tags else "")
    outcome.timings[name + "_s"] = round(time.perf_counter() - started, 2)


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
