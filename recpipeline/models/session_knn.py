"""Session-based k-nearest-neighbours, ``sknn`` and ``vsknn`` (Ludewig & Jannach 2018, "Evaluation of
session-based recommendation algorithms"; their session-rec ``ContextKNN`` / ``VMContextKNN``).

A history row is scored from its current session (``recpipeline.models.sessions``). Its candidate neighbours
are the training sessions sharing at least one item with it, of which the ``sample_size`` most recent (by
their latest event) are kept; of those, the ``neighbours`` most similar vote, and an item scores the summed
similarity of the neighbours that contain it. ``vsknn`` weights the current session's items by
position (later items count more), decays each neighbour by how far back its latest match lies in the
current session, and can boost rare items (IDF). A training session never counts as its own neighbour (in
ordinary runs a user's current session is usually one of the training sessions).

The computation is a few sparse products over a whole block of rows: sessions x items (binary, training)
against the rows' current sessions; no loop over sessions or events.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger
from recpipeline.models.context import FitContext
from recpipeline.models.sessions import (
    CurrentSessionModel,
    CurrentSessions,
    PositionWeighting,
    position_weights,
    session_matrix,
    step_decay,
    top_per_row,
)
from recpipeline.models.settings import ModelSettings
from recpipeline.models.similarity import sparse_arrays, sparse_from_arrays

#: steps are carried through the sparse product as 4**-step (see ``_neighbours``): capped where it underflows
_MAX_STEP = 500


class SessionKNN(CurrentSessionModel):
    """The shared implementation; ``SKNN`` and ``VSKNN`` fix or expose its knobs.

    ``similarity``: ``cosine`` / ``jaccard`` over the binary item sets, or ``vec`` (vsknn: the position-
    weighted dot product divided by the current session's length). ``weighting``: the current session's item
    weights by position; ``weighting_score``: a neighbour's weight by the step of its latest match;
    ``idf_weighting``: item scores times ``1 + idf_weighting * idf`` (idf = log(sessions / sessions with the
    item)).
    """

    family = "neighbourhood"
    # the neighbour choice is not a sum over the session's items: the score drop on removing each
    explains = "leave-one-out"
    state_shapes = {"session_items_": ("sessions", "n_items"), "session_keys_": ("sessions",)}
    # fixed at class level where a subclass does not take them as hyperparameters
    similarity: str = "cosine"
    weighting: str = "same"
    weighting_score: str = "same"
    idf_weighting: float = 0.0

    class Settings(ModelSettings):
        neighbours: int = Field(100, ge=1)
        """most similar training sessions that vote"""
        sample_size: int = Field(1000, ge=0)
        """most recent training sessions sharing an item that are candidates (0: all)"""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        self.session_keys_, self.session_items_ = session_matrix(self._fit_events(context), self.n_items_)
        self._derive()
        log(
            f"{self.name}: {len(self.session_keys_)} training sessions, "
            f"{self.session_items_.nnz / max(len(self.session_keys_), 1):.1f} distinct items each"
        )

    def _derive(self) -> None:
        """What scoring reads besides the saved state: the transpose, session sizes, idf, key lookup."""
        self.items_sessions_ = self.session_items_.T.tocsr()
        self.session_sizes_ = np.diff(self.session_items_.indptr).astype(np.float64)
        sessions_with = np.diff(self.items_sessions_.indptr)
        self.idf_ = np.where(
            sessions_with > 0, np.log(max(len(self.session_keys_), 1) / np.maximum(sessions_with, 1)), 0.0
        )
        self.key_order_ = np.argsort(self.session_keys_, kind="stable")

    def _own_rows(self, keys: np.ndarray) -> np.ndarray:
        """The training row of each session key (-1 where it is not a training session)."""
        rows = np.full(len(keys), -1, dtype=np.int64)
        if len(self.session_keys_) == 0:
            return rows
        sorted_keys = self.session_keys_[self.key_order_]
        position = np.minimum(np.searchsorted(sorted_keys, keys), len(sorted_keys) - 1)
        found = (sorted_keys[position] == keys) & (keys >= 0)
        rows[found] = self.key_order_[position[found]]
        return rows

    def _neighbours(self, current: CurrentSessions) -> sp.csr_matrix:
        """Rows x training sessions: each row's nearest sessions, weighted by similarity (x match decay)."""
        steps = current.steps
        n_rows = steps.shape[0]
        row_of = np.repeat(np.arange(n_rows), np.diff(steps.indptr))
        weights = position_weights(self.weighting, steps.data, current.lengths[row_of])
        decayed = self.weighting_score != "same"
        # the weighted overlap and, as the imaginary part, sum(4**-step) over the shared items: its largest
        # term 4**-m (m = the latest shared step) outweighs all the others together (< 4**-m / 3), so m is
        # read back exactly, from the same one product
        data = weights + 1j * 4.0 ** -np.minimum(steps.data, _MAX_STEP) if decayed else weights
        query = sp.csr_matrix((data, steps.indices, steps.indptr), shape=steps.shape)
        shared = (query @ self.items_sessions_).tocsr()
        shared.sort_indices()
        rows = np.repeat(np.arange(n_rows), np.diff(shared.indptr))
        sessions = shared.indices.astype(np.int64)
        values = shared.data
        keep = sessions != self._own_rows(current.keys)[rows]
        if self.sample_size:
            # columns are ascending by recency: the last sample_size candidates of a row are the most recent
            rows, sessions, values = rows[keep], sessions[keep], values[keep]
            ends = np.cumsum(np.bincount(rows, minlength=n_rows))
            keep = ends[rows] - 1 - np.arange(len(rows)) < self.sample_size
        rows, sessions, values = rows[keep], sessions[keep], values[keep]
        overlap = values.real
        if self.similarity == "cosine":
            n_query = np.diff(steps.indptr)[rows]
            similarity = overlap / np.sqrt(n_query * self.session_sizes_[sessions])
        elif self.similarity == "jaccard":
            n_query = np.diff(steps.indptr)[rows]
            similarity = overlap / (n_query + self.session_sizes_[sessions] - overlap)
        else:  # vec
            similarity = overlap / current.lengths[rows]
        keep = (similarity > 0) & top_per_row(rows, similarity, self.neighbours, tie_break=sessions)
        rows, sessions, similarity = rows[keep], sessions[keep], similarity[keep]
        if decayed:
            match_step = np.rint(-np.log(values.imag[keep]) / np.log(4.0) + 0.1)
            similarity = similarity * step_decay(self.weighting_score, match_step)
        return sp.csr_matrix((similarity, (rows, sessions)), shape=(n_rows, len(self.session_keys_)))

    def _sparse_scores(self, current: CurrentSessions) -> sp.csr_matrix:
        scores = (self._neighbours(current) @ self.session_items_).tocsr()
        if self.idf_weighting:
            scores.data *= 1.0 + self.idf_weighting * self.idf_[scores.indices]
        return scores

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"session_keys": self.session_keys_, **sparse_arrays(self.session_items_, "session_items")}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.session_keys_ = arrays["session_keys"].astype(np.int64)
        self.session_items_ = sparse_from_arrays(arrays, "session_items")
        self._derive()


class SKNN(SessionKNN):
    """Session kNN: cosine (or Jaccard) between the current session's item set and each of the
    ``sample_size`` most recent training sessions sharing an item (0: all); the ``neighbours`` nearest
    vote."""

    name = "sknn"
    search_space = {
        "neighbours": [50, 100, 200, 500],
        "sample_size": [500, 1000, 2500, 0],
        "similarity": ["cosine", "jaccard"],
    }

    class Settings(SessionKNN.Settings):
        similarity: Literal["cosine", "jaccard"] = "cosine"
        """of the item sets: ``cosine`` or ``jaccard``"""


class VSKNN(SessionKNN):
    """Vector-multiplication session kNN: the current session's items weighted by ``weighting`` (later
    items more), similarity their weighted overlap with a training session over the session's length, each
    neighbour decayed by ``weighting_score`` of the step of its latest shared item, item scores boosted by
    ``idf_weighting`` (0, the default: off, as in the 2018 paper; it demotes popular items, which hurts
    where the next item is a popular one)."""

    name = "vsknn"
    similarity = "vec"
    search_space = {
        "neighbours": [50, 100, 200, 500],
        "sample_size": [500, 1000, 2500, 0],
        "weighting": ["div", "linear", "log", "quadratic", "same"],
        "weighting_score": ["div", "linear", "log", "quadratic", "same"],
        "idf_weighting": [0.0, 1.0, 2.0, 5.0, 10.0],
    }

    class Settings(SessionKNN.Settings):
        weighting: PositionWeighting = "div"
        """the current session's item weights by position (later items count more)"""
        weighting_score: PositionWeighting = "div"
        """a neighbour's weight by the step of its latest match"""
        idf_weighting: float = Field(0.0, ge=0)
        """item scores times ``1 + idf_weighting * idf`` (0: off)"""
