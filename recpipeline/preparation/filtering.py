"""k-core filtering: drop users and items with too few interactions, repeated until every one left has enough.

Counts are of distinct partners (a user's distinct items, an item's distinct users), so a user who viewed
one item ten times still has one. Removing a sparse item can push a user below the minimum and the other
way round, hence the loop; it ends at the largest subset in which every user and item meets its minimum.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd


class KCoreCounts(NamedTuple):
    """What filtering removed; all zero when it is off or nothing falls below the minimums."""

    removed_rows: int
    removed_users: int
    removed_items: int
    #: passes that removed something (the last, unchanged pass is not counted)
    iterations: int


NOTHING_REMOVED = KCoreCounts(0, 0, 0, 0)


def k_core(
    interactions: pd.DataFrame, min_user_interactions: int, min_item_interactions: int
) -> tuple[np.ndarray, KCoreCounts]:
    """Which rows are kept: those of users with at least ``min_user_interactions`` distinct items and items
    with at least ``min_item_interactions`` distinct users, iterated until stable (minimums of 1 keep every
    row). Raises ``ValueError`` when nothing would be left."""
    if (min_user_interactions <= 1 and min_item_interactions <= 1) or interactions.empty:
        return np.ones(len(interactions), dtype=bool), NOTHING_REMOVED
    users = interactions["user_idx"].to_numpy(dtype=np.int64)
    items = interactions["item_idx"].to_numpy(dtype=np.int64)
    # the loop runs over distinct (user, item) pairs: repeats neither count twice nor cost time
    pairs, row_pair = np.unique(users * (items.max() + 1) + items, return_inverse=True)
    pair_user, pair_item = np.divmod(pairs, items.max() + 1)
    kept = np.ones(len(pairs), dtype=bool)
    iterations = 0
    while True:
        user_degree = np.bincount(pair_user[kept], minlength=users.max() + 1)
        item_degree = np.bincount(pair_item[kept], minlength=items.max() + 1)
        too_few = (user_degree[pair_user] < min_user_interactions) | (
            item_degree[pair_item] < min_item_interactions
        )
        dropped = kept & too_few
        if not dropped.any():
            break
        kept &= ~dropped
        iterations += 1
    if not kept.any():
        raise ValueError(
            f"k-core filtering leaves no interactions: no set of users with >= {min_user_interactions} "
            f"items and items with >= {min_item_interactions} users exists in the data; lower "
            "preparation.min_user_interactions or preparation.min_item_interactions"
        )
    rows = kept[row_pair.ravel()]
    counts = KCoreCounts(
        removed_rows=int((~rows).sum()),
        removed_users=len(np.unique(users)) - len(np.unique(pair_user[kept])),
        removed_items=len(np.unique(items)) - len(np.unique(pair_item[kept])),
        iterations=iterations,
    )
    return rows, counts
