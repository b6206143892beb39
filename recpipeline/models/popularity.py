"""Most-popular baseline: one global ranking for everyone.

It is the floor every personalised model must clear; on e-commerce logs it is often a surprisingly hard one.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp

from recpipeline.models.base import Logger, Recommender, _silent


class Popularity(Recommender):
    """Score each item by its training popularity; identical for every user.

    ``by="users"`` counts distinct users with a positive weight on the item (robust to a few heavy users
    repeating events); ``by="weight"`` sums the interaction weights.
    """

    name = "popularity"

    def __init__(self, by: Literal["users", "weight"] = "users") -> None:
        if by not in ("users", "weight"):
            raise ValueError(f"popularity: 'by' must be 'users' or 'weight', got {by!r}")
        super().__init__(by=by)

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        log: Logger = _silent,
    ) -> Popularity:
        train = sp.csr_matrix(train)
        self.n_users_, self.n_items_ = train.shape
        if self.by == "users":
            counts = np.bincount(train.indices[train.data > 0], minlength=self.n_items_)
        else:
            counts = np.asarray(train.sum(axis=0)).ravel()
        self.item_scores_ = counts.astype(np.float32)
        log(f"popularity[{self.by}]: {np.count_nonzero(self.item_scores_)} of {self.n_items_} items scored")
        return self

    def score(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """The global popularity vector repeated per user (``history`` is ignored)."""
        return np.tile(self.item_scores_, (len(users), 1))

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"item_scores": self.item_scores_}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_scores_ = arrays["item_scores"].astype(np.float32)
