"""NDCG@k of a model on a held-out matrix: the signal for early stopping and hyperparameter search.

Relevance (``recpipeline.evaluation.relevance``) and NDCG (``recpipeline.evaluation.metrics``) are the ones
of the reported metrics, so validation optimises exactly what the evaluation reports.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.evaluation.metrics import mean_ndcg
from recpipeline.evaluation.relevance import holdout_relevance
from recpipeline.models.base import Recommender
from recpipeline.models.context import ScoreContext


def holdout_ndcg(
    model: Recommender,
    history: sp.csr_matrix,
    holdout: sp.csr_matrix,
    k: int,
    context: ScoreContext | None = None,
) -> float:
    """Mean NDCG@``k`` of ``model.recommend`` over users with history and unseen held-out items (or NaN)."""
    users, relevant = holdout_relevance(history, holdout)
    if len(users) == 0:
        return float("nan")
    items, _ = model.recommend(users, sp.csr_matrix(history), k, context)
    listed = items >= 0
    rank = np.broadcast_to(np.arange(1, items.shape[1] + 1), items.shape)
    lists = pd.DataFrame(
        {
            "user_idx": np.repeat(users, items.shape[1])[listed.ravel()],
            "item_idx": items[listed],
            "rank": rank[listed],
        }
    )
    truth = relevant[users].tocoo()
    return mean_ndcg(lists, pd.DataFrame({"user_idx": users[truth.row], "item_idx": truth.col}), k)
