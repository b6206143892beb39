"""Sources: where raw events, the item catalogue and user profiles come from.

``source.kind`` picks the implementation of the ``Source`` protocol through ``config.SOURCE_KINDS`` (one
line per kind: its constructor and its settings): ``synthetic`` (the embedded generator), ``files`` (CSV,
Parquet or JSON Lines with a column mapping), ``movielens`` (a GroupLens folder) or ``online_retail`` (UCI
Online Retail). Adding a kind is one module with a ``<kind>_source(config)`` constructor plus its line there.

A source yields each day's rows *as ingested* (source columns untouched) plus the lineage columns
``_source_file`` and ``_row``; its ``to_contract`` maps them onto the contract before cleaning judges them.
"""

from __future__ import annotations

import datetime as dt
from importlib import import_module

import pandas as pd

from recpipeline.config import SOURCE_KINDS, RunConfig
from recpipeline.sources.base import Source
from recpipeline.sources.reading import SourceError, with_lineage

__all__ = [
    "Source",
    "SourceError",
    "open_source",
    "partition_window",
    "read_raw_events",
    "source_row_counts",
    "to_contract",
    "with_lineage",
]


def open_source(config: RunConfig) -> Source:
    """The ``Source`` of ``config.source`` (its kind's settings are validated by the configuration), built by
    the kind's constructor in ``SOURCE_KINDS``."""
    module, constructor = SOURCE_KINDS[config.source.kind].constructor.split(":")
    return getattr(import_module(module), constructor)(config)


# shorthands for callers that hold only the configuration (benchmarks, tests)


def partition_window(config: RunConfig) -> tuple[dt.date, dt.date | None]:
    """First and last (inclusive) day of the daily partitions; last ``None`` means 'up to yesterday'."""
    return open_source(config).days()


def read_raw_events(config: RunConfig, day: dt.date) -> pd.DataFrame:
    """The source's rows for one day, as ingested, with lineage columns."""
    return open_source(config).events_of_day(day)


def source_row_counts(config: RunConfig) -> dict[str, int]:
    """Rows in the source files and rows on days outside the configured window (file sources only)."""
    return open_source(config).row_counts()


def to_contract(raw: pd.DataFrame, config: RunConfig) -> pd.DataFrame:
    """Raw rows -> contract columns (same index), with the kind's ``source_reason`` where it has one."""
    return open_source(config).to_contract(raw)
