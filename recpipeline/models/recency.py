"""Recency baseline: what the most distinct users interacted with lately (a recent window, a time decay).

On shop logs, "most bought in the last two weeks" is often the strongest simple baseline, far above all-time
popularity: assortments, seasons and promotions move faster than a year of history. The counts are taken
over the history the model is given when recommending (``ScoreContext.history_events``: train + validation
when recommending for test, train only when scored on validation), so the window always ends at the newest
event before the window being predicted. Without history events the counts from the train events at fit
time are used.
"""

from __future__ import annotations

import copy
from typing import Annotated

import numpy as np
import pandas as pd
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.popularity import Popularity, PopularityBy
from recpipeline.models.settings import ModelSettings

#: seconds per day: ages and the window are in days
_DAY_SECONDS = 86_400.0
#: a positive number of days
Days = Annotated[float, Field(gt=0)]


class RecentPopularity(Popularity):
    """Score each item by its popularity over the latest ``window_days`` days of the history, each
    interaction weighted ``0.5 ** (age_days / half_life_days)`` where ``half_life_days`` is set.

    Ages are measured from the newest history event (the cut); an event counts when it is less than
    ``window_days`` days older (``None``: the whole history). ``by="users"`` counts each user who interacted
    with the item (positive summed weight) once, weighted by the decay of their latest interaction with it;
    ``by="weight"`` sums the decayed interaction weights. One global ranking (no segments); it is a
    ``Popularity`` whose counts come from the events, and shares its top-K.
    """

    name = "recent_popularity"
    family = "baseline"
    serves_cold_users = True
    # weight: the counts; timestamp: the ages
    event_columns = ("user_idx", "item_idx", "weight", "timestamp")
    search_space = {"window_days": [3, 7, 14, 28, 56], "half_life_days": [None, 3, 7, 14, 28]}

    class Settings(ModelSettings):
        by: PopularityBy = "users"
        window_days: Days | None = 14
        """days back from the newest event that count (null: the whole history)"""
        half_life_days: Days | None = None
        """days over which an interaction's weight halves (null: no decay)"""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        if context.train_events is None:
            raise ValueError(
                "recent_popularity: counts by time; pass the train events (FitContext.train_events)"
            )
        self.item_scores_ = self.recent_counts(context.train_events)
        self.segment_columns_ = np.array([], dtype=str)
        self.segment_keys_ = np.array([], dtype=str)
        self.segment_scores_ = np.zeros((0, self.n_items_), dtype=np.float32)
        log(
            f"recent_popularity[{self.by}, {self.window_days} days, half-life {self.half_life_days}]: "
            f"{np.count_nonzero(self.item_scores_)} of {self.n_items_} items scored in training"
        )

    def recent_counts(self, events: pd.DataFrame) -> np.ndarray:
        """Each item's (decayed) count over ``events`` in the window ending at their newest timestamp."""
        stamps = events["timestamp"]
        if not pd.api.types.is_datetime64_any_dtype(stamps):
            raise ValueError(f"recent_popularity: timestamps must be datetimes, got {stamps.dtype}")
        age = (stamps.max() - stamps).dt.total_seconds().to_numpy() / _DAY_SECONDS
        keep = age < self.window_days if self.window_days is not None else np.ones(len(age), dtype=bool)
        decay = 0.5 ** (age[keep] / self.half_life_days) if self.half_life_days else np.ones(keep.sum())
        weight = events["weight"].to_numpy(np.float64)[keep]
        # one row per (user, item): like the matrix, a cell's weights are summed before negatives are dropped
        cells = (
            pd.DataFrame(
                {
                    "user": events["user_idx"].to_numpy()[keep],
                    "item": events["item_idx"].to_numpy()[keep],
                    "weight": weight,
                    "decayed": weight * decay,
                    "latest": decay,
                }
            )
            .groupby(["user", "item"], sort=False)
            .agg(weight=("weight", "sum"), decayed=("decayed", "sum"), latest=("latest", "max"))
        )
        if self.by == "users":
            value = np.where(cells["weight"].to_numpy() > 0, cells["latest"].to_numpy(), 0.0)
        else:
            value = np.maximum(cells["decayed"].to_numpy(), 0.0)
        items = cells.index.get_level_values("item").to_numpy()
        return np.bincount(items, weights=value, minlength=self.n_items_).astype(np.float32)

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        """The counts over ``context.history_events`` for every user (fit-time counts without them)."""
        return Popularity.score(self._at_cut(context), users, history, context)

    def recommend(
        self, users: np.ndarray, history: sp.csr_matrix, k: int, context: ScoreContext | None = None
    ) -> tuple[np.ndarray, np.ndarray]:
        """``Popularity.recommend`` over the counts of ``context.history_events`` (counted once per call)."""
        return Popularity.recommend(self._at_cut(context), users, history, k, context)

    def _at_cut(self, context: ScoreContext | None) -> RecentPopularity:
        """This model with its counts taken over the given history events (itself when there are none)."""
        events = context.history_events if context is not None else None
        if events is None:
            return self
        current = copy.copy(self)
        current.item_scores_ = self.recent_counts(events)
        return current
