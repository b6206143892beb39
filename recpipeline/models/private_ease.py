"""Differentially private EASE: the closed form on a Gram matrix released through the Gaussian mechanism.

EASE learns from the data only through the item x item Gram matrix ``G = X^T X``. Each user's row is
binarised and cut to at most c = ``max_items_per_user`` items (``privacy.clip_rows``), so one user adds
``x x^T`` with at most c ones in ``x``: to the upper triangle of ``G`` (diagonal included, which
determines the symmetric matrix) that is at most c + c (c - 1) / 2 entries of 1, an L2 sensitivity of
sqrt(c (c + 1) / 2).
Independent N(0, sigma^2) noise on that triangle, mirrored, with sigma from the analytic Gaussian mechanism
(``privacy.gaussian_sigma``), makes the noisy Gram (epsilon, delta)-DP per user; everything after it is
post-processing, which keeps the guarantee (docs/privacy.md):

* the noisy Gram is projected onto the positive semi-definite matrices (negative eigenvalues set to 0): a
  Gram matrix is PSD, the noise is not;
* the ridge penalty grows with the noise: ``lambda = regularization + noise_regularization * sigma *
  sqrt(n_items)`` (about ``2 sigma sqrt(n)`` is the noise matrix's spectral norm), public quantities only;
* no popularity penalty: it would read the raw item counts.

``epsilon`` null skips the noise (and, with ``max_items_per_user`` null, the clipping): the fit is then
plain EASE's, bit for bit. Scoring reads the user's own history, as EASE does.
"""

from __future__ import annotations

import math
import time

import numpy as np
import scipy.sparse as sp
from pydantic import Field

from recpipeline.models.base import Logger
from recpipeline.models.context import FitContext
from recpipeline.models.ease import EASE, PEAK_BYTES_PER_PAIR, check_catalogue, closed_form, gram_matrix
from recpipeline.models.privacy import PrivacySettings, clip_rows, gaussian_sigma

#: bytes per item pair at the peak of a noisy fit (measured: ``benchmarks/ease_memory.py --private``): the
#: Gram matrix with the noise and its triangles, then ``eigh``'s copy, workspace and eigenvectors
NOISY_PEAK_BYTES_PER_PAIR = 42


class PrivateEASE(EASE):
    """EASE fitted on a differentially private Gram matrix; scores, explanations and similar items as EASE."""

    name = "private_ease"
    #: not "linear": a private model must never become the significance baseline (``NOT_BASELINE_FAMILIES``)
    family = "private"
    run_settings = ("seed",)
    #: no search: choosing settings on the data would spend privacy budget this accounting leaves out
    search_space = {}
    #: the sensitivity holds for 0 / 1 rows only (``score`` reads it as EASE's setting)
    binarize = True

    class Settings(PrivacySettings):
        regularization: float = Field(500.0, ge=0)
        """the ridge penalty lambda without noise (EASE's ``regularization``)"""
        noise_regularization: float = Field(2.0, ge=0)
        """extra ridge penalty per unit of the noise's spectral scale sigma * sqrt(n_items)"""
        max_items: int = Field(20_000, ge=1)
        """the largest catalogue fitted (the fit peaks at about 12 bytes per item pair without noise, 42
        with it: the noise, the eigendecomposition and the projected Gram matrix)"""

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        n_items = train.shape[1]
        noisy = self.epsilon is not None
        check_catalogue(
            self.name, n_items, self.max_items, NOISY_PEAK_BYTES_PER_PAIR if noisy else PEAK_BYTES_PER_PAIR
        )
        start = time.perf_counter()
        rng = np.random.default_rng(self.seed)
        gram = gram_matrix(clip_rows(train, self.max_items_per_user, rng))
        regularization = self.regularization
        if noisy:
            sigma = gram_noise_scale(self.epsilon, self.delta, self.max_items_per_user)
            noise = np.triu(rng.normal(0.0, sigma, size=gram.shape))
            gram += noise + np.triu(noise, 1).T
            del noise
            eigenvalues, vectors = np.linalg.eigh(gram)
            gram = (vectors * np.maximum(eigenvalues, 0.0)) @ vectors.T
            regularization += self.noise_regularization * sigma * math.sqrt(n_items)
            log(
                f"private_ease: epsilon {self.epsilon}, delta {self.delta}, at most "
                f"{self.max_items_per_user} items per user, sigma {sigma:.2f}, lambda {regularization:.0f}"
            )
        self.weights_ = closed_form(gram, regularization)
        self.item_penalty_ = np.ones(n_items, dtype=np.float32)
        log(f"private_ease: {n_items} items, {time.perf_counter() - start:.1f}s")


def gram_noise_scale(epsilon: float, delta: float, max_items_per_user: int) -> float:
    """Sigma of the noise on each Gram entry: one user's ``x x^T`` has at most c (c + 1) / 2 ones in the
    upper triangle, L2 sensitivity sqrt(c (c + 1) / 2)."""
    c = max_items_per_user
    return gaussian_sigma(epsilon, delta, math.sqrt(c * (c + 1) / 2))
