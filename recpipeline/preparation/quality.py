"""The numbers behind the data-quality checks on one run's cleaned days (the checks only compare them)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd


def empty_days(cleaned: Mapping[str, pd.DataFrame]) -> list[str]:
    """The days (partition keys) without a cleaned event, in order."""
    return sorted(day for day, frame in cleaned.items() if frame.empty)


def null_counts(cleaned: Mapping[str, pd.DataFrame], columns: Sequence[str]) -> dict[str, int]:
    """Per column: the cleaned events without a value there, over every day."""
    return {column: sum(int(frame[column].isna().sum()) for frame in cleaned.values()) for column in columns}


def rows_outside_their_day(cleaned: Mapping[str, pd.DataFrame]) -> dict[str, int]:
    """Per day (``YYYY-MM-DD``): the cleaned events whose timestamp is not in that UTC day."""
    outside = {}
    for day, frame in cleaned.items():
        start = pd.Timestamp(day, tz="UTC")
        stamps = frame["timestamp"]
        outside[day] = int(((stamps < start) | (stamps >= start + pd.Timedelta(days=1))).sum())
    return outside


def quarantine_shares(counts: pd.DataFrame) -> pd.DataFrame:
    """``counts`` (partition, raw, quarantined) with each partition's quarantined share of its raw rows,
    the largest share first."""
    share = counts["quarantined"] / counts["raw"].clip(lower=1)
    return counts.assign(share=share).sort_values("share", ascending=False)


def quarantine_breaches(counts: pd.DataFrame, ceiling: float, top_reasons: int = 3) -> list[str]:
    """One line per partition whose quarantined share is above ``ceiling``, the largest share first: the day,
    its share and rows, and its ``top_reasons`` most frequent quarantine reasons with their rows.

    ``counts``: partition, raw, cleaned, quarantined, then one column of rows per reason.
    """
    shares = quarantine_shares(counts)
    over = shares[shares["share"] > ceiling].sort_values(["share", "partition"], ascending=[False, True])
    reasons = over.drop(columns=["partition", "raw", "cleaned", "quarantined", "share"], errors="ignore")
    lines = []
    for (_, day), (_, by_reason) in zip(over.iterrows(), reasons.iterrows(), strict=True):
        frequent = by_reason[by_reason > 0].sort_values(ascending=False, kind="stable").head(top_reasons)
        named = ", ".join(f"{reason} {int(n)}" for reason, n in frequent.items())
        lines.append(
            f"{day['partition']}: {day['share']:.1%} quarantined ({int(day['quarantined'])} of "
            f"{int(day['raw'])} rows; {named})"
        )
    return lines
