"""The validation signal: every eligible user, or above ``VALIDATION_USERS`` one seeded sample of them."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from recpipeline.fitting.holdout import ValidationUsers, holdout_ndcg, validation_scorer
from recpipeline.models import create_model

N_USERS, N_ITEMS = 400, 30


def _split(seed: int = 0) -> tuple[sp.csr_matrix, sp.csr_matrix]:
    rng = np.random.default_rng(seed)
    seen = rng.random((N_USERS, N_ITEMS)) < 0.2
    held = (rng.random((N_USERS, N_ITEMS)) < 0.1) & ~seen
    return sp.csr_matrix(seen.astype(np.float32)), sp.csr_matrix(held.astype(np.float32))


def test_below_the_cap_every_eligible_user_is_scored_as_holdout_ndcg_does():
    train, validation = _split()
    model = create_model("popularity").fit(train)
    everyone = ValidationUsers.draw(train, validation)
    assert len(everyone.users) == everyone.n_eligible > 300
    validate = validation_scorer(train, validation, max_users=N_USERS)
    assert validate(model, 10, None) == holdout_ndcg(model, train, validation, 10)


def test_above_the_cap_one_seeded_sample_serves_every_call():
    train, validation = _split()
    first = ValidationUsers.draw(train, validation, max_users=100, seed=7)
    again = ValidationUsers.draw(train, validation, max_users=100, seed=7)
    other = ValidationUsers.draw(train, validation, max_users=100, seed=8)
    assert len(first.users) == 100 and first.n_eligible > 300
    np.testing.assert_array_equal(first.users, again.users)
    assert not np.array_equal(first.users, other.users)
    assert np.all(np.diff(first.users) > 0)  # ascending, a subset of the eligible users
    assert set(first.users) <= set(ValidationUsers.draw(train, validation).users)
    model = create_model("popularity").fit(train)
    lines: list[str] = []
    validate = validation_scorer(train, validation, max_users=100, seed=7, log=lines.append)
    assert validate(model, 10, None) == first.ndcg(model, 10) == validate(model, 10, None)
    assert lines == [f"validation: a seeded sample of 100 of {first.n_eligible:,} users"]


def test_nothing_to_validate_gives_no_scorer():
    train, _ = _split()
    assert validation_scorer(train, None) is None
    assert validation_scorer(train, sp.csr_matrix(train.shape, dtype=np.float32)) is None
    assert np.isnan(ValidationUsers.draw(train, sp.csr_matrix(train.shape)).ndcg(None, 10))
