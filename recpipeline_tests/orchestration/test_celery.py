"""dagster-celery's executor for real: a redis broker and two celery workers on this machine run
`train_and_evaluate`'s steps, the model fits spread over both workers."""

from pathlib import Path

import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance

from recpipeline.config import ExecutionConfig, load_config
from recpipeline.orchestration.instance import DAGSTER_YAML
from recpipeline.orchestration.resources import Warehouse
from recpipeline.orchestration.runner import execute, run_pipeline
from recpipeline_tests.conftest import tiny_raw_config
from recpipeline_tests.orchestration.services import celery_workers, redis_server

pytestmark = pytest.mark.integration

MODELS = ["popularity", "random", {"als": {"iterations": 3}}, "item_knn"]
WORKERS = ["alpha", "beta"]


def _worker_of_steps(instance: DagsterInstance, run_id: str) -> dict[str, str]:
    """step key -> the celery worker that ran it, from the engine event each worker logs when it starts a
    task ("Executing steps ... in celery worker", metadata "Celery worker": its hostname)."""
    ran = {}
    for record in instance.all_logs(run_id, of_type=DagsterEventType.ENGINE_EVENT):
        metadata = record.dagster_event.engine_event_data.metadata
        if "Celery worker" not in metadata:
            continue
        worker = metadata["Celery worker"].value.split("@")[0]
        for step in metadata["step_keys"].value.split(","):
            ran[step.strip()] = worker
    return ran


def test_two_celery_workers_share_the_training_steps(tmp_path):
    home = tmp_path / "home"
    home.mkdir()
    # two model fits at once (the CLI's instance allows one): the workers can only share them in parallel
    (home / "dagster.yaml").write_text(DAGSTER_YAML.replace("default_limit: 1", "default_limit: 2"))

    with redis_server(tmp_path) as broker, DagsterInstance.from_config(str(home)) as instance:
        raw = tiny_raw_config(str(tmp_path / "warehouse"), models=MODELS)
        config_file = tmp_path / "run.yaml"
        config_file.write_text(yaml.safe_dump({**raw, "execution": {"executor": "celery", "broker": broker}}))
        config = load_config(config_file)
        local = config.model_copy(update={"execution": ExecutionConfig()})
        run_pipeline(local, instance=instance, train=False)  # ingestion in this process
        with celery_workers(WORKERS, broker, home, tmp_path) as logs:
            run_id = execute(config, "train_and_evaluate", instance, {})

        run = instance.get_run_by_id(run_id)
        assert run.is_success
        ran = _worker_of_steps(instance, run_id)
        plan = {
            record.step_key for record in instance.all_logs(run_id, of_type=DagsterEventType.STEP_SUCCESS)
        }
        assert set(ran) == plan  # every step went through a worker, none ran in this process
        fits = {name: ran[f"{name}_model"] for name in config.model_names}
        assert set(fits.values()) == set(WORKERS), fits  # both workers fitted models
        for name, log in logs.items():
            assert "succeeded" in Path(log).read_text(), name  # and their own logs say so

    metrics = Warehouse(root=config.storage).read_previous("metrics")
    assert set(metrics["model"]) == set(config.model_names)
    ndcg = metrics.loc[metrics["metric"] == "ndcg"]
    assert set(ndcg["model"]) == set(config.model_names) and ndcg["value"].between(0, 1).all()
