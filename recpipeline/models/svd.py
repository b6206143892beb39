"""PureSVD (Cremonesi, Koren & Turrin 2010): truncated SVD of the user x item matrix.

``X ~ U S V^T``; a user's scores are the projection of their history onto the item subspace,
``history @ V @ V^T`` — a fold-in that serves any user with history, no user factors stored.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from sklearn.decomposition import TruncatedSVD

from recpipeline.models.base import Logger, Recommender, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.explaining import pair_contributions
from recpipeline.models.settings import Binarize, Factors, ModelSettings, Seed
from recpipeline.models.similarity import cosine_neighbours


class SVD(Recommender):
    """Randomised truncated SVD (scikit-learn); ``factors`` is capped below the item count."""

    name = "svd"
    family = "factorisation"
    explains = "exact"
    state_shapes = {"components_": ("factors", "n_items"), "singular_values_": ("factors",)}
    run_settings = ("seed",)
    search_space = {"factors": [16, 32, 64, 128, 256], "binarize": [True, False]}

    class Settings(ModelSettings):
        factors: Factors = 64
        binarize: Binarize = True
        n_iter: int = Field(7, ge=1)
        """power iterations of the randomised SVD"""
        seed: Seed = 42

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        factors = max(1, min(self.factors, min(train.shape) - 1))  # TruncatedSVD needs fewer than min(shape)
        svd = TruncatedSVD(n_components=factors, n_iter=self.n_iter, random_state=self.seed)
        svd.fit(prepare_matrix(train, self.binarize))
        self.components_ = svd.components_.astype(np.float32)  # factors x items, orthonormal rows
        self.singular_values_ = svd.singular_values_.astype(np.float32)
        log(f"svd: {factors} factors, explained variance {svd.explained_variance_ratio_.sum():.3f}")

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        return np.asarray(prepare_matrix(history, self.binarize) @ self.components_.T) @ self.components_

    def history_contributions(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray, context: ScoreContext | None
    ) -> np.ndarray:
        """The terms of ``x_u V V^T``: ``x_ui v_i . v_j`` (they add up to the score)."""
        vectors = self.components_.T.astype(np.float64)
        x = prepare_matrix(history, self.binarize)
        return pair_contributions(x, items, lambda i, j: np.einsum("mf,mf->m", vectors[i], vectors[j]))

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the item vectors ``V S`` (the item side of the factorisation)."""
        vectors = self.components_.T * self.singular_values_[None, :]
        return cosine_neighbours(vectors, np.asarray(items, dtype=np.int64), n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"components": self.components_, "singular_values": self.singular_values_}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.components_ = arrays["components"].astype(np.float32)
        self.singular_values_ = arrays["singular_values"].astype(np.float32)
