"""Shared machinery of the session models (``sknn``, ``vsknn``, ``cooccurrence``): sessions from event tables.

A session is the events sharing a ``session_idx`` (the column is optional: without it each user's events are
one session), in time order, consecutive repeats of one item collapsed (a view, cart and purchase of the same
item are one step). Scoring reads only each history row's *current* session: the session of its latest event.
Earlier sessions of the row are older history and are not used. History rows may be pseudo-users (session
prefixes with indices ``>= n_users_``): nothing here looks up learned per-user state.

Everything is vectorised over the event table: no Python loop over events, sessions or users.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.models.base import SCORE_CHUNK_USERS, Recommender
from recpipeline.models.context import FitContext, ScoreContext

#: the optional event column that groups events into sessions (equal values = one session)
SESSION_COLUMN = "session_idx"
#: the event columns the session models read
SESSION_EVENT_COLUMNS = ("user_idx", "item_idx", "timestamp", SESSION_COLUMN)

#: how an item's weight falls with its step from the end of a session (1 = the latest item), after Ludewig &
#: Jannach (2018): ``same`` 1; ``div`` position / length; ``quadratic`` (position / length)^2; ``linear``
#: 1 - 0.1 (step - 1), at least 0; ``log`` 1 / log10(step + 0.7)
PositionWeighting = Literal["same", "div", "linear", "log", "quadratic"]
POSITION_WEIGHTINGS = ("same", "div", "linear", "log", "quadratic")


def position_weights(weighting: str, steps: np.ndarray, lengths: np.ndarray) -> np.ndarray:
    """The weight of the item ``steps`` from the end of a session of ``lengths`` items (element-wise)."""
    steps = np.asarray(steps, dtype=np.float64)
    position = (np.asarray(lengths, dtype=np.float64) - steps + 1) / np.maximum(lengths, 1)
    if weighting == "same":
        return np.ones_like(steps)
    if weighting == "div":
        return position
    if weighting == "quadratic":
        return position**2
    if weighting == "linear":
        return np.maximum(1.0 - 0.1 * (steps - 1), 0.0)
    if weighting == "log":
        return 1.0 / np.log10(steps + 0.7)
    raise ValueError(f"unknown position weighting {weighting!r}; known: {', '.join(POSITION_WEIGHTINGS)}")


def step_decay(weighting: str, steps: np.ndarray) -> np.ndarray:
    """The weight of a match (or rule) ``steps`` away (1 = adjacent), as the papers' ``*_score`` functions:
    ``same`` 1, ``div`` 1 / step, ``linear`` 1 - 0.1 step (at least 0), ``log`` 1 / log10(step + 1.7),
    ``quadratic`` 1 / step^2."""
    steps = np.asarray(steps, dtype=np.float64)
    if weighting == "same":
        return np.ones_like(steps)
    if weighting == "div":
        return 1.0 / steps
    if weighting == "quadratic":
        return 1.0 / steps**2
    if weighting == "linear":
        return np.maximum(1.0 - 0.1 * steps, 0.0)
    if weighting == "log":
        return 1.0 / np.log10(steps + 1.7)
    raise ValueError(f"unknown step weighting {weighting!r}; known: {', '.join(POSITION_WEIGHTINGS)}")


def require_events(model: str, events: pd.DataFrame | None, where: str) -> pd.DataFrame:
    """``events``, or a ``ValueError`` saying the model needs them in ``where``."""
    if events is None:
        raise ValueError(f"{model}: reads sessions from the time-ordered events; pass {where}")
    return events


def session_sequences(events: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """(session keys, items) in session-then-time order, consecutive repeats in a session dropped.

    The session key is ``session_idx`` where the column is present, else ``user_idx``.
    """
    has_sessions = SESSION_COLUMN in events.columns
    columns = ["user_idx", "item_idx", "timestamp"] + ([SESSION_COLUMN] if has_sessions else [])
    key = SESSION_COLUMN if has_sessions else "user_idx"
    ordered = events[columns].sort_values([key, "timestamp"], kind="stable")
    sessions = ordered[key].to_numpy(np.int64)
    items = ordered["item_idx"].to_numpy(np.int64)
    keep = np.ones(len(items), dtype=bool)
    keep[1:] = (sessions[1:] != sessions[:-1]) | (items[1:] != items[:-1])
    return sessions[keep], items[keep]


def run_starts(groups: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(first row, length) of each run of equal values in ``groups``."""
    n = len(groups)
    starts = np.flatnonzero(np.r_[True, groups[1:] != groups[:-1]]) if n else np.empty(0, dtype=np.int64)
    return starts, np.diff(np.r_[starts, n])


def steps_from_end(groups: np.ndarray) -> np.ndarray:
    """For group-sorted rows: 1 + how many later rows the same group has (1 = the group's latest row)."""
    starts, runs = run_starts(groups)
    return np.repeat(starts + runs, runs) - np.arange(len(groups))


def session_matrix(events: pd.DataFrame, n_items: int) -> tuple[np.ndarray, sp.csr_matrix]:
    """(session keys, binary sessions x items CSR), the rows ordered oldest session first (by the time of
    its latest event, ties by key), so a larger row is a more recent session."""
    has_sessions = SESSION_COLUMN in events.columns
    key = events[SESSION_COLUMN if has_sessions else "user_idx"].to_numpy(np.int64)
    keys, session_of = np.unique(key, return_inverse=True)
    # the latest event per session: a groupby max over the session's position in ``keys``
    latest = pd.Series(events["timestamp"].to_numpy()).groupby(session_of).max().to_numpy()
    order = np.lexsort((keys, latest))  # oldest first
    row_of = np.empty(len(keys), dtype=np.int64)
    row_of[order] = np.arange(len(keys))
    matrix = sp.csr_matrix(
        (
            np.ones(len(key), dtype=np.float32),
            (row_of[session_of], events["item_idx"].to_numpy(np.int64)),
        ),
        shape=(len(keys), n_items),
    )
    matrix.sum_duplicates()
    matrix.data[:] = 1.0
    return keys[order], matrix


@dataclass(frozen=True)
class CurrentSessions:
    """The current session of each of ``users`` (sorted, unique): ``steps`` (users x items CSR, sorted
    indices) holds each item's step from the session's end (1 = the latest item; an item seen twice keeps
    its later step), ``lengths`` the session lengths in steps, ``keys`` the session keys (``session_idx``, or
    the user where events carry no sessions; -1 without events)."""

    users: np.ndarray
    steps: sp.csr_matrix
    lengths: np.ndarray
    keys: np.ndarray

    def select(self, users: np.ndarray) -> CurrentSessions:
        """The rows of ``users`` (each must be one of ``self.users``), in that order."""
        users = np.asarray(users, dtype=np.int64)
        rows = np.searchsorted(self.users, users)
        return CurrentSessions(users, self.steps[rows], self.lengths[rows], self.keys[rows])


def current_sessions(events: pd.DataFrame, users: np.ndarray, n_items: int) -> CurrentSessions:
    """Each user's current session (the session of their latest event) from ``events``; users without
    events get an empty row."""
    users = np.unique(np.asarray(users, dtype=np.int64))
    mine = events[events["user_idx"].isin(users)]
    has_sessions = SESSION_COLUMN in mine.columns
    columns = ["user_idx", "item_idx", "timestamp"] + ([SESSION_COLUMN] if has_sessions else [])
    ordered = mine[columns].sort_values(["user_idx", "timestamp"], kind="stable")
    owner = ordered["user_idx"].to_numpy(np.int64)
    items = ordered["item_idx"].to_numpy(np.int64)
    session = ordered[SESSION_COLUMN].to_numpy(np.int64) if has_sessions else owner
    # each user's current session: the session of their latest event
    starts, runs = run_starts(owner)
    last = starts + runs - 1
    keys = np.full(len(users), -1, dtype=np.int64)
    keys[np.searchsorted(users, owner[last])] = session[last]
    keep = session == np.repeat(session[last], runs)
    owner, items = owner[keep], items[keep]
    collapse = np.ones(len(items), dtype=bool)
    collapse[1:] = (owner[1:] != owner[:-1]) | (items[1:] != items[:-1])
    owner, items = owner[collapse], items[collapse]
    steps = steps_from_end(owner)
    rows = np.searchsorted(users, owner)
    lengths = np.zeros(len(users), dtype=np.int64)
    np.maximum.at(lengths, rows, steps)
    # an item seen twice in the session: its latest step (the smallest) is kept
    order = np.lexsort((steps, items, rows))
    rows, items, steps = rows[order], items[order], steps[order]
    first = np.ones(len(rows), dtype=bool)
    first[1:] = (rows[1:] != rows[:-1]) | (items[1:] != items[:-1])
    matrix = sp.csr_matrix(
        (steps[first].astype(np.float64), (rows[first], items[first])), shape=(len(users), n_items)
    )
    matrix.sort_indices()
    return CurrentSessions(users, matrix, lengths, keys)


def top_per_row(
    rows: np.ndarray, values: np.ndarray, n: int, tie_break: np.ndarray | None = None
) -> np.ndarray:
    """A mask over the entries: the (at most) ``n`` largest ``values`` of each ``rows`` group (ties: the
    larger ``tie_break``, then the earlier entry)."""
    keys = (-values, rows) if tie_break is None else (-tie_break, -values, rows)
    order = np.lexsort(keys)
    starts, runs = run_starts(rows[order])
    rank = np.arange(len(rows)) - np.repeat(starts, runs)
    mask = np.zeros(len(rows), dtype=bool)
    mask[order[rank < n]] = True
    return mask


def sparse_top_k(scores: sp.csr_matrix, exclude: sp.csr_matrix, k: int) -> tuple[np.ndarray, np.ndarray]:
    """``top_k_excluding`` of the dense block of ``scores`` (all >= 0), from its nonzero entries alone.

    Same result (positive scores first, ties and the zero-score rest by the lower item index, excluded
    items never, ``-1`` / ``-inf`` where the row runs out): a session's scores are mostly zero, and the
    dense selection over every item costs far more than the scoring.
    """
    scores = sp.csr_matrix(scores)
    scores.eliminate_zeros()
    exclude = sp.csr_matrix(exclude)
    n_rows, n_items = scores.shape
    k = max(0, min(k, n_items))
    rows = np.repeat(np.arange(n_rows), np.diff(scores.indptr))
    cols, values = scores.indices.astype(np.int64), scores.data
    ex_rows = np.repeat(np.arange(n_rows), np.diff(exclude.indptr))
    excluded = ex_rows * n_items + exclude.indices
    allowed = ~np.isin(rows * n_items + cols, excluded)
    rows, cols, values = rows[allowed], cols[allowed], values[allowed]
    order = np.lexsort((cols, -values, rows))
    starts, runs = run_starts(rows[order])
    rank = np.arange(len(order)) - np.repeat(starts, runs)
    top = rank < k
    items = np.full((n_rows, k), -1, dtype=np.int32)
    top_scores = np.full((n_rows, k), -np.inf, dtype=np.float32)
    items[rows[order[top]], rank[top]] = cols[order[top]]
    top_scores[rows[order[top]], rank[top]] = values[order[top]]
    # the rest of a row: its lowest-indexed items with score 0 (neither positive nor excluded); they lie
    # among the first k + (positive or excluded items) indices
    positives = np.bincount(rows, minlength=n_rows)
    short = np.flatnonzero(positives < k)
    if len(short) == 0:
        return items, top_scores
    blocked_rows = np.r_[rows, ex_rows]
    blocked_cols = np.r_[cols, exclude.indices]
    blocked_count = np.bincount(blocked_rows, minlength=n_rows)
    width = int(min(n_items, k + blocked_count[short].max()))
    position = np.full(n_rows, -1, dtype=np.int64)
    position[short] = np.arange(len(short))
    blocked = np.zeros((len(short), width), dtype=bool)
    inside = (position[blocked_rows] >= 0) & (blocked_cols < width)
    blocked[position[blocked_rows[inside]], blocked_cols[inside]] = True
    free = ~blocked
    slot = positives[short][:, None] + np.cumsum(free, axis=1) - 1  # the output column each free item takes
    take = free & (slot < k)
    fill_rows, fill_cols = np.nonzero(take)
    items[short[fill_rows], slot[fill_rows, fill_cols]] = fill_cols
    top_scores[short[fill_rows], slot[fill_rows, fill_cols]] = 0.0
    return items, top_scores


class CurrentSessionModel(Recommender):
    """Base of the models that score a history row from its current session alone (``_sparse_scores``,
    non-negative).

    ``recommend`` cuts the history events into sessions once for all users, then scores in chunks and
    selects the top-K from the nonzero scores (``sparse_top_k``).
    """

    event_columns = SESSION_EVENT_COLUMNS

    def _sparse_scores(self, current: CurrentSessions) -> sp.csr_matrix:
        """Scores ``(len(current.users), n_items_)``, all >= 0, as a sparse matrix."""
        raise NotImplementedError

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        """Scores from each row's current session in ``context.history_events`` (``history`` is not read)."""
        current = current_sessions(self._events(context), users, self.n_items_).select(users)
        return self._sparse_scores(current).toarray().astype(np.float32)

    def recommend(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, context: ScoreContext | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        self._check_history(history)
        users = np.asarray(users, dtype=np.int64)
        current = current_sessions(self._events(context), users, self.n_items_)
        history = history.tocsr()
        k = min(k, self.n_items_)
        items = np.empty((len(users), k), dtype=np.int32)
        scores = np.empty((len(users), k), dtype=np.float32)
        for start in range(0, len(users), SCORE_CHUNK_USERS):
            chunk = users[start : start + SCORE_CHUNK_USERS]
            block = self._sparse_scores(current.select(chunk)).astype(np.float32)
            items[start : start + len(chunk)], scores[start : start + len(chunk)] = sparse_top_k(
                block, history[chunk], k
            )
        return items, scores

    def _fit_events(self, context: FitContext) -> pd.DataFrame:
        """The train events (a ``ValueError`` without them)."""
        return require_events(self.name, context.train_events, "FitContext.train_events")

    def _events(self, context: ScoreContext | None) -> pd.DataFrame:
        return require_events(
            self.name,
            context.history_events if context is not None else None,
            "ScoreContext(history_events=...)",
        )
