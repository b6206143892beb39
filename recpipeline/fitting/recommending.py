"""Top-K recommendation tables from a fitted model, in the recommendations contract.

``recommend_for_test_users`` and ``similar_items_by_id`` are the domain steps behind the recommendations and
similar-items assets: id-map check, history, the cold-start fallback, indices back to ids.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.models.base import Recommender, score_chunk_rows
from recpipeline.models.context import ScoreContext, align_rows, id_map_version
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline.scoring.relevance import users_with_unseen

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


def recommend_for_test_users(
    model: Recommender,
    model_name: str,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    k: int,
    user_id_map: pd.DataFrame,
    item_id_map: pd.DataFrame,
    user_profiles: pd.DataFrame,
) -> pd.DataFrame:
    """Top-``k`` unseen items for every user the evaluation scores (``users_with_unseen`` of ``test``).

    The history is every event before the test window (train + validation). Users without history get the
    ranking by popularity before the test window unless the model serves them itself (``recommend_table``).
    """
    check_id_maps(model, model_name, user_id_map, item_id_map)
    known = pd.concat([train, validation], ignore_index=True)
    history = interaction_matrix(known, len(user_id_map), len(item_id_map))
    cold_start = np.bincount(known["item_idx"].to_numpy(), minlength=len(item_id_map)).astype(np.float32)
    context = ScoreContext(
        history_events=known if model.event_columns else None,
        user_features=align_rows(user_profiles, user_id_map, "user_id"),
    )
    return recommend_table(
        model,
        model_name,
        users_with_unseen(test, history),
        history,
        k,
        user_ids=ids_by_index(user_id_map),
        item_ids=ids_by_index(item_id_map),
        cold_start_scores=cold_start,
        context=context,
    )


def similar_items_by_id(
    model: Recommender, model_name: str, user_id_map: pd.DataFrame, item_id_map: pd.DataFrame, n: int
) -> pd.DataFrame:
    """``similar_items_table`` of every item of ``item_id_map``, after checking the model's id maps."""
    check_id_maps(model, model_name, user_id_map, item_id_map)
    return similar_items_table(model, model_name, ids_by_index(item_id_map), n)


def check_id_maps(
    model: Recommender, model_name: str, user_id_map: pd.DataFrame, item_id_map: pd.DataFrame
) -> None:
    """Refuse a model fitted on other id maps: its indices would point at the wrong users and items."""
    current = id_map_version(user_id_map, item_id_map)
    if model.n_items_ != len(item_id_map) or model.id_map_version_ not in (None, current):
        raise ValueError(
            f"{model_name}_model was fitted on another id map ({model.n_items_} items, version "
            f"{model.id_map_version_}; now {len(item_id_map)} items, version {current}); "
            f"re-materialize {model_name}_model"
        )


def ids_by_index(id_map: pd.DataFrame) -> pd.api.extensions.ExtensionArray:
    """The ids ordered by index; an Arrow string array, so tables take from it without Python strings."""
    return id_map["id"].astype(str).array.take(np.argsort(id_map["idx"].to_numpy(), kind="stable"))
