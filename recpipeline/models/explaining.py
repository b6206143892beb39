"""Why a model recommends an item: each history item's contribution to the item's score.

A model's ``history_contributions`` gives, for every entry of the history rows (a user's item) and every
target item, how much that entry adds to the target's score; ``Recommender.explain`` keeps each target's
``n`` strongest. How a model attributes is declared in ``Recommender.explains``, one of ``METHODS``:

* ``exact``: the score is a sum over the history items (item-kNN, EASE, SVD, co-occurrence), so each term is
  the item's contribution and the terms add up to the score;
* ``fold-in``: ALS, through its fold-in solve as implicit's ``explain`` (Hu, Koren & Volinsky 2008, section
  5): ``score_j = sum_i c_ui y_j^T W_u y_i`` with ``W_u = (Y^T C_u Y + lambda I)^-1``, also exact;
* ``gradient×input``: torch models scoring a dense history row, d score_j / d x_ui times x_ui (a first-order
  attribution; the terms need not add up to the score);
* ``leave-one-out``: any other model whose score reads the history: the score drop when the item is removed
  from the history (events included, for the models that read them), every removal of a block scored as one
  batch.

Everything is vectorised over the history entries; no Python loop over users or events.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.models.context import ScoreContext

#: the attribution methods a model may declare (``Recommender.explains``)
METHODS = ("exact", "fold-in", "gradient×input", "leave-one-out")
#: cells of one dense block of re-scored rows (rows x items float32): 64 MB
RESCORE_BLOCK_CELLS = 2**24

ScoreFunction = Callable[[np.ndarray, sp.csr_matrix, ScoreContext | None], np.ndarray]


def entry_rows(history: sp.csr_matrix) -> np.ndarray:
    """The row of each stored entry of a CSR matrix, in storage order."""
    return np.repeat(np.arange(history.shape[0]), np.diff(history.indptr))


def scores_of(scores: np.ndarray, items: np.ndarray) -> np.ndarray:
    """``scores[r, items[r, t]]`` as float64; NaN where the item is -1 (no item)."""
    picked = np.take_along_axis(np.asarray(scores, dtype=np.float64), np.maximum(items, 0), axis=1)
    return np.where(items >= 0, picked, np.nan)


def rows_per_block(n_items: int) -> int:
    """Re-scored rows per dense block over ``n_items`` columns."""
    return int(max(RESCORE_BLOCK_CELLS // max(n_items, 1), 1))


def without_items(
    users: np.ndarray,
    history: sp.csr_matrix,
    context: ScoreContext | None,
    owner: np.ndarray,
    removed: np.ndarray,
) -> tuple[np.ndarray, sp.csr_matrix, ScoreContext | None]:
    """Copies of the history rows at positions ``owner``, each without item ``removed`` (-1: nothing).

    Returns the users, rows and context to score them with. Where the context carries the events behind the
    history (models that read their order), each copy becomes a pseudo-user (an index past every known user)
    with the owner's events minus the removed item's; otherwise the copies keep their owner's index, so
    models looking users up by index still find them.
    """
    users = np.asarray(users, dtype=np.int64)
    owner = np.asarray(owner, dtype=np.int64)
    removed = np.asarray(removed, dtype=np.int64)
    copies = history[owner].tocsr()
    keep = copies.indices != np.repeat(removed, np.diff(copies.indptr))
    indptr = np.r_[0, np.cumsum(_row_sums(keep, copies))]
    rows = sp.csr_matrix((copies.data[keep], copies.indices[keep], indptr), shape=copies.shape)
    events = context.history_events if context is not None else None
    if events is None:
        return users[owner], rows, context
    first = int(max(users.max(initial=-1), events["user_idx"].max() if len(events) else -1)) + 1
    pseudo = first + np.arange(len(owner), dtype=np.int64)
    copies_of = pd.DataFrame({"user_idx": users[owner], "_pseudo": pseudo, "_removed": removed})
    mine = events[events["user_idx"].isin(users[owner])].merge(copies_of, on="user_idx")
    mine = mine[mine["item_idx"].to_numpy() != mine["_removed"].to_numpy()]
    mine = mine.assign(user_idx=mine["_pseudo"]).drop(columns=["_pseudo", "_removed"])
    return pseudo, rows, ScoreContext(history_events=mine, user_features=context.user_features)


def _row_sums(flags: np.ndarray, matrix: sp.csr_matrix) -> np.ndarray:
    """How many of each row's entries ``flags`` marks (rows without entries: 0)."""
    return np.bincount(entry_rows(matrix), weights=flags, minlength=matrix.shape[0]).astype(np.int64)


def pair_contributions(
    history: sp.csr_matrix, items: np.ndarray, weight: Callable[[np.ndarray, np.ndarray], np.ndarray]
) -> np.ndarray:
    """The terms of a score that sums over the history, ``score_j = sum_i x_ui weight(i, j)``:
    ``(history.nnz, targets)`` of ``x_ui weight(i, j)`` (NaN for target -1). ``weight`` takes equal-length
    arrays of source and target items."""
    targets = items[entry_rows(history)]
    sources = np.broadcast_to(history.indices[:, None], targets.shape)
    weights = np.asarray(weight(sources.ravel(), np.maximum(targets, 0).ravel()), dtype=np.float64)
    terms = history.data[:, None].astype(np.float64) * weights.reshape(targets.shape)
    return np.where(targets >= 0, terms, np.nan)


def sparse_weight(matrix: sp.spmatrix) -> Callable[[np.ndarray, np.ndarray], np.ndarray]:
    """``weight(i, j) = matrix[i, j]`` of a sparse items x items matrix, for ``pair_contributions``."""
    matrix = sp.csr_matrix(matrix)
    return lambda sources, targets: np.asarray(matrix[sources, targets]).ravel()


def leave_one_out(
    score: ScoreFunction,
    users: np.ndarray,
    history: sp.csr_matrix,
    items: np.ndarray,
    context: ScoreContext | None,
) -> np.ndarray:
    """``(history.nnz, items.shape[1])``: each target's score drop when the entry's item leaves its row.

    Every entry's reduced row is scored, a block of rows per ``score`` call (a user with h history items
    costs h rows).
    """
    history = sp.csr_matrix(history)
    base = scores_of(score(users, history, context), items)
    owner, removed = entry_rows(history), history.indices.astype(np.int64)
    out = np.empty((history.nnz, items.shape[1]), dtype=np.float64)
    step = rows_per_block(history.shape[1])
    for start in range(0, history.nnz, step):
        block = slice(start, start + step)
        reduced = score(*without_items(users, history, context, owner[block], removed[block]))
        out[block] = base[owner[block]] - scores_of(reduced, items[owner[block]])
    return out


def top_reasons(history: sp.csr_matrix, contributions: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Each target's ``n`` history items of largest contribution (exact zeros are no reason).

    ``contributions`` is ``(history.nnz, targets)``. Returns ``(reasons, values)`` of shape
    ``(rows, targets, n)``: item indices best first (-1 where a target has fewer reasons) and their
    contributions (NaN there); ties go to the lower item index.
    """
    n_rows, n_targets = history.shape[0], contributions.shape[1]
    reasons = np.full((n_rows, n_targets, n), -1, dtype=np.int32)
    values = np.full((n_rows, n_targets, n), np.nan, dtype=np.float32)
    group = (entry_rows(history)[:, None] * n_targets + np.arange(n_targets)).ravel()
    item = np.repeat(history.indices, n_targets)
    value = np.asarray(contributions, dtype=np.float64).ravel()
    valid = np.isfinite(value) & (value != 0)
    group, item, value = group[valid], item[valid], value[valid]
    order = np.lexsort((item, -value, group))
    group, item, value = group[order], item[order], value[order]
    starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]]) if len(group) else np.empty(0, np.int64)
    rank = np.arange(len(group)) - np.repeat(starts, np.diff(np.r_[starts, len(group)]))
    top = rank < n
    reasons[group[top] // n_targets, group[top] % n_targets, rank[top]] = item[top]
    values[group[top] // n_targets, group[top] % n_targets, rank[top]] = value[top]
    return reasons, values
