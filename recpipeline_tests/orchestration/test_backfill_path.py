"""The documented backfill path (docs/operations.md, "Backfills"), on the real webserver and daemon: Jobs →
daily_ingestion → Materialize all… → partitions → Launch backfill. The dialog sends the GraphQL mutation
below; one run then ingests and cleans every chosen day, and the sensor retrains once after it."""

import pytest

from recpipeline_tests.orchestration.conftest import DAYS, graphql, wait_for

pytestmark = pytest.mark.integration

DAILY = ("raw_events", "cleaned_events", "quarantined_events")
# what the job page's partitions dialog sends on "Launch backfill" (LaunchAssetChoosePartitionsDialog)
LAUNCH = """mutation($params: LaunchBackfillParams!) { launchPartitionBackfill(backfillParams: $params) {
  __typename ... on LaunchBackfillSuccess { backfillId } ... on PythonError { message } } }"""
BACKFILL = """query($id: String!) { partitionBackfillOrError(backfillId: $id) { ... on PartitionBackfill {
  status runs(limit: 10) { runId jobName status
    assetMaterializations { assetKey { path } partition } } } } }"""
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

    launched = graphql(
        url,
        LAUNCH,
        {
            "params": {
                "partitionNames": DAYS,
                "fromFailure": False,
                "assetSelection": [{"path": [name]} for name in DAILY],
                "selector": {
                    "partitionSetName": "daily_ingestion_partition_set",
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
        backfill = graphql(url, BACKFILL, {"id": launched["backfillId"]})["partitionBackfillOrError"]
        assert backfill["status"] not in ("FAILED", "CANCELED", "COMPLETED_FAILED"), dagster_dev[
            "log"
        ].read_text()[-4000:]
        return backfill if backfill["status"] in ("COMPLETED", "COMPLETED_SUCCESS") else None

    backfill = wait_for(finished, 300, "the backfill")
    (run,) = backfill["runs"]
    assert run["jobName"] == "daily_ingestion" and run["status"] == "SUCCESS"
    materialized = {(m["assetKey"]["path"][-1], m["partition"]) for m in run["assetMaterializations"]}
    assert materialized == {(name, day) for name in DAILY for day in DAYS}

    def trainings() -> list[str]:
        runs = graphql(url, TRAININGS)["runsOrError"]["results"]
        return [r["status"] for r in runs]

    wait_for(lambda: "SUCCESS" in trainings(), 300, "the sensor's retrain")
    assert trainings() == ["SUCCESS"]
