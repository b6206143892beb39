"""Source adapters: where raw events, the item catalogue and user profiles come from.

``source.kind`` picks the adapter: ``synthetic`` (the embedded generator), ``files`` (CSV, Parquet or JSON
Lines with a column mapping), ``movielens`` (a GroupLens folder) or ``online_retail`` (UCI Online Retail).
A source yields each day's rows *as ingested* (source columns untouched) plus the lineage columns
``_source_file`` and ``_row``; ``to_contract`` maps them onto the contract before cleaning judges them.

Daily partitions (UTC days) follow the data: ``start_date`` / ``end_date`` when configured, else the first
and last day of the file's timestamps (the last at most yesterday, the last complete day). Every row goes to
the partition of its own UTC day, except: a row without a readable timestamp goes to the first partition
and one in the future to the last (cleaning quarantines both with their reason), and a row on a day outside
configured dates belongs to no partition; it is counted in the ``raw_events`` metadata
(``outside_window_rows``), so that ``source_rows = Σ raw partition rows + outside_window_rows``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields, replace
from functools import partial

import numpy as np
import pandas as pd

from recpipeline.cleaning import clean_events
from recpipeline.config import ConfigError, RunConfig, TableConfig
from recpipeline.mapping import EventMapping, FileSource, id_strings, parse_timestamps
from recpipeline.mapping import to_contract as map_to_contract
from recpipeline.movielens import movielens_source
from recpipeline.online_retail import online_retail_source
from recpipeline.source_files import (
    LINEAGE_COLUMNS,
    FileTable,
    SourceError,
    file_key,
    list_files,
    read_files,
    with_lineage,
)
from recpipeline.synthetic import SyntheticSpec, generate_events, generate_items, generate_users

ITEM_COLUMNS = ("item_id", "title", "category", "brand", "price")
#: a detected window longer than this (ten years of daily partitions) needs configured dates
MAX_DETECTED_DAYS = 3660


def synthetic_spec(config: RunConfig) -> SyntheticSpec:
    """The generator settings: the run's seed and start date, overridden by ``source.synthetic``."""
    overrides = dict(config.source.synthetic)
    known = {f.name for f in fields(SyntheticSpec)}
    unknown = sorted(set(overrides) - known)
    if unknown:
        raise ConfigError(
            f"{config.config_file}: source.synthetic.{unknown[0]}: unknown setting; "
            f"expected one of {sorted(known)}"
        )
    overrides.setdefault("seed", config.seed)
    if config.source.start_date is not None:
        overrides.setdefault("start_date", config.source.start_date)
    return SyntheticSpec(**overrides)


def file_source(config: RunConfig) -> FileSource:
    """The file-based adapter of ``config.source`` (every kind but synthetic)."""
    source = config.source
    if source.kind == "movielens":
        return movielens_source(source.path)
    if source.kind == "online_retail":
        return online_retail_source(source.path, source.format, source.options, source.timezone)
    mapping = EventMapping(
        columns=source.columns,
        event_type_default=source.event_type_default,
        event_types=source.event_types,
        timezone=source.timezone or "UTC",
        timestamp_unit=source.timestamp_unit,
    )
    return FileSource(
        FileTable(source.path, source.format, source.options),
        mapping,
        items=partial(_side_table, source.items) if source.items else None,
        users=partial(_side_table, source.users) if source.users else None,
    )


def partition_window(config: RunConfig) -> tuple[dt.date, dt.date | None]:
    """First and last (inclusive) day of the daily partitions; last ``None`` means 'up to yesterday'.

    File sources without configured dates read only the timestamp column to find the data's days.
    """
    source = config.source
    if source.kind == "synthetic":
        return source.start_date or synthetic_spec(config).start_date, source.end_date
    if source.start_date and source.end_date:
        return source.start_date, source.end_date
    adapter = file_source(config)
    column = adapter.mapping.columns["timestamp"]
    raw = read_files(adapter.events, required={"timestamp": column}, only_required=True)
    return _window(config, _timestamps(raw, adapter.mapping))


def read_raw_events(config: RunConfig, day: dt.date) -> pd.DataFrame:
    """The source's rows for one day, as ingested, with lineage columns."""
    if config.source.kind == "synthetic":
        frame = generate_events(synthetic_spec(config), day)
        return with_lineage(frame, f"synthetic://seed={config.seed}/{day.isoformat()}")
    return _loaded(config).day(day)


def source_row_counts(config: RunConfig) -> dict[str, int]:
    """Rows in the source files and rows on days outside the configured window (file sources only)."""
    if config.source.kind == "synthetic":
        return {}
    loaded = _loaded(config)
    return {"source_rows": len(loaded.rows), "outside_window_rows": loaded.outside}


def to_contract(raw: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """Raw rows -> contract columns (same index), with the adapter's ``source_reason`` where it has one."""
    if config.source.kind == "synthetic":
        return raw  # the generator writes the contract's columns
    adapter = file_source(config)
    contract = map_to_contract(raw, adapter.mapping)
    return adapter.refine(raw, contract) if adapter.refine else contract


def read_items(config: RunConfig) -> pd.DataFrame:
    """Item catalogue: item_id, title, category, brand, price, first_seen (plus the source's attributes)."""
    if config.source.kind == "synthetic":
        return generate_items(synthetic_spec(config))
    return _entities(config, "item_id")


def read_users(config: RunConfig) -> pd.DataFrame:
    """User profiles: user_id, attributes, first_seen."""
    if config.source.kind == "synthetic":
        return generate_users(synthetic_spec(config))
    return _entities(config, "user_id")


def read_predefined_split(config: RunConfig) -> dict[str, tuple[pd.DataFrame, pd.DataFrame]]:
    """The predefined split's files (train, test, optional validation), each read with the source's settings,
    mapped and cleaned (without a partition day): ``{name: (cleaned, quarantine)}``."""
    adapter = file_source(config)
    paths = {"train": config.split.train, "validation": config.split.validation, "test": config.split.test}
    result = {}
    for name, path in paths.items():
        if path is None:
            continue
        raw = read_files(replace(adapter.events, path=path), required=adapter.mapping.columns)
        result[name] = clean_events(to_contract(raw, config), None, raw=raw)
    return result


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
# assigned to days once per process and kept while the configuration and the files stay the same
_CACHE: dict[tuple, _Loaded] = {}


def _loaded(config: RunConfig) -> _Loaded:
    adapter = file_source(config)
    key = (repr(config.source), tuple(file_key(f) for f in list_files(adapter.events)))
    if key not in _CACHE:
        _CACHE.clear()  # one source at a time: a long-lived process does not pile up old data
        _CACHE[key] = _load(config, adapter)
    return _CACHE[key]


def _load(config: RunConfig, adapter: FileSource) -> _Loaded:
    rows = read_files(adapter.events, required=adapter.mapping.columns)
    timestamp = _timestamps(rows, adapter.mapping)
    start, end = _window(config, timestamp)
    first, last = _day_code(start), _day_code(end)
    day = timestamp.dt.tz_convert(None).to_numpy().astype("datetime64[D]").astype(np.int64)
    day = np.where(timestamp.isna(), first, day)
    day = np.where(timestamp > pd.Timestamp.now(tz="UTC"), last, day)
    day = np.where((day < first) | (day > last), -1, day)
    order = np.argsort(day, kind="stable")
    return _Loaded(
        rows=rows.take(order).reset_index(drop=True), day_codes=day[order], outside=int((day < 0).sum())
    )


def _timestamps(raw: pd.DataFrame, mapping: EventMapping) -> pd.Series:
    return parse_timestamps(raw[mapping.columns["timestamp"]], mapping.timestamp_unit, mapping.timezone)


def _window(config: RunConfig, timestamp: pd.Series) -> tuple[dt.date, dt.date]:
    """Configured dates, else the data's first and last day (at most yesterday, the last complete day)."""
    source = config.source
    now = pd.Timestamp.now(tz="UTC")
    valid = timestamp[timestamp.notna() & (timestamp <= now)]
    if valid.empty and not (source.start_date and source.end_date):
        raise SourceError(
            f"{source.path}: no row has a readable timestamp up to now, so the source's days are unknown; "
            "check the timestamp column, timestamp_unit and timezone, or set start_date and end_date"
        )
    start = source.start_date or valid.min().date()
    end = source.end_date or max(start, min(valid.max().date(), now.date() - dt.timedelta(days=1)))
    if (end - start).days >= MAX_DETECTED_DAYS and not (source.start_date and source.end_date):
        raise SourceError(
            f"{source.path}: timestamps span {start} .. {end}, {(end - start).days + 1} daily partitions "
            f"(more than {MAX_DETECTED_DAYS}); a stray date such as 1970-01-01 does that. Set "
            "source.start_date and end_date: rows outside them are counted, not ingested"
        )
    return start, end


def _day_code(day: dt.date) -> int:
    return (day - dt.date(1970, 1, 1)).days


def _entities(config: RunConfig, key: str) -> pd.DataFrame:
    """Items or users: the adapter's side table (else the ids seen in the events), one row per id, with
    ``first_seen``, the id's first event time in the source."""
    adapter = file_source(config)
    rows = _loaded(config).rows
    contract = to_contract(rows, config)
    first_seen = contract.dropna(subset=[key]).groupby(key)["timestamp"].min()
    hook = adapter.items if key == "item_id" else adapter.users
    table = hook(rows, contract) if hook else None
    if table is None:
        table = pd.DataFrame({key: first_seen.index})
    table[key] = id_strings(table[key])
    # the catalogue is a lookup by id: one row per id, the first one the source gives
    table = table.dropna(subset=[key]).drop_duplicates(key).reset_index(drop=True)
    if key == "item_id":
        table = table.reindex(columns=[*ITEM_COLUMNS, *(c for c in table.columns if c not in ITEM_COLUMNS)])
    table["first_seen"] = table[key].map(first_seen).astype("datetime64[us, UTC]")
    return table


def _side_table(table: TableConfig, raw: pd.DataFrame, contract: pd.DataFrame) -> pd.DataFrame:
    """A `files` source's items / users table: mapped columns renamed, the others kept as attributes."""
    frame = read_files(FileTable(table.path, table.format, table.options), required=table.columns)
    renames = {column: name for name, column in table.columns.items()}
    return frame.drop(columns=list(LINEAGE_COLUMNS)).rename(columns=renames)
