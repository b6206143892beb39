"""Arrow string columns built from ASCII byte blocks: ids and timestamps without a Python string per row."""

from __future__ import annotations

import datetime as dt

import numpy as np
import pandas as pd
import pyarrow as pa


def numbered_ids(prefix: str, count: int) -> pa.Array:
    """``prefix`` plus a zero-padded number (at least six digits) for each of ``range(count)``."""
    return numbered(prefix, count, max(6, len(str(max(count - 1, 0)))))


def ascii_rows(block: np.ndarray) -> pa.Array:
    """Rows of a (rows, width) uint8 block of ASCII as an Arrow large_string array over the same bytes."""
    rows, width = block.shape
    offsets = np.arange(rows + 1, dtype=np.int64) * width
    data = np.ascontiguousarray(block).ravel()
    return pa.LargeStringArray.from_buffers(rows, pa.py_buffer(offsets), pa.py_buffer(data))


def numbered(prefix: str, count: int, width: int) -> pa.Array:
    """``f"{prefix}{number:0{width}d}"`` for number in range(count), built as ASCII digit blocks."""
    head = np.frombuffer(prefix.encode(), dtype=np.uint8)
    parts = [pa.array([], type=pa.large_string())]
    low = 0
    while low < count:  # one block per digit count: numbers past 10**width simply grow wider
        digits = max(width, len(str(low)))
        high = min(count, 10**digits)
        block = np.empty((high - low, head.size + digits), dtype=np.uint8)
        block[:, : head.size] = head
        rest = np.arange(low, high, dtype=np.int64)
        for position in range(digits):  # right to left
            block[:, -1 - position] = 48 + rest % 10
            rest //= 10
        parts.append(ascii_rows(block))
        low = high
    return pa.concat_arrays(parts)


def iso_stamps(day: dt.date, offsets_us: np.ndarray) -> pa.Array:
    """``YYYY-MM-DDTHH:MM:SS.ffffffZ`` for microseconds after midnight of ``day``, built from integer parts
    (formatting datetimes one by one is the slowest step of a large day)."""
    template = np.frombuffer(f"{day.isoformat()}T00:00:00.000000Z".encode(), dtype=np.uint8)
    block = np.empty((offsets_us.size, template.size), dtype=np.uint8)
    block[:] = template
    fields = (
        (11, 2, offsets_us // 3_600_000_000),
        (14, 2, offsets_us // 60_000_000 % 60),
        (17, 2, offsets_us // 1_000_000 % 60),
        (20, 6, offsets_us % 1_000_000),
    )
    for start, width, value in fields:
        for position in range(width):
            block[:, start + width - 1 - position] = 48 + value // 10**position % 10
    return ascii_rows(block)


def string_column(values: pa.Array) -> pd.api.extensions.ExtensionArray:
    """The column pandas would build from these strings (None: missing) with its default string dtype; with
    pandas 3 an Arrow-backed ``str`` array that shares the Arrow buffers, so no Python string per row."""
    return values.to_pandas().array
