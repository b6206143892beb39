"""The real webserver and daemon (`dagster dev`) on loopback: a backfill through GraphQL, the sensor-driven
retrain, and the UI in a real browser. Bounded in time; the processes are stopped at the end."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pandas as pd
import pytest
import yaml

from recpipeline.orchestration.instance import ensure_dagster_home
from recpipeline_tests.conftest import REPO_ROOT

pytestmark = pytest.mark.integration

DAYS = ["2026-10-01", "2026-10-02", "2026-10-03"]
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = REPO_ROOT / "data" / "test-artifacts"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _graphql(url: str, query: str, variables: dict | None = None) -> dict:
    request = urllib.request.Request(
        f"{url}/graphql",
        data=json.dumps({"query": query, "variables": variables or {}}).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        body = json.loads(response.read())
    assert "errors" not in body, body
    return body["data"]


def _wait_for(predicate, timeout: float, what: str, interval: float = 2.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


@pytest.fixture(scope="module")
def dagster_dev(tmp_path_factory):
    """`dagster dev` with a temporary DAGSTER_HOME and a three-day synthetic configuration."""
    root = tmp_path_factory.mktemp("ui")
    config = root / "run.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "source": {
                    "kind": "synthetic",
                    "start_date": DAYS[0],
                    "end_date": DAYS[-1],
                    "synthetic": {"n_users": 200, "n_items": 100, "sessions_per_day": 150},
                },
                "split": {"validation_days": 1, "test_days": 1},
                "models": ["popularity", {"als": {"iterations": 3}}],
                "k": 5,
                "storage": str(root / "warehouse"),
            }
        )
    )
    env = {**os.environ, "RECPIPELINE_CONFIG": str(config)}
    env.pop("DAGSTER_HOME", None)
    env["DAGSTER_HOME"] = str(ensure_dagster_home(root / "home"))
    os.environ.pop("DAGSTER_HOME", None)  # ensure_dagster_home sets it for this process; keep tests isolated
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    log = open(root / "dagster_dev.log", "w")  # noqa: SIM115 - closed in the finalizer below
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "dagster",
            "dev",
            "-m",
            "recpipeline.orchestration.definitions",
            "-h",
            "127.0.0.1",
            "-p",
            str(port),
        ],
        cwd=REPO_ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait_for(lambda: _server_up(url), 180, "the webserver to answer")
        yield {"url": url, "storage": root / "warehouse", "log": root / "dagster_dev.log"}
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
        log.close()


def _server_up(url: str) -> bool:
    try:
        _graphql(url, "{ version }")
        return True
    except OSError:
        return False


def test_backfill_through_graphql_then_sensor_retrains(dagster_dev):
    url = dagster_dev["url"]
    launched = _graphql(
        url,
        """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
             __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }""",
        {
            "params": {
                "partitionNames": DAYS,
                "assetSelection": [
                    {"path": [name]} for name in ("raw_events", "cleaned_events", "quarantined_events")
                ],
            }
        },
    )["launchPartitionBackfill"]
    assert launched["__typename"] == "LaunchBackfillSuccess", launched

    def backfill_done():
        status = _graphql(
            url,
            """query($id: String!) { partitionBackfillOrError(backfillId: $id) {
                 ... on PartitionBackfill { status } } }""",
            {"id": launched["backfillId"]},
        )["partitionBackfillOrError"]["status"]
        assert status not in ("FAILED", "CANCELED", "COMPLETED_FAILED"), dagster_dev["log"].read_text()[
            -4000:
        ]
        return status in ("COMPLETED", "COMPLETED_SUCCESS")

    _wait_for(backfill_done, 300, "the backfill")
    storage = dagster_dev["storage"]
    for day in DAYS:
        assert (storage / "cleaned_events" / f"{day}.parquet").exists()

    def training_succeeded():
        runs = _graphql(
            url,
            """{ runsOrError(filter: {pipelineName: "train_and_evaluate"}) {
                 ... on Runs { results { status } } } }""",
        )["runsOrError"]["results"]
        assert not any(r["status"] == "FAILURE" for r in runs), dagster_dev["log"].read_text()[-4000:]
        return any(r["status"] == "SUCCESS" for r in runs)

    _wait_for(training_succeeded, 300, "the sensor-launched train_and_evaluate run")
    metrics = pd.read_parquet(storage / "metrics.parquet")
    assert set(metrics["model"]) == {"popularity", "als"}


@pytest.mark.skipif(not CHROMIUM and os.environ.get("CI") != "true", reason="chromium is not installed")
def test_ui_shows_the_asset_graph_and_the_metrics(dagster_dev):
    from playwright.sync_api import sync_playwright

    url = dagster_dev["url"]
    _wait_for(lambda: (dagster_dev["storage"] / "metrics.parquet").exists(), 600, "metrics (previous test)")
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    flags = [
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
    ]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.goto(f"{url}/assets", wait_until="networkidle")
        page.screenshot(path=str(ARTEFACTS / "asset_catalog.png"), full_page=True)
        for name in ("raw_events", "interactions", "als_model", "metrics"):
            page.get_by_text(name).first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTEFACTS / "asset_catalog.png"), full_page=True)

        page.goto(f"{url}/assets/metrics", wait_until="networkidle")
        page.screenshot(path=str(ARTEFACTS / "metrics_asset.png"), full_page=True)
        page.get_by_text("als/ndcg@5").first.wait_for(timeout=60_000)
        page.screenshot(path=str(ARTEFACTS / "metrics_asset.png"), full_page=True)
        assert page.get_by_text("popularity/ndcg@5").count() >= 1
        browser.close()
    assert Path(ARTEFACTS / "metrics_asset.png").stat().st_size > 10_000
