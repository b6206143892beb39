"""Shared by the tests of the running system: a warehouse filled by `recpipeline run`, then `dagster dev`
on the same instance (loopback, a temporary DAGSTER_HOME), and small GraphQL helpers."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import pytest
import yaml

from recpipeline_tests.conftest import REPO_ROOT

#: the days of the running-system tests' synthetic shop
DAYS = ["2026-10-01", "2026-10-02", "2026-10-03", "2026-10-04"]
T = TypeVar("T")


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def wait_for(predicate: Callable[[], T], timeout: float, what: str, interval: float = 2.0) -> T:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def server_up(url: str) -> bool:
    try:
        graphql(url, "{ version }")
        return True
    except OSError:
        return False


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory) -> Iterator[dict]:
    """A warehouse filled by `recpipeline run` (four synthetic days), then `recpipeline ui` (dagster dev and
    the report server) on the same instance (a temporary DAGSTER_HOME)."""
    raw = {
        "source": {
            "kind": "synthetic",
            "start_date": DAYS[0],
            "end_date": DAYS[-1],
            "synthetic": {"n_users": 200, "n_items": 100, "sessions_per_day": 150},
        },
        "split": {"validation_days": 1, "test_days": 1},
        "models": ["popularity", {"als": {"iterations": 3}}],
        "k": 5,
    }
    with running_ui(tmp_path_factory.mktemp("ui"), raw) as ui:
        yield ui


@contextlib.contextmanager
def running_ui(root: Path, raw_config: dict) -> Iterator[dict]:
    """``raw_config`` (storage under ``root``) filled by `recpipeline run`, then `recpipeline ui` (dagster dev
    and the report server) on the same instance, a temporary DAGSTER_HOME; stopped, process group and all,
    when the block ends."""
    config = root / "run.yaml"
    config.write_text(yaml.safe_dump({**raw_config, "storage": str(root / "warehouse")}))
    # the report server `recpipeline ui` starts, on a free port; the materializations link to it
    report_port = free_port()
    env = {
        **os.environ,
        "RECPIPELINE_CONFIG": str(config),
        "DAGSTER_HOME": str(root / "home"),
        "RECPIPELINE_REPORT_PORT": str(report_port),
    }
    timings = {}
    started = time.monotonic()
    # the console script next to this interpreter, as a user of the virtualenv runs it
    cli = Path(sys.executable).with_name("recpipeline")
    filled = subprocess.run(
        [str(cli), "run", "--config", str(config), "--no-progress", "--log-level", "WARNING"],
        env=env,
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert filled.returncode == 0, filled.stderr[-4000:]
    timings["recpipeline run"] = time.monotonic() - started
    log_path = root / "dagster_dev.log"
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    started = time.monotonic()
    with open(log_path, "w") as log:
        # as a user starts it: dagster dev (webserver + daemon) and the report server beside it
        command = [str(cli), "ui", "--port", str(port)]
        process = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        try:
            wait_for(lambda: server_up(url), 120, "the webserver to answer")
            timings["dagster dev up"] = time.monotonic() - started
            yield {
                "url": url,
                "log": log_path,
                "timings": timings,
                "filled": filled.stdout,
                "report_url": f"http://127.0.0.1:{report_port}/report.html",
                "storage": root / "warehouse",
                "home": root / "home",
            }
        finally:
            os.killpg(process.pid, signal.SIGTERM)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=10)
            with contextlib.suppress(ProcessLookupError):  # whatever of the group outlived dagster dev
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=30)


# what a job page's partitions dialog sends on "Launch backfill" (LaunchAssetChoosePartitionsDialog)
LAUNCH_BACKFILL = """mutation($params: LaunchBackfillParams!) {
  launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
  status runs(limit: 20) { runId jobName status
    assetMaterializations { assetKey { path } partition } } } } }"""


def run_backfill(ui: dict, job: str, partitions: list[str], assets: list[str], timeout: float) -> dict:
    """Launch the backfill the UI's job page launches (``job``'s ``partitions`` of ``assets``) on the running
    UI, wait until it completes, and return it (status and runs); fail with the UI's log if it fails."""
    launched = graphql(
        ui["url"],
        LAUNCH_BACKFILL,
        {
            "params": {
                "partitionNames": partitions,
                "fromFailure": False,
                "assetSelection": [{"path": [name]} for name in assets],
                "selector": {
                    "partitionSetName": f"{job}_partition_set",
                    "repositorySelector": {
                        "repositoryLocationName": "recpipeline.orchestration.definitions",
                        "repositoryName": "__repository__",
                    },
                },
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def finished() -> dict | None:
        backfill = graphql(ui["url"], BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        failed = backfill["status"] in ("FAILED", "CANCELED", "COMPLETED_FAILED")
        assert not failed, ui["log"].read_text()[-4000:]
        return backfill if backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS") else None

    return wait_for(finished, timeout, f"the {job} backfill")
