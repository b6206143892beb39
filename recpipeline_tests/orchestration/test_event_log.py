"""A long range run stores a few events per day, not ten (the per-partition cost of long daily logs)."""

import collections
import sqlite3

import pytest
from dagster import DagsterEventType, DagsterInstance
from sqlalchemy import create_engine, text

from recpipeline.orchestration.instance import EVENT_LOG_SETTINGS, compact_event_log, ensure_dagster_home
from recpipeline.orchestration.runner import run_pipeline
from recpipeline_tests.conftest import tiny_config


@pytest.fixture
def restored_environment(monkeypatch):
    """The settings compact_event_log and ensure_dagster_home put in os.environ, undone after the test."""
    for name in (*EVENT_LOG_SETTINGS, "DAGSTER_HOME"):
        monkeypatch.delenv(name, raising=False)


def test_sqlite_in_wal_mode_commits_without_a_sync_each_time(tmp_path, restored_environment):
    compact_event_log()
    with sqlite3.connect(tmp_path / "wal.db") as setup:
        setup.execute("PRAGMA journal_mode=WAL")
    wal, plain = (
        create_engine(f"sqlite:///{tmp_path}/wal.db"),
        create_engine(f"sqlite:///{tmp_path}/plain.db"),
    )
    with wal.connect() as connection:
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 1  # NORMAL
    with plain.connect() as connection:  # a rollback journal keeps SQLite's default: FULL
        assert connection.execute(text("PRAGMA synchronous")).scalar() == 2


@pytest.mark.integration
def test_a_range_run_stores_three_events_per_day(tmp_path, restored_environment):
    config = tiny_config(tmp_path / "warehouse", models=["popularity"])
    with DagsterInstance.from_config(str(ensure_dagster_home(tmp_path / "home"))) as instance:
        outcome = run_pipeline(config, instance=instance, train=False)
        (run,) = instance.get_runs()
        kinds = collections.Counter(record.dagster_event_type for record in instance.all_logs(run.run_id))
    days = len(outcome.partitions)
    assert days == 10
    assert kinds[DagsterEventType.ASSET_MATERIALIZATION] == 3 * days  # one per asset and day: Dagster's own
    assert kinds[DagsterEventType.ASSET_MATERIALIZATION_PLANNED] == 3  # one per asset for the whole range
    assert kinds[None] <= 6  # user log lines: per output, not per file (3 per day before)
    assert sum(kinds.values()) <= 3 * days + 45
