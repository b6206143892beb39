"""User-based k-nearest-neighbours (Herlocker et al. 1999), with history fold-in.

A scored user's history row is compared (cosine, optionally TF-IDF / BM25 weighted) with every training
user's row; the ``neighbours`` most similar training users vote for their items, weighted by similarity.
New users fold in through their history; a training user never counts as their own neighbour.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger, Recommender, prepare_matrix, top_k_excluding
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.settings import Binarize, ModelSettings
from recpipeline.models.similarity import (
    Shrinkage,
    Weighting,
    apply_weighting,
    sparse_arrays,
    sparse_from_arrays,
    weighting_stats,
)


class UserKNN(Recommender):
    """Cosine user-user neighbourhoods computed at score time against the stored training matrix."""

    name = "user_knn"
    family = "neighbourhood"
    explains = "leave-one-out"  # the neighbours depend on the whole history: no per-item terms
    state_shapes = {"train_": ("n_users", "n_items"), "idf_": ("n_items",)}
    search_space = {
        "neighbours": [20, 50, 100, 200],
        "weighting": ["none", "tfidf", "bm25"],
        "shrinkage": [0.0, 10.0],
        "binarize": [True, False],
    }

    class Settings(ModelSettings):
        neighbours: int = Field(50, ge=1)
        """most similar training users that vote"""
        weighting: Weighting = "tfidf"
        shrinkage: Shrinkage = 0.0
        binarize: Binarize = True

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        self.train_ = prepare_matrix(train, self.binarize)
        # the weighting statistics are the training users' (documents) and items' (terms)
        self.idf_, self.mean_length_ = weighting_stats(self.train_)
        self._weigh_train()
        log(
            f"user_knn: {self.train_.shape[0]} training users, {self.neighbours} neighbours, {self.weighting}"
        )

    def _weigh_train(self) -> None:
        """The weighted training rows and their norms (derived from the stored state, never saved)."""
        self.weighted_train_ = apply_weighting(self.train_, self.weighting, self.idf_, self.mean_length_)
        self.train_norms_ = _row_norms(self.weighted_train_)

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        rows = apply_weighting(
            prepare_matrix(history, self.binarize), self.weighting, self.idf_, self.mean_length_
        )
        dots = (rows @ self.weighted_train_.T).toarray()
        sims = dots / (np.outer(_row_norms(rows), self.train_norms_) + self.shrinkage + 1e-12)
        users = np.asarray(users, dtype=np.int64)
        own = users < self.train_.shape[0]
        not_self = sp.csr_matrix(
            (np.ones(own.sum(), dtype=np.float32), (np.flatnonzero(own), users[own])), shape=sims.shape
        )
        neighbours, neighbour_sims = top_k_excluding(sims, not_self, self.neighbours)
        keep = (neighbours >= 0) & (neighbour_sims > 0)
        votes = sp.csr_matrix(
            (neighbour_sims[keep], (np.nonzero(keep)[0], neighbours[keep])),
            shape=sims.shape,
            dtype=np.float32,
        )
        return (votes @ self.train_).toarray()

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {
            **sparse_arrays(self.train_, "train"),
            "idf": self.idf_,
            "mean_length": np.array(self.mean_length_),
        }

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.train_ = sparse_from_arrays(arrays, "train")
        self.idf_ = arrays["idf"]
        self.mean_length_ = float(arrays["mean_length"])

    def _load_state(self, directory: Path) -> None:
        super()._load_state(directory)
        self._weigh_train()  # from arrays whose shapes are checked by now


def _row_norms(matrix: sp.csr_matrix) -> np.ndarray:
    return np.sqrt(np.asarray(matrix.multiply(matrix).sum(axis=1)).ravel())
