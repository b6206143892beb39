"""Why each item was recommended, and whether the reason is true.

For a seeded sample of the evaluated users, every model that explains itself (``Recommender.explains``)
recommends its top-K again (the same call the recommendations asset makes) and names, per listed item, the
history items that contributed most to its score (``Recommender.explain``; methods in
``recpipeline.models.explaining``).

Fidelity asks whether the reason is true: the strongest reason is removed from the user's history and the
list scored again. A faithful explanation moves the item down, often out of the top-K; the same measure with
a random history item removed (seeded) is the bar to beat. Ranks are among the items the user had not seen
(the removed item stays excluded, so both lists compete over the same candidates), ties by the lower index
as in the recommendations.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.fitting.recommending import check_id_maps, ids_by_index
from recpipeline.fitting.training import TrainingData
from recpipeline.models.base import Recommender
from recpipeline.models.context import ScoreContext, align_rows
from recpipeline.models.explaining import entry_rows, rows_per_block, scores_of, without_items
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline.scoring.relevance import users_with_unseen

EXPLANATION_COLUMNS = (
    "model",
    "method",
    "user_id",
    "item_id",
    "rank",
    "score",
    "reason_rank",
    "reason_item",
    "contribution",
)
FIDELITY_COLUMNS = (
    "model",
    "method",
    "k",
    "n_users",
    "n_explained",
    "left_top_k_share",
    "mean_rank_change",
    "random_left_top_k_share",
    "random_mean_rank_change",
    "beats_random",
)


@dataclass(frozen=True)
class ExplanationSettings:
    users: int  # test users sampled (those with a history)
    reasons: int  # history items named per recommended item
    k: int  # list length
    seed: int  # the user sample and the random removals


@dataclass(frozen=True)
class Explanations:
    table: pd.DataFrame  # EXPLANATION_COLUMNS
    fidelity: pd.DataFrame  # FIDELITY_COLUMNS, one row per model


def sample_users(test: pd.DataFrame, history: sp.csr_matrix, n: int, seed: int) -> np.ndarray:
    """Up to ``n`` of the evaluated users (``users_with_unseen``) that have a history, seeded, sorted."""
    users = users_with_unseen(test, history)
    users = users[np.diff(history.indptr)[users] > 0]
    if len(users) > n:
        users = np.sort(np.random.default_rng(seed).choice(users, n, replace=False))
    return users


def explain_models(
    models: dict[str, Recommender], data: TrainingData, test: pd.DataFrame, settings: ExplanationSettings
) -> Explanations:
    """Explanations and fidelity of every model in ``models`` for one seeded sample of ``test``'s users,
    with everything before the test window as history (as the recommendations)."""
    known = pd.concat([data.train, data.validation], ignore_index=True)
    n_users, n_items = len(data.user_id_map), len(data.item_id_map)
    history = interaction_matrix(known, n_users, n_items)
    users = sample_users(test, history, settings.users, settings.seed)
    user_ids, item_ids = ids_by_index(data.user_id_map), ids_by_index(data.item_id_map)
    features = align_rows(data.user_profiles, data.user_id_map, "user_id")
    tables, rows = [], []
    for name, model in models.items():
        check_id_maps(model, name, data.user_id_map, data.item_id_map)
        context = ScoreContext(history_events=known if model.event_columns else None, user_features=features)
        items, scores = model.recommend(users, history, settings.k, context)
        rows_of_users = history[users]
        reasons, contributions = model.explain(users, rows_of_users, items, settings.reasons, context)
        tables.append(
            explanation_table(
                name, model.explains, user_ids[users], item_ids, items, scores, reasons, contributions
            )
        )
        rng = np.random.default_rng(settings.seed)
        rows.append(
            {
                "model": name,
                "method": model.explains,
                "k": settings.k,
                "n_users": len(users),
                **fidelity(model, users, rows_of_users, items, reasons[:, :, 0], context, rng),
            }
        )
    table = pd.concat(tables, ignore_index=True) if tables else pd.DataFrame(columns=EXPLANATION_COLUMNS)
    return Explanations(table[list(EXPLANATION_COLUMNS)], pd.DataFrame(rows, columns=list(FIDELITY_COLUMNS)))


def explanation_table(
    name: str,
    method: str | None,
    user_ids: pd.api.extensions.ExtensionArray,
    item_ids: pd.api.extensions.ExtensionArray,
    items: np.ndarray,
    scores: np.ndarray,
    reasons: np.ndarray,
    contributions: np.ndarray,
) -> pd.DataFrame:
    """One row per (user, listed item, reason), in the ``EXPLANATION_COLUMNS`` contract."""
    user, position, reason = np.nonzero(reasons >= 0)
    return pd.DataFrame(
        {
            "model": name,
            "method": method,
            "user_id": np.asarray(user_ids[user]).astype(str),
            "item_id": np.asarray(item_ids[items[user, position]]).astype(str),
            "rank": (position + 1).astype(np.int16),
            "score": scores[user, position].astype(np.float32),
            "reason_rank": (reason + 1).astype(np.int16),
            "reason_item": np.asarray(item_ids[reasons[user, position, reason]]).astype(str),
            "contribution": contributions[user, position, reason].astype(np.float32),
        }
    )


def fidelity(
    model: Recommender,
    users: np.ndarray,
    history: sp.csr_matrix,
    items: np.ndarray,
    top_reason: np.ndarray,
    context: ScoreContext | None,
    rng: np.random.Generator,
) -> dict[str, float | int | bool]:
    """How far the listed ``items`` fall when their ``top_reason`` leaves the history (``history``: the rows
    of ``users``), against a random history item of the same user leaving it: the share that leave the
    top-K and the mean rank change (positive: down). Only items with a reason count."""
    user, position = np.nonzero((items >= 0) & (top_reason >= 0))
    lengths = np.diff(history.indptr)
    random_item = history.indices[history.indptr[user] + (rng.random(len(user)) * lengths[user]).astype(int)]
    k = items.shape[1]
    explained = new_ranks(
        model, users, history, user, items[user, position], top_reason[user, position], context
    )
    random = new_ranks(model, users, history, user, items[user, position], random_item, context)
    change, random_change = explained - (position + 1), random - (position + 1)
    n = len(user)
    shares = [float(np.mean(ranks > k)) if n else np.nan for ranks in (explained, random)]
    means = [float(np.mean(values)) if n else np.nan for values in (change, random_change)]
    return {
        "n_explained": n,
        "left_top_k_share": shares[0],
        "mean_rank_change": means[0],
        "random_left_top_k_share": shares[1],
        "random_mean_rank_change": means[1],
        "beats_random": bool(n and means[0] > means[1]),
    }


def new_ranks(
    model: Recommender,
    users: np.ndarray,
    history: sp.csr_matrix,
    owner: np.ndarray,
    targets: np.ndarray,
    removed: np.ndarray,
    context: ScoreContext | None,
) -> np.ndarray:
    """The rank (1 = best) of ``targets[i]`` among the items unseen by ``users[owner[i]]`` once ``removed[i]``
    has left that user's history; ties rank the lower item index first."""
    ranks = np.empty(len(owner), dtype=np.int64)
    for start in range(0, len(owner), rows_per_block(history.shape[1])):
        block = slice(start, start + rows_per_block(history.shape[1]))
        scores = np.asarray(
            model.score(*without_items(users, history, context, owner[block], removed[block])),
            dtype=np.float32,
        )
        scores = np.fmax(scores, np.float32(-np.inf))  # NaN ranks last, as in top_k_excluding
        seen = history[owner[block]]
        scores[entry_rows(seen), seen.indices] = -np.inf
        target = targets[block]
        own = scores_of(scores, target[:, None]).astype(np.float32)
        index = np.arange(scores.shape[1])
        ahead = (scores > own) | ((scores == own) & (index[None, :] < target[:, None]))
        ranks[block] = 1 + ahead.sum(axis=1)
    return ranks


def explanation_examples(table: pd.DataFrame, catalog: pd.DataFrame, users: int = 2) -> pd.DataFrame:
    """A few explanations to read: each model's top-3 items of its first ``users`` users, with item titles
    (the id where the catalogue has none)."""
    if table.empty:
        return table.assign(title="", reason_title="")
    titles = catalog.drop_duplicates("item_id").set_index(catalog["item_id"].astype(str))["title"]
    first = table.groupby("model")["user_id"].transform(lambda ids: ids.isin(pd.unique(ids)[:users]))
    shown = table[first & (table["rank"] <= 3)].copy()
    shown["title"] = shown["item_id"].map(titles).fillna(shown["item_id"])
    shown["reason_title"] = shown["reason_item"].map(titles).fillna(shown["reason_item"])
    return shown[["model", "user_id", "rank", "title", "reason_rank", "reason_title", "contribution"]]
