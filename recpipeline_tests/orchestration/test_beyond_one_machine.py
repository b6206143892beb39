"""Beyond one machine: storage on an fsspec filesystem, and Dagster's multiprocess executor for real."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import fsspec
import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, materialize, multiprocess_executor
from fsspec.implementations.memory import MemoryFileSystem

from recpipeline.config import load_config
from recpipeline.models import load_model
from recpipeline.orchestration.definitions import build_assets, build_definitions
from recpipeline.orchestration.instance import DAGSTER_YAML
from recpipeline.orchestration.resources import build_resources
from recpipeline.orchestration.runner import run_pipeline
from recpipeline_tests.conftest import REPO_ROOT, TINY_RANGE, tiny_config, tiny_raw_config


@pytest.fixture
def memory_root():
    """A unique folder on fsspec's in-memory filesystem, removed afterwards."""
    name = f"recpipeline-{uuid.uuid4().hex}"
    yield f"memory://{name}/warehouse"
    fs = fsspec.filesystem("memory")
    if fs.exists(f"/{name}"):
        fs.rm(f"/{name}", recursive=True)


@pytest.mark.integration
def test_whole_graph_on_fsspec_memory_storage(memory_root, tmp_path):
    config = tiny_config(memory_root)
    assert config.storage == memory_root  # a URL stays a URL
    result = materialize(build_assets(config), resources=build_resources(config), tags=TINY_RANGE)
    assert result.success
    assert all(check.passed for check in result.get_asset_check_evaluations())
    assert not (Path.cwd() / "memory:").exists()  # nothing went to a local folder named after the URL

    fs, root = fsspec.core.url_to_fs(memory_root)
    assert isinstance(fs, MemoryFileSystem)
    for day in pd.date_range("2026-10-01", "2026-10-10").strftime("%Y-%m-%d"):
        for name in ("raw_events", "cleaned_events", "quarantined_events"):
            assert fs.exists(f"{root}/{name}/{day}.parquet"), (name, day)
    metrics = pq.read_table(f"{root}/metrics.parquet", filesystem=fs).to_pandas()
    assert set(metrics["model"]) == set(config.model_names)
    assert metrics.loc[metrics["metric"] == "ndcg", "value"].between(0, 1).all()
    assert pd.read_parquet(f"{memory_root}/als_recommendations.parquet")["rank"].max() == config.k

    for name in config.model_names:
        assert fs.exists(f"{root}/models/{name}_model/params.json"), name
    fs.get(f"{root}/models/mult_vae_model/", str(tmp_path / "vae"), recursive=True)
    vae = load_model(tmp_path / "vae")
    assert vae.n_items_ == len(pq.read_table(f"{root}/item_id_map.parquet", filesystem=fs))

    html = fs.cat_file(f"{root}/report/report.html").decode("utf-8")
    assert html.lstrip().lower().startswith("<!doctype html") and "ndcg" in html
    assert not [path for path in fs.find(root) if path.endswith(".tmp")]  # atomic writes cleaned up

    # a second encoding reads the previous id maps back from the fsspec storage (Warehouse.read_previous)
    users_before = pq.read_table(f"{root}/user_id_map.parquet", filesystem=fs).to_pandas()
    again = materialize(
        build_assets(config),
        resources=build_resources(config),
        selection=["interactions", "user_id_map", "item_id_map"],
    )
    assert again.success
    users_after = pq.read_table(f"{root}/user_id_map.parquet", filesystem=fs).to_pandas()
    pd.testing.assert_frame_equal(users_before, users_after)


def _write_config(tmp_path: Path) -> Path:
    """The conftest's tiny configuration with popularity only, as a YAML file (multiprocess steps load it
    again)."""
    raw = tiny_raw_config(
        "warehouse", models=["popularity"], execution={"executor": "multiprocess", "max_concurrent": 2}
    )
    file = tmp_path / "run.yaml"
    file.write_text(yaml.safe_dump(raw))
    return file


def _dagster_home(tmp_path: Path) -> Path:
    """An instance folder with the dagster.yaml `recpipeline run` / `recpipeline ui` create."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    return home


def _step_pids(instance: DagsterInstance, run_id: str) -> set[int]:
    records = instance.all_logs(run_id, of_type=DagsterEventType.STEP_START)
    return {record.dagster_event.pid for record in records}


def test_execution_key_picks_the_executor(tmp_path):
    assert build_definitions(tiny_config(tmp_path)).resolve_job_def("daily_ingestion").executor_def.name == (
        "in_process"
    )
    config = load_config(_write_config(tmp_path))
    executor = build_definitions(config).resolve_job_def("daily_ingestion").executor_def
    assert executor.name == multiprocess_executor.name == "multiprocess"
    assert executor.config_schema.resolve_config({}).value["config"]["max_concurrent"] == 2


@pytest.mark.integration
def test_multiprocess_ingestion_through_the_dagster_cli(tmp_path):
    """`dagster job execute` on the code location, with one process per step, for two days."""
    config_file = _write_config(tmp_path)
    home = _dagster_home(tmp_path)
    tags = {
        "dagster/asset_partition_range_start": "2026-10-02",
        "dagster/asset_partition_range_end": "2026-10-03",
    }
    env = {**os.environ, "DAGSTER_HOME": str(home), "RECPIPELINE_CONFIG": str(config_file)}
    completed = subprocess.run(
        [
            sys.executable, "-m", "dagster", "job", "execute",
            "-m", "recpipeline.orchestration.definitions", "-j", "daily_ingestion",
            "--tags", json.dumps(tags),
        ],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )  # fmt: skip
    output = completed.stdout + completed.stderr
    assert completed.returncode == 0, output[-4000:]
    assert "multiprocess" in output
    warehouse = tmp_path / "warehouse"
    for name in ("raw_events", "cleaned_events", "quarantined_events"):
        assert sorted(p.name for p in (warehouse / name).iterdir()) == [
            "2026-10-02.parquet",
            "2026-10-03.parquet",
        ], name

    with DagsterInstance.from_config(str(home)) as instance:
        (run,) = instance.get_runs()
        assert run.job_name == "daily_ingestion" and run.is_success
        pids = _step_pids(instance, run.run_id)
        assert len(pids) >= 2  # every step in its own process


@pytest.mark.integration
def test_runner_runs_a_multiprocess_configuration(tmp_path):
    """`recpipeline run` with execution.executor: multiprocess, on a persistent instance."""
    config = load_config(_write_config(tmp_path))
    with DagsterInstance.from_config(str(_dagster_home(tmp_path))) as instance:
        outcome = run_pipeline(config, instance=instance, start="2026-10-05", end="2026-10-05", train=False)
        (run,) = instance.get_runs()
        assert run.is_success and os.getpid() not in _step_pids(instance, run.run_id)
    assert outcome.partitions == ["2026-10-05"] and "daily_ingestion_s" in outcome.timings
    assert [p.name for p in (tmp_path / "warehouse" / "cleaned_events").iterdir()] == ["2026-10-05.parquet"]


def test_multiprocess_needs_a_file_and_a_persistent_instance(tmp_path):
    from recpipeline.config import ConfigError, parse_config

    inline = parse_config(
        {"storage": str(tmp_path), "execution": {"executor": "multiprocess"}}, source_name="<inline>"
    )
    with pytest.raises(ConfigError, match="must come from a file"):
        run_pipeline(inline)
    with pytest.raises(ConfigError, match="persistent Dagster instance"):
        run_pipeline(load_config(_write_config(tmp_path)))
