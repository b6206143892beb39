"""Cleaning: raw rows onto the cleaned-events contract; every rejected row goes to quarantine with a reason.

Invariant: ``len(raw) == len(cleaned) + len(quarantine)``. Each row gets the first reason that applies,
in the order of ``REASONS``.
"""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd

from recpipeline.config import EVENT_TYPES
from recpipeline.sources import LINEAGE_COLUMNS

EVENT_TYPE_DTYPE = pd.CategoricalDtype(list(EVENT_TYPES))
CLEANED_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "session_id")

#: quarantine reasons, in the order they are tested
REASONS = (
    "missing_user_id",
    "missing_item_id",
    "bad_timestamp",
    "timestamp_outside_partition",
    "timestamp_in_future",
    "unknown_event_type",
    "bad_value",
    "duplicate",
)


def clean_events(
    raw: pd.DataFrame, day: dt.date, now: pd.Timestamp | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split one day's raw rows into (cleaned, quarantine).

    ``raw`` carries the contract columns (already mapped from the source's names) plus lineage columns.
    ``now`` bounds timestamps from above (default: the current time).
    """
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    user_id = _id_column(raw, "user_id")
    item_id = _id_column(raw, "item_id")
    timestamp = pd.to_datetime(raw["timestamp"], utc=True, errors="coerce", format="ISO8601")
    day_start = pd.Timestamp(day, tz="UTC")
    event_type = raw["event_type"].astype("string").str.strip().str.lower()
    value = (
        pd.to_numeric(raw["value"], errors="coerce") if "value" in raw else pd.Series(1.0, index=raw.index)
    )

    content = [c for c in raw.columns if c not in LINEAGE_COLUMNS]
    checks = {
        "missing_user_id": user_id.isna(),
        "missing_item_id": item_id.isna(),
        "bad_timestamp": timestamp.isna(),
        "timestamp_outside_partition": (timestamp < day_start)
        | (timestamp >= day_start + pd.Timedelta(days=1)),
        "timestamp_in_future": timestamp > now,
        "unknown_event_type": ~event_type.isin(EVENT_TYPES).fillna(False),
        "bad_value": ~np.isfinite(value.astype("float64")).fillna(False),
        "duplicate": raw.duplicated(subset=content, keep="first"),
    }
    reason = pd.Series(pd.NA, index=raw.index, dtype="string")
    for name in REASONS:
        reason = reason.mask(reason.isna() & checks[name].fillna(False).astype(bool), name)
    rejected = reason.notna().to_numpy()

    quarantine = raw.loc[rejected].copy()
    quarantine["reason"] = reason[rejected].astype(str)

    keep = ~rejected
    cleaned = pd.DataFrame(
        {
            "user_id": user_id[keep].astype(str),
            "item_id": item_id[keep].astype(str),
            "event_type": event_type[keep].astype(str).astype(EVENT_TYPE_DTYPE),
            "timestamp": timestamp[keep].astype("datetime64[us, UTC]"),
            "value": value[keep].astype("float64"),
            "session_id": _id_column(raw, "session_id")[keep] if "session_id" in raw else pd.NA,
        }
    )
    for column in LINEAGE_COLUMNS:
        if column in raw:
            cleaned[column] = raw.loc[keep, column]
    cleaned = cleaned.sort_values(["timestamp", "_row"] if "_row" in cleaned else "timestamp", kind="stable")
    return cleaned.reset_index(drop=True), quarantine.reset_index(drop=True)


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Rows per quarantine reason (every reason listed, zeros included)."""
    counts = quarantine["reason"].value_counts() if len(quarantine) else pd.Series(dtype="int64")
    return {name: int(counts.get(name, 0)) for name in REASONS}


def _id_column(raw: pd.DataFrame, column: str) -> pd.Series:
    """Ids as strings; null, empty or whitespace-only ids become NA. Odd but valid ids stay untouched."""
    values = raw[column].astype("string")
    return values.mask(values.str.strip() == "")
