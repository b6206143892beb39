"""NDCG@k of a model on a held-out matrix: the signal for early stopping and hyperparameter search.

Above ``VALIDATION_USERS`` eligible users the signal comes from a fixed seeded sample of them (the same for
every epoch and model); the reported test metrics always use every test user.

Relevance (``recpipeline.scoring.relevance``) and NDCG (``recpipeline.scoring.metrics``) are the ones
of the reported metrics, so validation optimises exactly what the evaluation reports.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd
import scipy.sparse as sp

from recpipeline.models.base import Logger, Recommender, no_log
from recpipeline.models.context import ScoreContext
from recpipeline.scoring.metrics import mean_ndcg
from recpipeline.scoring.relevance import holdout_relevance

#: what a fit is handed to score its current weights: ``(model, k, score_context) -> NDCG@k``
Validate = Callable[[Recommender, int, ScoreContext | None], float]
#: the most validation users early stopping and tuning score: where more are eligible, one seeded sample
#: serves every epoch of every model (scoring every user each epoch dominated epochs at shop scale)
VALIDATION_USERS = 5_000


@dataclass(frozen=True)
class ValidationUsers:
    """The validation users scored (all eligible ones, or a seeded sample) and their relevant items."""

    history: sp.csr_matrix
    users: np.ndarray  # ascending
    relevant: sp.csr_matrix  # users x items: held-out items not in the user's history
    n_eligible: int  # users with history and an unseen held-out item, before sampling

    @classmethod
    def draw(
        cls, history: sp.spmatrix, holdout: sp.spmatrix, max_users: int | None = None, seed: int = 0
    ) -> ValidationUsers:
        """Every eligible user, or with ``max_users`` at most that many, drawn with ``seed``."""
        users, relevant = holdout_relevance(history, holdout)
        eligible = len(users)
        if max_users is not None and eligible > max_users:
            users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
        return cls(sp.csr_matrix(history), users, relevant, eligible)

    def ndcg(self, model: Recommender, k: int, context: ScoreContext | None = None) -> float:
        """Mean NDCG@``k`` of ``model.recommend`` over these users (NaN without any)."""
        users = self.users
        if len(users) == 0:
            return float("nan")
        items, _ = model.recommend(users, self.history, k, context)
        listed = items >= 0
        rank = np.broadcast_to(np.arange(1, items.shape[1] + 1), items.shape)
        lists = pd.DataFrame(
            {
                "user_idx": np.repeat(users, items.shape[1])[listed.ravel()],
                "item_idx": items[listed],
                "rank": rank[listed],
            }
        )
        truth = self.relevant[users].tocoo()
        return mean_ndcg(lists, pd.DataFrame({"user_idx": users[truth.row], "item_idx": truth.col}), k)


def holdout_ndcg(
    model: Recommender,
    history: sp.csr_matrix,
    holdout: sp.csr_matrix,
    k: int,
    context: ScoreContext | None = None,
) -> float:
    """Mean NDCG@``k`` of ``model.recommend`` over every user with history and unseen held-out items (or
    NaN)."""
    return ValidationUsers.draw(history, holdout).ndcg(model, k, context)


def validation_scorer(
    history: sp.csr_matrix,
    holdout: sp.csr_matrix | None,
    max_users: int | None = VALIDATION_USERS,
    seed: int = 0,
    log: Logger = no_log,
) -> Validate | None:
    """The scorer a fit early-stops on and tuning chooses by (``FitContext.validate``): NDCG on ``holdout``
    with ``history`` as each user's history, over at most ``max_users`` users (a sample drawn once with
    ``seed``, logged); None when no user has an unseen held-out item (nothing to validate)."""
    if holdout is None:
        return None
    sample = ValidationUsers.draw(history, holdout, max_users, seed)
    if len(sample.users) < sample.n_eligible:
        log(f"validation: a seeded sample of {len(sample.users):,} of {sample.n_eligible:,} users")
    return sample.ndcg if len(sample.users) else None
