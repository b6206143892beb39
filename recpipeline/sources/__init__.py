"""Sources: where raw events, the item catalogue and user profiles come from.

``source.kind`` picks the implementation of the ``Source`` protocol through ``SOURCE_KINDS`` (one line per
kind): ``synthetic`` (the embedded generator), ``files`` (CSV, Parquet or JSON Lines with a column mapping),
``movielens`` (a GroupLens folder) or ``online_retail`` (UCI Online Retail). Adding a kind is one module
with a ``<kind>_source(config)`` constructor plus its line there (and its settings in ``config.py``).

A source yields each day's rows *as ingested* (source columns untouched) plus the lineage columns
``_source_file`` and ``_row``; its ``to_contract`` maps them onto the contract before cleaning judges them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

import pandas as pd

from recpipeline.config import RunConfig
from recpipeline.sources.base import Source
from recpipeline.sources.files import files_source
from recpipeline.sources.movielens import movielens_source
from recpipeline.sources.online_retail import online_retail_source
from recpipeline.sources.reading import SourceError, with_lineage
from recpipeline.sources.synthetic import synthetic_source

__all__ = [
    "SOURCE_KINDS",
    "Source",
    "SourceError",
    "open_source",
    "partition_window",
    "read_raw_events",
    "source_row_counts",
    "to_contract",
    "with_lineage",
]

#: source.kind -> the constructor of its ``Source``
SOURCE_KINDS: dict[str, Callable[[RunConfig], Source]] = {
    "synthetic": synthetic_source,
    "files": files_source,
    "movielens": movielens_source,
    "online_retail": online_retail_source,
}


def open_source(config: RunConfig) -> Source:
    """The ``Source`` of ``config.source`` (its kind's settings are validated by the configuration)."""
    return SOURCE_KINDS[config.source.kind](config)


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
