"""Session logs with a planted next-item structure, shared by the session model tests.

``THEMES`` fixed item paths of ``PATH_LENGTH`` items each, all passing through one ``HUB`` item (their third);
every session walks one path from its start for a random number of steps (so an item's successor on its path
is the item most often seen after it, and in more sessions with it than any item further along), with a
random noise item now and then. After the hub only the session's earlier items tell which path it is on.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recpipeline.models import Recommender, ScoreContext
from recpipeline.preparation.encoding import interaction_matrix
from recpipeline_tests.models.conftest import T0

THEMES, PATH_LENGTH, NOISE_ITEMS = 6, 6, 14
#: the item every path passes through at position HUB_STEP (0-based); noise items follow the themed ones
HUB, HUB_STEP = 0, 2
FIRST_NOISE = 1 + THEMES * (PATH_LENGTH - 1)
N_ITEMS = FIRST_NOISE + NOISE_ITEMS


def paths(seed: int = 0) -> np.ndarray:
    """``(THEMES, PATH_LENGTH)`` item paths: a random permutation of the themed items cut into rows, the hub
    inserted as every path's item ``HUB_STEP``."""
    themed = 1 + np.random.default_rng(seed).permutation(THEMES * (PATH_LENGTH - 1))
    return np.insert(themed.reshape(THEMES, PATH_LENGTH - 1), HUB_STEP, HUB, axis=1)


def log_of(sessions: list[list[int]], first_session: int = 0) -> pd.DataFrame:
    """Events of ``sessions`` (item lists) in the given order, one second apart, session after session;
    session ``s`` has ``session_idx`` ``first_session + s`` and user ``s``."""
    rows = [(s, item) for s, items in enumerate(sessions) for item in items]
    session, item = np.array(rows, dtype=np.int64).T
    return pd.DataFrame(
        {
            "user_idx": session,
            "item_idx": item,
            "weight": np.ones(len(item), dtype=np.float32),
            "timestamp": T0 + pd.to_timedelta(first_session * 100 + np.arange(len(item)), unit="s"),
            "session_idx": session + first_session,
        }
    )


def planted_sessions(n: int, seed: int, noise: float = 0.2) -> list[list[int]]:
    """``n`` sessions, each a walk of 2..PATH_LENGTH items along a random path (from its start), with
    probability ``noise`` a random noise item inserted at a random place."""
    rng = np.random.default_rng(seed)
    walks = paths()
    out = []
    for _ in range(n):
        items = walks[rng.integers(THEMES), : rng.integers(2, PATH_LENGTH + 1)].tolist()
        if rng.random() < noise:
            items.insert(int(rng.integers(len(items) + 1)), FIRST_NOISE + int(rng.integers(NOISE_ITEMS)))
        out.append(items)
    return out


def prefixes(sessions: list[list[int]], first_user: int) -> tuple[pd.DataFrame, np.ndarray, np.ndarray]:
    """Every proper prefix of ``sessions`` as a pseudo-user (``first_user``, ``first_user + 1``, ...) with a
    session of its own: (their events, their user indices, each prefix's next item)."""
    cut = [(items[:end], items[end]) for items in sessions for end in range(1, len(items))]
    events = log_of([prefix for prefix, _ in cut], first_session=10_000)
    events["user_idx"] += first_user
    return events, first_user + np.arange(len(cut)), np.array([target for _, target in cut])


def after_hub(events: pd.DataFrame, users: np.ndarray) -> np.ndarray:
    """A mask over the ``prefixes`` users: those whose prefix ends with the hub."""
    last = events.sort_values("timestamp").groupby("user_idx")["item_idx"].last()
    return last.reindex(users).to_numpy() == HUB


def hit_rate(
    model: Recommender, events: pd.DataFrame, users: np.ndarray, targets: np.ndarray, k: int
) -> float:
    """Share of the prefixes whose next item is in the model's top ``k`` (items of the prefix excluded)."""
    history = interaction_matrix(events, int(users.max()) + 1, model.n_items_)
    items, _ = model.recommend(users, history, k, ScoreContext(history_events=events))
    return float((items == targets[:, None]).any(axis=1).mean())
