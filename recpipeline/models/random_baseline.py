"""Random baseline: the floor below popularity — what any ranking scores by chance."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recpipeline.models.base import Logger, Recommender
from recpipeline.models.context import FitContext, ScoreContext
from recpipeline.models.settings import ModelSettings, Seed

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)


def _splitmix64(x: np.ndarray) -> np.ndarray:
    """The SplitMix64 finaliser: a well-mixed 64-bit hash of each element (uint64 arithmetic wraps)."""
    x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
    x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
    x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
    return x ^ (x >> np.uint64(31))


class Random(Recommender):
    """Uniform random scores from a hash of (seed, user, item).

    Hashing instead of drawing from a generator makes a user's ranking independent of which other users are
    scored with it (and of the chunking in ``recommend``): the same seed always gives the same lists.
    """

    name = "random"
    family = "baseline"
    run_settings = ("seed",)
    serves_cold_users = True

    class Settings(ModelSettings):
        seed: Seed = 42

    def _fit(
        self, train: sp.csr_matrix, validation: sp.csr_matrix | None, context: FitContext, log: Logger
    ) -> None:
        log(f"random: seed {self.seed}, {self.n_items_} items")

    def score(
        self, users: np.ndarray, history: sp.csr_matrix, context: ScoreContext | None = None
    ) -> np.ndarray:
        with np.errstate(over="ignore"):
            seed = _splitmix64(np.array([self.seed], dtype=np.uint64))
            user_keys = _splitmix64(seed ^ np.asarray(users, dtype=np.uint64))
            keys = user_keys[:, None] ^ np.arange(self.n_items_, dtype=np.uint64)[None, :]
            hashed = _splitmix64(keys)
        # the top 24 bits as a float32 in [0, 1): exact, and enough resolution to make ties rare
        return (hashed >> np.uint64(40)).astype(np.float32) / np.float32(1 << 24)

    def _state_arrays(self) -> dict[str, np.ndarray]:
        return {}

    def _set_state_arrays(self, arrays: dict[str, np.ndarray]) -> None:
        return None
