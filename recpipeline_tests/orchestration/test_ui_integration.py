"""The user path through the real webserver and daemon (`dagster dev` on loopback) in headless Chromium.

A user fills the warehouse with `recpipeline run`, then starts the UI on the same instance: the asset graph
shows, the `metrics` asset shows its verdict, opening the UI starts no run (the sensor only retrains on days
cleaned after it first ran), and the backfill as docs/operations.md documents it — Jobs → daily_ingestion →
Materialize all… → a range of two days under Partition selection → Launch backfill — is clicked in the UI:
one `daily_ingestion` run, then exactly one `train_and_evaluate` retrain. On the way, what a Dagster user
expects of a well-kept project: at 1920x1080 the metrics page shows the verdict and its chart without
scrolling, its `report` link opens the HTML report (served beside the UI by `recpipeline ui`), column tables
carry descriptions, the daily checks list their results by partition, the sensor's ticks log their reasons.
Every step is clicked; only the checks (runs, sensor ticks and their logs) read GraphQL. Screenshots of each
step land in `data/test-artifacts/` (git-ignored, kept by CI; the test prints the folder), and are also copied
to $RECPIPELINE_UI_SHOTS when set. Bounded in time; the processes are stopped (process group) at the end.
"""

import os
import re
import shutil
import time
from pathlib import Path

import pytest

from recpipeline_tests.conftest import REPO_ROOT
from recpipeline_tests.orchestration.conftest import DAYS, graphql, wait_for

pytestmark = pytest.mark.integration

BACKFILL = DAYS[1:3]
INGESTION = ("raw_events", "cleaned_events", "quarantined_events")
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
ARTEFACTS = REPO_ROOT / "data" / "test-artifacts"
#: a second folder for the screenshots, e.g. to cite them (optional)
SHOTS_ENV_VAR = "RECPIPELINE_UI_SHOTS"
VIEWPORT = {"width": 1920, "height": 1080}
#: the verdict's first line: a winner, or no decision / no signal when the lead is not significant
VERDICT = re.compile(r"(Winner|No decision|No signal) on ")


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


def _tick_log_messages(url: str) -> list[str]:
    """The messages of the sensor's tick logs (what Automation → the sensor → a tick's logs shows)."""
    repositories = graphql(
        url,
        """{ repositoriesOrError { ... on RepositoryConnection { nodes { sensors { name sensorState {
             ticks(limit: 20, statuses: [SKIPPED, SUCCESS]) { logEvents { events { message } } } }
           } } } } }""",
    )["repositoriesOrError"]["nodes"]
    return [
        event["message"]
        for repository in repositories
        for sensor in repository["sensors"]
        if sensor["name"] == "train_after_ingestion"
        for tick in sensor["sensorState"]["ticks"]
        for event in tick["logEvents"]["events"]
    ]


def _inside(box: dict | None, viewport: dict) -> bool:
    """Whether an element's bounding box lies wholly in the viewport (no scrolling needed)."""
    return box is not None and box["y"] >= 0 and box["y"] + box["height"] <= viewport["height"]


@pytest.mark.skipif(not CHROMIUM and os.environ.get("CI") != "true", reason="chromium is not installed")
def test_user_path_in_the_browser(dagster_dev):
    from playwright.sync_api import sync_playwright

    url, timings = dagster_dev["url"], dagster_dev["timings"]
    assert VERDICT.search(dagster_dev["filled"])  # the CLI printed the verdict the UI must show too

    def log_tail() -> str:
        return dagster_dev["log"].read_text()[-4000:]

    runs_before = _runs(url)
    assert {run["jobName"] for run in runs_before} == {"daily_ingestion", "train_and_evaluate"}, runs_before
    ARTEFACTS.mkdir(parents=True, exist_ok=True)
    flags = ["--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking"]
    with sync_playwright() as pw:
        browser = pw.chromium.launch(executable_path=CHROMIUM, headless=True, args=flags)
        page = browser.new_page(viewport=VIEWPORT)
        page.set_default_timeout(60_000)
        # Dagster's newsletter prompt may cover the page at any moment: skip it whenever it shows
        page.add_locator_handler(
            page.get_by_text("Join the Dagster community"),
            lambda _: page.get_by_role("button", name="Skip").click(),
        )

        def nav(label: str):
            # a navigation link's name starts with its icon's ligature ("lineage Lineage")
            return page.get_by_role("link", name=re.compile(rf"(^|\s){label}$"))

        def shot(name: str, on=None) -> None:
            path = ARTEFACTS / f"ui_{name}.png"
            (on or page).screenshot(path=str(path))
            if os.environ.get(SHOTS_ENV_VAR):
                Path(os.environ[SHOTS_ENV_VAR]).mkdir(parents=True, exist_ok=True)
                shutil.copy(path, Path(os.environ[SHOTS_ENV_VAR]) / path.name)

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
        verdict = page.get_by_text(VERDICT).first
        verdict.wait_for()
        # the verdict and its chart (an image the report server serves) on the first screen, no scrolling
        chart = page.get_by_role("img", name=re.compile(r"^Headline metrics at K="))
        chart.wait_for()
        page.wait_for_function("img => img.complete && img.naturalWidth > 0", arg=chart.element_handle())
        assert _inside(verdict.bounding_box(), VIEWPORT), verdict.bounding_box()
        assert _inside(chart.bounding_box(), VIEWPORT), chart.bounding_box()
        shot("2_metrics_verdict")

        # one click on the `report` link opens the HTML report (a new tab, from the report server)
        with page.expect_popup() as opened:
            page.locator(f'a[href="{dagster_dev["report_url"]}"]').first.click()
        report = opened.value
        report.get_by_role("heading", name="Verdict").wait_for()
        assert report.get_by_text(VERDICT).first.is_visible()
        shot("2a_html_report", on=report)
        report.close()

        # column tables carry the contracts' descriptions
        page.goto(f"{url}/assets/cleaned_events", wait_until="networkidle")
        page.get_by_text("One of view, cart, purchase, rating.").wait_for()
        shot("2b_column_descriptions")

        # the quarantine check sits on quarantined_events and lists its results by partition (day)
        page.goto(f"{url}/assets/quarantined_events?view=checks", wait_until="networkidle")
        page.get_by_text("quarantine_share_below_ceiling").first.wait_for()
        page.get_by_role("tab", name="Execution history").click()
        for day in DAYS:
            page.get_by_role("cell", name=day, exact=True).first.wait_for()
        shot("2c_check_partitions")
        timings["graph and metrics"] = time.monotonic() - started

        # two sensor ticks after the UI opened, and still only the runs `recpipeline run` made
        started = time.monotonic()

        def two_ticks() -> list[dict] | None:
            ticks = _sensor_ticks(url, opened_at)
            return ticks if len(ticks) >= 2 else None

        ticks = wait_for(two_ticks, 90, "two sensor ticks")
        # a failing sensor launches nothing either: its ticks must have run and decided to skip
        assert {tick["status"] for tick in ticks} == {"SKIPPED"}, f"{ticks}\n{log_tail()}"
        # each tick's reason is in its log, not only in the UI's hover
        messages = _tick_log_messages(url)
        assert any(message.startswith("skipped: ") for message in messages), messages
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
    print(f"screenshots in {ARTEFACTS}")
    print("timings (s): " + ", ".join(f"{step} {seconds:.0f}" for step, seconds in timings.items()))
