"""Implicit-feedback matrix factorisation (Hu, Koren & Volinsky 2008) via ``implicit``'s ALS.

This is the strong classical baseline the neural models have to beat. Confidence follows the paper,
``c_ui = 1 + alpha * w_ui``; we build that matrix ourselves and hand it to implicit with its own ``alpha``
left at 1.0, because implicit's ``alpha`` only multiplies (``c_ui = alpha * w_ui``, no ``1 +``).

Training runs on implicit's CUDA solver when ``device`` is ``cuda`` (or ``auto`` and implicit was built with
CUDA); the learned factors come back to the CPU, where fold-in and scoring run.
"""

from __future__ import annotations

import time

import implicit.gpu.als
import numpy as np
import scipy.sparse as sp
from implicit.cpu.als import AlternatingLeastSquares
from implicit.recommender_base import ModelFitError
from threadpoolctl import threadpool_limits

from recpipeline.models.base import NON_FINITE_REMEDY, Logger, Recommender, no_log
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.similarity import cosine_neighbours


class ALS(Recommender):
    """Weighted ALS with fold-in scoring: user vectors are re-solved from the given history at score time.

    Fold-in makes the model serve users unseen in training and use events newer than the training cut, like
    the history-based models it is compared with. ``user_factors_`` (the training users' solved vectors) is
    kept for inspection only.
    """

    name = "als"
    family = "factorisation"
    state_shapes = {"item_factors_": ("n_items", "factors"), "user_factors_": ("n_users", "factors")}
    run_settings = ("seed",)
    search_space = {
        "factors": [32, 64, 128, 200],
        "regularization": [0.01, 0.05, 0.1, 0.5, 1.0, 5.0],
        "alpha": [0.5, 1.0, 2.0, 5.0, 10.0, 20.0],
        "iterations": [10, 15, 30],
    }

    def __init__(
        self,
        factors: int = 64,
        regularization: float = 0.05,
        alpha: float = 1.0,
        iterations: int = 15,
        seed: int = 42,
        num_threads: int = 0,
        device: str = "auto",
    ) -> None:
        if device not in ("auto", "cpu", "cuda"):
            raise ValueError(f"als: 'device' must be 'auto', 'cpu' or 'cuda', got {device!r}")
        if not factors >= 1:
            raise ValueError(f"als: 'factors' must be an integer >= 1, got {factors!r}")
        if not (regularization >= 0 and regularization < float("inf")):  # NaN fails both
            raise ValueError(f"als: 'regularization' must be a finite number >= 0, got {regularization!r}")
        super().__init__(
            factors=factors,
            regularization=regularization,
            alpha=alpha,
            iterations=iterations,
            seed=seed,
            num_threads=num_threads,
            device=device,
        )

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

    def fit(
        self,
        train: sp.csr_matrix,
        validation: sp.csr_matrix | None = None,
        *,
        context: FitContext | None = None,
        log: Logger = no_log,
    ) -> ALS:
        self._start_fit(train, context)
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
        return self

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

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """Cosine similarity of item factors; items without factors (norm 0) score 0 against everything."""
        return cosine_neighbours(self.item_factors_, np.asarray(items, dtype=np.int64), n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"item_factors": self.item_factors_, "user_factors": self.user_factors_}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.item_factors_ = arrays["item_factors"].astype(np.float32)
        self.user_factors_ = arrays["user_factors"].astype(np.float32)
