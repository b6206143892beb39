"""Item-based k-nearest-neighbours (Sarwar et al. 2001; Deshpande & Karypis 2004).

Each item keeps its ``neighbours`` most similar items (cosine over the item columns of the optionally
TF-IDF / BM25 weighted training matrix); a user's score for item ``j`` sums the similarities of ``j`` to the
items in the user's history, weighted by the history. Any history row folds in, so new users are served.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger, Recommender, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.explaining import pair_contributions, sparse_weight
from recpipeline.models.settings import Binarize, ModelSettings
from recpipeline.models.similarity import (
    Shrinkage,
    Weighting,
    apply_weighting,
    column_cosine_top_n,
    sparse_arrays,
    sparse_from_arrays,
    top_neighbours,
    weighting_stats,
)


class ItemKNN(Recommender):
    """Sparse top-``neighbours`` item-item cosine similarity; ``score = history @ S``.

    ``weighting`` re-weights the user x item matrix before the cosine (``bm25`` / ``tfidf`` damp heavy
    users and popular items), ``shrinkage`` damps similarities backed by few co-occurrences, ``binarize``
    counts each interaction once (in the similarity and in the history used for scoring).
    """

    name = "item_knn"
    family = "neighbourhood"
    explains = "exact"
    state_shapes = {"similarity_": ("n_items", "n_items")}
    search_space = {
        "neighbours": [20, 50, 100, 200, 400],
        "weighting": ["none", "tfidf", "bm25"],
        "shrinkage": [0.0, 10.0, 50.0],
        "binarize": [True, False],
    }

    class Settings(ModelSettings):
        neighbours: int = Field(100, ge=1)
        """most similar items kept per item"""
        weighting: Weighting = "none"
        shrinkage: Shrinkage = 10.0
        binarize: Binarize = True

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        matrix = prepare_matrix(train, self.binarize)
        weighted = apply_weighting(matrix, self.weighting, *weighting_stats(matrix))
        self.similarity_ = column_cosine_top_n(weighted, self.neighbours, self.shrinkage)
        log(f"item_knn: {self.similarity_.nnz} similarities ({self.neighbours} per item, {self.weighting})")

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        return (prepare_matrix(history, self.binarize) @ self.similarity_).toarray()

    def history_contributions(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray, context: ScoreContext | None
    ) -> np.ndarray:
        """The terms of ``x_u S``: each history item's similarity to the target (they add up to the score)."""
        x = prepare_matrix(history, self.binarize)
        return pair_contributions(x, items, sparse_weight(self.similarity_))

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The stored neighbour lists (at most ``neighbours`` long; the rest pads with -1)."""
        items = np.asarray(items, dtype=np.int64)
        sims = self.similarity_[items].toarray()
        sims[sims == 0] = -np.inf  # not a neighbour: no similarity, rather than similarity 0
        return top_neighbours(sims, items, n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return sparse_arrays(self.similarity_, "similarity")

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.similarity_ = sparse_from_arrays(arrays, "similarity")
