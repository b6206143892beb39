"""Cut dates of a rolling-origin backtest, and the data one cut sees.

A cut date is the last day before a test window of ``split.test_days`` days; the ``split.validation_days``
before the test window are its validation window, everything earlier its training data. A cut sees exactly
what a run whose data ended with its test window would see: the interactions before the window's end, and
the id maps as they were then — the first rows of today's append-only maps, up to the last user and item
its interactions name.
"""

from __future__ import annotations

import datetime as dt
from typing import NamedTuple

import pandas as pd

from recpipeline.config import BacktestConfig, SplitConfig

ONE_DAY = dt.timedelta(days=1)


class CutWindows(NamedTuple):
    cut: dt.date
    validation_start: dt.date
    test_start: dt.date
    #: the first day after the test window: the cut's data ends before it
    end: dt.date


def cut_windows(cut: dt.date, split: SplitConfig) -> CutWindows:
    test_start = cut + ONE_DAY
    return CutWindows(
        cut,
        test_start - dt.timedelta(days=split.validation_days),
        test_start,
        test_start + dt.timedelta(days=split.test_days),
    )


def cut_range(
    first_day: dt.date, last_day: dt.date, split: SplitConfig, backtest: BacktestConfig
) -> tuple[dt.date, dt.date]:
    """The first and last possible cut dates of data from ``first_day`` to ``last_day`` (inclusive): the
    first keeps ``backtest.min_train_days`` of training before its validation window, the last has a whole
    test window. A ``ValueError`` naming the settings when the data is too short for one cut."""
    first = first_day + dt.timedelta(days=backtest.min_train_days + split.validation_days - 1)
    last = last_day - dt.timedelta(days=split.test_days)
    if first > last:
        raise ValueError(
            f"the data's {(last_day - first_day).days + 1} days ({first_day} .. {last_day}) hold no backtest "
            f"cut: one needs backtest.min_train_days ({backtest.min_train_days}) + split.validation_days "
            f"({split.validation_days}) + split.test_days ({split.test_days}) days"
        )
    return first, last


def select_cuts(keys: list[str], start: str, end: str, every: int) -> list[str]:
    """Of the cut partition ``keys`` (YYYY-MM-DD, ascending), those from ``start`` to ``end`` (inclusive),
    then every ``every`` days counted from the first of them (``every`` a multiple of the partitions'
    spacing)."""
    inside = [key for key in keys if start <= key <= end]
    if not inside:
        return []
    first = dt.date.fromisoformat(inside[0])
    return [key for key in inside if (dt.date.fromisoformat(key) - first).days % every == 0]


class CutData(NamedTuple):
    interactions: pd.DataFrame
    user_id_map: pd.DataFrame
    item_id_map: pd.DataFrame
    windows: CutWindows


def cut_data(
    interactions: pd.DataFrame,
    user_id_map: pd.DataFrame,
    item_id_map: pd.DataFrame,
    cut: dt.date,
    split: SplitConfig,
) -> CutData:
    """What the cut at ``cut`` sees (module docstring); a ``ValueError`` when its test window is empty."""
    windows = cut_windows(cut, split)
    end = pd.Timestamp(windows.end, tz="UTC")
    kept = interactions[interactions["timestamp"] < end].reset_index(drop=True)
    if not (kept["timestamp"] >= pd.Timestamp(windows.test_start, tz="UTC")).any():
        raise ValueError(
            f"cut {cut}: no interactions in its test window {windows.test_start} .. "
            f"{windows.end - ONE_DAY}; ingest those days first (recpipeline backfill)"
        )
    return CutData(
        kept,
        _prefix(user_id_map, kept["user_idx"]),
        _prefix(item_id_map, kept["item_idx"]),
        windows,
    )


def _prefix(id_map: pd.DataFrame, used: pd.Series) -> pd.DataFrame:
    """The map's rows up to the largest index ``used`` names, in index order."""
    size = int(used.max()) + 1 if len(used) else 0
    return id_map[id_map["idx"] < size].sort_values("idx", ignore_index=True)
