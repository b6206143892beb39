"""File sources: event files (CSV, Parquet or JSON Lines) with a column mapping, and the ``files`` kind.

``FileSource`` is the machinery every file-based kind shares (``files``, ``movielens``, ``online_retail``):
the kinds differ only in their mapping, an optional ``refine`` step and their item / user tables.

Daily partitions (UTC days) follow the data: ``start_date`` / ``end_date`` when configured, else the first
and last day of the file's timestamps (the last at most yesterday, the last complete day). Every row goes to
the partition of its own UTC day, except: a row without a readable timestamp goes to the first partition
and one in the future to the last (cleaning quarantines both with their reason), and a row on a day outside
configured dates belongs to no partition; it is counted in ``row_counts`` (``outside_window_rows``), so that
``source_rows = Σ raw partition rows + outside_window_rows``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial

import numpy as np
import pandas as pd

from recpipeline.config import RunConfig, TableConfig
from recpipeline.contracts import ITEM_COLUMNS, LINEAGE_COLUMNS
from recpipeline.sources.mapping import (
    EventMapping,
    apply_mapping,
    id_strings,
    implausible_epochs,
    parse_timestamps,
)
from recpipeline.sources.reading import FileTable, SourceError, file_key, read_files, table_files

#: a detected window longer than this (ten years of daily partitions) needs configured dates
MAX_DETECTED_DAYS = 3660

#: raw rows, contract rows -> the contract rows refined by a source kind (e.g. quarantine reasons)
Refine = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame]
#: raw rows of the whole source, their contract rows -> a side table keyed by item_id / user_id, or None
SideTable = Callable[[pd.DataFrame, pd.DataFrame], pd.DataFrame | None]


@dataclass(frozen=True)
class FileSource:
    """A file-based source: event files, their mapping, the partition window and the kind's extra steps."""

    events: FileTable
    mapping: EventMapping
    start_date: dt.date | None = None
    end_date: dt.date | None = None
    refine: Refine | None = None
    item_table: SideTable | None = None
    user_table: SideTable | None = None

    def days(self) -> tuple[dt.date, dt.date | None]:
        """Configured dates, else the data's days; reads only the timestamp column to find them."""
        if self.start_date and self.end_date:
            return self.start_date, self.end_date
        # building a run's definitions asks several times: the files' days are read once per day of the clock
        today = pd.Timestamp.now(tz="UTC").date()
        key = (repr(self), tuple(file_key(file) for file in table_files(self.events)), today)
        if key not in _DAYS:
            column = self.mapping.columns["timestamp"]
            raw = read_files(self.events, required={"timestamp": column}, only_required=True)
            _DAYS.clear()
            _DAYS[key] = self._window(self._timestamps(raw))
        return _DAYS[key]

    def events_of_day(self, day: dt.date) -> pd.DataFrame:
        return self._loaded().day(day)

    def to_contract(self, raw: pd.DataFrame) -> pd.DataFrame:
        contract = apply_mapping(raw, self.mapping)
        return self.refine(raw, contract) if self.refine else contract

    def items(self) -> pd.DataFrame:
        return self._entities("item_id", self.item_table)

    def users(self) -> pd.DataFrame:
        return self._entities("user_id", self.user_table)

    def row_counts(self) -> dict[str, int]:
        """Rows in the source files and rows on days outside the configured window."""
        loaded = self._loaded()
        return {"source_rows": len(loaded.rows), "outside_window_rows": loaded.outside}

    def split_file_rows(self, path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """``path`` read with the events' format and options: its (raw, contract) rows."""
        raw = read_files(replace(self.events, path=path), required=self.mapping.columns)
        return raw, self.to_contract(raw)

    def _loaded(self) -> _Loaded:
        key = (repr(self), tuple(file_key(file) for file in table_files(self.events)))
        if key not in _CACHE:
            _CACHE.clear()  # one source at a time: a long-lived process does not pile up old data
            _CACHE[key] = self._load()
        return _CACHE[key]

    def _load(self) -> _Loaded:
        rows = read_files(self.events, required=self.mapping.columns)
        timestamp = self._timestamps(rows)
        start, end = self._window(timestamp)
        first, last = _day_code(start), _day_code(end)
        day = timestamp.dt.tz_convert(None).to_numpy().astype("datetime64[D]").astype(np.int64)
        day = np.where(timestamp.isna(), first, day)
        day = np.where(timestamp > pd.Timestamp.now(tz="UTC"), last, day)
        day = np.where((day < first) | (day > last), -1, day)
        order = np.argsort(day, kind="stable")
        return _Loaded(
            rows=rows.take(order).reset_index(drop=True), day_codes=day[order], outside=int((day < 0).sum())
        )

    def _timestamps(self, raw: pd.DataFrame) -> pd.Series:
        mapping = self.mapping
        values = raw[mapping.columns["timestamp"]]
        if mapping.timestamp_format is None:
            problem = implausible_epochs(values, mapping.timestamp_unit)
            if problem is not None:
                raise SourceError(f"{self.events.path}: column {mapping.columns['timestamp']!r}: {problem}")
        return parse_timestamps(values, mapping.timestamp_unit, mapping.timezone, mapping.timestamp_format)

    def _window(self, timestamp: pd.Series) -> tuple[dt.date, dt.date]:
        """Configured dates, else the data's first and last day (at most yesterday, the last complete day)."""
        configured = bool(self.start_date and self.end_date)
        now = pd.Timestamp.now(tz="UTC")
        valid = timestamp[timestamp.notna() & (timestamp <= now)]
        if valid.empty and not configured:
            raise SourceError(
                f"{self.events.path}: no row has a readable timestamp up to now, so the source's days are "
                "unknown; check the timestamp column, timestamp_unit and timezone, or set start_date and "
                "end_date"
            )
        start = self.start_date or valid.min().date()
        end = self.end_date or max(start, min(valid.max().date(), now.date() - dt.timedelta(days=1)))
        if (end - start).days >= MAX_DETECTED_DAYS and self.start_date and not valid.empty:
            raise SourceError(
                f"{self.events.path}: source.start_date {start} is {(end - start).days + 1} daily partitions "
                f"before the data's last day {end} (at most {MAX_DETECTED_DAYS}); the data starts "
                f"{valid.min().date()}: set start_date near it, or end_date too"
            )
        if (end - start).days >= MAX_DETECTED_DAYS and not configured:
            raise SourceError(
                f"{self.events.path}: timestamps span {start} .. {end}, {(end - start).days + 1} daily "
                f"partitions (more than {MAX_DETECTED_DAYS}); a stray date such as 1970-01-01 does that. Set "
                "source.start_date and end_date: rows outside them are counted, not ingested"
            )
        return start, end

    def _entities(self, key: str, side_table: SideTable | None) -> pd.DataFrame:
        """Items or users: the kind's side table (else the ids seen in the events), one row per id, with
        ``first_seen``, the id's first event time in the source."""
        rows = self._loaded().rows
        contract = self.to_contract(rows)
        first_seen = contract.dropna(subset=[key]).groupby(key)["timestamp"].min()
        table = side_table(rows, contract) if side_table else None
        if table is None:
            table = pd.DataFrame({key: first_seen.index})
        table[key] = id_strings(table[key])
        # the catalogue is a lookup by id: one row per id, the first one the source gives
        table = table.dropna(subset=[key]).drop_duplicates(key).reset_index(drop=True)
        if key == "item_id":
            extra = (c for c in table.columns if c not in ITEM_COLUMNS)
            table = table.reindex(columns=[*ITEM_COLUMNS, *extra])
        table["first_seen"] = table[key].map(first_seen).astype("datetime64[us, UTC]")
        return table


@dataclass(frozen=True)
class _Loaded:
    """A file source read once: rows ordered by partition day (file order within a day)."""

    rows: pd.DataFrame  # every source row, outside-window rows first
    day_codes: np.ndarray  # per row: days since 1970-01-01 of its partition, -1 outside the window
    outside: int

    def day(self, day: dt.date) -> pd.DataFrame:
        code = _day_code(day)
        low, high = np.searchsorted(self.day_codes, [code, code + 1])
        return self.rows.iloc[low:high].reset_index(drop=True)


# ``raw_events`` asks for one day at a time, for hundreds of days in one run: the files are read and
# assigned to days once per process and kept while the source and its files stay the same
_CACHE: dict[tuple, _Loaded] = {}
#: the source's detected days (``days``), under the same key plus the day of the clock
_DAYS: dict[tuple, tuple[dt.date, dt.date]] = {}


def _day_code(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def files_source(config: RunConfig) -> FileSource:
    """The ``files`` kind: event files with the configured column mapping and optional side tables."""
    source = config.source
    mapping = EventMapping(
        columns=source.columns,
        event_type_default=source.event_type_default,
        event_types=source.event_types,
        timezone=source.timezone or "UTC",
        timestamp_unit=source.timestamp_unit,
        timestamp_format=source.timestamp_format,
    )
    return FileSource(
        FileTable(source.path, source.format, source.options),
        mapping,
        start_date=source.start_date,
        end_date=source.end_date,
        item_table=partial(_side_table, source.items) if source.items else None,
        user_table=partial(_side_table, source.users) if source.users else None,
    )


def _side_table(table: TableConfig, raw: pd.DataFrame, contract: pd.DataFrame) -> pd.DataFrame:
    """A `files` source's items / users table: mapped columns renamed, the others kept as attributes."""
    frame = read_files(FileTable(table.path, table.format, table.options), required=table.columns)
    renames = {column: name for name, column in table.columns.items()}
    return frame.drop(columns=list(LINEAGE_COLUMNS)).rename(columns=renames)
