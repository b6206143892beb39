"""Asset checks, kept apart from the assets they guard (the cleaning check lives with its multi-asset)."""

import warnings
from collections.abc import Callable, Iterable, Iterator

import pandas as pd
from dagster import (
    AssetCheckEvaluation,
    AssetCheckResult,
    AssetCheckSeverity,
    AssetCheckSpec,
    AssetExecutionContext,
    AssetIn,
    DagsterEvent,
    DagsterEventType,
    MetadataValue,
    Output,
    PartitionsDefinition,
    PreviewWarning,
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
    SPLIT_KINDS,
    Splits,
    events_in_test_and_earlier,
    events_in_two_splits,
    in_time_order,
    sessions_out_of_order,
    users_out_of_time_order,
)

QUARANTINE_CHECK = AssetCheckSpec(
    "quarantine_share_below_ceiling",
    asset="quarantined_events",
    blocking=True,
    description="The day's quarantined share of raw rows stays under cleaning.max_quarantine_share.",
)


CLEANED_CHECKS = [
    AssetCheckSpec(
        "partitions_not_empty",
        asset="cleaned_events",
        blocking=True,
        description="The day has cleaned events. Empty days (a shop closed on Sundays) only warn; when no "
        "day of the run has any, every day fails, since models would be fitted on nothing.",
    ),
    AssetCheckSpec(
        "contract_columns_not_null",
        asset="cleaned_events",
        blocking=True,
        description="No cleaned event of the day lacks user_id, item_id, event_type, timestamp or value.",
    ),
    AssetCheckSpec(
        "timestamps_inside_partition",
        asset="cleaned_events",
        blocking=True,
        description="Every cleaned event's timestamp lies in its partition's UTC day.",
    ),
]
NOT_NULL_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value")
#: between what failed on a partition and what to do about it, in a partitioned check's description
ADVICE_BREAK = "\n\n"


def daily_check_specs(partitions: PartitionsDefinition) -> list[AssetCheckSpec]:
    """The checks of the cleaning step, partitioned like the daily assets they guard: each day of a run gets
    its own result (the UI's check history lists them by partition). Partitioned checks are a preview in
    Dagster 1.13: its warning is silenced here, where the choice is made."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PreviewWarning)
        return [
            AssetCheckSpec(
                spec.name,
                asset=spec.asset_key,
                blocking=spec.blocking,
                description=spec.description,
                partitions_def=partitions,
            )
            for spec in (QUARANTINE_CHECK, *CLEANED_CHECKS)
        ]


def _day_result(spec: AssetCheckSpec, day: str, passed: bool, **details) -> AssetCheckEvaluation:
    """One day's result of a daily check: an ``AssetCheckEvaluation`` carries its partition, which an
    ``AssetCheckResult`` yielded from a range run cannot (it takes the run's partition key, and a range run
    has none)."""
    return AssetCheckEvaluation(
        asset_key=spec.asset_key,
        check_name=spec.name,
        passed=passed,
        blocking=spec.blocking,
        partition=day,
        **details,
    )


def daily_check_events(
    context: AssetExecutionContext, evaluations: Iterable[AssetCheckEvaluation]
) -> Iterator[Output | AssetCheckEvaluation]:
    """What the cleaning step yields for its daily checks: each selected check's (empty) output, which
    Dagster expects of a step that declares the check, then each day's result of the selected checks."""
    selected = context.selected_asset_check_keys
    for output_name, spec in context.assets_def.check_specs_by_output_name.items():
        if spec.key in selected:
            yield Output(None, output_name=output_name)
    yield from (e for e in evaluations if e.asset_check_key in selected)


def cleaned_check_results(cleaned: dict[str, pd.DataFrame]) -> list[AssetCheckEvaluation]:
    """The CLEANED_CHECKS for each day of one run's cleaned partitions (a loop over days, not rows)."""
    empty, not_null, inside = CLEANED_CHECKS
    all_empty = len(empty_days(cleaned)) == len(cleaned)
    results = []
    for day in sorted(cleaned):
        frame = {day: cleaned[day]}
        nulls = null_counts(frame, NOT_NULL_COLUMNS)
        outside = rows_outside_their_day(frame)[day]
        results += [
            _day_result(
                empty,
                day,
                not cleaned[day].empty,
                severity=AssetCheckSeverity.ERROR if all_empty else AssetCheckSeverity.WARN,
                metadata={"rows": len(cleaned[day])},
            ),
            _day_result(
                not_null, day, not any(nulls.values()), metadata={f"null/{c}": n for c, n in nulls.items()}
            ),
            _day_result(inside, day, not outside, metadata={"rows_outside": outside}),
        ]
    return results


def quarantine_check_results(config: RunConfig, counts: pd.DataFrame) -> list[AssetCheckEvaluation]:
    """Each partition passes when its quarantined / raw share is at most the configured ceiling; a failure's
    description names the day (share, rows, top reasons), then the setting to change. The largest share
    first."""
    ceiling = config.cleaning.max_quarantine_share
    results = []
    for _, day in (
        quarantine_shares(counts).sort_values(["share", "partition"], ascending=[False, True]).iterrows()
    ):
        breach = quarantine_breaches(counts[counts["partition"] == day["partition"]], ceiling)
        description = None
        if breach:
            description = (
                f"{breach[0]}, over the quarantine ceiling of {ceiling:.1%}.{ADVICE_BREAK}The rows and "
                "their reasons are in quarantined_events: fix the source, or raise "
                f"cleaning.max_quarantine_share in {config.config_file}"
            )
        results.append(
            _day_result(
                QUARANTINE_CHECK,
                str(day["partition"]),
                not breach,
                metadata={
                    "share": float(day["share"]),
                    "ceiling": ceiling,
                    "raw_rows": int(day["raw"]),
                    "quarantined_rows": int(day["quarantined"]),
                },
                description=description,
            )
        )
    return results


#: failing days named one by one in a run's failure message
DAYS_NAMED = 5


def failed_check_descriptions(events: Iterable[DagsterEvent]) -> list[str]:
    """The descriptions of a run's failed asset checks of ERROR severity, one per check, in event order.

    A failed blocking check stops its step with an error that names only the check; its description says
    which rows, which values and what to change. The failed partitions of one check are summed up in one
    description: each partition's finding (the first ``DAYS_NAMED``), then the advice they share (the part
    after ``ADVICE_BREAK``).
    """
    failed: dict[tuple[str, str], list[AssetCheckEvaluation]] = {}
    for event in events:
        if event.event_type != DagsterEventType.ASSET_CHECK_EVALUATION:
            continue
        evaluation = event.event_specific_data
        if (
            not evaluation.passed
            and evaluation.severity == AssetCheckSeverity.ERROR
            and evaluation.description
        ):
            key = (evaluation.asset_key.to_user_string(), evaluation.check_name)
            failed.setdefault(key, []).append(evaluation)
    found = []
    for (_, check_name), evaluations in failed.items():
        if len(evaluations) == 1:
            found.append(evaluations[0].description.replace(ADVICE_BREAK, " "))
            continue
        findings, _, advice = zip(*(e.description.partition(ADVICE_BREAK) for e in evaluations), strict=True)
        more = f"; and {len(findings) - DAYS_NAMED} more" if len(findings) > DAYS_NAMED else ""
        named = "; ".join(finding.rstrip(".") for finding in findings[:DAYS_NAMED])
        found.append(f"{len(findings)} partitions failed {check_name}: {named}{more}. {advice[0]}".strip())
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

    # the check of the split kind's invariant, which its table names
    split_checks = (
        splits_are_ordered_in_time,
        predefined_splits_do_not_overlap,
        splits_do_not_share_events,
        splits_are_ordered_per_user,
        sessions_are_whole_and_ordered,
    )
    name = SPLIT_KINDS[config.split.kind].check
    split_check = next(check for check in split_checks if check.check_key.name == name)
    return [split_check, metrics_cover_every_model, ndcg_within_regression_tolerance]
