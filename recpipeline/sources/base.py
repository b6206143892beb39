"""What every source kind provides: the ``Source`` protocol the ingestion stage reads through."""

from __future__ import annotations

import datetime as dt
from typing import Protocol

import pandas as pd


class Source(Protocol):
    """One source of raw events, items and users (one implementation per ``source.kind``).

    Raw rows come *as ingested* (the source's own columns) plus the lineage columns ``_source_file`` and
    ``_row``; ``to_contract`` maps them onto the contract's columns before cleaning judges them.
    """

    def days(self) -> tuple[dt.date, dt.date | None]:
        """First and last (inclusive) day of the daily partitions; last ``None`` means 'up to yesterday'."""
        ...

    def events_of_day(self, day: dt.date) -> pd.DataFrame:
        """The raw rows of one daily partition, with lineage columns."""
        ...

    def to_contract(self, raw: pd.DataFrame) -> pd.DataFrame:
        """Raw rows -> contract columns (same index), with a ``source_reason`` where the kind gives one."""
        ...

    def items(self) -> pd.DataFrame:
        """Item catalogue: item_id, title, category, brand, price, first_seen (plus the kind's attributes)."""
        ...

    def users(self) -> pd.DataFrame:
        """User profiles: user_id, attributes, first_seen."""
        ...

    def row_counts(self) -> dict[str, int]:
        """Whole-source row totals (``source_rows``, ``outside_window_rows``) where the kind has files."""
        ...

    def split_file_rows(self, path: str) -> tuple[pd.DataFrame, pd.DataFrame]:
        """A predefined split's file read like the events: its (raw, contract) rows."""
        ...
