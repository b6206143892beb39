"""Cleaning: mapped rows onto the cleaned-events contract; each rejected row goes to quarantine with a reason.

Invariant: ``len(raw) == len(cleaned) + len(quarantine)``. Each row gets the first reason that applies,
in the order of ``REASONS``; the quarantine keeps the raw row as ingested.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recpipeline.config import RunConfig
from recpipeline.contracts import EVENT_TYPES, LINEAGE_COLUMNS, VALUE_RANGE
from recpipeline.preparation.privacy import Pseudonymiser, pseudonymise_raw_rows, pseudonymiser
from recpipeline.sources import open_source
from recpipeline.sources.reading import FileTable, file_key, table_files

EVENT_TYPE_DTYPE = pd.CategoricalDtype(list(EVENT_TYPES))

#: reasons a source adapter gives in the ``source_reason`` column (online_retail: invoice semantics)
SOURCE_REASONS = ("cancellation", "return", "non_product")
#: quarantine reasons, in the order they are tested
REASONS = (
    *SOURCE_REASONS,
    "missing_user_id",
    "missing_item_id",
    "bad_timestamp",
    "timestamp_in_future",
    "timestamp_outside_partition",
    "unknown_event_type",
    "bad_value",
    "duplicate",
)


def clean_events(
    events: pd.DataFrame,
    day: dt.date | pd.Series | None,
    now: pd.Timestamp | None = None,
    raw: pd.DataFrame | None = None,
    value_range: tuple[float, float] = VALUE_RANGE,
    pseudonym: Pseudonymiser | None = None,
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split one day's rows into (cleaned, quarantine).

    ``events`` carries the contract columns (mapped from the source's names by its ``to_contract``),
    lineage columns and optionally ``source_reason``; ``raw`` is the rows as ingested, same index (default:
    ``events`` itself, for sources that already speak the contract). Quarantine rows and exact duplicates
    are taken from ``raw``. ``day`` is the partition's day, or each row's partition day (UTC midnights,
    see ``clean_partitions``), or None to skip the partition test (files outside the daily partitions, e.g.
    predefined splits); ``now`` bounds timestamps from above (default: the current time); a value outside
    ``value_range`` (inclusive), or none at all, is a ``bad_value``. ``pseudonym`` (``privacy.pseudonymise``):
    the cleaned rows' user ids and the quarantined raw rows' user id columns become pseudonyms.
    """
    raw = events if raw is None else raw
    now = now if now is not None else pd.Timestamp.now(tz="UTC")
    user_id = _id_column(events, "user_id")
    item_id = _id_column(events, "item_id")
    timestamp = pd.to_datetime(events["timestamp"], utc=True, errors="coerce", format="ISO8601")
    event_type = events["event_type"].astype("string").str.strip().str.lower()
    value = (
        pd.to_numeric(events["value"], errors="coerce")
        if "value" in events
        else pd.Series(1.0, index=events.index)
    )
    source_reason = (
        events["source_reason"] if "source_reason" in events else pd.Series(pd.NA, index=events.index)
    )
    if day is None:
        outside = pd.Series(False, index=events.index)
    else:
        day_start = day if isinstance(day, pd.Series) else pd.Timestamp(day, tz="UTC")
        outside = (timestamp < day_start) | (timestamp >= day_start + pd.Timedelta(days=1))

    content = [c for c in raw.columns if c not in LINEAGE_COLUMNS]
    checks = {
        **{name: source_reason == name for name in SOURCE_REASONS},
        "missing_user_id": user_id.isna(),
        "missing_item_id": item_id.isna(),
        "bad_timestamp": timestamp.isna(),
        "timestamp_in_future": timestamp > now,
        "timestamp_outside_partition": outside,
        "unknown_event_type": ~event_type.isin(EVENT_TYPES).fillna(False),
        # NaN compares false, so a missing value is out of range too
        "bad_value": ~value.astype("float64").between(*value_range),
        "duplicate": raw.duplicated(subset=content, keep="first"),
    }
    # one column per reason (a loop over reasons, not rows); a row's reason is its first true column
    flags = np.column_stack([checks[name].fillna(False).to_numpy(dtype=bool) for name in REASONS])
    rejected = flags.any(axis=1)

    quarantine = raw.loc[rejected].copy()
    if pseudonym is not None:
        lineage = (*LINEAGE_COLUMNS, "_partition")
        quarantine = pseudonymise_raw_rows(quarantine, user_id[rejected], pseudonym, skip=lineage)
    quarantine["reason"] = np.asarray(REASONS, dtype=object)[flags[rejected].argmax(axis=1)]

    keep = ~rejected
    kept_user = user_id[keep] if pseudonym is None else pseudonym(user_id[keep])
    cleaned = pd.DataFrame(
        {
            "user_id": kept_user.astype(str),
            "item_id": item_id[keep].astype(str),
            "event_type": event_type[keep].astype(str).astype(EVENT_TYPE_DTYPE),
            "timestamp": timestamp[keep].astype("datetime64[us, UTC]"),
            "value": value[keep].astype("float64"),
            "session_id": _id_column(events, "session_id")[keep] if "session_id" in events else pd.NA,
        }
    )
    for column in LINEAGE_COLUMNS:
        if column in events:
            cleaned[column] = events.loc[keep, column]
    cleaned = cleaned.sort_values(["timestamp", "_row"] if "_row" in cleaned else "timestamp", kind="stable")
    return cleaned.reset_index(drop=True), quarantine.reset_index(drop=True)


#: raw rows cleaned in one vectorised pass; bounds the step's working memory (a few times the batch's size)
CLEAN_BATCH_ROWS = 1_000_000


def clean_partitions(
    raw_by_day: Mapping[str, pd.DataFrame],
    to_contract: Callable[[pd.DataFrame], pd.DataFrame],
    now: pd.Timestamp | None = None,
    batch_rows: int = CLEAN_BATCH_ROWS,
    value_range: tuple[float, float] = VALUE_RANGE,
    pseudonym: Pseudonymiser | None = None,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """``clean_events`` for many daily partitions (keys YYYY-MM-DD): the same result as cleaning each day
    alone, without the fixed cost per call hundreds of days would add up to. Consecutive days are cleaned
    together in batches of about ``batch_rows`` raw rows (at least one day each)."""
    keys = sorted(raw_by_day)
    sizes = np.array([len(raw_by_day[key]) for key in keys])
    batch_of_day = (np.cumsum(sizes) - sizes) // max(1, batch_rows)  # a day joins the batch it starts in
    results: dict[str, tuple[pd.DataFrame, pd.DataFrame]] = {}
    for batch in np.unique(batch_of_day):
        days = [key for key, b in zip(keys, batch_of_day, strict=True) if b == batch]
        batch = {key: raw_by_day[key] for key in days}
        results.update(_clean_days(batch, to_contract, now, value_range, pseudonym))
    return results


def _clean_days(
    raw_by_day: Mapping[str, pd.DataFrame],
    to_contract: Callable[[pd.DataFrame], pd.DataFrame],
    now: pd.Timestamp | None,
    value_range: tuple[float, float],
    pseudonym: Pseudonymiser | None = None,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    keys = sorted(raw_by_day)
    raw = pd.concat([raw_by_day[key] for key in keys], ignore_index=True)
    partition = np.repeat(np.arange(len(keys)), [len(raw_by_day[key]) for key in keys])
    starts = pd.DatetimeIndex(keys).tz_localize("UTC").as_unit("us")
    day = pd.Series(starts[partition], index=raw.index)
    # the partition number joins the raw columns so that rows are duplicates only within their own day
    cleaned, quarantine = clean_events(
        to_contract(raw),
        day,
        now,
        raw=raw.assign(_partition=partition),
        value_range=value_range,
        pseudonym=pseudonym,
    )
    # both come out grouped by day: cleaned sorted by time, quarantine in raw order
    times = cleaned["timestamp"].dt.tz_convert(None).to_numpy()
    cleaned_bounds = [*np.searchsorted(times, starts.tz_localize(None).to_numpy()), len(cleaned)]
    quarantine_bounds = [*np.searchsorted(quarantine["_partition"], np.arange(len(keys))), len(quarantine)]
    quarantine = quarantine.drop(columns="_partition")
    return {
        key: (
            cleaned.iloc[cleaned_bounds[i] : cleaned_bounds[i + 1]].reset_index(drop=True),
            quarantine.iloc[quarantine_bounds[i] : quarantine_bounds[i + 1]].reset_index(drop=True),
        )
        for i, key in enumerate(keys)
    }


@dataclass(frozen=True)
class CleanedPartitions:
    """Daily partitions cleaned, with one accounting row per partition."""

    cleaned: dict[str, pd.DataFrame]
    quarantined: dict[str, pd.DataFrame]
    #: partition, raw, cleaned, quarantined, then rows per quarantine reason
    accounting: pd.DataFrame

    @property
    def totals(self) -> pd.Series:
        """Each accounting column summed over the partitions."""
        return self.accounting.drop(columns="partition").sum()


def clean_and_account(
    raw_by_day: Mapping[str, pd.DataFrame],
    to_contract: Callable[[pd.DataFrame], pd.DataFrame],
    value_range: tuple[float, float] = VALUE_RANGE,
    pseudonym: Pseudonymiser | None = None,
) -> CleanedPartitions:
    """``clean_partitions`` plus the row accounting every run relies on: raw = cleaned + quarantined per
    partition (a ``RuntimeError`` otherwise), with the rows per quarantine reason; ``pseudonym``: user ids
    pseudonymised (``clean_events``)."""
    results = clean_partitions(raw_by_day, to_contract, value_range=value_range, pseudonym=pseudonym)
    cleaned, quarantined, counts = {}, {}, []
    for key, raw in raw_by_day.items():
        cleaned[key], quarantined[key] = results[key]
        if len(raw) != len(cleaned[key]) + len(quarantined[key]):
            raise RuntimeError(f"row accounting broken for partition {key}")
        counts.append(
            {
                "partition": key,
                "raw": len(raw),
                "cleaned": len(cleaned[key]),
                "quarantined": len(quarantined[key]),
                **reason_counts(quarantined[key]),
            }
        )
    return CleanedPartitions(cleaned, quarantined, pd.DataFrame(counts))


def clean_split_files(
    rows: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]],
    value_range: tuple[float, float] = VALUE_RANGE,
    pseudonym: Pseudonymiser | None = None,
) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """Predefined split files' ``{name: (raw, contract)}`` rows -> ``{name: (cleaned, quarantine)}``, each
    cleaned without a partition day (the files lie outside the daily partitions)."""
    return {
        name: clean_events(contract, None, raw=raw, value_range=value_range, pseudonym=pseudonym)
        for name, (raw, contract) in rows.items()
    }


def clean_predefined_split(config: RunConfig) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The predefined split's files (train, test, optional validation), each read with the source's settings
    and cleaned: ``{name: (cleaned, quarantine)}``.

    Encoding (for the ids) and splitting both need them: they are read and cleaned once per process and
    kept while the configuration and the files stay the same.
    """
    split = config.split
    paths = {"train": split.train, "validation": split.validation, "test": split.test}
    paths = {name: path for name, path in paths.items() if path is not None}
    files = tuple(file_key(file) for path in paths.values() for file in table_files(FileTable(path)))
    key = (repr(config.source), config.cleaning.value_range, config.privacy, tuple(paths.items()), files)
    if key not in _SPLIT_CACHE:
        _SPLIT_CACHE.clear()  # one split at a time: a long-lived process does not pile up old data
        source = open_source(config)
        _SPLIT_CACHE[key] = clean_split_files(
            {name: source.split_file_rows(path) for name, path in paths.items()},
            config.cleaning.value_range,
            pseudonymiser(config),
        )
    return _SPLIT_CACHE[key]


_SPLIT_CACHE: dict[tuple, dict[str, tuple[pd.DataFrame, pd.DataFrame]]] = {}


def reason_counts(quarantine: pd.DataFrame) -> dict[str, int]:
    """Rows per quarantine reason (every reason listed, zeros included)."""
    counts = quarantine["reason"].value_counts() if len(quarantine) else pd.Series(dtype="int64")
    return {name: int(counts.get(name, 0)) for name in REASONS}


def _id_column(raw: pd.DataFrame, column: str) -> pd.Series:
    """Ids as strings; null, empty or whitespace-only ids become NA. Odd but valid ids stay untouched."""
    values = raw[column].astype("string")
    return values.mask(values.str.strip() == "")
