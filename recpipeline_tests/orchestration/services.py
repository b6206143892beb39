"""Real servers for the cluster tests: redis, a throwaway PostgreSQL cluster and celery workers, each in a
temporary folder on a free port, each stopped (and its folder removed) when the test ends, pass or fail.

A test that needs a missing binary is skipped, naming it; CI (`.ci/run`) installs Debian's `redis-server`
and `postgresql`, so there they run.
"""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from pathlib import Path

import pytest

from recpipeline_tests.conftest import REPO_ROOT
from recpipeline_tests.orchestration.conftest import free_port, wait_for


def binary(name: str, package: str) -> str:
    """The path of ``name`` (PATH, else Debian's versioned PostgreSQL folder); skip the test without it."""
    found = shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))), None)
    if found is None:
        pytest.skip(f"{name} not installed (Debian package {package}; .ci/run installs it)")
    return found


@contextmanager
def process(args: list[str], log: Path, env: dict[str, str] | None = None) -> Iterator[subprocess.Popen]:
    """``args`` in its own process group, output to ``log``; the group gets SIGTERM at the end (SIGKILL if
    it has not stopped within 30 s)."""
    with open(log, "w") as out:
        child = subprocess.Popen(
            args, cwd=REPO_ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        yield child
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


@contextmanager
def redis_server(folder: Path) -> Iterator[str]:
    """A redis server on 127.0.0.1 without persistence; yields its URL."""
    import redis

    server = binary("redis-server", "redis-server")
    port = free_port()
    args = [server, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"]
    with process([*args, "--dir", str(folder)], folder / "redis.log"):
        client = redis.Redis(port=port)
        wait_for(lambda: _answers(client), 30, "redis to answer", interval=0.2)
        yield f"redis://127.0.0.1:{port}/0"


def _answers(client) -> bool:
    import redis

    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


@contextmanager
def postgres_server() -> Iterator[dict[str, object]]:
    """A throwaway PostgreSQL cluster (``initdb`` in a temporary folder, trust authentication, no fsync),
    listening on 127.0.0.1; yields Dagster's ``postgres_db`` settings for it.

    PostgreSQL refuses to run as root: as root (CI) the cluster belongs to the ``postgres`` user and every
    server command runs through ``runuser``."""
    initdb, pg_ctl = binary("initdb", "postgresql"), binary("pg_ctl", "postgresql")
    as_user: list[str] = []
    folder = Path(tempfile.mkdtemp(prefix="recpipeline-pg-"))  # not under pytest's root-only tmp folder
    try:
        if os.geteuid() == 0:
            owner = pwd.getpwnam("postgres")  # KeyError: the postgresql package creates this user
            os.chown(folder, owner.pw_uid, owner.pw_gid)
            as_user = [binary("runuser", "util-linux"), "-u", "postgres", "--"]
        data, port = folder / "data", free_port()
        run = partial_run(as_user, folder)
        run([initdb, "-D", str(data), "-U", "postgres", "--auth=trust", "--no-sync"])
        options = f"-p {port} -k {folder} -c listen_addresses=127.0.0.1 -c fsync=off"
        run([pg_ctl, "-D", str(data), "-l", str(folder / "server.log"), "-o", options, "-w", "start"])
        try:
            # psycopg2 (dagster-postgres's driver) named: SQLAlchemy 2.1 would otherwise pick psycopg 3
            yield {"username": "postgres", "password": "", "hostname": "127.0.0.1", "port": port,
                   "db_name": "postgres", "scheme": "postgresql+psycopg2"}  # fmt: skip
        finally:
            run([pg_ctl, "-D", str(data), "-m", "fast", "-w", "stop"])
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def partial_run(as_user: list[str], folder: Path):
    """A runner of server commands (as ``as_user``) that fails the test with their output."""

    def run(args: list[str]) -> None:
        done = subprocess.run([*as_user, *args], cwd=folder, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, f"{args[0]} failed: {done.stdout[-2000:]}{done.stderr[-2000:]}"

    return run


@contextmanager
def celery_workers(names: list[str], broker: str, home: Path, folder: Path) -> Iterator[dict[str, Path]]:
    """One ``celery -A dagster_celery.app worker`` per name (one task at a time each), on ``broker`` (also
    the result backend), with ``home`` as their DAGSTER_HOME; yields each worker's log file once all are
    ready. The workers find the broker in a ``dagster_celery_config`` module, as
    ``dagster-celery worker start -y`` writes it."""
    celery = str(Path(sys.executable).parent / "celery")  # the cluster extra, in this environment
    settings = folder / "celery_settings"
    settings.mkdir()
    (settings / "dagster_celery_config.py").write_text(
        f"broker_url = {broker!r}\nresult_backend = {broker!r}\n"
    )
    python_path = os.pathsep.join([str(settings), str(REPO_ROOT), os.environ.get("PYTHONPATH", "")])
    env = {**os.environ, "DAGSTER_HOME": str(home), "PYTHONPATH": python_path}
    logs = {name: folder / f"{name}.log" for name in names}
    with ExitStack() as stack:
        for name in names:
            args = [
                celery,
                "-A",
                "dagster_celery.app",
                "worker",
                "--prefetch-multiplier=1",
                "--concurrency=1",
            ]
            args += ["-n", f"{name}@%h", "--loglevel", "INFO", "-Q", "dagster"]
            stack.enter_context(process(args, logs[name], env))
        started = time.monotonic()
        for log in logs.values():
            wait_for(
                lambda log=log: " ready." in log.read_text(), 120 - (time.monotonic() - started), log.name
            )
        yield logs
