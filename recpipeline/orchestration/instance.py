"""The Dagster instance home: ``$DAGSTER_HOME``, else ``data/dagster_home`` with SQLite storage.

Created on first use with a ``dagster.yaml`` that limits concurrency: at most one training run at a time
(run tag ``recpipeline/training``) and one model fit at a time across runs (pool ``training``).

Runs the CLI starts carry its process id and host as tags, so that a later CLI run can tell a run whose
process was killed (``kill -9``, a lost terminal) from one still under way, mark it failed and give back the
pool slot it held; without that, every later model fit would wait for the slot forever.

Every event a run stores costs the instance a transaction (on SQLite: two files and a disk sync), and a
single-run backfill of hundreds of days stores a few per day. ``compact_event_log`` turns on Dagster's own
settings that store one "planned" event per asset for such a run instead of one per day, and that write
asset events in batches where the storage can (PostgreSQL); and it lets SQLite files in WAL mode (Dagster's
own) commit without a disk sync each time (``synchronous=NORMAL``: still never corrupted, but a power cut
may lose the last events; a crashed process loses none). Dagster's SQLite storage opens and closes a
connection per event, and SQLite checkpoints the WAL into the database (with a disk sync) whenever the last
connection to a file closes; so the process keeps one idle connection open to each of the last
``HELD_SQLITE_FILES`` files it wrote, and checkpoints come only when the WAL fills (SQLite's
``wal_autocheckpoint``) or the process exits.
"""

from __future__ import annotations

import atexit
import logging
import os
import socket
import sqlite3
from collections import OrderedDict
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy import event
from sqlalchemy.engine import Engine

DEFAULT_DAGSTER_HOME = Path("data") / "dagster_home"
TRAINING_TAG = "recpipeline/training"
TRAINING_POOL = "training"
PID_TAG = "recpipeline/pid"
HOST_TAG = "recpipeline/host"

#: statuses of a run whose process has not reported its end (a queued run has no process yet)
_UNFINISHED = [
    DagsterRunStatus.NOT_STARTED,
    DagsterRunStatus.STARTING,
    DagsterRunStatus.STARTED,
    DagsterRunStatus.CANCELING,
]

log = logging.getLogger(__name__)

DAGSTER_YAML = f"""\
# Created by recpipeline on first use. Storage: SQLite files in this folder (Dagster's default).
# For a team deployment, replace the storage with Postgres (docs/operations.md in the recpipeline repository).
telemetry:
  enabled: false
concurrency:
  runs:
    max_concurrent_runs: 4
    tag_concurrency_limits:
      - key: {TRAINING_TAG}
        limit: 1          # two training runs never overlap
  pools:
    default_limit: 1      # pool '{TRAINING_POOL}': one model fit at a time across all runs
"""


#: Dagster's environment settings for long range runs (see ``compact_event_log``); an explicit value wins
EVENT_LOG_SETTINGS = {
    # one ASSET_MATERIALIZATION_PLANNED per asset and range run, not per day; a failed range run then
    # shows its days as missing, not failed, in the UI (the run itself is failed, with its error)
    "DAGSTER_EMIT_PARTITION_SUBSET_IN_PLANNED_EVENTS": "true",
    # asset events of a step go to the storage in batches of up to this many (one statement on PostgreSQL;
    # SQLite stores them one by one either way)
    "DAGSTER_EVENT_BATCH_SIZE": "500",
}


#: SQLite files this process holds an idle connection to (see the module docstring); a run has its own file,
#: so a long-lived process (the daemon, the UI) lets go of the oldest
HELD_SQLITE_FILES = 8
_held: OrderedDict[str, sqlite3.Connection] = OrderedDict()


def compact_event_log() -> None:
    """Set ``EVENT_LOG_SETTINGS`` in this process's environment (inherited by the step processes, the
    daemon and the UI it starts), leaving alone any the user has set."""
    for name, value in EVENT_LOG_SETTINGS.items():
        os.environ.setdefault(name, value)
    if not event.contains(Engine, "connect", _sync_wal_lazily):
        event.listen(Engine, "connect", _sync_wal_lazily)


def _sync_wal_lazily(connection, _record) -> None:
    """On every new SQLite connection in WAL mode: no disk sync per commit (SQLite syncs at checkpoints),
    and the file held open so that closing this connection does not checkpoint it."""
    if isinstance(connection, sqlite3.Connection):
        (mode,) = connection.execute("PRAGMA journal_mode").fetchone()
        if mode == "wal":
            connection.execute("PRAGMA synchronous=NORMAL")
            _hold(connection.execute("PRAGMA database_list").fetchone()[2])


def _hold(path: str) -> None:
    """Keep an idle connection to the SQLite file at ``path`` (none for an in-memory database). It has read
    the file once, so it shares the WAL, but holds no transaction: writers and checkpoints are not blocked."""
    if not path:
        return
    if path in _held:
        _held.move_to_end(path)
        return
    holder = sqlite3.connect(path, check_same_thread=False)
    holder.execute("SELECT count(*) FROM sqlite_master").fetchone()
    _held[path] = holder
    while len(_held) > HELD_SQLITE_FILES:
        _held.popitem(last=False)[1].close()


@atexit.register
def _release_held() -> None:
    """Close the held connections: the last one to each file checkpoints its WAL into the database."""
    while _held:
        _held.popitem()[1].close()


def ensure_dagster_home(home: str | os.PathLike[str] | None = None) -> Path:
    """Make sure the instance folder and its dagster.yaml exist; set and return ``$DAGSTER_HOME`` (and the
    ``compact_event_log`` settings)."""
    path = Path(home or os.environ.get("DAGSTER_HOME") or DEFAULT_DAGSTER_HOME).expanduser().resolve()
    path.mkdir(parents=True, exist_ok=True)
    config = path / "dagster.yaml"
    if not config.exists():
        config.write_text(DAGSTER_YAML)
    os.environ["DAGSTER_HOME"] = str(path)
    compact_event_log()
    return path


def process_tags() -> dict[str, str]:
    """Tags naming this process, for the runs it executes itself."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def release_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the runs started by a process of this host that has since died, and free the pool slots
    they hold (also for such runs already marked failed or canceled); return their ids, logging one line
    each.

    Only runs tagged by ``process_tags`` are considered: runs of the daemon or the UI carry no process id,
    runs of other hosts cannot be checked from here, and runs of live processes are left alone.
    """
    host = {HOST_TAG: socket.gethostname()}
    unfinished = instance.get_runs(RunsFilter(statuses=_UNFINISHED, tags=host))
    unfinished_ids = {run.run_id for run in unfinished}
    holders = _slot_holders(instance) - unfinished_ids
    finished = instance.get_runs(RunsFilter(run_ids=sorted(holders), tags=host)) if holders else []
    released = []
    for run in [*unfinished, *finished]:
        pid = run.tags.get(PID_TAG, "")
        if not pid.isdigit() or _alive(int(pid)):
            continue
        done = "marked failed, " if run.run_id in unfinished_ids else ""
        if done:
            instance.report_run_failed(run, message=f"process {pid} died before the run ended")
        if instance.event_log_storage.supports_global_concurrency_limits:
            instance.event_log_storage.free_concurrency_slots_for_run(run.run_id)
        log.warning(
            f"recpipeline: run {run.run_id} ({run.job_name}, {run.status.value}) was left by process {pid}, "
            f"which is no longer running: {done}pool slots freed"
        )
        released.append(run.run_id)
    return released


def _slot_holders(instance: DagsterInstance) -> set[str]:
    """Runs holding or waiting for a pool slot."""
    storage = instance.event_log_storage
    return storage.get_concurrency_run_ids() if storage.supports_global_concurrency_limits else set()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)  # signal 0: only checks that the process exists
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by another user
        return True
    return True
