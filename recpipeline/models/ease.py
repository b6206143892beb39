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

from recpipeline.models.base import Logger, Recommender, no_log, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.similarity import top_neighbours


class EASE(Recommender):
    """Ridge regression of every item on all other items; ``regularization`` is the paper's lambda."""

    name = "ease"
    family = "linear"
    state_shapes = {"weights_": ("n_items", "n_items"), "item_penalty_": ("n_items",)}
    search_space = {
        "regularization": [100.0, 200.0, 300.0, 500.0, 1000.0, 2000.0],
        "binarize": [True, False],
        "popularity_exponent": [0.0, 0.1, 0.2],
    }

    def __init__(
        self,
        regularization: float = 500.0,
        binarize: bool = True,
        popularity_exponent: float = 0.0,
        max_items: int = 20_000,
    ) -> None:
        super().__init__(
            regularization=regularization,
            binarize=binarize,
            popularity_exponent=popularity_exponent,
            max_items=max_items,
        )

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        context: FitContext | None = None,
        log: Logger = no_log,
    ) -> EASE:
        n_items = train.shape[1]
        if n_items > self.max_items:
            gib = n_items**2 * 8 * 2 / 2**30  # the float64 Gram matrix and its inverse
            raise ValueError(
                f"ease: {n_items:,} items exceed max_items={self.max_items:,} (the dense item x item inverse "
                f"needs about {gib:.1f} GiB); raise max_items if memory allows, or use item_knn / als"
            )
        self._start_fit(train, context)
        start = time.perf_counter()
        x = prepare_matrix(train, self.binarize)
        gram = (x.T @ x).toarray().astype(np.float64)
        gram[np.diag_indices(n_items)] += self.regularization
        precision = np.linalg.inv(gram)
        weights = -precision / np.diag(precision)[None, :]
        weights[np.diag_indices(n_items)] = 0.0
        self.weights_ = weights.astype(np.float32)
        counts = np.bincount(x.indices, minlength=n_items).astype(np.float64)
        self.item_penalty_ = ((counts + 1.0) ** -self.popularity_exponent).astype(np.float32)
        log(f"ease: {n_items} items, lambda {self.regularization}, {time.perf_counter() - start:.1f}s")
        return self

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        return np.asarray(prepare_matrix(history, self.binarize) @ self.weights_) * self.item_penalty_

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Row ``i`` of ``B``: how strongly having item ``i`` predicts each other item."""
        items = np.asarray(items, dtype=np.int64)
        return top_neighbours(self.weights_[items], items, n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"weights": self.weights_, "item_penalty": self.item_penalty_}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.weights_ = arrays["weights"].astype(np.float32)
        self.item_penalty_ = arrays["item_penalty"].astype(np.float32)
