"""The quarantine gate through a real Dagster materialization: its failure says which day, how much, why,
and which setting to change; every daily check records a result per day (partition), also in range runs."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
from dagster import materialize

from recpipeline.config import parse_config
from recpipeline.orchestration.checks import CLEANED_CHECKS, QUARANTINE_CHECK, failed_check_descriptions
from recpipeline.orchestration.definitions import build_assets
from recpipeline.orchestration.jobs import INGESTION_ASSETS
from recpipeline.orchestration.resources import build_resources
from recpipeline_tests.conftest import shop_source

RANGE = {
    "dagster/asset_partition_range_start": "2026-03-02",
    "dagster/asset_partition_range_end": "2026-03-04",
}


def write_dirty_shop(folder: Path) -> None:
    """Ten rows a day over three days; 2 March loses 4 rows without a customer and 1 unmapped event type,
    4 March 2 rows without a customer; 3 March is clean."""
    rows = []
    for day, missing, unmapped in (("2026-03-02", 4, 1), ("2026-03-03", 0, 0), ("2026-03-04", 2, 0)):
        for n in range(10):
            customer = "" if n < missing else f"K{n}"
            action = "klick" if missing <= n < missing + unmapped else "kauf"
            rows.append((customer, f"A{n}", f"{day} 10:{n:02d}:00", action, "1"))
    log = pd.DataFrame(rows, columns=["Kunde", "Artikel", "Zeit", "Aktion", "Menge"])
    log.to_csv(folder / "shop.csv", sep=";", index=False)


@pytest.mark.integration
def test_failed_quarantine_gate_names_days_shares_reasons_and_the_setting(tmp_path: Path) -> None:
    write_dirty_shop(tmp_path)
    raw = {
        "source": shop_source("shop.csv", timezone="UTC"),
        "cleaning": {"max_quarantine_share": 0.1},
        "storage": str(tmp_path / "warehouse"),
    }
    config = parse_config(raw, source_name=str(tmp_path / "run.yaml"), base_dir=tmp_path)
    result = materialize(
        build_assets(config),
        resources=build_resources(config),
        selection=INGESTION_ASSETS,
        tags=RANGE,
        raise_on_error=False,
    )
    assert not result.success
    evaluations = result.get_asset_check_evaluations()
    gates = [c for c in evaluations if c.check_name == QUARANTINE_CHECK.name]
    # one result per day, on quarantined_events (where the README draws the check), the worst day first
    assert [(g.asset_key.to_user_string(), g.partition, g.passed) for g in gates] == [
        ("quarantined_events", "2026-03-02", False),
        ("quarantined_events", "2026-03-04", False),
        ("quarantined_events", "2026-03-03", True),
    ]
    worst = gates[0].description
    # the day, its rows and reasons by frequency, the ceiling; then the setting to change
    assert worst.startswith(
        "2026-03-02: 50.0% quarantined (5 of 10 rows; missing_user_id 4, unknown_event_type 1), over the "
        "quarantine ceiling of 10.0%."
    )
    assert worst.endswith(f"raise cleaning.max_quarantine_share in {tmp_path / 'run.yaml'}")
    assert gates[0].metadata["share"].value == 0.5 and gates[2].description is None
    # the cleaned-events checks: each day its own result too
    days = {"2026-03-02", "2026-03-03", "2026-03-04"}
    cleaned = {
        (c.check_name, c.partition) for c in evaluations if c.asset_key.to_user_string() == "cleaned_events"
    }
    assert cleaned == {(spec.name, day) for spec in CLEANED_CHECKS for day in days}
    # what the run's failure message needs: Dagster's own error names only the check
    [text] = failed_check_descriptions(result.all_events)
    assert text.startswith(
        "2 partitions failed quarantine_share_below_ceiling: 2026-03-02: 50.0% quarantined (5 of 10 rows; "
        "missing_user_id 4, unknown_event_type 1), over the quarantine ceiling of 10.0%; 2026-03-04: 20.0% "
        "quarantined (2 of 10 rows; missing_user_id 2), over the quarantine ceiling of 10.0%. "
    )
    assert "2026-03-03" not in text
    assert text.endswith(f"raise cleaning.max_quarantine_share in {tmp_path / 'run.yaml'}")
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "2026-03-02" not in failure.step_failure_data.error.message

    # a run of one day (the nightly schedule's) records that day on each result as well
    one_day = materialize(
        build_assets(config), resources=build_resources(config), selection=INGESTION_ASSETS,
        partition_key="2026-03-03",
    )  # fmt: skip
    assert one_day.success
    assert {(c.partition, c.passed) for c in one_day.get_asset_check_evaluations()} == {("2026-03-03", True)}
