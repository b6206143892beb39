"""Mapping a source's raw rows onto the cleaned-events contract (before cleaning judges them).

``apply_mapping`` renames the mapped columns, turns ids into strings, event types into contract names and
timestamps into UTC; it never drops a row. Values that do not parse become missing (NA / NaT), so cleaning
quarantines them with the right reason while the raw row stays as ingested.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from recpipeline.contracts import ANONYMOUS_USER_PREFIX, LINEAGE_COLUMNS

#: epoch numbers at least this large are milliseconds (1e11 seconds would be the year 5138)
_MS_THRESHOLD = 1e11
# an ISO time with a UTC designator or offset at the end, extended or basic format: "...T10:00Z",
# "... 10:00:00.123456789+02:00", "...T100000Z", "...T1000-0500" (a date alone has no offset)
_AWARE = r"[Tt ]\d{2}(?::?\d{2}){0,2}(?:[.,]\d+)?\s*(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_INT64_MICROS = 9.2e18
#: microseconds per epoch unit (source.timestamp_unit)
EPOCH_SCALES = {"s": 1e6, "ms": 1e3, "us": 1.0, "ns": 1e-3}
#: epoch numbers read (timestamp_unit auto) as dates outside these years are refused, not guessed
PLAUSIBLE_FROM = pd.Timestamp("1990-01-01", tz="UTC")
PLAUSIBLE_AHEAD = pd.Timedelta(days=366)


@dataclass(frozen=True)
class EventMapping:
    """How one source's columns become the contract's."""

    #: contract name -> source column: user_id, item_id, timestamp; optional event_type, value, session_id,
    #: time_offset: milliseconds added to the timestamp (DIGINETICA: a day plus the time in the session), and
    #: anonymous_id: where user_id is missing, the visitor is this column's value (DIGINETICA: the session)
    columns: Mapping[str, str]
    event_type_default: str | None = None  # for logs of a single kind (no event_type column)
    event_types: Mapping[str, str] = field(default_factory=dict)  # source value -> contract event type
    timezone: str = "UTC"  # the zone of naive timestamps
    timestamp_unit: str = "auto"  # auto | s | ms | us | ns | iso
    timestamp_format: str | None = None  # a strptime format (e.g. %Y%m%d) instead of the unit


def apply_mapping(raw: pd.DataFrame, mapping: EventMapping) -> pd.DataFrame:
    """Contract columns (plus the lineage columns) for each raw row, same index, nothing dropped."""
    columns = mapping.columns
    timestamp = parse_timestamps(
        raw[columns["timestamp"]], mapping.timestamp_unit, mapping.timezone, mapping.timestamp_format
    )
    if "time_offset" in columns:
        offset = pd.to_numeric(raw[columns["time_offset"]], errors="coerce")
        timestamp = timestamp + pd.to_timedelta(offset.to_numpy("float64", na_value=np.nan), unit="ms")
    user_id = id_strings(raw[columns["user_id"]])
    if "anonymous_id" in columns:
        # opt-in: without it a missing user id is quarantined (online retail's lines without a customer)
        user_id = user_id.fillna(ANONYMOUS_USER_PREFIX + id_strings(raw[columns["anonymous_id"]]))
    contract = pd.DataFrame(
        {
            "user_id": user_id,
            "item_id": id_strings(raw[columns["item_id"]]),
            "event_type": _event_types(raw, mapping),
            "timestamp": timestamp,
            "value": _values(raw[columns["value"]]) if "value" in columns else 1.0,
            "session_id": id_strings(raw[columns["session_id"]]) if "session_id" in columns else pd.NA,
        },
        index=raw.index,
    )
    for column in LINEAGE_COLUMNS:
        if column in raw:
            contract[column] = raw[column]
    return contract


def id_strings(values: pd.Series) -> pd.Series:
    """Ids as strings. Text stays exactly as given; a float column holding whole numbers (an integer id
    column with gaps, as pandas and Parquet writers make them: 17850.0) is written without the '.0'."""
    if pd.api.types.is_float_dtype(values):
        # only below 2**53 is a float an exact integer
        whole = np.isfinite(values) & (values == np.round(values)) & (values.abs() < 2.0**53)
        as_int = values.where(whole).astype("Int64").astype("string")
        return as_int.where(whole, values.astype("string"))
    return values.astype("string")


def _values(values: pd.Series) -> pd.Series:
    """The value column as given, except booleans (a Parquet or JSON ``true``), which are missing: read as
    1.0 / 0.0 they would pass for ratings or quantities, so cleaning quarantines them as ``bad_value``."""
    if pd.api.types.is_bool_dtype(values.dtype):
        return pd.Series(np.nan, index=values.index)
    if values.dtype == object:
        return values.map(lambda v: None if isinstance(v, bool | np.bool_) else v)
    return values


def parse_timestamps(
    values: pd.Series, unit: str = "auto", timezone: str = "UTC", timestamp_format: str | None = None
) -> pd.Series:
    """UTC timestamps (``datetime64[us, UTC]``), NaT where a value does not parse.

    Epoch numbers (``s``, ``ms``, ``us``, ``ns``; ``auto`` tells s and ms apart by size, per value) are
    absolute. ISO strings (extended or basic format, up to nanoseconds, which are cut to microseconds) with
    an offset or ``Z`` are converted; naive ones are local time in ``timezone`` (an hour that occurs twice at
    the end of summer time is taken as the first, one skipped at its start moves forward).
    ``timestamp_format`` (strptime) reads every value as text with that format instead.
    """
    if timestamp_format is not None and not pd.api.types.is_datetime64_any_dtype(values.dtype):
        text = values.astype("string").str.strip()
        parsed = pd.to_datetime(text, format=timestamp_format, errors="coerce")
        if isinstance(parsed.dtype, pd.DatetimeTZDtype):  # the format has %z
            return parsed.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
        return _localize(parsed, timezone)
    if isinstance(values.dtype, pd.DatetimeTZDtype):
        return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    if pd.api.types.is_datetime64_dtype(values.dtype):
        return _localize(values, timezone)
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    text = None if numeric else values.astype("string").str.strip()
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[us, UTC]")
    if unit != "iso":
        numbers = pd.Series(
            pd.to_numeric(values if numeric else text, errors="coerce").to_numpy("float64", na_value=np.nan),
            index=values.index,
        )
        scale = EPOCH_SCALES.get(unit)
        if scale is None:
            micros = numbers * np.where(numbers.abs() >= _MS_THRESHOLD, 1e3, 1e6)
        else:
            micros = numbers * scale
        ok = np.isfinite(micros) & (micros.abs() < _INT64_MICROS)
        parsed[ok] = pd.to_datetime(micros[ok].round().astype("int64"), unit="us", utc=True)
        if text is None or unit != "auto":
            return parsed
        text = text.where(~ok)
    # pyarrow's RE2 directly: several times faster than pandas' str.contains for this pattern
    matches = pc.match_substring_regex(pa.array(text, type=pa.string()), _AWARE)
    aware = pd.Series(matches.fill_null(False).to_numpy(zero_copy_only=False), index=text.index)
    if aware.any():
        stamps = pd.to_datetime(text[aware], format="ISO8601", utc=True, errors="coerce")
        parsed[aware] = stamps.astype("datetime64[us, UTC]")  # nanoseconds cut to microseconds
    naive = text.notna() & ~aware
    if naive.any():
        parsed[naive] = _localize(pd.to_datetime(text[naive], format="ISO8601", errors="coerce"), timezone)
    return parsed


def implausible_epochs(values: pd.Series, unit: str = "auto") -> str | None:
    """Why most of ``values`` are epoch numbers whose unit cannot be trusted, or ``None``.

    With ``timestamp_unit: auto``, numbers that make up most of the column and whose median date under the
    assumed unit lies before 1990 or more than a year ahead (``20260110`` as seconds is 1970-08-23, epoch
    microseconds as milliseconds are tens of thousands of years ahead) are not guessed: the message lists
    the date each unit, and a compact YYYYMMDD date, would give, for the user to choose.
    """
    if unit != "auto" or pd.api.types.is_datetime64_any_dtype(values.dtype):
        return None
    numeric = pd.api.types.is_numeric_dtype(values.dtype) and not pd.api.types.is_bool_dtype(values.dtype)
    given = values if numeric else values.astype("string").str.strip().replace("", pd.NA)
    numbers = pd.to_numeric(given, errors="coerce").astype("float64")
    numbers = numbers[np.isfinite(numbers)]
    if numbers.empty or len(numbers) * 2 <= int(given.notna().sum()):
        return None
    median = float(numbers.median())
    assumed = median * (1e3 if abs(median) >= _MS_THRESHOLD else 1e6)
    latest = pd.Timestamp.now(tz="UTC") + PLAUSIBLE_AHEAD
    if abs(assumed) < _INT64_MICROS and PLAUSIBLE_FROM <= _epoch(assumed) <= latest:
        return None
    candidates = []
    for name, scale in EPOCH_SCALES.items():
        micros = median * scale
        shown = str(_epoch(micros)).split(" ")[0] if abs(micros) < _INT64_MICROS else "out of range"
        candidates.append(f"{name}: {shown}")
    compact = (
        pd.to_datetime(f"{median:.0f}", format="%Y%m%d", errors="coerce") if median.is_integer() else None
    )
    if compact is not None and not pd.isna(compact):
        candidates.append(f"timestamp_format '%Y%m%d': {compact.date()}")
    return (
        f"numeric timestamps (median {median:.0f}) are not a plausible epoch time under the assumed unit; as "
        f"{', '.join(candidates)}. Set source.timestamp_unit (s, ms, us, ns) or source.timestamp_format"
    )


def _epoch(micros: float) -> pd.Timestamp:
    return pd.Timestamp(round(micros), unit="us", tz="UTC")


def most_frequent(frame: pd.DataFrame, key: str, column: str) -> pd.Series:
    """Per ``key``, the most frequent non-missing ``column`` value (ties: the smallest value)."""
    counts = frame.groupby([key, column], observed=True).size().rename("n").reset_index()
    top = counts.sort_values([key, "n"], ascending=[True, False], kind="stable").drop_duplicates(key)
    return top.set_index(key)[column]


def _localize(values: pd.Series, timezone: str) -> pd.Series:
    if isinstance(values.dtype, pd.DatetimeTZDtype):  # an offset the pattern did not see: already absolute
        return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    localized = values.dt.tz_localize(
        timezone, ambiguous=np.ones(len(values), dtype=bool), nonexistent="shift_forward"
    )
    return localized.dt.tz_convert("UTC").astype("datetime64[us, UTC]")


def _event_types(raw: pd.DataFrame, mapping: EventMapping) -> pd.Series | str:
    if "event_type" not in mapping.columns:
        return mapping.event_type_default
    values = raw[mapping.columns["event_type"]].astype("string").str.strip()
    if not mapping.event_types:
        return values
    return values.map(dict(mapping.event_types)).fillna(values).astype("string")
