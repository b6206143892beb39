"""NDCG@k of a model on a held-out matrix: the signal for early stopping and hyperparameter search.

The same binary relevance as the metrics engine (DESIGN.md): relevant items are the held-out ones the user
had not interacted with before (seen items are never recommended, so they could never be hits); users
without history or without such items are not evaluated.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recpipeline.models.base import Recommender, prepare_matrix
from recpipeline.models.context import ScoreContext


def holdout_targets(history: sp.spmatrix, holdout: sp.spmatrix) -> tuple[np.ndarray, sp.csr_matrix]:
    """Users to evaluate and the binary matrix of their relevant (held-out, not yet seen) items."""
    seen = prepare_matrix(history, binarize=True)
    truth = prepare_matrix(holdout, binarize=True)
    relevant = truth - truth.multiply(seen)
    relevant.eliminate_zeros()
    users = np.flatnonzero((np.diff(relevant.indptr) > 0) & (np.diff(seen.indptr) > 0))
    return users, relevant


def holdout_ndcg(
    model: Recommender,
    history: sp.csr_matrix,
    holdout: sp.csr_matrix,
    k: int,
    context: ScoreContext | None = None,
) -> float:
    """Mean NDCG@``k`` of ``model.recommend`` over users with history and unseen held-out items (or NaN)."""
    users, relevant = holdout_targets(history, holdout)
    if len(users) == 0:
        return float("nan")
    items, _ = model.recommend(users, sp.csr_matrix(history), k, context)
    rows = relevant[users]
    found = items >= 0
    picked = rows[np.arange(len(users))[:, None], np.where(found, items, 0)]
    hits = (np.asarray(picked.todense()) > 0) & found
    discounts = 1.0 / np.log2(np.arange(2, items.shape[1] + 2))
    ideal = np.cumsum(discounts)[np.minimum(np.diff(rows.indptr), items.shape[1]) - 1]
    return float(np.mean(hits @ discounts / ideal))
