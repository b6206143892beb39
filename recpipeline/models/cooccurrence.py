"""Item-to-item co-occurrence from the last item of the current session: sequential rules (SR) and
association rules (AR) of Ludewig & Jannach (2018).

Training counts, over the training sessions (consecutive repeats collapsed), how often item ``j`` follows
item ``i`` within ``steps`` steps, each pair weighted by ``weighting`` of its distance (``div``: 1 / d);
``mode="cooccurrence"`` counts both directions (the pair co-occurs). Each item keeps its ``neighbours``
strongest rules. A history row scores the rules of the last item of its current session
(``recpipeline.models.sessions``), so "viewed i, next view j" is one sparse row lookup.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.explaining import entry_rows
from recpipeline.models.sessions import (
    CurrentSessionModel,
    CurrentSessions,
    PositionWeighting,
    current_sessions,
    session_sequences,
    step_decay,
    top_per_row,
)
from recpipeline.models.settings import ModelSettings
from recpipeline.models.similarity import sparse_arrays, sparse_from_arrays, top_neighbours


class Cooccurrence(CurrentSessionModel):
    """Rules ``i -> j`` from the training sessions; ``score`` = the rules of the current session's last item.

    ``mode``: ``sequential`` (``j`` after ``i``) or ``cooccurrence`` (either order). ``steps``: the farthest
    distance a pair may lie apart (1: direct successors only). ``weighting``: a pair's weight by its
    distance (``recpipeline.models.sessions.step_decay``). ``neighbours``: rules kept per item (0: all).
    """

    name = "cooccurrence"
    family = "neighbourhood"
    explains = "exact"
    state_shapes = {"rules_": ("n_items", "n_items")}
    search_space = {
        "mode": ["sequential", "cooccurrence"],
        "steps": [1, 3, 5, 10, 20],
        "weighting": ["div", "linear", "log", "quadratic", "same"],
        "neighbours": [20, 100, 500],
    }

    class Settings(ModelSettings):
        mode: Literal["sequential", "cooccurrence"] = "sequential"
        """``sequential``: ``j`` after ``i``; ``cooccurrence``: either order"""
        steps: int = Field(10, ge=1)
        """the farthest distance a pair may lie apart (1: direct successors only)"""
        weighting: PositionWeighting = "div"
        """a pair's weight by its distance"""
        neighbours: int = Field(100, ge=0)
        """rules kept per item (0: all)"""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        sessions, items = session_sequences(self._fit_events(context))
        sources, targets, distances = (
            [np.empty(0, np.int64)],
            [np.empty(0, np.int64)],
            [np.empty(0, np.int64)],
        )
        # one vectorised pass per distance (at most ``steps``): every pair d apart within one session; an
        # item is not its own rule (whether re-views are recommended is the caller's setting)
        for distance in range(1, min(self.steps, max(len(items) - 1, 0)) + 1):
            pair = (sessions[distance:] == sessions[:-distance]) & (items[distance:] != items[:-distance])
            sources.append(items[:-distance][pair])
            targets.append(items[distance:][pair])
            distances.append(np.full(int(pair.sum()), distance))
        rows, cols, distance = (np.concatenate(parts) for parts in (sources, targets, distances))
        if self.mode == "cooccurrence":
            rows, cols, distance = np.r_[rows, cols], np.r_[cols, rows], np.r_[distance, distance]
        # duplicates summed: a rule's weight is the sum over its occurrences
        rules = sp.csr_matrix(
            (step_decay(self.weighting, distance), (rows, cols)), shape=(self.n_items_, self.n_items_)
        )
        rules.sum_duplicates()
        rules.eliminate_zeros()  # linear weighting: pairs too far apart weigh 0
        if self.neighbours:
            rules = rules.tocoo()
            keep = top_per_row(rules.row.astype(np.int64), rules.data, self.neighbours, tie_break=-rules.col)
            rules = sp.csr_matrix(
                (rules.data[keep], (rules.row[keep], rules.col[keep])), shape=(self.n_items_, self.n_items_)
            )
        self.rules_ = rules.astype(np.float32)
        log(f"cooccurrence[{self.mode}, {self.steps} steps]: {self.rules_.nnz} rules over {len(items)} steps")

    def _sparse_scores(self, current: CurrentSessions) -> sp.csr_matrix:
        steps = current.steps
        rows = np.repeat(np.arange(steps.shape[0]), np.diff(steps.indptr))
        latest = steps.data == 1
        last_item = sp.csr_matrix(
            (np.ones(int(latest.sum()), dtype=np.float32), (rows[latest], steps.indices[latest])),
            shape=steps.shape,
        )
        return (last_item @ self.rules_).tocsr()

    def history_contributions(
        self, users: np.ndarray, history: sp.csr_matrix, items: np.ndarray, context: ScoreContext | None
    ) -> np.ndarray:
        """The whole score comes from the current session's last item (its rule to the target); every other
        history item contributes 0."""
        steps = current_sessions(self._events(context), users, self.n_items_).select(users).steps
        last = np.full(steps.shape[0], -1, dtype=np.int64)
        latest = steps.data == 1
        last[entry_rows(steps)[latest]] = steps.indices[latest]
        rows = entry_rows(history)
        targets = items[rows]
        is_last = (history.indices == last[rows])[:, None]
        rules = np.asarray(
            self.rules_[
                np.broadcast_to(last[rows, None], targets.shape).ravel(), np.maximum(targets, 0).ravel()
            ]
        ).reshape(targets.shape)
        return np.where(targets >= 0, np.where(is_last, rules, 0.0), np.nan)

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The strongest rules of each item (``sequential``: the items most often viewed next)."""
        items = np.asarray(items, dtype=np.int64)
        rules = self.rules_[items].toarray()
        rules[rules == 0] = -np.inf  # no rule: no similarity, rather than similarity 0
        return top_neighbours(rules, items, n)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return sparse_arrays(self.rules_, "rules")

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.rules_ = sparse_from_arrays(arrays, "rules").astype(np.float32)
