"""A run killed with SIGKILL (a CLI run during ingestion, during a model fit, while it waits for the
training pool; a run launched through the daemon during a fit) leaves nothing that blocks the next run: the
next one (or the daemon) marks it failed, frees its pool slot, finishes, and writes what an uninterrupted run
writes. A run whose heartbeat stopped is recovered even when its process id names a live process (pid
reuse); a CLI run blocked on the pool stops within seconds on SIGTERM / SIGINT."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pandas as pd
import pytest
import yaml
from dagster import DagsterEventType, DagsterInstance, DagsterRunStatus, RunsFilter, job, op
from pandas.testing import assert_frame_equal

from recpipeline.orchestration.instance import (
    HEARTBEAT_TAG,
    HOST_TAG,
    PID_TAG,
    STALE_AFTER_ENV,
    TRAINING_POOL,
    ensure_dagster_home,
    process_tags,
    release_dead_runs,
)
from recpipeline_tests.conftest import REPO_ROOT, TINY_RANGE, tiny_raw_config
from recpipeline_tests.orchestration.conftest import wait_for
from recpipeline_tests.orchestration.services import process as background

#: a Mult-VAE fit of a few seconds: long enough to kill the run while it holds the training pool's slot
MODELS = ["popularity", {"als": {"iterations": 5}}, {"mult_vae": {"epochs": 150, "hidden": 32, "latent": 8}}]
SLOW_FIT_STEP = "mult_vae_model"
RUN_TIMEOUT_S = 150  # a run that waits for a leaked slot never ends; fail instead of hanging
# the run's identity, and what the costs tables measure (times, memory): the rest must be identical
VOLATILE_COLUMNS = ["run_id", "as_of", "fit_s", "cpu_s", "score_ms_per_1k_users", "peak_rss_mb"]


def _config_file(folder: Path, models: list = MODELS) -> Path:
    """The tiny configuration (by default with a slow fit) in ``folder``, storage ``folder/warehouse``."""
    config = folder / "config.yaml"
    # refit off: the slow fit is there to be killed, and a refit would run it twice
    raw = tiny_raw_config(str(folder / "warehouse"), models=models, evaluation={"refit": False})
    config.write_text(yaml.safe_dump(raw))
    return config


def _cli(folder: Path, models: list = MODELS, env: dict | None = None, **popen) -> subprocess.Popen:
    """``recpipeline run`` on the tiny configuration (with a slow fit) in ``folder``, own instance home."""
    config = _config_file(folder, models)
    env = {**os.environ, "DAGSTER_HOME": str(folder / "home"), **(env or {})}
    command = [sys.executable, "-m", "recpipeline.cli", "run", "--config", str(config), "--no-progress"]
    return subprocess.Popen(command, cwd=folder, env=env, text=True, **popen)


def _run_to_completion(folder: Path, env: dict | None = None) -> str:
    """Run the CLI in ``folder``; its stderr. Fails on a non-zero exit or a run that does not end."""
    process = _cli(folder, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    err = _stderr_at_exit(process, RUN_TIMEOUT_S, f"the run did not end within {RUN_TIMEOUT_S} s")
    assert process.returncode == 0, err[-3000:]
    return err


def _stderr_at_exit(process: subprocess.Popen, timeout: float, failure: str) -> str:
    """The stderr of ``process`` once it has exited; the test fails with ``failure`` (and the process is
    killed) if that takes more than ``timeout`` seconds."""
    try:
        return process.communicate(timeout=timeout)[1]
    except subprocess.TimeoutExpired:
        process.kill()
        err = process.communicate()[1]
        pytest.fail(f"{failure}:\n{err[-3000:]}")


def _outputs(warehouse: Path) -> dict[str, pd.DataFrame]:
    """Every table the run wrote (daily partitions included), without the run's id and time."""
    return {
        str(path.relative_to(warehouse)): pd.read_parquet(path).drop(
            columns=VOLATILE_COLUMNS, errors="ignore"
        )
        for path in sorted(warehouse.rglob("*.parquet"))
    }


@op
def _nothing() -> None:
    pass


@job
def _some_job() -> None:
    _nothing()


def test_stalled_runs_are_released_whatever_launched_them(tmp_path):
    finished = subprocess.Popen(["true"])
    finished.wait()  # its pid now names no process
    dead = {**process_tags(), PID_TAG: str(finished.pid)}
    old = f"{time.time() - 3600:.1f}"  # a heartbeat an hour old
    fresh = {HEARTBEAT_TAG: f"{time.time():.1f}"}
    with DagsterInstance.local_temp(str(tmp_path)) as instance:
        runs = {
            "dead": instance.create_run_for_job(_some_job, tags=dead),
            "alive": instance.create_run_for_job(_some_job, tags={**process_tags(), **fresh}),
            # its pid names a live process (this one: a reused pid), but its heartbeat stopped
            "pid reused": instance.create_run_for_job(_some_job, tags={**process_tags(), HEARTBEAT_TAG: old}),
            "ui": instance.create_run_for_job(_some_job),  # daemon / UI runs carry no process id
            "ui stalled": instance.create_run_for_job(_some_job, tags={HEARTBEAT_TAG: old}),
            "other host": instance.create_run_for_job(_some_job, tags={**dead, HOST_TAG: "elsewhere"}),
        }
        ended = instance.create_run_for_job(_some_job, tags=fresh)
        instance.report_run_failed(ended)  # ended, but its slot was never given back
        storage = instance.event_log_storage
        storage.set_concurrency_slots(TRAINING_POOL, 1)  # a bare instance: no default limit
        assert storage.claim_concurrency_slot(TRAINING_POOL, ended.run_id, "fit").is_claimed
        stalled = {runs[name].run_id for name in ("dead", "pid reused", "ui stalled")}
        assert set(release_dead_runs(instance)) == stalled | {ended.run_id}
        status = {name: instance.get_run_by_id(run.run_id).status for name, run in runs.items()}
        assert status == {
            "dead": DagsterRunStatus.FAILURE,
            "alive": DagsterRunStatus.NOT_STARTED,
            "pid reused": DagsterRunStatus.FAILURE,
            "ui": DagsterRunStatus.NOT_STARTED,
            "ui stalled": DagsterRunStatus.FAILURE,
            "other host": DagsterRunStatus.NOT_STARTED,
        }
        assert not storage.get_concurrency_run_ids()
        assert release_dead_runs(instance) == []  # once failed and holding no slot, it is left alone


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory) -> dict[str, pd.DataFrame]:
    folder = tmp_path_factory.mktemp("uninterrupted")
    _run_to_completion(folder)
    return _outputs(folder / "warehouse")


def _ingesting(instance: DagsterInstance) -> bool:
    """An ingestion run has finished a step and is still under way."""
    runs = instance.get_runs(RunsFilter(job_name="daily_ingestion", statuses=[DagsterRunStatus.STARTED]))
    return any(
        instance.get_records_for_run(run.run_id, of_type=DagsterEventType.STEP_SUCCESS).records
        for run in runs
    )


def _fitting(instance: DagsterInstance) -> bool:
    """The slow fit holds the training pool's slot."""
    claimed = instance.event_log_storage.get_concurrency_info(TRAINING_POOL).claimed_slots
    return any(slot.step_key == SLOW_FIT_STEP for slot in claimed)


def _kill_when(process: subprocess.Popen, instance: DagsterInstance, moment: Callable[..., bool]) -> None:
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while not moment(instance):
        assert process.poll() is None, "the run ended before the moment to kill it"
        assert time.monotonic() < deadline, "the moment to kill the run never came"
        time.sleep(0.05)
    process.send_signal(signal.SIGKILL)
    process.wait()


@pytest.mark.integration
@pytest.mark.parametrize("moment", [_ingesting, _fitting], ids=["during_ingestion", "during_fit"])
def test_a_run_killed_midway_is_failed_and_freed_by_the_next_which_writes_the_same_outputs(
    tmp_path, monkeypatch, uninterrupted, moment
):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))  # restored after the test
    ensure_dagster_home(tmp_path / "home")
    with DagsterInstance.get() as instance:
        _kill_when(_cli(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL), instance, moment)
        [killed] = instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
        # what used to block every later run: the dead run still started, holding its slot
        assert (killed.run_id in instance.event_log_storage.get_concurrency_run_ids()) == (moment is _fitting)

    stderr = _run_to_completion(tmp_path)

    assert f"run {killed.run_id} ({killed.job_name}, STARTED) is stalled, its process" in stderr
    _assert_recovered(killed.run_id, tmp_path / "warehouse", uninterrupted)


def _assert_recovered(killed: str, warehouse: Path, uninterrupted: dict[str, pd.DataFrame]) -> None:
    """The killed run is failed, nothing holds a slot or is still under way, the outputs are the same."""
    with DagsterInstance.get() as instance:
        assert instance.get_run_by_id(killed).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_run_ids()
        assert not instance.get_runs(RunsFilter(statuses=[DagsterRunStatus.STARTED]))
    outputs = _outputs(warehouse)
    assert outputs.keys() == uninterrupted.keys()
    for name, table in uninterrupted.items():
        assert_frame_equal(outputs[name], table, check_exact=True, obj=name)


class _Holder:
    """A run of another process that holds the training pool's slot: its heartbeat is fresh while
    ``beat()`` is called; its process id is this test's (alive: what a reused pid looks like)."""

    def __init__(self, instance: DagsterInstance) -> None:
        self.instance = instance
        self.run = instance.create_run_for_job(_some_job, tags=process_tags())
        self.beat()
        storage = instance.event_log_storage
        storage.initialize_concurrency_limit_to_default(TRAINING_POOL)
        assert storage.claim_concurrency_slot(TRAINING_POOL, self.run.run_id, "fake_fit").is_claimed

    def beat(self) -> None:
        self.instance.add_run_tags(self.run.run_id, {HEARTBEAT_TAG: f"{time.time():.1f}"})

    def keep_beating(self) -> threading.Event:
        """Beat every second from a thread until the returned event is set."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(1.0):
                self.beat()

        threading.Thread(target=beat, daemon=True).start()
        return stop

    def end(self) -> None:
        self.instance.report_run_failed(self.instance.get_run_by_id(self.run.run_id))
        self.instance.event_log_storage.free_concurrency_slot_for_step(self.run.run_id, "fake_fit")


def _waiting(holder: _Holder, process: subprocess.Popen) -> str:
    """Keep the holder alive until a run of ``process`` waits for the pool; that run's id."""
    deadline = time.monotonic() + RUN_TIMEOUT_S
    while True:
        holder.beat()
        info = holder.instance.event_log_storage.get_concurrency_info(TRAINING_POOL)
        if info.pending_run_ids:
            [waiting] = info.pending_run_ids
            return waiting
        assert process.poll() is None, "the run ended before it waited for the pool"
        assert time.monotonic() < deadline, "the run never waited for the pool"
        time.sleep(0.2)


@pytest.mark.integration
def test_a_run_killed_while_it_waits_for_the_pool_is_failed_and_freed(tmp_path, monkeypatch, uninterrupted):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    ensure_dagster_home(tmp_path / "home")
    with DagsterInstance.get() as instance:
        holder = _Holder(instance)
        process = _cli(tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        killed = _waiting(holder, process)
        process.send_signal(signal.SIGKILL)
        process.wait()
        holder.end()  # the holder ends normally; the killed run still waits for a slot
        assert killed in instance.event_log_storage.get_concurrency_run_ids()

    stderr = _run_to_completion(tmp_path)

    assert f"run {killed} (train_and_evaluate, STARTED) is stalled, its process" in stderr
    _assert_recovered(killed, tmp_path / "warehouse", uninterrupted)


@pytest.mark.integration
def test_a_run_blocked_by_a_holder_whose_heartbeat_stopped_gets_the_slot(tmp_path, monkeypatch):
    """The holder's process id names a live process (pid reuse): only its heartbeat tells it stalled."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    ensure_dagster_home(tmp_path / "home")
    bound = 8
    with DagsterInstance.get() as instance:
        holder = _Holder(instance)
        process = _cli(
            tmp_path,
            ["popularity"],
            {STALE_AFTER_ENV: str(bound)},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        _waiting(holder, process)  # from here on the holder's heartbeat stops
        blocked = time.monotonic()
        err = _stderr_at_exit(process, 60, "the run still waits 60 s after the holder stalled")
        waited = time.monotonic() - blocked
        assert process.returncode == 0, err[-3000:]
        assert instance.get_run_by_id(holder.run.run_id).status == DagsterRunStatus.FAILURE
        assert not instance.event_log_storage.get_concurrency_run_ids()
    print(f"stalled holder released {waited:.1f} s after its last heartbeat (bound {bound} s)")
    assert waited < bound + 30


@pytest.mark.integration
@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_cli_run_blocked_on_the_pool_stops_within_seconds_on_a_signal(tmp_path, monkeypatch, signum, code):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    ensure_dagster_home(tmp_path / "home")
    with DagsterInstance.get() as instance:
        holder = _Holder(instance)  # alive throughout: the run would wait for it forever
        process = _cli(tmp_path, ["popularity"], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        waiting = _waiting(holder, process)
        time.sleep(1.0)  # well inside Dagster's wait loop
        holder.beat()
        sent = time.monotonic()
        process.send_signal(signum)
        err = _stderr_at_exit(process, 10, f"{signum.name}: still running 10 s later")
        took = time.monotonic() - sent
        assert process.returncode == code, err[-3000:]
        last = err.strip().splitlines()[-1]
        run = f"train_and_evaluate (run {waiting})"
        assert last == f"recpipeline: stopped by {signum.name}; canceled {run}, pool slots freed"
        assert instance.get_run_by_id(waiting).status == DagsterRunStatus.CANCELED
        assert instance.event_log_storage.get_concurrency_run_ids() == {holder.run.run_id}
    print(f"{signum.name} to exit: {took:.2f} s")


@pytest.mark.integration
@pytest.mark.parametrize("moment", ["during_ingestion", "during_fit", "waiting_for_pool"])
def test_a_daemon_launched_run_killed_midway_is_recovered(tmp_path, monkeypatch, uninterrupted, moment):
    """A run of the daemon's run worker (no process id tag) killed with SIGKILL: its heartbeat stops, and
    the daemon's ``recover_stalled_runs`` (shown alone for the fit) or the next run marks it failed and frees
    its slot; the next CLI run writes what an uninterrupted run writes."""
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "home"))
    home = ensure_dagster_home(tmp_path / "home")
    stale = {STALE_AFTER_ENV: "10"}
    # the days ingested first (not by the daemon, whose sensor starts after them: no retrain of its own)
    backfill = [sys.executable, "-m", "recpipeline.cli", "backfill", "--config", str(_config_file(tmp_path))]
    env = {**os.environ, "DAGSTER_HOME": str(home), **stale}
    ingested = subprocess.run(
        [*backfill, "--start", "2026-10-01", "--end", "2026-10-10", "--no-train", "--no-progress"],
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert ingested.returncode == 0, ingested.stderr[-3000:]
    env["RECPIPELINE_CONFIG"] = str(tmp_path / "config.yaml")
    bin_dir = Path(sys.executable).parent
    module = ["-m", "recpipeline.orchestration.definitions"]
    job = "daily_ingestion" if moment == "during_ingestion" else "train_and_evaluate"
    tags = ["--tags", json.dumps(TINY_RANGE)] if job == "daily_ingestion" else []
    daemon_command = [str(bin_dir / "dagster-daemon"), "run", *module]
    with background(daemon_command, tmp_path / "daemon.log", env) as daemon:
        with DagsterInstance.get() as instance:
            holder = _Holder(instance) if moment == "waiting_for_pool" else None
            beating = holder.keep_beating() if holder is not None else None  # while the run worker starts
            launched = subprocess.run(
                [str(bin_dir / "dagster"), "job", "launch", *module, "-j", job, *tags],
                cwd=REPO_ROOT,
                env=env,
                capture_output=True,
                text=True,
                timeout=RUN_TIMEOUT_S,
            )
            assert launched.returncode == 0, launched.stderr[-3000:]
            [run] = [r for r in instance.get_runs(RunsFilter(job_name=job)) if PID_TAG not in r.tags]
            worker = wait_for(
                lambda: _run_worker_pid(instance, run.run_id), RUN_TIMEOUT_S, "the run worker", 0.1
            )
            if holder is not None:
                assert _waiting(holder, daemon) == run.run_id
                beating.set()
            else:
                when = _ingesting if moment == "during_ingestion" else _fitting
                wait_for(lambda: when(instance), RUN_TIMEOUT_S, f"the moment {moment}", 0.05)
            os.kill(worker, signal.SIGKILL)
            if holder is not None:
                holder.end()
            assert (run.run_id in instance.event_log_storage.get_concurrency_run_ids()) == (
                job != "daily_ingestion"
            )
            if moment == "during_fit":  # the daemon alone recovers it (its sensor recover_stalled_runs)
                killed = time.monotonic()
                wait_for(lambda: _recovered(instance, run.run_id), 90, "the daemon's recovery", 0.5)
                print(f"the daemon recovered the killed run {time.monotonic() - killed:.1f} s after the kill")

        _run_to_completion(tmp_path, stale)

        with DagsterInstance.get() as instance:
            wait_for(lambda: _status(instance, run.run_id) == DagsterRunStatus.FAILURE, 30, "the recovery")
        _assert_recovered(run.run_id, tmp_path / "warehouse", uninterrupted)


def _recovered(instance: DagsterInstance, run_id: str) -> bool:
    """The run is failed and holds no pool slot."""
    failed = _status(instance, run_id) == DagsterRunStatus.FAILURE
    return failed and run_id not in instance.event_log_storage.get_concurrency_run_ids()


def _status(instance: DagsterInstance, run_id: str) -> DagsterRunStatus:
    return instance.get_run_by_id(run_id).status


def _run_worker_pid(instance: DagsterInstance, run_id: str) -> int | None:
    """The process id the run worker logged when it started ("Started process for run (pid: N).")."""
    for record in instance.get_records_for_run(run_id, of_type=DagsterEventType.ENGINE_EVENT).records:
        message = record.event_log_entry.dagster_event.message or ""
        if message.startswith("Started process for run (pid: "):
            return int(message.split("pid: ")[1].rstrip(")."))
    return None
