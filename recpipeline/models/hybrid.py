"""Hybrid: a weighted blend of a collaborative model and the content model, with cold-start fallbacks.

Per user, each model's scores are normalised (``zscore``: standardised over the items; ``rank``: percentile
ranks) and blended as ``alpha * cf + (1 - alpha) * content``. The CF part is only trusted for items it has
seen in training; for cold items (no training interactions) the CF evidence is missing and imputed either as
the user's average (``cold_items: average``: z = 0 / rank 0.5; with a high ``alpha`` they then rarely reach
a top-K) or as their content evidence (``cold_items: content``: they compete on content at full weight).
Users without any history get segment popularity (``segment_by`` over user attributes, global popularity
without them). The content part takes ``content_params``; ``{text_encoder: all-MiniLM-L6-v2}`` there places
cold items by their titles' meaning (``recpipeline.models.text``) instead of shared TF-IDF words.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Literal

import numpy as np
import scipy.sparse as sp
from pydantic import Field, field_validator
from scipy.stats import rankdata

from recpipeline.models.base import Logger, Recommender, RunSettings, prepare_matrix
from recpipeline.models.content import Content
from recpipeline.models.context import EVENT_COLUMNS, FitContext, ScoreContext
from recpipeline.models.popularity import Popularity
from recpipeline.models.registry import create_model
from recpipeline.models.settings import ModelSettings, Seed

_PARTS = ("cf", "content", "popularity")


class Hybrid(Recommender):
    """``alpha`` weights the CF model ``cf`` (any registry name, with ``cf_params``; ``seed`` is passed on
    unless ``cf_params`` sets one) against content."""

    name = "hybrid"
    family = "hybrid"
    state_shapes = {"cold_items_": ("n_items",)}
    run_settings = ("seed",)
    chooses_on_validation = True  # a torch CF part's epochs (``refit_params``)
    serves_cold_users = True
    event_columns = EVENT_COLUMNS  # the CF model may be a sequence model
    search_space = {
        "alpha": [0.3, 0.5, 0.7, 0.8, 0.9, 0.95],
        "normalise": ["zscore", "rank"],
        "cold_items": ["average", "content"],
    }

    class Settings(ModelSettings):
        cf: str = "als"
        """the collaborative model: any registry name but ``hybrid`` and ``content``"""
        alpha: float = Field(0.8, ge=0, le=1)
        """the CF model's weight against content"""
        normalise: Literal["zscore", "rank"] = "zscore"
        """how each model's scores are made comparable per user: z-scores or percentile ranks"""
        cf_params: dict[str, Any] = {}
        """the CF model's settings"""
        content_params: dict[str, Any] = {}
        """the content model's settings"""
        segment_by: list[str] | Literal["auto"] | None = "auto"
        """user attribute columns whose segment popularity serves users without history (``popularity``)"""
        cold_items: Literal["average", "content"] = "average"
        """the CF evidence of items without training interactions: the user's average or their content's"""
        seed: Seed = 42

        @field_validator("cf")
        @classmethod
        def _collaborative(cls, cf: str) -> str:
            if cf in ("hybrid", "content"):
                raise ValueError("a collaborative model")
            return cf

    def check_params(self) -> None:
        """The parts as ``fit`` builds them, each checked in full: an unknown or bad setting in ``cf_params``
        or ``content_params`` (a text encoder that cannot be loaded, say) fails here, not after the CF fit."""
        parts = ((self.cf, "cf_params", RunSettings(seed=self.seed)), (Content.name, "content_params", None))
        for name, key, settings in parts:
            try:
                create_model(name, getattr(self, key), settings).check_params()
            except (ValueError, TypeError) as error:
                raise ValueError(f"hybrid: {key}: {error}") from None

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        # the CF part shares the hybrid's seed; k is not a hybrid setting
        cf_model = create_model(self.cf, self.cf_params, RunSettings(seed=self.seed))
        self.cf_model_ = cf_model.fit(train, validation, context=context, log=log)
        self.content_model_ = Content(**self.content_params).fit(train, validation, context=context, log=log)
        self.popularity_model_ = Popularity(segment_by=self.segment_by).fit(train, context=context, log=log)
        self.cold_items_ = np.diff(prepare_matrix(train).tocsc().indptr) == 0
        log(f"hybrid: {self.cf} x content, alpha {self.alpha}, {int(self.cold_items_.sum())} cold items")

    def refit_params(self) -> dict[str, Any]:
        """The CF part's own choices (a torch CF model's epochs) go into ``cf_params``, so the refit on
        train + validation repeats them rather than the configured budget."""
        return {**super().refit_params(), "cf_params": self.cf_model_.refit_params()}

    def _normalised(self, scores: np.ndarray, trusted: np.ndarray) -> np.ndarray:
        """Per-row z-scores or percentile ranks, computed over ``trusted`` columns; the rest get 0 / 0.5."""
        scores = np.asarray(scores, dtype=np.float64)
        part = scores[:, trusted]
        if self.normalise == "rank":
            normalised = (rankdata(part, axis=1) - 0.5) / max(part.shape[1], 1)
            missing = 0.5
        else:
            normalised = (part - part.mean(axis=1, keepdims=True)) / (part.std(axis=1, keepdims=True) + 1e-12)
            missing = 0.0
        out = np.full(scores.shape, missing)
        out[:, trusted] = normalised
        return out

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        everything = np.ones(self.n_items_, dtype=bool)
        cf = self._normalised(self.cf_model_.score(users, history, context), ~self.cold_items_)
        content = self._normalised(self.content_model_.score(users, history, context), everything)
        if self.cold_items == "content":  # the missing CF evidence of a cold item: its content evidence
            cf[:, self.cold_items_] = content[:, self.cold_items_]
        blended = (self.alpha * cf + (1.0 - self.alpha) * content).astype(np.float32)
        cold_users = np.diff(sp.csr_matrix(history).indptr) == 0
        if cold_users.any():
            users = np.asarray(users)
            blended[cold_users] = self.popularity_model_.score(
                users[cold_users], history[cold_users], context
            )
        return blended

    def similar_items(self, items: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The CF model's neighbours for items it was trained on, the content model's for cold items."""
        items = np.asarray(items, dtype=np.int64)
        neighbours, sims = self.content_model_.similar_items(items, n)
        warm = ~self.cold_items_[items]
        # a CF model without item similarity leaves the content neighbours for every item
        with contextlib.suppress(NotImplementedError):
            neighbours[warm], sims[warm] = self.cf_model_.similar_items(items[warm], n)
        return neighbours, sims

    # -- persistence: each part in its own sub-folder, plus the cold-item mask ---------------------------

    def _save_state(self, directory: Path) -> None:
        for part in _PARTS:
            getattr(self, f"{part}_model_").save(Path(directory) / part)
        super()._save_state(directory)

    def _load_state(self, directory: Path) -> None:
        from recpipeline.models import load_model  # the registry imports this module

        # each part checks its own files
        self.cf_model_ = load_model(Path(directory) / "cf")
        self.content_model_ = Content.load(Path(directory) / "content")
        self.popularity_model_ = Popularity.load(Path(directory) / "popularity")
        super()._load_state(directory)

    def _learned_arrays(self) -> dict[str, Any]:
        # the parts' arrays too, so a non-finite part is refused before any file is written
        parts = {
            f"{part}/{key}": values
            for part in _PARTS
            for key, values in getattr(self, f"{part}_model_")._learned_arrays().items()
        }
        return {**parts, **self._state_arrays()}

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {"cold_items": self.cold_items_}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        self.cold_items_ = arrays["cold_items"].astype(bool)
