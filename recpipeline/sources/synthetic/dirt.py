"""Dirty rows for the synthetic logs: copies of clean rows, each broken one way, as real logs have them."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

_BAD_TIMESTAMPS = ("not-a-time", "{y}-13-45T99:00", "31/02/{y} 25:61", "??", "{y}-10-03T")
_BAD_EVENT_TYPES = ("click??", "", "add_to_wishlist", "unknown", "vue")


def add_dirty_rows(
    rng: np.random.Generator, columns: dict[str, pa.Array], dirty_share: float, day: dt.date
) -> dict[str, pa.Array]:
    """Copies of random clean rows, each broken one way, inserted at random positions."""
    n_clean = len(columns["value"])
    if dirty_share <= 0 or n_clean == 0:
        return columns
    n_dirty = max(1, int(round(dirty_share * n_clean)))
    copied = rng.integers(0, n_clean, n_dirty)
    defects = rng.permutation(
        np.resize(np.arange(5), n_dirty)
    )  # each of the 5 kinds present once n_dirty >= 5
    dirty = {name: column.take(copied) for name, column in columns.items()}
    blank = np.where(rng.random(n_dirty) < 0.5, None, "")
    choice = rng.integers(0, 1000, n_dirty)
    year = f"{day.year:04d}"
    bad_timestamps = np.array([template.format(y=year) for template in _BAD_TIMESTAMPS], dtype=object)
    bad_event_types = np.array(_BAD_EVENT_TYPES, dtype=object)

    def broken(kind: int, values: np.ndarray, column: str) -> pa.Array:
        return pc.if_else(pa.array(defects == kind), pa.array(values, type=pa.large_string()), dirty[column])

    dirty["user_id"] = broken(0, blank, "user_id")
    dirty["item_id"] = broken(1, blank, "item_id")
    dirty["timestamp"] = broken(2, bad_timestamps[choice % bad_timestamps.size], "timestamp")
    dirty["event_type"] = broken(3, bad_event_types[choice % bad_event_types.size], "event_type")
    # kind 4: an exact duplicate, left as is
    position = rng.integers(0, n_clean + 1, n_dirty)
    key = np.concatenate([np.arange(n_clean, dtype=np.float64), position - 0.5])
    order = np.argsort(key, kind="stable")
    return {name: pa.concat_arrays([columns[name], dirty[name]]).take(order) for name in columns}
