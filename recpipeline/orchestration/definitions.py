"""The Dagster code location: every asset, check, job and schedule for one run configuration.

``dagster dev`` (via workspace.yaml) loads ``defs`` with the configuration named by $RECPIPELINE_CONFIG,
the embedded default otherwise; the CLI builds the same definitions for the file it is given.
"""

from __future__ import annotations

from dagster import Definitions, Executor, ExecutorDefinition, in_process_executor, multiprocess_executor

from recpipeline.config import RunConfig, load_config_from_env
from recpipeline.fitting.checks import validate_models
from recpipeline.orchestration.assets.backtest import build_backtest_assets, cut_partitions
from recpipeline.orchestration.assets.evaluation import build_evaluation_assets
from recpipeline.orchestration.assets.explanations import build_explanation_assets
from recpipeline.orchestration.assets.ingestion import build_ingestion_assets, daily_partitions
from recpipeline.orchestration.assets.model_inputs import build_model_inputs_assets
from recpipeline.orchestration.assets.modeling import build_model_assets
from recpipeline.orchestration.assets.preparation import build_preparation_assets
from recpipeline.orchestration.catalog import catalogued
from recpipeline.orchestration.checks import build_checks
from recpipeline.orchestration.instance import heartbeat
from recpipeline.orchestration.jobs import build_jobs
from recpipeline.orchestration.resources import build_resources


def build_assets(config: RunConfig) -> list:
    """Every asset and asset check for ``config`` (without resources bound), with the owners, tags, column
    schemas, freshness policy and code references of ``catalog.catalogued``."""
    definitions = [
        *build_ingestion_assets(config, daily_partitions(config)),
        *build_preparation_assets(config),
        *build_model_inputs_assets(config),
        *build_model_assets(config),
        *build_evaluation_assets(config),
        *build_explanation_assets(config),
        *build_backtest_assets(config),
        *build_checks(config),
    ]
    return catalogued(config, definitions)


def build_executor(config: RunConfig) -> ExecutorDefinition:
    """``execution.executor``: in_process (the default: torch/implicit are imported once, and the heavy steps
    already use every core), multiprocess (one process per step, ``max_concurrent`` at a time) or celery
    (dagster-celery's workers, ``broker`` as broker and result backend). Each beats the run's heartbeat
    while it runs (``with_heartbeat``)."""
    if config.execution.executor == "celery":
        from dagster_celery import celery_executor  # the cluster extra: only celery runs need it

        broker = config.execution.broker
        return with_heartbeat(celery_executor).configured({"broker": broker, "backend": broker})
    if config.execution.executor == "multiprocess":
        limit = config.execution.max_concurrent
        executor = with_heartbeat(multiprocess_executor)
        return executor.configured({"max_concurrent": limit}) if limit else executor
    return with_heartbeat(in_process_executor)


def with_heartbeat(executor: ExecutorDefinition) -> ExecutorDefinition:
    """``executor`` (same name, configuration and requirements) whose run coordinator writes the run's
    heartbeat while it runs, whatever launched the run (the CLI, the daemon, the UI): see
    ``instance.heartbeat``."""

    def create(init_context) -> Executor:
        return _HeartbeatExecutor(executor.executor_creation_fn(init_context))

    return ExecutorDefinition(
        name=executor.name,
        config_schema=executor.config_schema,
        requirements=executor.get_requirements,
        executor_creation_fn=create,
        description=executor.description,
    )


class _HeartbeatExecutor(Executor):
    def __init__(self, inner: Executor) -> None:
        self._inner = inner

    @property
    def retries(self):
        return self._inner.retries

    @property
    def step_dependency_config(self):
        return self._inner.step_dependency_config

    def execute(self, plan_context, execution_plan):
        with heartbeat(plan_context.instance, plan_context.run_id):
            yield from self._inner.execute(plan_context, execution_plan)

    def __getattr__(self, name: str):  # anything else the executor offers (celery's app, ...)
        if name == "_inner":
            raise AttributeError(name)
        return getattr(self._inner, name)


def build_definitions(config: RunConfig) -> Definitions:
    """Everything for ``config``; a model hyperparameter the model does not take stops here, before any run
    (a ``ConfigError`` naming the file and key), not when its step starts."""
    validate_models(config)
    has_cuts = cut_partitions(config) is not None
    jobs, schedules, sensors = build_jobs(config.split.test_days if has_cuts else None)
    return Definitions(
        assets=build_assets(config),
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(config),
        # dagster-k8s: docs/operations.md, "Beyond one machine"
        executor=build_executor(config),
    )


defs = build_definitions(load_config_from_env())
