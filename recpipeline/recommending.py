"""Top-K recommendation tables from a fitted model, in the recommendations contract."""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.models import Recommender
from recpipeline.models.base import score_chunk_rows
from recpipeline.models.context import ScoreContext

RECOMMENDATION_COLUMNS = ("model", "user_id", "item_id", "user_idx", "item_idx", "rank", "score")
SIMILAR_ITEMS_COLUMNS = ("item_id", "similar_item_id", "rank", "score", "model")


def recommend_table(
    model: Recommender,
    model_name: str,
    users: np.ndarray,
    history: sp.csr_matrix,
    k: int,
    user_ids: np.ndarray | pd.api.extensions.ExtensionArray,
    item_ids: np.ndarray | pd.api.extensions.ExtensionArray,
    cold_start_scores: np.ndarray,
    context: ScoreContext | None = None,
) -> pd.DataFrame:
    """Top-``k`` unseen items for each of ``users``, in the recommendations contract.

    Users with an empty ``history`` row (new in the evaluation window) get the ``cold_start_scores``
    ranking (training popularity) instead of the model's — unless the model serves such users itself
    (``serves_cold_users``: segment popularity, hybrid). ``context`` (the events behind ``history``, user
    features) is handed to the model. ``user_ids`` / ``item_ids`` map indices back to the original ids.
    """
    users = np.asarray(users, dtype=np.int64)
    history = history.tocsr()
    cold = np.diff(history.indptr)[users] == 0
    if model.serves_cold_users:
        cold[:] = False  # the model ranks users without history itself
    items = np.full((len(users), min(k, history.shape[1])), -1, dtype=np.int32)
    scores = np.full(items.shape, -np.inf, dtype=np.float32)
    if (~cold).any():
        items[~cold], scores[~cold] = model.recommend(users[~cold], history, k, context)
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


def similar_items_table(model: Recommender, model_name: str, item_ids: np.ndarray, n: int) -> pd.DataFrame:
    """Top-``n`` neighbours of every item by the model's item similarity, best first.

    Only neighbours with a positive finite similarity are listed (an item the model has no vector for,
    e.g. one without training interactions in a CF model, gets no rows).
    """
    parts = []
    rows_per_chunk = score_chunk_rows(len(item_ids))
    for start in range(0, len(item_ids), rows_per_chunk):
        items = np.arange(start, min(start + rows_per_chunk, len(item_ids)))
        neighbours, sims = model.similar_items(items, n)
        keep = (neighbours >= 0) & np.isfinite(sims) & (sims > 0)
        rows, ranks = np.nonzero(keep)
        parts.append(
            pd.DataFrame(
                {
                    "item_id": item_ids[items[rows]].astype(str),
                    "similar_item_id": item_ids[neighbours[keep]].astype(str),
                    # rank among the listed neighbours (1 = most similar)
                    "rank": (np.cumsum(keep, axis=1)[rows, ranks]).astype(np.int16),
                    "score": sims[keep].astype(np.float32),
                    "model": model_name,
                }
            )
        )
    return pd.concat(parts, ignore_index=True)[list(SIMILAR_ITEMS_COLUMNS)]
