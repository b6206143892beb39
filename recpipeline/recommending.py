"""Top-K recommendation tables from a fitted model, in the recommendations contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.models import Recommender

RECOMMENDATION_COLUMNS = ("model", "user_id", "item_id", "user_idx", "item_idx", "rank", "score")


def recommend_table(
    model: Recommender,
    model_name: str,
    users: np.ndarray,
    history: sp.csr_matrix,
    k: int,
    user_ids: np.ndarray,
    item_ids: np.ndarray,
    cold_start_scores: np.ndarray,
) -> pd.DataFrame:
    """Top-``k`` unseen items for each of ``users``, in the recommendations contract.

    Users with an empty ``history`` row (new in the evaluation window) get the ``cold_start_scores``
    ranking (training popularity) instead of the model's: no model can personalise without any signal.
    ``user_ids`` / ``item_ids`` map indices back to the original string ids.
    """
    users = np.asarray(users, dtype=np.int64)
    history = history.tocsr()
    cold = np.diff(history.indptr)[users] == 0
    items = np.full((len(users), min(k, history.shape[1])), -1, dtype=np.int32)
    scores = np.full(items.shape, -np.inf, dtype=np.float32)
    if (~cold).any():
        items[~cold], scores[~cold] = model.recommend(users[~cold], history, k)
    if cold.any():
        order = np.lexsort((np.arange(len(cold_start_scores)), -cold_start_scores))[: items.shape[1]]
        items[cold] = order
        scores[cold] = cold_start_scores[order]

    rank = np.broadcast_to(np.arange(1, items.shape[1] + 1, dtype=np.int16), items.shape)
    user_col = np.repeat(users, items.shape[1])
    valid = items.ravel() >= 0
    item_col = items.ravel()[valid]
    user_col = user_col[valid]
    return pd.DataFrame(
        {
            "model": model_name,
            "user_id": user_ids[user_col].astype(str),
            "item_id": item_ids[item_col].astype(str),
            "user_idx": user_col.astype(np.int32),
            "item_idx": item_col.astype(np.int32),
            "rank": rank.ravel()[valid],
            "score": scores.ravel()[valid].astype(np.float32),
        }
    )
