"""Which held-out items count as relevant: the ones the user had not interacted with before.

Recommendations exclude already-seen items, so seen items can never be hits; counting them as relevant would
only cap every model's recall. This is the one definition of the rule, in the representations its callers
hold: tables of (user_idx, item_idx) pairs for the test evaluation, users x items matrices for validation
(early stopping and tuning). ``RelevanceRule`` narrows which test interactions may count at all (event
types, a minimum rating: ``evaluation.relevant_event_types`` / ``evaluation.min_rating``). Nothing here
imports the models.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.preparation.encoding import stored_entries
from recpipeline.scoring.metrics import isin_ids

#: relative slack of the rating comparison: a rating comes back from a float32 weight (e.g. 0.3 * 4 / 0.3)
RATING_TOLERANCE = 1e-5


@dataclass(frozen=True)
class RelevanceRule:
    """Which test interactions may be relevant; the defaults keep every one.

    ``event_types``: only interactions of these event types (None: every type). ``min_rating``: a ``rating``
    interaction below it is not relevant (None: every rating); other event types are not affected. The
    rating is the interaction weight / ``rating_weight`` (encoding multiplies the rating event's weight by
    the rating).
    """

    event_types: tuple[str, ...] | None = None
    min_rating: float | None = None
    rating_weight: float = 1.0

    def keeps(self, interactions: pd.DataFrame) -> np.ndarray:
        """Whether each row of ``interactions`` (event_type, weight) may be relevant."""
        keep = np.ones(len(interactions), dtype=bool)
        if self.event_types is None and self.min_rating is None:
            return keep  # the columns are not needed: files without them stay usable
        event_type = interactions["event_type"]
        if self.event_types is not None:
            keep &= event_type.isin(self.event_types).to_numpy()
        if self.min_rating is not None:
            rated = (event_type == "rating").to_numpy()
            if rated.any() and not self.rating_weight > 0:
                raise ValueError("min_rating needs a positive rating event weight to recover the ratings")
            rating = interactions["weight"].to_numpy(np.float64)[rated] / self.rating_weight
            slack = RATING_TOLERANCE * max(1.0, abs(self.min_rating))
            keep[np.flatnonzero(rated)[rating < self.min_rating - slack]] = False
        return keep


def unseen_relevant(target: pd.DataFrame, history: pd.DataFrame) -> pd.DataFrame:
    """Distinct (user_idx, item_idx) pairs of ``target`` the user had not interacted with in ``history``,
    in first-occurrence order."""
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


def _binary(matrix: sp.spmatrix) -> sp.csr_matrix:
    """``matrix`` as canonical CSR with a 1 for every non-zero entry."""
    out = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
    out.sum_duplicates()
    out.eliminate_zeros()
    out.data[:] = 1.0
    return out


def holdout_relevance(history: sp.spmatrix, holdout: sp.spmatrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """The users to validate and the binary users x items matrix of their relevant items: held-out entries
    not in ``history``. Users without history or without such items are not validated."""
    seen = _binary(history)
    truth = _binary(holdout)
    relevant = truth - truth.multiply(seen)
    relevant.eliminate_zeros()
    users = np.flatnonzero((np.diff(relevant.indptr) > 0) & (np.diff(seen.indptr) > 0))
    return users, relevant
