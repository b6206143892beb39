"""The user path through the real webserver and daemon (`dagster dev` on loopback) in headless Chromium.

A user fills the warehouse with `recpipeline run`, then starts the UI on the same instance: the asset graph
shows, the `metrics` asset shows its verdict, opening the UI starts no run (the sensor only retrains on days
cleaned after it first ran), and the backfill as docs/operations.md documents it — Jobs → daily_ingestion →
Materialize all… → a range of two days under Partition selection → Launch backfill — is clicked in the UI:
one `daily_ingestion` run, then exactly one `train_and_evaluate` retrain. Every step is clicked; only the
checks (runs, sensor ticks) read GraphQL. Screenshots of each step land in `data/test-artifacts/`
(git-ignored, kept by CI). Bounded in time; the processes are stopped (process group) at the end.
"""

import os
import re
import shutil
import time

import pytest

from recpipeline_tests.conftest import REPO_ROOT
from recpipeline_tests.orchestration.conftest import DAYS, graphql, wait_for

pytestmark = pytest.mark.integration

BACKFILL = DAYS[1:3]
INGESTION = ("raw_events", "cleaned_events", "quarantined_events")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = REPO_ROOT / "data" / "test-artifacts"


def _runs(url: str) -> list[dict]:
    """Every run of the instance: id, job, status, end time and tags (as a dict)."""
    results = graphql(
        url, "{ runsOrError { ... on Runs { results { runId jobName status endTime tags { key value } } } } }"
    )["runsOrError"]["results"]
    return [{**run, "tags": {tag["key"]: tag["value"] for tag in run["tags"]}} for run in results]


def _sensor_ticks(url: str, after: float) -> list[dict]:
    """The sensor's ticks (timestamp, status) that started after the epoch time ``after``."""
    repositories = graphql(
        url,
        """{ repositoriesOrError { ... on RepositoryConnection { nodes {
             sensors { name sensorState { ticks(limit: 50) { timestamp status } } } } } } }""",
    )["repositoriesOrError"]["nodes"]
    ticks = [
        tick
        for repository in repositories
        for sensor in repository["sensors"]
        if sensor["name"] == "train_after_ingestion"
        for tick in sensor["sensorState"]["ticks"]
    ]
    return [tick for tick in ticks if tick["timestamp"] > after and tick["status"] != "STARTED"]


@pytest.mark.skipif(not CHROMIUM and os.environ.get("CI") != "true", reason="chromium is not installed")
def test_user_path_in_the_browser(dagster_dev):
    from playwright.sync_api import sync_playwright

    url, timings = dagster_dev["url"], dagster_dev["timings"]
    assert "Winner on" in dagster_dev["filled"]  # the CLI printed the verdict the UI must show too

    def log_tail() -> str:
        return dagster_dev["log"].read_text()[-4000:]

    runs_before = _runs(url)
    assert {run["jobName"] for run in runs_before} == {"daily_ingestion", "train_and_evaluate"}, runs_before
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        page = browser.new_page(viewport={"width": 1600, "height": 1000})
        page.set_default_timeout(60_000)
        # Dagster's newsletter prompt may cover the page at any moment: skip it whenever it shows
        page.add_locator_handler(
            page.get_by_text("Join the Dagster community"),
            lambda _: page.get_by_role("button", name="Skip").click(),
        )

        def nav(label: str):
            # a navigation link's name starts with its icon's ligature ("lineage Lineage")
            return page.get_by_role("link", name=re.compile(rf"(^|\s){label}$"))

        def shot(name: str) -> None:
            page.screenshot(path=str(ARTEFACTS / f"ui_{name}.png"))

        started = time.monotonic()
        opened_at = time.time()
        page.goto(url, wait_until="networkidle")
        nav("Lineage").click()
        graph = page.locator("foreignObject")  # the graph's nodes: asset groups, collapsed at first
        for group in ("ingestion", "preparation", "models", "recommendations", "evaluation"):
            graph.get_by_text(group, exact=True).wait_for()
        graph.get_by_text("ingestion", exact=True).dblclick()  # a double click expands a group
        for name in INGESTION:
            graph.get_by_text(name, exact=True).wait_for()
        shot("1_asset_graph")

        nav("Catalog").click()
        # the row's link (its accessible name repeats the name, for truncation): found by its target
        page.locator('a[href$="/assets/metrics"]').first.click()
        verdict = page.get_by_text("Winner on").first
        verdict.wait_for()
        verdict.scroll_into_view_if_needed()
        shot("2_metrics_verdict")
        timings["graph and metrics"] = time.monotonic() - started

        # two sensor ticks after the UI opened, and still only the runs `recpipeline run` made
        started = time.monotonic()

        def two_ticks() -> list[dict] | None:
            ticks = _sensor_ticks(url, opened_at)
            return ticks if len(ticks) >= 2 else None

        ticks = wait_for(two_ticks, 90, "two sensor ticks")
        # a failing sensor launches nothing either: its ticks must have run and decided to skip
        assert {tick["status"] for tick in ticks} == {"SKIPPED"}, f"{ticks}\n{log_tail()}"
        assert _runs(url) == runs_before, f"opening the UI started a run:\n{log_tail()}"
        timings["two sensor ticks"] = time.monotonic() - started

        started = time.monotonic()
        nav("Jobs").click()
        page.locator('a[href$="/jobs/daily_ingestion"]').first.click()
        materialize = page.get_by_role("button", name=re.compile(r"(^|\s)Materialize all"))  # after its icon
        materialize.wait_for()
        shot("3_ingestion_job")
        materialize.click()
        dialog = page.get_by_role("dialog")
        dialog.get_by_text("Launch runs to materialize 3 assets").wait_for()
        partitions = dialog.get_by_placeholder("No matching partitions")
        partitions.fill(f"[{BACKFILL[0]}...{BACKFILL[-1]}]")
        partitions.press("Enter")
        dialog.get_by_text("2 partitions").wait_for()
        shot("4_backfill_dialog")
        dialog.get_by_role("button", name="Launch backfill").click()
        page.get_by_text("Created backfill").wait_for()
        shot("5_backfill_launched")
        timings["backfill clicked"] = time.monotonic() - started

        started = time.monotonic()
        before = {run["runId"] for run in runs_before}

        def retrained() -> list[dict] | None:
            new = [run for run in _runs(url) if run["runId"] not in before]
            assert not any(run["status"] in ("FAILURE", "CANCELED") for run in new), f"{new}\n{log_tail()}"
            training = [run for run in new if run["jobName"] == "train_and_evaluate"]
            return new if training and all(run["status"] == "SUCCESS" for run in new) else None

        new = wait_for(retrained, 180, "the backfill and the retrain to finish")
        timings["backfill + retrain"] = time.monotonic() - started
        # one more sensor tick after the retrain ended: nothing else is launched
        ended = max(run["endTime"] for run in new)
        wait_for(lambda: _sensor_ticks(url, ended), 60, "a sensor tick after the retrain")
        new = [run for run in _runs(url) if run["runId"] not in before]
        backfills = [run for run in new if "dagster/backfill" in run["tags"]]
        training = [run for run in new if run["jobName"] == "train_and_evaluate"]
        assert len(backfills) == 1 and len(training) == 1 and len(new) == 2, new
        assert backfills[0]["jobName"] == "daily_ingestion", backfills
        assert training[0]["tags"].get("dagster/sensor_name") == "train_after_ingestion"
        ingested = backfills[0]["tags"]
        assert [
            ingested.get("dagster/asset_partition_range_start"),
            ingested.get("dagster/asset_partition_range_end"),
        ] == BACKFILL, ingested

        nav("Runs").click()
        page.get_by_text("train_and_evaluate").first.wait_for()
        shot("6_runs")
        browser.close()
    print("timings (s): " + ", ".join(f"{step} {seconds:.0f}" for step, seconds in timings.items()))
