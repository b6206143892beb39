"""Differentially private popularity: each item's count of distinct users, with Gaussian noise.

Each user's row is binarised and cut to at most ``max_items_per_user`` items (``privacy.clip_rows``), so one
user adds 1 to at most c counts: the count vector's L2 sensitivity is sqrt(c). Independent N(0, sigma^2)
noise on every item's count, sigma from the analytic Gaussian mechanism (``privacy.gaussian_sigma``), makes
the released ranking (epsilon, delta)-DP per user (docs/privacy.md). The noisy counts are the whole learned
state; ranking them is post-processing.
"""

from __future__ import annotations

import math

import numpy as np
import scipy.sparse as sp

from recpipeline.models.base import Logger
from recpipeline.models.context import FitContext
from recpipeline.models.popularity import Popularity
from recpipeline.models.privacy import PrivacySettings, clip_rows, gaussian_sigma


class PrivatePopularity(Popularity):
    """Global popularity (distinct users per item) released through the Gaussian mechanism; no segments
    (each segment's counts would spend budget of its own)."""

    name = "private_popularity"
    #: not "baseline": a private model must never become the significance baseline (``NOT_BASELINE_FAMILIES``)
    family = "private"
    run_settings = ("seed",)

    class Settings(PrivacySettings):
        pass

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        rng = np.random.default_rng(self.seed)
        counts = np.asarray(clip_rows(train, self.max_items_per_user, rng).sum(axis=0)).ravel()
        if self.epsilon is not None:
            sigma = noise_scale(self.epsilon, self.delta, self.max_items_per_user)
            counts = counts + rng.normal(0.0, sigma, size=counts.shape)
            log(f"private_popularity: epsilon {self.epsilon}, delta {self.delta}, sigma {sigma:.2f}")
        self.item_scores_ = counts.astype(np.float32)
        self.segment_columns_ = np.array([], dtype=str)
        self.segment_keys_ = np.array([], dtype=str)
        self.segment_scores_ = np.zeros((0, self.n_items_), dtype=np.float32)


def noise_scale(epsilon: float, delta: float, max_items_per_user: int) -> float:
    """Sigma of the noise on each count: one user changes at most c counts by 1, L2 sensitivity sqrt(c)."""
    return gaussian_sigma(epsilon, delta, math.sqrt(max_items_per_user))
