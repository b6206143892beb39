"""A long range run stores a few events per day, not ten (the per-partition cost of long daily logs)."""

import collections
import sqlite3

import pytest
from dagster import DagsterEventType, DagsterInstance
from sqlalchemy import create_engine, text

from recpipeline.orchestration import instance as instance_module
from recpipeline.orchestration.checks import CLEANED_CHECKS
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


def test_closing_a_connection_does_not_checkpoint_a_held_wal_file(
    tmp_path, restored_environment, monkeypatch
):
    """Each Dagster event opens and closes a connection: the held file keeps its WAL between them (no
    checkpoint and disk sync per close); the data is there for every reader; exit checkpoints it."""
    compact_event_log()
    monkeypatch.setattr(instance_module, "HELD_SQLITE_FILES", 2)
    paths = [tmp_path / f"db{i}.db" for i in range(3)]
    for path in paths:
        with sqlite3.connect(path) as setup:
            setup.execute("PRAGMA journal_mode=WAL")
            setup.execute("CREATE TABLE events (id INTEGER)")
        setup.close()  # the last connection: SQLite checkpoints and removes the WAL
        assert not path.with_name(path.name + "-wal").exists()
        engine = create_engine(f"sqlite:///{path}")
        with engine.begin() as connection:
            connection.execute(text("INSERT INTO events VALUES (1)"))
        engine.dispose()
        assert path.with_name(path.name + "-wal").stat().st_size > 0  # still in the WAL: no checkpoint
        with sqlite3.connect(path) as reader:
            assert reader.execute("SELECT count(*) FROM events").fetchone() == (1,)
        reader.close()
    # at most HELD_SQLITE_FILES are held: the oldest was let go (its WAL checkpointed by the last close)
    assert list(instance_module._held) == [str(p) for p in paths[1:]]
    assert not paths[0].with_name(paths[0].name + "-wal").exists()
    instance_module._release_held()
    assert not any(p.with_name(p.name + "-wal").exists() for p in paths)


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
    # each daily check reports per day (the UI's per-partition check results): one event per check and day
    daily_checks = len(CLEANED_CHECKS) + 1  # + the quarantine check
    assert kinds.pop(DagsterEventType.ASSET_CHECK_EVALUATION) == daily_checks * days
    assert sum(kinds.values()) <= 3 * days + 45
