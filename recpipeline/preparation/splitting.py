"""Train / validation / test splits over interactions, as plain functions over tables (LensKit style)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple

import numpy as np
import pandas as pd

from recpipeline.preparation.cleaning import reason_counts
from recpipeline.preparation.encoding import encode_interactions

#: without a validation file, this share of each user's training interactions (the latest) is validation
VALIDATION_SHARE = 0.1


class Splits(NamedTuple):
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


def as_of(timestamps: pd.Series) -> pd.Timestamp | None:
    """The end of the data a run covers: midnight (UTC) after the day of the newest timestamp, so the run
    covers whole days; splits end there and metrics are dated by it. ``None`` without a timestamp."""
    last = pd.to_datetime(timestamps, utc=True, errors="coerce").max()
    return None if pd.isna(last) else last.normalize() + pd.Timedelta(days=1)


def temporal_split(
    interactions: pd.DataFrame, as_of: pd.Timestamp, validation_days: int, test_days: int
) -> Splits:
    """The last ``test_days`` days up to ``as_of`` (exclusive end) are test, the ``validation_days`` before
    them validation, everything earlier train. Boundaries are whole UTC days, so no event is in two splits.
    """
    test_start = as_of - pd.Timedelta(days=test_days)
    validation_start = test_start - pd.Timedelta(days=validation_days)
    ts = interactions["timestamp"]
    if (ts >= as_of).any():
        raise ValueError(f"interactions contain timestamps at or after the split end {as_of}")
    train = interactions[ts < validation_start]
    if train.empty:
        raise ValueError(
            f"the temporal split leaves no training data: all events are after {validation_start} "
            f"(validation_days={validation_days}, test_days={test_days}); add days or shorten the windows"
        )
    return Splits(
        train.reset_index(drop=True),
        interactions[(ts >= validation_start) & (ts < test_start)].reset_index(drop=True),
        interactions[ts >= test_start].reset_index(drop=True),
    )


def predefined_split(
    train: pd.DataFrame, validation: pd.DataFrame | None, test: pd.DataFrame, share: float = VALIDATION_SHARE
) -> Splits:
    """A split given as files (e.g. MovieLens u1.base / u1.test). Without a validation file, each user's
    latest ``share`` of training interactions by time (rounded down, so users with fewer than 1 / share
    interactions keep all of theirs in train) becomes validation: deterministic, and like the temporal
    split it holds out what the user did last."""
    if validation is None:
        ordered = train.sort_values(["user_idx", "timestamp"], kind="stable")
        users = ordered.groupby("user_idx", sort=False)["user_idx"]
        from_end = users.cumcount(ascending=False)
        held_out = from_end < np.floor(users.transform("size") * share)
        train, validation = ordered[~held_out], ordered[held_out]
    return Splits(*(frame.reset_index(drop=True) for frame in (train, validation, test)))


class FileRows(NamedTuple):
    """Every row of a split file: ``rows`` read, of which ``quarantined[reason]`` were set aside."""

    rows: int
    quarantined: dict[str, int]


class RunSplits(NamedTuple):
    splits: Splits
    #: the end of the run's data (``as_of``): splits end there and outputs are dated by it
    as_of: pd.Timestamp
    #: per split file of a predefined split (empty for a temporal one)
    file_rows: dict[str, FileRows]


def split_for_run(
    interactions: pd.DataFrame,
    user_id_map: pd.DataFrame,
    item_id_map: pd.DataFrame,
    event_weights: Mapping[str, float],
    *,
    validation_days: int,
    test_days: int,
    split_files: Mapping[str, tuple[pd.DataFrame, pd.DataFrame]] | None = None,
) -> RunSplits:
    """The run's splits: the predefined ``split_files`` (``{name: (cleaned, quarantine)}``, encoded with the
    run's id maps) when given, else the temporal split of ``interactions`` by the last days up to its
    ``as_of``."""
    end = as_of(interactions["timestamp"])
    if split_files is None:
        return RunSplits(temporal_split(interactions, end, validation_days, test_days), end, {})
    encoded = {
        name: encode_interactions(cleaned, user_id_map, item_id_map, event_weights)
        for name, (cleaned, _) in split_files.items()
    }
    splits = predefined_split(encoded["train"], encoded.get("validation"), encoded["test"])
    file_rows = {
        name: FileRows(
            len(cleaned) + len(quarantine), {r: n for r, n in reason_counts(quarantine).items() if n}
        )
        for name, (cleaned, quarantine) in split_files.items()
    }
    return RunSplits(splits, end, file_rows)


def in_time_order(splits: Splits) -> bool:
    """Test is not empty and every non-empty split ends before the next one starts: nothing leaks back."""
    stamps = [frame["timestamp"] for frame in splits if len(frame)]
    return len(splits.test) > 0 and all(a.max() < b.min() for a, b in zip(stamps, stamps[1:], strict=False))


def events_in_test_and_earlier(splits: Splits) -> int:
    """Distinct test events (user, item, timestamp) that are also in train or validation."""
    keys = ["user_idx", "item_idx", "timestamp"]
    known = pd.concat([splits.train[keys], splits.validation[keys]]).drop_duplicates()
    return len(splits.test[keys].drop_duplicates().merge(known, on=keys))
