"""The Dagster instance home: ``$DAGSTER_HOME``, else ``data/dagster_home`` with SQLite storage.

Created on first use with a ``dagster.yaml`` that limits concurrency: at most one training run at a time
(run tag ``recpipeline/training``) and one model fit at a time across runs (pool ``training``).

Every run, whatever launched it (the CLI, the daemon, the UI), writes a heartbeat while its executor runs:
the tag ``recpipeline/heartbeat`` (Unix time) every ``HEARTBEAT_INTERVAL_S`` seconds, from a thread of the
process that coordinates its steps. ``release_dead_runs`` marks failed an unfinished run whose heartbeat is
older than ``stale_after_s()`` (default 180 s; ``$RECPIPELINE_STALE_AFTER_S``), or whose CLI process of this
host is gone (tags ``recpipeline/pid``, ``recpipeline/host``: found at once), and frees the pool slots of
such runs and of finished runs that still hold some; without that, every later model fit would wait for the
slot forever. A process id alone is not trusted to say a run is alive (ids are reused). Every live run calls
it while its heartbeat beats, so a run that waits for a slot held by a dead run gets it once the holder is
stale; ``recpipeline run`` calls it before it starts, and the sensor ``recover_stalled_runs`` in the daemon.

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
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from dagster import DagsterInstance, DagsterRunStatus, RunsFilter
from sqlalchemy import event
from sqlalchemy.engine import Engine

DEFAULT_DAGSTER_HOME = Path("data") / "dagster_home"
TRAINING_TAG = "recpipeline/training"
TRAINING_POOL = "training"
PID_TAG = "recpipeline/pid"
HOST_TAG = "recpipeline/host"
HEARTBEAT_TAG = "recpipeline/heartbeat"
#: seconds between two heartbeats of a run (at most a quarter of the staleness bound)
HEARTBEAT_INTERVAL_S = 5.0
#: a run whose heartbeat is older than this many seconds is stalled (``$RECPIPELINE_STALE_AFTER_S`` overrides)
#: (minutes, not seconds: a step holding the GIL in one long C call, or a busy SQLite, can delay beats)
STALE_AFTER_S = 180.0
STALE_AFTER_ENV = "RECPIPELINE_STALE_AFTER_S"

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
run_monitoring:           # the daemon's: runs stuck starting or canceling are failed, and pool slots a
  enabled: true           # finished run still holds are freed (runs that stop beating: recover_stalled_runs)
  start_timeout_seconds: 180
  cancel_timeout_seconds: 180
  free_slots_after_run_end_seconds: 60
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
_held_lock = threading.Lock()


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
    with _held_lock:  # the run's heartbeat thread opens connections too
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
    with _held_lock:
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


def stale_after_s() -> float:
    """Seconds without a heartbeat after which an unfinished run counts as stalled."""
    return float(os.environ.get(STALE_AFTER_ENV) or STALE_AFTER_S)


@contextmanager
def heartbeat(instance: DagsterInstance, run_id: str) -> Iterator[None]:
    """While the block runs, tag the run ``run_id`` with the time every ``HEARTBEAT_INTERVAL_S`` seconds
    (from a daemon thread, so a step busy in C code or waiting for a pool slot does not stop it) and
    recover stalled runs (``release_dead_runs``), so that a run waiting for a slot held by a dead run gets
    it once that run's heartbeat is stale."""
    stop = threading.Event()
    interval = min(HEARTBEAT_INTERVAL_S, stale_after_s() / 4)

    def beat() -> None:
        while True:
            try:
                instance.add_run_tags(run_id, {HEARTBEAT_TAG: f"{time.time():.1f}"})
                release_dead_runs(instance)
            except Exception:  # a busy database: the next beat tries again
                log.debug("recpipeline: heartbeat of run %s failed", run_id, exc_info=True)
            if stop.wait(interval):
                return

    thread = threading.Thread(target=beat, name=f"recpipeline-heartbeat-{run_id[:8]}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=interval + 5)


def release_dead_runs(instance: DagsterInstance) -> list[str]:
    """Mark failed the unfinished runs that are stalled — heartbeat older than ``stale_after_s()`` (none at
    all: since their last status change), or CLI process of this host gone — and free the pool slots they
    hold, as well as those of finished runs still holding some; return their ids, logging one line each.

    Whatever launched the run; a live process id does not make a run alive (ids are reused), a dead one of
    this host makes it dead at once."""
    now = time.time()
    bound = stale_after_s()
    unfinished = instance.get_run_records(RunsFilter(statuses=_UNFINISHED))
    unfinished_ids = {record.dagster_run.run_id for record in unfinished}
    released = []
    for record in unfinished:
        run = record.dagster_run
        reason = _stalled(run, record.update_timestamp.timestamp(), now, bound)
        if reason is None:
            continue
        instance.report_run_failed(run, message=f"recpipeline: {reason}")
        _free_slots(instance, run.run_id)
        log.warning(
            f"recpipeline: run {run.run_id} ({run.job_name}, {run.status.value}) is stalled, {reason}: "
            "marked failed, pool slots freed"
        )
        released.append(run.run_id)
    leaked = sorted(_slot_holders(instance) - unfinished_ids)
    finished = {run.run_id: run for run in instance.get_runs(RunsFilter(run_ids=leaked))} if leaked else {}
    for run_id in leaked:
        run = finished.get(run_id)
        if run is not None and run.status in (DagsterRunStatus.QUEUED, *_UNFINISHED):
            continue  # started between the two reads
        _free_slots(instance, run_id)
        state = f"{run.job_name}, {run.status.value}" if run is not None else "deleted"
        log.warning(f"recpipeline: run {run_id} ({state}) had ended but held pool slots: freed")
        released.append(run_id)
    return released


def _stalled(run, changed: float, now: float, bound: float) -> str | None:
    """Why ``run`` (unfinished, last status change at ``changed``) is stalled, or ``None``."""
    pid = run.tags.get(PID_TAG, "")
    if run.tags.get(HOST_TAG) == socket.gethostname() and pid.isdigit() and not _alive(int(pid)):
        return f"its process {pid} died before the run ended"
    beat = run.tags.get(HEARTBEAT_TAG)
    try:
        last = float(beat) if beat else changed
    except ValueError:
        last = changed
    if now - last <= bound:
        return None
    since = "last heartbeat" if beat else "no heartbeat since its last status change"
    return f"{since} {now - last:.0f} s ago (bound {bound:.0f} s)"


def _free_slots(instance: DagsterInstance, run_id: str) -> None:
    if instance.event_log_storage.supports_global_concurrency_limits:
        instance.event_log_storage.free_concurrency_slots_for_run(run_id)


@contextmanager
def exit_on_signals(instance: DagsterInstance) -> Iterator[None]:
    """While the block runs, SIGINT and SIGTERM end this process within moments, whatever it is doing
    (a step waiting for a pool slot, a fit in C code): the unfinished runs it executes are marked canceled
    and their pool slots freed, one line goes to stderr, and the process exits with 130 (SIGINT) or 143
    (SIGTERM).

    Dagster replaces the Python signal handlers while it executes a run and only looks at the signals it
    caught between steps; the signal's wakeup file descriptor, which Python writes for every caught signal
    whatever the handler, is read by a watcher thread instead."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    reader, writer = socket.socketpair()
    writer.setblocking(False)
    handled = (signal.SIGINT, signal.SIGTERM)
    previous = {signum: signal.getsignal(signum) for signum in handled}
    for signum in handled:  # a Python handler, so that the signal reaches the wakeup descriptor
        signal.signal(signum, _noted)
    previous_fd = signal.set_wakeup_fd(writer.fileno(), warn_on_full_buffer=False)

    def watch() -> None:
        while received := reader.recv(1):  # b"" once the block has ended
            if received[0] in handled:  # any other signal with a Python handler is written there too
                _abandon_own_runs(instance, signal.Signals(received[0]))

    watcher = threading.Thread(target=watch, name="recpipeline-signals", daemon=True)
    watcher.start()
    try:
        yield
    finally:
        signal.set_wakeup_fd(previous_fd)
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        writer.close()  # the watcher's recv returns b"": it ends
        watcher.join(timeout=5)
        reader.close()


def _noted(_signum, _frame) -> None:
    """The handler while ``exit_on_signals`` is active: its watcher thread acts on the signal."""


def _abandon_own_runs(instance: DagsterInstance, signum: signal.Signals) -> None:
    """Mark canceled the unfinished runs this process executes, free their pool slots, say so on one line
    and exit with 128 + the signal's number."""
    own = RunsFilter(statuses=_UNFINISHED, tags={PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()})
    canceled = []
    try:
        for run in instance.get_runs(own):
            instance.report_run_canceled(run, message=f"recpipeline: stopped by {signum.name}")
            _free_slots(instance, run.run_id)
            canceled.append(f"{run.job_name} (run {run.run_id})")
    except Exception as error:  # the instance unreachable: still exit; the next run recovers the runs
        canceled.append(f"(could not mark the runs: {error})")
    runs = f"; canceled {', '.join(canceled)}, pool slots freed" if canceled else ""
    sys.stderr.write(f"recpipeline: stopped by {signum.name}{runs}\n")
    sys.stderr.flush()
    os._exit(128 + signum)


def training_pool_limit(instance: DagsterInstance) -> int | None:
    """How many steps of pool ``training`` (the model fits) may run at once; None: no limit."""
    storage = instance.event_log_storage
    if not storage.supports_global_concurrency_limits:
        return None
    return storage.get_concurrency_info(TRAINING_POOL).limit


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
