"""The data contracts between the stages: the column names and event types each table carries.

One definition each; every stage package imports them from here, so no stage imports another to learn
a column name.
"""

from __future__ import annotations

from pathlib import Path

#: the contract's event types, in their categorical order
EVENT_TYPES = ("view", "cart", "purchase", "rating")
#: columns a cleaned event carries (``cleaned_events``)
CLEANED_COLUMNS = ("user_id", "item_id", "event_type", "timestamp", "value", "session_id")
#: lineage columns every raw row carries: the file it came from and its row there
LINEAGE_COLUMNS = ("_source_file", "_row")
#: columns every item catalogue starts with (a source's own attributes follow)
ITEM_COLUMNS = ("item_id", "title", "category", "brand", "price")
#: cleaning's default range of event values (``cleaning.value_range``): ratings and quantities fit, while
#: a -5 rating or a 1e38 quantity (which would overflow float32 in encoding) is a ``bad_value``
VALUE_RANGE = (0.0, 1e6)
#: the interactions' session column (int64): equal values = one session, a dense code per run numbered in
#: order of each session's first event; from the source's ``session_id`` where the log has one, else cut per
#: user by an inactivity gap (``source.session_gap_minutes``)
SESSION_COLUMN = "session_idx"
#: the user id an anonymous event (no user id, a session id) gets: this prefix + its session id, so each
#: anonymous session is its own visitor
ANONYMOUS_USER_PREFIX = "~anonymous:"
#: file types of the tables a user brings (interactions, top-K lists to evaluate)
TABLE_SUFFIXES = (".csv", ".parquet")


def table_files(folder: str | Path) -> list[Path]:
    """The CSV / Parquet files of ``folder``, sorted, hidden files skipped: e.g. a folder of top-K lists, one
    model per file stem."""
    return [
        path
        for path in sorted(Path(folder).iterdir())
        if path.suffix.lower() in TABLE_SUFFIXES and not path.name.startswith(".")
    ]
