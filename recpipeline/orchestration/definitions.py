"""The Dagster code location: every asset, check, job and schedule for one run configuration.

``dagster dev`` (via workspace.yaml) loads ``defs`` with the configuration named by $RECPIPELINE_CONFIG,
the embedded default otherwise; the CLI builds the same definitions for the file it is given.
"""

from __future__ import annotations

from dagster import Definitions, in_process_executor

from recpipeline.config import RunConfig, load_config_from_env
from recpipeline.orchestration.assets.evaluation import build_evaluation_assets
from recpipeline.orchestration.assets.ingestion import build_ingestion_assets, daily_partitions
from recpipeline.orchestration.assets.modeling import build_model_assets
from recpipeline.orchestration.assets.preparation import build_preparation_assets
from recpipeline.orchestration.checks import build_checks
from recpipeline.orchestration.jobs import build_jobs
from recpipeline.orchestration.resources import build_resources


def build_assets(config: RunConfig) -> list:
    """Every asset and asset check for ``config`` (without resources bound)."""
    return [
        *build_ingestion_assets(config, daily_partitions(config)),
        *build_preparation_assets(config),
        *build_model_assets(config),
        *build_evaluation_assets(config),
        *build_checks(config),
    ]


def build_definitions(config: RunConfig) -> Definitions:
    jobs, schedules, sensors = build_jobs()
    return Definitions(
        assets=build_assets(config),
        jobs=jobs,
        schedules=schedules,
        sensors=sensors,
        resources=build_resources(config),
        # steps share one process: torch/implicit are imported once, and the heavy steps already use every
        # core (a multiprocess, dagster-celery or dagster-k8s executor is a config switch away)
        executor=in_process_executor,
    )


defs = build_definitions(load_config_from_env())
