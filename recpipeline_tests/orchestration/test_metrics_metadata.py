"""The metrics asset's metadata as the UI lists it: the verdict first, a link that opens the report."""

from __future__ import annotations

from dagster import MetadataValue

from recpipeline.evaluation.reports import MetricsOverview
from recpipeline.orchestration.assets.evaluation import REPORT_ASSET, metrics_metadata


def test_metadata_lists_the_verdict_first_and_only_the_headline_numbers() -> None:
    overview = MetricsOverview(
        markdown={"verdict": "- ease wins.", "headline": "| model |", "all_metrics": "| metric |"},
        numbers={"ease/ndcg@10": 0.2, "popularity/ndcg@10": 0.1},
    )
    metadata = metrics_metadata(overview, {"as_of": "2026-10-28"})
    assert list(metadata) == [
        "verdict",
        "headline",
        "all_metrics",
        "report",
        "as_of",
        "ease/ndcg@10",
        "popularity/ndcg@10",
    ]
    assert metadata["verdict"] == MetadataValue.md("- ease wins.")
    numeric = [key for key, value in metadata.items() if isinstance(value, float)]
    assert numeric == ["ease/ndcg@10", "popularity/ndcg@10"]


def test_the_report_link_is_the_report_assets_page_in_the_ui() -> None:
    link = metrics_metadata(MetricsOverview(markdown={}, numbers={}), {})["report"]
    # same origin as the UI page showing it (a file:// link from an http page is blocked by browsers)
    assert link == MetadataValue.url(f"/assets/{REPORT_ASSET}")
