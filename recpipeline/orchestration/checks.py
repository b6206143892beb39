"""Asset checks, kept apart from the assets they guard (the cleaning check lives with its multi-asset)."""

import pandas as pd
from dagster import AssetCheckResult, AssetCheckSpec, AssetIn, asset_check

from recpipeline.config import RunConfig

QUARANTINE_CHECK = AssetCheckSpec(
    "quarantine_share_below_ceiling",
    asset="cleaned_events",
    blocking=True,
    description="Each day's quarantined share of raw rows stays under cleaning.max_quarantine_share.",
)


def quarantine_check_result(config: RunConfig, counts: pd.DataFrame) -> AssetCheckResult:
    """Pass when every partition's quarantined / raw share is at most the configured ceiling."""
    share = counts["quarantined"] / counts["raw"].clip(lower=1)
    worst = counts.assign(share=share).sort_values("share", ascending=False).iloc[0]
    return AssetCheckResult(
        check_name=QUARANTINE_CHECK.name,
        asset_key="cleaned_events",
        passed=bool((share <= config.cleaning.max_quarantine_share).all()),
        metadata={
            "worst_partition": str(worst["partition"]),
            "worst_share": float(worst["share"]),
            "ceiling": config.cleaning.max_quarantine_share,
        },
    )


def build_checks(config: RunConfig) -> list:
    @asset_check(
        asset="test",
        blocking=True,
        additional_ins={"train": AssetIn("train"), "validation": AssetIn("validation")},
        description="Train < validation < test in time: no test (or validation) event leaks into training.",
    )
    def splits_are_ordered_in_time(
        test: pd.DataFrame, train: pd.DataFrame, validation: pd.DataFrame
    ) -> AssetCheckResult:
        ordered = [f["timestamp"] for f in (train, validation, test) if len(f)]
        passed = len(test) > 0 and all(a.max() < b.min() for a, b in zip(ordered, ordered[1:], strict=False))
        return AssetCheckResult(
            passed=bool(passed),
            metadata={"train_rows": len(train), "validation_rows": len(validation), "test_rows": len(test)},
        )

    @asset_check(
        asset="metrics", description="Every configured model has metric rows with finite accuracy values."
    )
    def metrics_cover_every_model(metrics: pd.DataFrame) -> AssetCheckResult:
        missing = sorted(set(config.model_names) - set(metrics["model"]))
        accuracy = metrics[metrics["metric"].isin(["precision", "recall", "ndcg"])]
        finite = bool(pd.Series(accuracy["value"]).notna().all())
        return AssetCheckResult(
            passed=not missing and finite, metadata={"missing_models": ", ".join(missing) or "none"}
        )

    return [splits_are_ordered_in_time, metrics_cover_every_model]
