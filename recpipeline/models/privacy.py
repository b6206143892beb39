"""What the differentially private models share: the bound on each user's contribution, the Gaussian
mechanism's noise scale for a privacy budget (epsilon, delta), and the checks of those settings.

The guarantee is user-level (event-level privacy would be weaker): two training sets are neighbours when one
holds a user the other lacks, with all of that user's interactions. A released statistic is private only if
one user can move it by a bounded amount (its sensitivity), so each user's row is first binarised and cut to
at most ``max_items_per_user`` items, drawn at random with the seed (``clip_rows``). The derivations, per
model, are in docs/privacy.md.
"""

from __future__ import annotations

import math
from typing import Annotated, Self

import numpy as np
import scipy.sparse as sp
from pydantic import Field, model_validator
from scipy.special import log_ndtr, ndtr

from recpipeline.models.base import prepare_matrix
from recpipeline.models.settings import ModelSettings, Seed

#: the default delta: far below 1 / (users) of any dataset the project runs (a delta near 1 / n would allow
#: releasing one whole user's data); fixed, so it reveals nothing about the data
DEFAULT_DELTA = 1e-6
#: the default bound on each user's items: chosen on a random 80 / 20 split of MovieLens-100K
#: (docs/privacy.md)
DEFAULT_MAX_ITEMS_PER_USER = 50


def gaussian_delta(epsilon: float, sigma: float, sensitivity: float) -> float:
    """The smallest delta for which adding N(0, sigma^2) noise to each coordinate of a statistic of L2
    sensitivity ``sensitivity`` is (epsilon, delta)-differentially private: exact, for every epsilon > 0
    (Balle & Wang 2018, "Improving the Gaussian mechanism", Theorem 8)."""
    a, b = sensitivity / (2.0 * sigma), epsilon * sigma / sensitivity
    # e^eps * Phi(-a - b) in logs: the product of a huge and a tiny number
    return float(ndtr(a - b) - math.exp(epsilon + log_ndtr(-a - b)))


def gaussian_sigma(epsilon: float, delta: float, sensitivity: float) -> float:
    """The smallest noise standard deviation (to a relative 1e-12, rounded up) that makes the Gaussian
    mechanism (epsilon, delta)-DP for a statistic of L2 sensitivity ``sensitivity`` (the analytic Gaussian
    mechanism: tighter than the classic sqrt(2 ln(1.25 / delta)) * sensitivity / epsilon, and valid for
    epsilon >= 1, where the classic bound is not)."""
    if not (0 < epsilon < math.inf and 0 < delta < 1 and sensitivity > 0):
        raise ValueError(
            f"gaussian mechanism: needs epsilon > 0 (finite), 0 < delta < 1 and a positive sensitivity; got "
            f"epsilon {epsilon!r}, delta {delta!r}, sensitivity {sensitivity!r}"
        )
    low, high = 0.0, sensitivity * math.sqrt(2.0 * math.log(1.25 / delta)) / epsilon
    while gaussian_delta(epsilon, high, sensitivity) > delta:  # the classic bound can be too small (eps > 1)
        low, high = high, 2.0 * high
    while high - low > 1e-12 * high:  # delta falls as sigma grows: bisect, keeping high on the private side
        middle = 0.5 * (low + high)
        if gaussian_delta(epsilon, middle, sensitivity) > delta:
            low = middle
        else:
            high = middle
    return high


class PrivacySettings(ModelSettings):
    """The settings every private model shares: its privacy budget, the bound on each user's contribution
    and the seed of the clipping and the noise."""

    epsilon: Annotated[float, Field(gt=0)] | None = 1.0
    """the privacy budget epsilon (smaller = more private); null: no noise, no guarantee (the non-private
    model, for comparison)"""
    delta: float = Field(DEFAULT_DELTA, gt=0, lt=1)
    """the probability delta with which the epsilon bound may fail; keep it far below 1 / users"""
    max_items_per_user: Annotated[int, Field(ge=1)] | None = DEFAULT_MAX_ITEMS_PER_USER
    """each user's items kept (a seeded random subset of longer histories): bounds what one user can change;
    null (only without a finite epsilon): every item"""
    seed: Seed = 42
    """seed of the clipping and the noise; a deployment keeps it secret (the guarantee assumes noise nobody
    can predict)"""

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        if self.epsilon is not None and self.max_items_per_user is None:
            raise ValueError(
                "a finite epsilon needs max_items_per_user (a positive integer): without a bound on each "
                "user's items one user can move the model without limit, and no noise hides that"
            )
        return self


def clip_rows(matrix: sp.spmatrix, max_items: int | None, rng: np.random.Generator) -> sp.csr_matrix:
    """The binarised matrix with at most ``max_items`` items per row (user), each over-long row keeping a
    uniformly random subset drawn from ``rng``; ``max_items`` None keeps every item."""
    x = prepare_matrix(matrix, binarize=True)
    lengths = np.diff(x.indptr)
    if max_items is None or lengths.max(initial=0) <= max_items:
        return x
    rows = np.repeat(np.arange(x.shape[0]), lengths)
    # a random order inside each row (rows stay in place); an entry is kept when among its row's first
    order = np.lexsort((rng.random(x.nnz), rows))
    rank = np.empty(x.nnz, dtype=np.int64)
    rank[order] = np.arange(x.nnz) - x.indptr[rows[order]]
    keep = rank < max_items
    return sp.csr_matrix((x.data[keep], (rows[keep], x.indices[keep])), shape=x.shape)
