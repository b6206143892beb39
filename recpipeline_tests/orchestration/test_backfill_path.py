"""The documented backfill path (docs/operations.md, "Backfills"), on the real webserver and daemon: Jobs →
daily_ingestion → Materialize all… → partitions → Launch backfill. The dialog sends the GraphQL mutation
of ``conftest.run_backfill``; one run then ingests and cleans every chosen day, and the sensor retrains
once after it."""

import pytest

from recpipeline_tests.orchestration.conftest import DAYS, graphql, run_backfill, wait_for

pytestmark = pytest.mark.integration

DAILY = ("raw_events", "cleaned_events", "quarantined_events")
# the retrains the sensor launched (the fixture's `recpipeline run` trains by itself, untagged)
TRAININGS = """{ runsOrError(filter: {pipelineName: "train_and_evaluate",
  tags: [{key: "dagster/sensor_name", value: "train_after_ingestion"}]}) {
  ... on Runs { results { status } } } }"""


def test_the_job_backfill_ingests_and_cleans_every_day_in_one_run_then_retrains_once(dagster_dev):
    url = dagster_dev["url"]
    nodes = graphql(
        url,
        "query($keys: [AssetKeyInput!]) { assetNodes(assetKeys: $keys) { backfillPolicy { description } } }",
        {"keys": [{"path": [name]} for name in DAILY]},
    )["assetNodes"]
    # the dialog's Preview: one policy for the three daily assets
    assert [node["backfillPolicy"]["description"] for node in nodes] == [
        "Backfills all partitions in a single run"
    ] * 3

    backfill = run_backfill(dagster_dev, "daily_ingestion", DAYS, list(DAILY), timeout=300)
    (run,) = backfill["runs"]
    assert run["jobName"] == "daily_ingestion" and run["status"] == "SUCCESS"
    materialized = {(m["assetKey"]["path"][-1], m["partition"]) for m in run["assetMaterializations"]}
    assert materialized == {(name, day) for name in DAILY for day in DAYS}

    def trainings() -> list[str]:
        runs = graphql(url, TRAININGS)["runsOrError"]["results"]
        return [r["status"] for r in runs]

    wait_for(lambda: "SUCCESS" in trainings(), 300, "the sensor's retrain")
    assert trainings() == ["SUCCESS"]
