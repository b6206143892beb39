"""EASE^R (Steck 2019, "Embarrassingly Shallow Autoencoders for Sparse Data").

A closed-form item x item weight matrix ``B`` with zero diagonal: ``P = (X^T X + lambda I)^-1``,
``B = I - P diag(1 / diag(P))``. Scores are ``history @ B``, so any history row folds in. The dense
``n_items x n_items`` matrices bound the catalogue it can afford: the float64 Gram matrix is built in blocks,
inverted in its own memory (Cholesky) and cast once to the float32 weights, 12 bytes per item pair at the
peak; ``max_items`` and the memory available guard it before anything is allocated (``check_catalogue``).

``popularity_exponent`` (beta, default 0 = plain EASE) divides each item's score by
``(training count + 1) ** beta``, a mild penalty on blockbusters as in RP3beta (Paudel et al. 2017); on
MovieLens-100K validation picks beta = 0.1.
"""

from __future__ import annotations

import contextlib
import math
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
from pydantic import Field
from scipy.linalg import lapack

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
        """the largest catalogue fitted (the fit peaks at about 12 bytes per item pair: 4.5 GiB at 20,000)"""

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


#: bytes per item pair at the fit's peak: the float64 Gram matrix, inverted in its own memory, and the float32
#: weights cast from it (``closed_form``)
PEAK_BYTES_PER_PAIR = 12
#: the rows of the Gram matrix built (and of the inverse mirrored) at a time: about 64 MB of temporaries
BLOCK_BYTES = 64 * 2**20


def check_catalogue(
    name: str, n_items: int, max_items: int, bytes_per_pair: int = PEAK_BYTES_PER_PAIR
) -> None:
    """A ValueError, before anything is allocated, where ``n_items`` exceeds ``max_items`` or the fit's
    estimated peak (``bytes_per_pair`` per item pair) exceeds the memory available to the process."""
    gib = n_items**2 * bytes_per_pair / 2**30
    if n_items > max_items:
        raise ValueError(
            f"{name}: {n_items:,} items exceed max_items={max_items:,} (the dense item x item matrices "
            f"need about {gib:.1f} GiB); raise max_items if memory allows, or use item_knn / als"
        )
    available = available_memory()
    if available is not None and n_items**2 * bytes_per_pair > available:
        raise ValueError(
            f"{name}: {n_items:,} items need about {gib:.1f} GiB for the dense item x item matrices, more "
            f"than the {available / 2**30:.1f} GiB available; lower max_items={max_items:,} below "
            f"{math.isqrt(available // bytes_per_pair):,} to refuse such catalogues up front, free "
            "memory, or use item_knn / als"
        )


def available_memory() -> int | None:
    """Bytes this process may still allocate: the smaller of the system's available memory and the room
    left under its cgroup's limit (v2 ``memory.max``); None where neither is readable (not Linux)."""
    limits = []
    with contextlib.suppress(OSError, ValueError), open("/proc/meminfo") as meminfo:
        for line in meminfo:
            if line.startswith("MemAvailable:"):
                limits.append(int(line.split()[1]) * 1024)
    with contextlib.suppress(OSError, ValueError):
        cgroup = Path("/sys/fs/cgroup")
        limit = (cgroup / "memory.max").read_text().strip()
        if limit != "max":
            limits.append(int(limit) - int((cgroup / "memory.current").read_text()))
    return min(limits) if limits else None


def gram_matrix(x: sp.csr_matrix) -> np.ndarray:
    """``X^T X`` as a dense float64 array, built a block of rows at a time (no whole sparse product)."""
    n_items = x.shape[1]
    columns = x.T.tocsr()
    gram = np.empty((n_items, n_items))
    step = max(1, BLOCK_BYTES // (8 * n_items))
    for begin in range(0, n_items, step):
        gram[begin : begin + step] = (columns[begin : begin + step] @ x).toarray()
    return gram


def closed_form(gram: np.ndarray, regularization: float) -> np.ndarray:
    """EASE's float32 weights ``B`` from the item x item Gram matrix (float64, C order, overwritten: the
    inverse is taken in its memory by Cholesky, ``P`` divided in place, cast once)."""
    n_items = len(gram)
    gram[np.diag_indices(n_items)] += regularization
    # LAPACK works in Fortran order: the transposed view is the same symmetric matrix, in place
    factor, info = lapack.dpotrf(gram.T, lower=False, clean=False, overwrite_a=True)
    if info == 0:
        factor, info = lapack.dpotri(factor, lower=False, overwrite_c=True)
    if info != 0:
        raise np.linalg.LinAlgError(
            f"ease: X^T X + {regularization} I is not positive definite (LAPACK info {info}); raise "
            "regularization above 0"
        )
    precision = factor.T  # gram's memory: its lower triangle holds P
    step = max(1, BLOCK_BYTES // (8 * n_items))
    for begin in range(0, n_items, step):
        end = begin + step
        block = precision[begin:end, begin:end]
        block[...] = np.tril(block) + np.tril(block, -1).T
        precision[begin:end, end:] = precision[end:, begin:end].T
    diagonal = precision.diagonal().copy()
    np.divide(precision, -diagonal[None, :], out=precision)
    precision[np.diag_indices(n_items)] = 0.0
    return precision.astype(np.float32)
