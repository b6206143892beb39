"""EASE^R (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

A closed-form item x item weight matrix ``B`` with zero diagonal: ``P = (X^T X + lambda I)^-1``,
``B = I - P diag(1 / diag(P))``. Scores are ``history @ B``, so any history row folds in. The dense
``n_items x n_items`` inverse bounds the catalogue it can afford: ``max_items`` guards it.

``popularity_exponent`` (beta, default 0 = plain EASE) divides each item's score by
``(training count + 1) ** beta``, a mild penalty on blockbusters as in RP3beta (Paudel et al. 2017); on
MovieLens-100K validation picks beta = 0.1.
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger, Recommender, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.explaining import pair_contributions
from recpipeline.models.settings import Binarize, ModelSettings
from recpipeline.models.similarity import top_neighbours


class EASE(Recommender):
    """Ridge regression of every item on all other items; ``regularization`` is the paper's lambda."""

    name = "ease"
    family = "linear"
    explains = "exact"
    state_shapes = {"weights_": ("n_items", "n_items"), "item_penalty_": ("n_items",)}
    search_space = {
        "regularization": [100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0],
        "binarize": [True, False],
        "popularity_exponent": [0.0, 0.1, 0.2],
    }

    class Settings(ModelSettings):
        regularization: float = Field(500.0, ge=0)
        """the paper's lambda: the ridge penalty on the item weights"""
        binarize: Binarize = True
        popularity_exponent: float = 0.0
        """beta: scores divided by ``(training count + 1) ** beta`` (0: plain EASE)"""
        max_items: int = Field(20_000, ge=1)
        """the largest catalogue fitted (the dense item x item inverse needs 16 bytes per pair)"""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        n_items = train.shape[1]
        check_catalogue(self.name, n_items, self.max_items)
        start = time.perf_counter()
        x = prepare_matrix(train, self.binarize)
        self.weights_ = closed_form(gram_matrix(x), self.regularization)
        counts = np.bincount(x.indices, minlength=n_items).astype(np.float64)
        self.item_penalty_ = ((counts + 1.0) ** -self.popularity_exponent).astype(np.float32)
        log(f"ease: {n_items} items, lambda {self.regularization}, {time.perf_counter() - start:.1f}s")

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        return np.asarray(prepare_matrix(history, self.binarize) @ self.weights_) * self.item_penalty_

    def history_contributions(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray, context: ScoreContext | None
    ) -> np.ndarray:
        """The terms of ``x_u B`` (times the target's popularity penalty): they add up to the score."""
        x = prepare_matrix(history, self.binarize)
        return pair_contributions(x, items, lambda i, j: self.weights_[i, j] * self.item_penalty_[j])

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``i`` of ``B``: how strongly having item ``i`` predicts each other item."""
        items = np.asarray(items, dtype=np.int64)
        return top_neighbours(self.weights_[items], items, n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "item_penalty": self.item_penalty_}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"].astype(np.float32)
        self.item_penalty_ = arrays["item_penalty"].astype(np.float32)


def check_catalogue(name: str, n_items: int, max_items: int) -> None:
    """A ValueError where the dense item x item matrices of ``n_items`` would exceed ``max_items``."""
    if n_items > max_items:
        gib = n_items**2 * 8 * 2 / 2**30  # the float64 Gram matrix and its inverse
        raise ValueError(
            f"{name}: {n_items:,} items exceed max_items={max_items:,} (the dense item x item inverse "
            f"needs about {gib:.1f} GiB); raise max_items if memory allows, or use item_knn / als"
        )


def gram_matrix(x: sp.csr_matrix) -> np.ndarray:
    """``X^T X`` as a dense float64 array."""
    return (x.T @ x).toarray().astype(np.float64)


def closed_form(gram: np.ndarray, regularization: float) -> np.ndarray:
    """EASE's float32 weights ``B`` from the item x item Gram matrix (float64, overwritten: the inverse is
    taken in its place's memory)."""
    gram[np.diag_indices(len(gram))] += regularization
    precision = np.linalg.inv(gram)
    weights = -precision / np.diag(precision)[None, :]
    weights[np.diag_indices(len(gram))] = 0.0
    return weights.astype(np.float32)
