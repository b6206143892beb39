"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via ``implicit``'s ALS.

This is the strong classical baseline the neural models have to beat. Confidence follows the paper,
``c_ui = 1 + alpha * w_ui``; we build that matrix ourselves and hand it to implicit with its own ``alpha``
left at 1.0, because implicit's ``alpha`` only multiplies (``c_ui = alpha * w_ui``, no ``1 +``).

Training runs on implicit's CUDA solver when ``device`` is ``cuda`` (or ``auto`` and implicit was built with
CUDA); the learned factors come back to the CPU, where fold-in and scoring run.
"""

from __future__ import annotations

import time
from typing import Literal

import implicit.gpu.als
import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.recommender_base import ModelFitError
from pydantic import Field
from threadpoolctl import threadpool_limits

from recpipeline.models.base import NON_FINITE_REMEDY, Logger, Recommender
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.explaining import entry_rows
from recpipeline.models.settings import Factors, ModelSettings, NumThreads, Seed
from recpipeline.models.similarity import cosine_neighbours


class ALS(Recommender):
    """Weighted ALS with fold-in scoring: user vectors are re-solved from the given history at score time.

    Fold-in makes the model serve users unseen in training and use events newer than the training cut, like
    the history-based models it is compared with. ``user_factors_`` (the training users' solved vectors) is
    kept for inspection only.
    """

    name = "als"
    family = "factorisation"
    explains = "fold-in"
    state_shapes = {"item_factors_": ("n_items", "factors"), "user_factors_": ("n_users", "factors")}
    run_settings = ("seed",)
    search_space = {
        "factors": [32, 64, 128, 200],
        "regularization": [0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
        "alpha": [0.5, 1.0, 2.0, 5.0, 10.0, 20.0],
        "iterations": [10, 15, 30],
    }

    class Settings(ModelSettings):
        factors: Factors = 64
        regularization: float = Field(0.05, ge=0)
        """L2 penalty on the factors"""
        alpha: float = Field(1.0, ge=0)
        """confidence per unit of interaction weight: ``c = 1 + alpha * w``"""
        iterations: int = Field(15, ge=1)
        """alternating least-squares sweeps"""
        seed: Seed = 42
        num_threads: NumThreads = 0
        device: Literal["auto", "cpu", "cuda"] = "auto"
        """where implicit trains: ``auto`` (CUDA when implicit has it), ``cpu`` or ``cuda``"""

    def confidence(self, weights: sp.csr_matrix) -> sp.csr_matrix:
        """``1 + alpha * w`` on stored entries; absent entries get implicit's confidence 1, preference 0."""
        conf = sp.csr_matrix(weights, dtype=np.float32, copy=True)
        conf.sum_duplicates()
        conf.eliminate_zeros()
        conf.data = 1.0 + np.float32(self.alpha) * conf.data
        return conf

    def _implicit_model(self) -> AlternatingLeastSquares:
        # implicit's alpha stays 1.0: the confidence matrix is already 1 + alpha * w
        return AlternatingLeastSquares(
            factors=self.factors,
            regularization=self.regularization,
            alpha=1.0,
            iterations=self.iterations,
            random_state=self.seed,
            num_threads=self.num_threads,
            calculate_training_loss=False,
        )

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        conf = self.confidence(train)
        on_gpu = self._uses_gpu()
        start = time.perf_counter()
        if on_gpu:
            model = implicit.gpu.als.AlternatingLeastSquares(
                factors=self.factors,
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                random_state=self.seed,
            )
            model.fit(conf, show_progress=False)
            model = model.to_cpu()
        else:
            # implicit parallelises over users itself; a multi-threaded BLAS underneath oversubscribes cores
            with threadpool_limits(limits=1, user_api="blas"):
                model = self._implicit_model()
                try:
                    model.fit(conf, show_progress=False)
                except ModelFitError as error:
                    raise ValueError(f"als: the fit diverged ({error}); {NON_FINITE_REMEDY}") from error
        self.item_factors_ = np.ascontiguousarray(model.item_factors, dtype=np.float32)
        self.user_factors_ = np.ascontiguousarray(model.user_factors, dtype=np.float32)
        log(
            f"als: {self.iterations} iterations, {self.factors} factors, {conf.nnz} interactions on "
            f"{'cuda' if on_gpu else 'cpu'}, "
            f"{time.perf_counter() - start:.1f}s"
        )

    def _uses_gpu(self) -> bool:
        if self.device == "cuda" and not implicit.gpu.HAS_CUDA:
            raise ValueError("als: device 'cuda' asked for, but implicit was built without CUDA support")
        return self.device != "cpu" and implicit.gpu.HAS_CUDA

    def user_vectors(self, history: sp.csr_matrix) -> np.ndarray:
        """Exact least-squares user factors against the fixed item factors (users without history get 0)."""
        conf = self.confidence(history)
        with threadpool_limits(limits=1, user_api="blas"):
            solver = self._fold_in_solver()
            return solver.recalculate_user(np.arange(conf.shape[0]), conf).astype(np.float32, copy=False)

    def _fold_in_solver(self) -> AlternatingLeastSquares:
        # kept between score blocks: implicit caches Y^T Y (items x factors^2 work) on the solver
        solver = getattr(self, "_solver", None)
        if solver is None or solver.item_factors is not self.item_factors_:
            solver = self._implicit_model()
            solver.item_factors = self.item_factors_
            self._solver = solver
        return solver

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        """Fold in ``history`` rows, then dot with the item factors."""
        return self.user_vectors(history) @ self.item_factors_.T

    def history_contributions(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray, context: ScoreContext | None
    ) -> np.ndarray:
        """The fold-in score split over the history, as implicit's ``explain``: ``c_ui y_j^T W_u y_i`` with
        ``W_u = (Y^T Y + lambda I + sum_i (c_ui - 1) y_i y_i^T)^-1`` (they add up to the score).

        Each user's ``W_u y_j`` is one batched solve per block of users, not implicit's per-pair Cholesky.
        """
        conf = self.confidence(history)
        factors = self.item_factors_.astype(np.float64)
        gram = factors.T @ factors + self.regularization * np.eye(self.factors)
        owner = entry_rows(conf)
        out = np.full((conf.nnz, items.shape[1]), np.nan)
        block = max(1, 2**22 // max(self.n_items_ * self.factors, 1))
        for start in range(0, conf.shape[0], block):
            rows = conf[start : start + block]
            extra = (rows - (rows > 0).astype(np.float64)).toarray()  # c_ui - 1 on the history
            systems = gram + np.einsum("if,ui,ig->ufg", factors, extra, factors, optimize=True)
            targets = items[start : start + block]
            weighted = np.linalg.solve(systems, factors[np.maximum(targets, 0)].transpose(0, 2, 1))
            entries = slice(conf.indptr[start], conf.indptr[min(start + block, conf.shape[0])])
            local = owner[entries] - start
            terms = np.einsum("ef,eft->et", factors[conf.indices[entries]], weighted[local])
            out[entries] = np.where(targets[local] >= 0, conf.data[entries, None] * terms, np.nan)
        return out

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of item factors; items without factors (norm 0) score 0 against everything."""
        return cosine_neighbours(self.item_factors_, np.asarray(items, dtype=np.int64), n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "user_factors": self.user_factors_}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors_ = arrays["item_factors"].astype(np.float32)
        self.user_factors_ = arrays["user_factors"].astype(np.float32)
