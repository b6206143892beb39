"""Train / validation / test splits over interactions, as plain functions over tables (LensKit style)."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.encoding import stored_entries
from recpipeline.metrics import isin_ids

#: without a validation file, this share of each user's training interactions (the latest) is validation
VALIDATION_SHARE = 0.1


class Splits(NamedTuple):
    train: pd.DataFrame
    validation: pd.DataFrame
    test: pd.DataFrame


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


def unseen_relevant(target: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user_idx, item_idx) pairs of ``target`` the user had not interacted with in ``history``.

    Recommendations exclude already-seen items, so seen items can never be hits; counting them as relevant
    would only cap every model's recall.
    """
    user = target["user_idx"].to_numpy(np.int64)
    item = target["item_idx"].to_numpy(np.int64)
    history_item = history["item_idx"].to_numpy(np.int64)
    n_items = int(max(np.max(item, initial=-1), np.max(history_item, initial=-1))) + 1
    keys = user * n_items + item
    first = ~pd.Series(keys).duplicated().to_numpy()  # distinct pairs in first-seen order
    keep = first.copy()
    keep[first] = ~isin_ids(keys[first], history["user_idx"].to_numpy(np.int64) * n_items + history_item)
    return target.loc[keep, ["user_idx", "item_idx"]].reset_index(drop=True)


def users_with_unseen(target: pd.DataFrame, history: sp.csr_matrix) -> np.ndarray:
    """Sorted user_idx of the users that ``unseen_relevant(target, ...)`` keeps a pair for, with the history
    as the users x items matrix a recommendation step builds anyway (a binary search, no key hash)."""
    user = target["user_idx"].to_numpy(np.int64)
    return np.unique(user[~stored_entries(history, user, target["item_idx"].to_numpy(np.int64))])
