"""Asset checks, kept apart from the assets they guard (the cleaning check lives with its multi-asset)."""

from collections.abc import Callable, Iterable

import pandas as pd
from dagster import (
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetIn,
    DagsterEvent,
    DagsterEventType,
    MetadataValue,
    asset_check,
)

from recpipeline.config import RunConfig
from recpipeline.evaluation.history import regression_report
from recpipeline.evaluation.reports import markdown_table
from recpipeline.preparation.quality import (
    empty_days,
    null_counts,
    quarantine_breaches,
    quarantine_shares,
    rows_outside_their_day,
)
from recpipeline.preparation.splitting import (
    Splits,
    events_in_test_and_earlier,
    events_in_two_splits,
    in_time_order,
    sessions_out_of_order,
    users_out_of_time_order,
)

QUARANTINE_CHECK = AssetCheckSpec(
    "quarantine_share_below_ceiling",
    asset="cleaned_events",
    blocking=True,
    description="Each day's quarantined share of raw rows stays under cleaning.max_quarantine_share.",
)


CLEANED_CHECKS = [
    AssetCheckSpec(
        "partitions_not_empty",
        asset="cleaned_events",
        blocking=True,
        description="Every day of the run has cleaned events. Empty days (a shop closed on Sundays) only "
        "warn; a run with no events at all fails, since models would be fitted on nothing.",
    ),
    AssetCheckSpec(
        "contract_columns_not_null",
        asset="cleaned_events",
        blocking=True,
        description="No cleaned event lacks user_id, item_id, event_type, timestamp or value.",
    ),
    AssetCheckSpec(
        "timestamps_inside_partition",
        asset="cleaned_events",
        blocking=True,
        description="Every cleaned event's timestamp lies in its partition's UTC day.",
    ),
]
NOT_NULL_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value")


def cleaned_check_results(cleaned: dict[str, pd.DataFrame]) -> list[AssetCheckResult]:
    """The CLEANED_CHECKS over one run's cleaned partitions (a loop over days, not rows)."""
    empty = empty_days(cleaned)
    nulls = null_counts(cleaned, NOT_NULL_COLUMNS)
    outside = rows_outside_their_day(cleaned)
    wrong_days = sorted(day for day, n in outside.items() if n)
    return [
        AssetCheckResult(
            check_name="partitions_not_empty",
            asset_key="cleaned_events",
            passed=not empty,
            severity=AssetCheckSeverity.ERROR if len(empty) == len(cleaned) else AssetCheckSeverity.WARN,
            metadata={"empty_days": len(empty), "first_empty_days": ", ".join(empty[:20]) or "none"},
        ),
        AssetCheckResult(
            check_name="contract_columns_not_null",
            asset_key="cleaned_events",
            passed=not any(nulls.values()),
            metadata={f"null/{column}": n for column, n in nulls.items()},
        ),
        AssetCheckResult(
            check_name="timestamps_inside_partition",
            asset_key="cleaned_events",
            passed=not wrong_days,
            metadata={"rows_outside": sum(outside.values()), "days": ", ".join(wrong_days[:20]) or "none"},
        ),
    ]


#: failing days named one by one in the check's description; the metadata lists them all
DAYS_NAMED = 5


def quarantine_check_result(config: RunConfig, counts: pd.DataFrame) -> AssetCheckResult:
    """Pass when every partition's quarantined / raw share is at most the configured ceiling; a failure's
    description names each day over it (share, rows, top reasons) and the setting to change."""
    ceiling = config.cleaning.max_quarantine_share
    shares = quarantine_shares(counts)
    worst = shares.iloc[0]
    breaches = quarantine_breaches(counts, ceiling)
    metadata = {
        "worst_partition": str(worst["partition"]),
        "worst_share": float(worst["share"]),
        "ceiling": ceiling,
    }
    description = None
    if breaches:
        more = f"; and {len(breaches) - DAYS_NAMED} more day(s)" if len(breaches) > DAYS_NAMED else ""
        description = (
            f"{len(breaches)} day(s) over the quarantine ceiling of {ceiling:.1%}: "
            f"{'; '.join(breaches[:DAYS_NAMED])}{more}. The rows and their reasons are in "
            "quarantined_events: fix the source, or raise cleaning.max_quarantine_share in "
            f"{config.config_file}"
        )
        metadata["days_over_ceiling"] = MetadataValue.md("\n".join(f"- {line}" for line in breaches))
    return AssetCheckResult(
        check_name=QUARANTINE_CHECK.name,
        asset_key="cleaned_events",
        passed=not breaches,
        metadata=metadata,
        description=description,
    )


def failed_check_descriptions(events: Iterable[DagsterEvent]) -> list[str]:
    """The descriptions of a run's failed asset checks of ERROR severity, in event order.

    A failed blocking check stops its step with an error that names only the check; its description says
    which rows, which values and what to change.
    """
    found = []
    for event in events:
        if event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.event_specific_data
        failed = not evaluation.passed and evaluation.severity == AssetCheckSeverity.ERROR
        if failed and evaluation.description:
            found.append(evaluation.description)
    return found


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
        return AssetCheckResult(
            passed=in_time_order(Splits(train, validation, test)),
            metadata={"train_rows": len(train), "validation_rows": len(validation), "test_rows": len(test)},
        )

    @asset_check(
        asset="test",
        blocking=True,
        additional_ins={"train": AssetIn("train"), "validation": AssetIn("validation")},
        description="Predefined split: test is not empty and none of its events (user, item, timestamp) is "
        "also in train or validation.",
    )
    def predefined_splits_do_not_overlap(
        test: pd.DataFrame, train: pd.DataFrame, validation: pd.DataFrame
    ) -> AssetCheckResult:
        overlap = events_in_test_and_earlier(Splits(train, validation, test))
        return AssetCheckResult(
            passed=len(test) > 0 and overlap == 0,
            metadata={"overlapping_events": overlap, "test_rows": len(test)},
        )

    def split_leakage_check(name: str, description: str, leaks: Callable[[Splits], dict[str, int]]):
        """A blocking check on the splits that passes when test is not empty and every count of ``leaks``
        is zero."""

        @asset_check(
            name=name,
            asset="test",
            blocking=True,
            additional_ins={"train": AssetIn("train"), "validation": AssetIn("validation")},
            description=description,
        )
        def check(test: pd.DataFrame, train: pd.DataFrame, validation: pd.DataFrame) -> AssetCheckResult:
            counts = leaks(Splits(train, validation, test))
            return AssetCheckResult(
                passed=len(test) > 0 and not any(counts.values()),
                metadata={**counts, "test_rows": len(test)},
            )

        return check

    splits_do_not_share_events = split_leakage_check(
        "splits_do_not_share_events",
        "Random or stratified split: test is not empty and no event (user, item, timestamp) is in two "
        "splits.",
        lambda splits: {"shared_events": events_in_two_splits(splits)},
    )
    splits_are_ordered_per_user = split_leakage_check(
        "splits_are_ordered_per_user",
        "Leave-last-out split: test is not empty, no event is in two splits, and no user has a test (or "
        "validation) event before one of their train (or train and validation) events.",
        lambda splits: {
            "shared_events": events_in_two_splits(splits),
            "users_out_of_order": users_out_of_time_order(splits),
        },
    )

    sessions_are_whole_and_ordered = split_leakage_check(
        "sessions_are_whole_and_ordered",
        "Session split: test is not empty, no session is in two splits, and every validation (test) session "
        "starts after every train (validation) session starts.",
        sessions_out_of_order,
    )

    @asset_check(
        asset="metrics",
        description="Every configured model has metric rows with finite accuracy values on segment all.",
    )
    def metrics_cover_every_model(metrics: pd.DataFrame) -> AssetCheckResult:
        missing = sorted(set(config.model_names) - set(metrics["model"]))
        # smaller segments (e.g. new_users) may legitimately be empty: they then have no rows
        accuracy = metrics[
            metrics["metric"].isin(["precision", "recall", "ndcg"]) & (metrics["segment"] == "all")
        ]
        finite = bool(pd.Series(accuracy["value"]).notna().all())
        return AssetCheckResult(
            passed=not missing and finite, metadata={"missing_models": ", ".join(missing) or "none"}
        )

    settings = config.evaluation

    @asset_check(
        asset="metrics_history",
        description=f"No model's ndcg@{config.k} on the headline segment (with_history: users with history "
        f"before the test window; all when there are none) falls more than "
        f"{settings.regression_tolerance:.0%} below its median of the last {settings.history_runs} runs.",
    )
    def ndcg_within_regression_tolerance(metrics_history: pd.DataFrame) -> AssetCheckResult:
        report = regression_report(
            metrics_history, "ndcg", config.k, settings.regression_tolerance, settings.history_runs
        )
        regressed = report[report["regressed"]]
        return AssetCheckResult(
            passed=regressed.empty,
            metadata={
                "regressed_models": ", ".join(regressed["model"]) or "none",
                "comparison": MetadataValue.md(markdown_table(report)),
            },
        )

    # only a temporal split is ordered in time as a whole; a predefined one (MovieLens u1.base / u1.test)
    # and the random kinds are not by design, leave-last-out is per user
    split_check = {
        "temporal": splits_are_ordered_in_time,
        "predefined": predefined_splits_do_not_overlap,
        "random": splits_do_not_share_events,
        "stratified": splits_do_not_share_events,
        "leave_last_out": splits_are_ordered_per_user,
        "sessions": sessions_are_whole_and_ordered,
    }[config.split.kind]
    return [split_check, metrics_cover_every_model, ndcg_within_regression_tolerance]
