"""Most-popular baseline: one global ranking, or one per user segment (e.g. age band x region).

It is the floor every personalised model must clear; on e-commerce logs it is often a surprisingly hard one.
With ``segment_by`` it also serves users without any history, by what their peers interact with.
"""

from __future__ import annotations

import functools
from typing import Annotated, Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger, Recommender, prepare_matrix, score_chunk_rows
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.settings import ModelSettings

#: what an item's popularity counts
PopularityBy = Annotated[
    Literal["users", "weight"],
    Field(
        description="``users``: distinct users with a positive weight on the item; ``weight``: summed weights"
    ),
]

#: separator of attribute values inside a segment key (a control character no attribute value contains)
_KEY_SEP = "\x1f"


class Popularity(Recommender):
    """Score each item by its training popularity; per user segment where ``segment_by`` is set.

    ``by="users"`` counts distinct users with a positive weight on the item (robust to a few heavy users
    repeating events); ``by="weight"`` sums the interaction weights.

    ``segment_by``: user attribute columns defining segments (``"auto"``: every text / categorical column of
    the user features except ids). A segment's score for an item is its share among the segment's training
    users, shrunk towards the global share by ``shrinkage`` pseudo-users so small segments stay sensible.
    Segments come from ``FitContext.user_features`` at fit time and ``ScoreContext.user_features`` at score
    time; users without features, or in a segment unseen in training, get the global ranking.
    """

    name = "popularity"
    family = "baseline"
    state_shapes = {
        "item_scores_": ("n_items",),
        "segment_keys_": ("segments",),
        "segment_scores_": ("segments", "n_items"),
    }
    serves_cold_users = True

    class Settings(ModelSettings):
        by: PopularityBy = "users"
        segment_by: list[str] | Literal["auto"] | None = None
        """user attribute columns that define segments (``auto``: every text / categorical one; null: one
        global ranking)"""
        shrinkage: float = Field(20.0, ge=0)
        """pseudo-users shrinking a segment's item shares towards the global ones"""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        counts = prepare_matrix(train)
        counts.data = np.maximum(counts.data, 0.0)  # negative weights are not popularity
        counts.eliminate_zeros()
        if self.by == "users":
            counts.data[:] = 1.0
        self.item_scores_ = np.asarray(counts.sum(axis=0)).ravel().astype(np.float32)
        self.segment_columns_ = np.array([], dtype=str)
        self.segment_keys_ = np.array([], dtype=str)
        self.segment_scores_ = np.zeros((0, self.n_items_), dtype=np.float32)
        if self.segment_by is not None and context.user_features is not None:
            self._fit_segments(counts, context.user_features, log)
        log(
            f"popularity[{self.by}]: {np.count_nonzero(self.item_scores_)} of {self.n_items_} items scored, "
            f"{len(self.segment_keys_)} segments"
        )

    def _fit_segments(self, counts: sp.csr_matrix, user_features: pd.DataFrame, log: Logger) -> None:
        columns = _segment_columns(self.segment_by, user_features)
        if not columns:
            log("popularity: no categorical user attributes to segment by; global ranking only")
            return
        self.segment_columns_ = np.array(columns, dtype=str)
        keys = segment_keys(user_features, columns)[: counts.shape[0]]
        active = np.diff(counts.indptr) > 0
        self.segment_keys_, segment_of = np.unique(keys[active], return_inverse=True)
        # segments x users indicator times users x items counts = per-segment item counts
        indicator = sp.csr_matrix(
            (np.ones(active.sum(), dtype=np.float32), (segment_of, np.flatnonzero(active))),
            shape=(len(self.segment_keys_), counts.shape[0]),
        )
        segment_counts = (indicator @ counts).toarray()
        segment_sizes = np.asarray(indicator.sum(axis=1))  # active users per segment, column vector
        global_share = self.item_scores_ / max(int(active.sum()), 1)
        self.segment_scores_ = (
            (segment_counts + self.shrinkage * global_share) / (segment_sizes + self.shrinkage)
        ).astype(np.float32)

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        """Each user's segment ranking (``history`` is ignored), the global one where no segment applies."""
        return self._rankings()[self._ranking_of(users, context)]

    def recommend(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, context: ScoreContext | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``Recommender.recommend``'s result without scoring every item for every user: all users share a
        few rankings, so only a ranking's best ``k + (items the user has seen)`` items can make a list."""
        self._check_history(history)
        users = np.asarray(users, dtype=np.int64)
        k = max(0, min(k, self.n_items_))
        rankings = self._rankings()
        order = np.lexsort((np.broadcast_to(np.arange(self.n_items_), rankings.shape), -rankings), axis=1)
        ranking_of = self._ranking_of(users, context)
        history = history.tocsr()
        out_items = np.full((len(users), k), -1, dtype=np.int32)
        out_scores = np.full((len(users), k), -np.inf, dtype=np.float32)
        rows_per_chunk = score_chunk_rows(self.n_items_)
        for start in range(0, len(users), rows_per_chunk):
            rows = history[users[start : start + rows_per_chunk]]
            seen_per_row = np.diff(rows.indptr)
            width = min(self.n_items_, k + int(seen_per_row.max(initial=0)))
            candidates = order[ranking_of[start : start + len(seen_per_row)], :width]
            # a flag per (user, item) of the block: a quarter of the float32 score block it stands in for
            seen_block = np.zeros(rows.shape, dtype=bool)
            seen_block[np.repeat(np.arange(len(seen_per_row)), seen_per_row), rows.indices] = True
            seen = np.take_along_axis(seen_block, candidates, axis=1)
            # candidates are in ranking order: the first k unseen ones are the list (a stable sort keeps it)
            first_unseen = np.argsort(seen, axis=1, kind="stable")[:, :k]
            items = np.take_along_axis(candidates, first_unseen, axis=1)
            unseen = ~np.take_along_axis(seen, first_unseen, axis=1)
            chunk = slice(start, start + len(seen_per_row))
            out_items[chunk, : items.shape[1]] = np.where(unseen, items, -1)
            top = rankings[ranking_of[chunk][:, None], items]
            out_scores[chunk, : items.shape[1]] = np.where(unseen, top, -np.inf)
        return out_items, out_scores

    def _rankings(self) -> np.ndarray:
        """Row 0: the global item scores; row 1 + s: segment s's."""
        return np.vstack([self.item_scores_[None, :], self.segment_scores_])

    def _ranking_of(self, users: np.ndarray, context: ScoreContext | None) -> np.ndarray:
        """Each user's row of ``_rankings()``: their segment's where it is known, else 0 (global)."""
        users = np.asarray(users, dtype=np.int64)
        ranking = np.zeros(len(users), dtype=np.int64)
        user_features = context.user_features if context is not None else None
        if len(self.segment_keys_) == 0 or user_features is None:
            return ranking
        known = users < len(user_features)
        keys = segment_keys(user_features, list(self.segment_columns_))[users[known]]
        position = np.minimum(np.searchsorted(self.segment_keys_, keys), len(self.segment_keys_) - 1)
        found = self.segment_keys_[position] == keys
        ranking[np.flatnonzero(known)[found]] = 1 + position[found]
        return ranking

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "item_scores": self.item_scores_,
            "segment_columns": self.segment_columns_,
            "segment_keys": self.segment_keys_,
            "segment_scores": self.segment_scores_,
        }

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_scores_ = arrays["item_scores"].astype(np.float32)
        self.segment_columns_ = arrays["segment_columns"].astype(str)
        self.segment_keys_ = arrays["segment_keys"].astype(str)
        self.segment_scores_ = arrays["segment_scores"].astype(np.float32)


def _segment_columns(segment_by: list[str] | str, user_features: pd.DataFrame) -> list[str]:
    if segment_by == "auto":
        return [
            c
            for c in user_features.columns
            if not str(c).endswith(("_id", "_idx"))
            and (
                pd.api.types.is_string_dtype(user_features[c])
                or isinstance(user_features[c].dtype, pd.CategoricalDtype)
            )
        ]
    missing = [c for c in segment_by if c not in user_features.columns]
    if missing:
        raise ValueError(
            f"popularity: segment_by column {missing[0]!r} is not among the user features "
            f"{list(user_features.columns)}"
        )
    return list(segment_by)


def segment_keys(user_features: pd.DataFrame, columns: list[Any]) -> np.ndarray:
    """One string key per user row: the attribute values joined (missing values become ``<NA>``)."""
    parts = [
        user_features[c].astype(object).where(user_features[c].notna(), "<NA>").astype(str) for c in columns
    ]
    return functools.reduce(lambda a, b: a + _KEY_SEP + b, parts).to_numpy(dtype=str)
