"""Bayesian Personalised Ranking (Rendle et al. 2009) via ``implicit``'s CPU BPR-MF.

Learns user and item factors so that a user's interacted items outrank sampled others. Unlike ALS there is no
closed-form fold-in, so training users are scored with their learned vectors (validation-window events do not
move them); users without training interactions get the mean of their history items' factors.

implicit draws each negative as the item of a random interaction, i.e. by popularity, where Rendle et al.
(and Cornac) draw it uniformly over the items: popularity-drawn negatives push popular items down and leave
the item bias nothing to learn, which costs a quarter of nDCG@10 on the MovieLens-100K protocol
(docs/models.md).
``uniform_negatives`` restores uniform draws without changing implicit (``with_uniform_negatives``).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.sparse as sp
from implicit.cpu.bpr import BayesianPersonalizedRanking
from pydantic import Field
from threadpoolctl import threadpool_limits

from recpipeline.models.base import Logger, Recommender, prepare_matrix
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.settings import Factors, LearningRate, ModelSettings, Seed
from recpipeline.models.similarity import cosine_neighbours

#: the largest ``uniform_negatives``: a share s costs 1 / (1 - s) times the samples per iteration
MAX_UNIFORM_NEGATIVES = 0.95


def with_uniform_negatives(matrix: sp.csr_matrix, share: float) -> sp.csr_matrix:
    """``matrix`` with rows appended that hold every item, so that at least ``share`` of implicit's negative
    draws (the item of a random stored entry) land on one of them: an item drawn uniformly. Their own
    samples are all skipped (implicit verifies that a negative is not a positive, and these rows hold
    every item), so the real users' updates per iteration stay one per interaction in expectation."""
    n_items = matrix.shape[1]
    rows = int(np.ceil(share / (1 - share) * matrix.nnz / n_items)) if n_items else 0
    if rows == 0:
        return matrix
    every_item = np.tile(np.arange(n_items, dtype=matrix.indices.dtype), rows)
    starts = np.arange(rows + 1, dtype=np.int64) * n_items
    padding = sp.csr_matrix((np.ones(len(every_item), np.float32), every_item, starts), shape=(rows, n_items))
    return sp.vstack([matrix, padding], format="csr")


class BPR(Recommender):
    """BPR matrix factorisation; implicit appends an item-bias column (user side fixed at 1).

    ``num_threads`` defaults to 1 because implicit's parallel SGD updates race (Hogwild), so results with
    more threads differ from run to run; 0 uses every core.
    """

    name = "bpr"
    family = "factorisation"
    state_shapes = {
        "user_factors_": ("n_users", "factors"),
        "item_factors_": ("n_items", "factors"),
        "trained_users_": ("n_users",),
    }
    run_settings = ("seed",)
    search_space = {
        "factors": [32, 64, 128],
        "learning_rate": [0.005, 0.01, 0.02],
        "regularization": [0.0001, 0.001, 0.01, 0.1],
        "iterations": [50, 100, 200],
        "uniform_negatives": [0.0, 0.5, 0.75, 0.9],
    }

    class Settings(ModelSettings):
        factors: Factors = 64
        learning_rate: LearningRate = 0.01
        regularization: float = Field(0.001, ge=0)
        """L2 penalty on the factors"""
        iterations: int = Field(100, ge=1)
        """SGD passes over the interactions"""
        uniform_negatives: float = Field(0.75, ge=0, le=MAX_UNIFORM_NEGATIVES)
        """share of negatives drawn uniformly over the items (Rendle's BPR), the rest by popularity
        (implicit's own draw); a share s costs 1 / (1 - s) times the samples per iteration"""
        seed: Seed = 42
        num_threads: int = Field(1, ge=0)
        """SGD threads (0: every core); more than 1 races (Hogwild), so results vary from run to run"""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        matrix = prepare_matrix(train, binarize=True)  # BPR only sees which items a user touched
        start = time.perf_counter()
        model = BayesianPersonalizedRanking(
            factors=self.factors,
            learning_rate=self.learning_rate,
            regularization=self.regularization,
            iterations=self.iterations,
            num_threads=self.num_threads,
            random_state=self.seed,
            verify_negative_samples=True,  # with_uniform_negatives relies on it
        )
        with threadpool_limits(limits=1, user_api="blas"):
            model.fit(with_uniform_negatives(matrix, self.uniform_negatives), show_progress=False)
        users = matrix.shape[0]  # the appended rows are no users
        self.user_factors_ = np.ascontiguousarray(model.user_factors[:users], dtype=np.float32)
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.trained_users_ = np.diff(matrix.indptr) > 0
        log(
            f"bpr: {self.iterations} iterations, {self.factors} factors, {matrix.nnz} interactions, "
            f"{self.uniform_negatives:g} of negatives uniform, "
            f"{time.perf_counter() - start:.1f}s"
        )

    def user_vectors(self, users: np.ndarray, history: sp.csr_matrix) -> np.ndarray:
        """Learned vectors for training users; for the rest the mean of their history items' factors."""
        users = np.asarray(users, dtype=np.int64)
        rows = prepare_matrix(history, binarize=True)
        counts = np.maximum(np.diff(rows.indptr), 1)[:, None]
        vectors = (rows @ self.item_factors_) / counts
        vectors[:, -1] = 1.0  # the bias column: every user takes the item bias in full
        trained = users < len(self.trained_users_)
        trained[trained] = self.trained_users_[users[trained]]
        vectors[trained] = self.user_factors_[users[trained]]
        return vectors.astype(np.float32, copy=False)

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        return self.user_vectors(users, history) @ self.item_factors_.T

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine over the item factors without the bias column (bias is popularity, not similarity)."""
        return cosine_neighbours(self.item_factors_[:, :-1], np.asarray(items, dtype=np.int64), n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {
            "user_factors": self.user_factors_,
            "item_factors": self.item_factors_,
            "trained_users": self.trained_users_,
        }

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.user_factors_ = arrays["user_factors"].astype(np.float32)
        self.item_factors_ = arrays["item_factors"].astype(np.float32)
        self.trained_users_ = arrays["trained_users"].astype(bool)
